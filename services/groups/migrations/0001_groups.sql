-- The groups service: a local directory of staff and customers (from identity's
-- events), groups of three kinds with nested subgroups, memberships, invitations,
-- IWDS placements and staff access, program staff, and messages.
--
-- The access check is a handful of indexed lookups: the customer's memberships
-- (memberships_customer), each joined to its group (PK), then owners (PK),
-- program staff (PK) and the staff member's IWDS grants (iwds_grants_username).

CREATE TABLE staff (
    id          uuid PRIMARY KEY,
    username    text NOT NULL,
    name        text NOT NULL,
    has_email   boolean NOT NULL DEFAULT false,
    roles       text[] NOT NULL DEFAULT '{}',
    status      text NOT NULL DEFAULT 'active',
    changed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX staff_username ON staff (lower(username));

CREATE TABLE customers (
    id           uuid PRIMARY KEY,
    username     text,
    first_name   text,
    last_name    text,
    email        text,            -- lower case
    status       text NOT NULL DEFAULT 'active',
    created_by   uuid,
    merged_into  uuid,
    changed_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_email ON customers (email) WHERE email IS NOT NULL;

CREATE TABLE groups (
    id           uuid PRIMARY KEY,
    kind         text NOT NULL CHECK (kind IN ('personal', 'lwia', 'program')),
    name         text NOT NULL,
    parent_id    uuid REFERENCES groups (id),
    path         uuid[] NOT NULL,            -- ancestors, root first, then the group itself
    depth        int NOT NULL CHECK (depth BETWEEN 1 AND 8),
    owner_id     uuid,                       -- primary owner (personal groups, staff subgroups)
    join_code    text UNIQUE,
    passcode     text,                       -- NULL: joining by passcode is switched off
    feed_key     text UNIQUE,                -- 'lwia:<l>', 'office:<l>/<o>', 'caseload:<l>/<o>/<s>', 'program:<p>'
    lwia_code    text,
    office_code  text,
    caseload_of  text,                       -- IWDS staff id of a caseload group
    program      text,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX groups_parent ON groups (parent_id);
CREATE INDEX groups_path ON groups USING gin (path);
CREATE INDEX groups_owner ON groups (owner_id) WHERE owner_id IS NOT NULL;
CREATE INDEX groups_lwia ON groups (lwia_code) WHERE lwia_code IS NOT NULL;
CREATE INDEX groups_program ON groups (program) WHERE program IS NOT NULL;

CREATE TABLE group_owners (
    group_id  uuid NOT NULL REFERENCES groups (id),
    staff_id  uuid NOT NULL,
    role      text NOT NULL CHECK (role IN ('owner', 'co-owner')),
    since     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, staff_id)
);
CREATE INDEX group_owners_staff ON group_owners (staff_id);

CREATE TABLE memberships (
    group_id     uuid NOT NULL REFERENCES groups (id),
    customer_id  uuid NOT NULL,
    source       text NOT NULL CHECK (source IN ('passcode', 'invitation', 'staff', 'iwds', 'program')),
    since        timestamptz NOT NULL DEFAULT now(),
    added_by     uuid,
    PRIMARY KEY (group_id, customer_id)
);
CREATE INDEX memberships_customer ON memberships (customer_id, group_id);

-- every IWDS record as the feed last described it; LWIA memberships are derived from
-- these, so a record naming an account not yet known applies when the account appears
CREATE TABLE iwds_records (
    iwds_person_id  text PRIMARY KEY,
    account_id      uuid,
    lwia_code       text NOT NULL,
    office_code     text,
    case_manager    text,
    status          text NOT NULL,
    changed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX iwds_records_account ON iwds_records (account_id) WHERE account_id IS NOT NULL;

CREATE TABLE iwds_grants (
    iwds_staff_id     text NOT NULL,
    worknet_username  text,        -- lower case
    level             text NOT NULL CHECK (level IN ('statewide', 'lwia', 'office', 'caseload')),
    lwia_code         text,
    office_code       text
);
CREATE INDEX iwds_grants_staff ON iwds_grants (iwds_staff_id);
CREATE INDEX iwds_grants_username ON iwds_grants (worknet_username);

CREATE TABLE program_staff (
    program   text NOT NULL,
    staff_id  uuid NOT NULL,
    since     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (staff_id, program)
);

-- what a merge moved (or found already there), so an unmerge can move it back
CREATE TABLE merge_moves (
    merged_id    uuid NOT NULL,
    survivor_id  uuid NOT NULL,
    group_id     uuid NOT NULL,
    source       text NOT NULL,
    since        timestamptz NOT NULL,
    added_by     uuid,
    moved        boolean NOT NULL,        -- false: the survivor was already a member
    PRIMARY KEY (merged_id, group_id)
);

CREATE TABLE invitations (
    id            uuid PRIMARY KEY,
    group_id      uuid NOT NULL REFERENCES groups (id),
    customer_id   uuid,
    email         text,                   -- lower case
    status        text NOT NULL CHECK (status IN ('pending', 'accepted', 'declined', 'expired', 'revoked')),
    invited_by    uuid NOT NULL,
    created_at    timestamptz NOT NULL,
    sent_at       timestamptz NOT NULL,
    expires_at    timestamptz NOT NULL,
    responded_at  timestamptz,
    accepted_by   uuid,
    CHECK (customer_id IS NOT NULL OR email IS NOT NULL)
);
CREATE INDEX invitations_group ON invitations (group_id, created_at, id);
CREATE UNIQUE INDEX invitations_pending_customer ON invitations (group_id, customer_id)
    WHERE status = 'pending' AND customer_id IS NOT NULL;
CREATE UNIQUE INDEX invitations_pending_email ON invitations (group_id, email)
    WHERE status = 'pending' AND email IS NOT NULL;
CREATE INDEX invitations_customer ON invitations (customer_id) WHERE status = 'pending';
CREATE INDEX invitations_email ON invitations (email) WHERE status = 'pending';

-- wrong passcodes, for the throttle (per customer and per group)
CREATE TABLE join_failures (
    customer_id  uuid NOT NULL,
    group_id     uuid,
    at           timestamptz NOT NULL
);
CREATE INDEX join_failures_customer ON join_failures (customer_id, at);
CREATE INDEX join_failures_group ON join_failures (group_id, at) WHERE group_id IS NOT NULL;

CREATE TABLE messages (
    id                 uuid PRIMARY KEY,
    group_id           uuid REFERENCES groups (id),
    customer_id        uuid,               -- a direct message
    staff_id           uuid NOT NULL,
    subject            text NOT NULL,
    body               text NOT NULL,
    include_subgroups  boolean NOT NULL DEFAULT false,
    recipients         int NOT NULL,
    chunk_count        int NOT NULL,
    created_at         timestamptz NOT NULL
);

-- recipients fixed at send time, in the chunks the events will carry; a background
-- task turns each into one GroupMessageRequested (emitted_at set in the same transaction)
CREATE TABLE message_chunks (
    message_id     uuid NOT NULL REFERENCES messages (id),
    chunk_index    int NOT NULL,
    recipient_ids  uuid[] NOT NULL,
    emitted_at     timestamptz,
    PRIMARY KEY (message_id, chunk_index)
);
CREATE INDEX message_chunks_pending ON message_chunks (message_id, chunk_index)
    WHERE emitted_at IS NULL;
