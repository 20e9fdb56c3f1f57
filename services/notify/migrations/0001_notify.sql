-- The local directory of customers, kept from identity's account events.
CREATE TABLE customers (
    id          uuid PRIMARY KEY,
    name        text,
    email       text,
    status      text NOT NULL DEFAULT 'active',
    merged_into uuid,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX customers_email ON customers (lower(email)) WHERE email IS NOT NULL;

-- One row per message (group, direct, invitation, password notices).
CREATE TABLE messages (
    id         uuid PRIMARY KEY,
    kind       text NOT NULL
               CHECK (kind IN ('group', 'direct', 'invitation', 'password_recovery',
                               'password_reset')),
    sender_id  uuid,
    group_id   uuid,
    subject    text NOT NULL,
    body       text NOT NULL,
    link       text,
    expires_at timestamptz,
    created_at timestamptz NOT NULL
);
CREATE INDEX messages_sender ON messages (sender_id);

-- One row per (message, recipient, channel): a redelivered event adds nothing.
-- (No foreign key to messages: the same statement sequence writes both, and a per-row
-- RI trigger on thousands of rows per group message costs more than it guards.)
CREATE TABLE deliveries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id      uuid NOT NULL,
    recipient       text NOT NULL,  -- the customer id, or the lower-cased address
    customer_id     uuid,
    channel         text NOT NULL CHECK (channel IN ('email', 'inbox')),
    address         text,
    status          text NOT NULL
                    CHECK (status IN ('queued', 'sending', 'sent', 'deferred', 'failed',
                                      'suppressed')),
    attempts        integer NOT NULL DEFAULT 0,
    last_reply      text,
    next_attempt_at timestamptz,
    lease_owner     text,
    lease_until     timestamptz,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    sent_at         timestamptz,
    UNIQUE (message_id, recipient, channel)
);
-- what the delivery worker claims: due email work, and 'sending' rows whose lease ran out
CREATE INDEX deliveries_due ON deliveries (next_attempt_at)
    WHERE status IN ('queued', 'deferred');
CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE status = 'sending';
-- counts and lists per message use the unique index's leading message_id: no index on
-- status, which every claim and result would have to update

-- The in-app inbox.
CREATE TABLE inbox_items (
    id                   uuid PRIMARY KEY,
    customer_id          uuid NOT NULL,
    original_customer_id uuid NOT NULL,  -- whom it was sent to (undone merges give it back)
    message_id           uuid NOT NULL,
    kind                 text NOT NULL,
    subject              text NOT NULL,
    body                 text NOT NULL,
    received_at          timestamptz NOT NULL,
    read_at              timestamptz,
    UNIQUE (message_id, original_customer_id)
);
CREATE INDEX inbox_items_customer ON inbox_items (customer_id, received_at DESC, id DESC);

-- Addresses that refused permanently (5xx): later messages to them are not sent.
CREATE TABLE suppressions (
    address    text PRIMARY KEY,  -- lower-cased
    reason     text NOT NULL,
    created_at timestamptz NOT NULL
);
