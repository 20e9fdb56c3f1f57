-- Special programs, their application questions, staff authorization, the
-- staff and customers this service knows from identity's events, enrollments,
-- applications, history, audit and idempotency.

CREATE TABLE programs (
    code                  text PRIMARY KEY CHECK (code ~ '^[a-z0-9][a-z0-9-]{1,63}$'),
    name                  text NOT NULL,
    description           text NOT NULL DEFAULT '',
    open_for_applications boolean NOT NULL DEFAULT false,
    questions_version     integer NOT NULL DEFAULT 1,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

-- Every version of a program's application questions is kept: an application
-- names the version it answered.
CREATE TABLE program_questions (
    program    text NOT NULL REFERENCES programs (code),
    version    integer NOT NULL,
    questions  jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    created_by uuid,
    PRIMARY KEY (program, version)
);

CREATE TABLE program_staff (
    program    text NOT NULL REFERENCES programs (code),
    staff_id   uuid NOT NULL,
    granted_by uuid NOT NULL,
    granted_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (program, staff_id)
);
CREATE INDEX program_staff_staff ON program_staff (staff_id);

-- Staff as identity's StaffAccountCreated/Updated events describe them.
CREATE TABLE staff (
    id         uuid PRIMARY KEY,
    username   text NOT NULL,
    name       text NOT NULL,
    email      text,
    roles      text[] NOT NULL DEFAULT '{}',
    status     text NOT NULL,
    changed_at timestamptz NOT NULL
);

-- Customers as identity's account events describe them (no SSN, no date of birth).
CREATE TABLE customers (
    id          uuid PRIMARY KEY,
    username    text,
    first_name  text,
    last_name   text,
    email       text,
    status      text NOT NULL DEFAULT 'active',
    merged_into uuid,
    changed_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per participation of a customer in a program. A customer has at
-- most one open (not exited) enrollment per program; the use cases keep that
-- under an advisory lock, since a merge of two accounts may bring two together.
CREATE TABLE enrollments (
    id                   uuid PRIMARY KEY,
    program              text NOT NULL REFERENCES programs (code),
    customer_id          uuid NOT NULL,
    -- the account it was made for, kept when a merge moves it to the survivor
    original_customer_id uuid NOT NULL,
    status               text NOT NULL CHECK (status IN ('invited', 'applied', 'enrolled', 'exited')),
    status_on            date NOT NULL,
    status_reason        text,
    added_by             uuid,
    enrolled_on          date,
    exited_on            date,
    exit_reason          text,
    exit_note            text,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX enrollments_program ON enrollments (program, status, created_at, id);
CREATE INDEX enrollments_customer ON enrollments (customer_id);
CREATE INDEX enrollments_original_customer ON enrollments (original_customer_id);

CREATE TABLE applications (
    id                uuid PRIMARY KEY,
    program           text NOT NULL,
    customer_id       uuid NOT NULL,
    enrollment_id     uuid NOT NULL REFERENCES enrollments (id),
    questions_version integer NOT NULL,
    answers           jsonb NOT NULL,
    submitted_at      timestamptz NOT NULL DEFAULT now(),
    FOREIGN KEY (program, questions_version) REFERENCES program_questions (program, version)
);
CREATE INDEX applications_enrollment ON applications (enrollment_id);

-- Who changed what on an enrollment, kept for good.
CREATE TABLE enrollment_history (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    enrollment_id uuid NOT NULL REFERENCES enrollments (id),
    at            timestamptz NOT NULL DEFAULT now(),
    actor_id      uuid,
    action        text NOT NULL,
    changes       jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX enrollment_history_enrollment ON enrollment_history (enrollment_id, id);

-- The audit log is the kit's (shared/servicekit/migrations/0003_audit.sql);
-- 0004 adds the enrollment a row is about.
-- Idempotency of Add Customer: 'matched' once the candidates were settled
-- (so a retry goes straight to identity with the same key), 'done' once the
-- enrollment is saved. The request hash leaves the SSN out; identity's own
-- keyed fingerprint covers it. No temporary password is kept here: a repeat
-- gets it again from identity's stored answer.
CREATE TABLE intake_requests (
    staff_id        uuid NOT NULL,
    key             text NOT NULL,
    request_hash    bytea NOT NULL,
    state           text NOT NULL CHECK (state IN ('matched', 'done')),
    account_id      uuid,
    account_created boolean,
    username        text,
    enrollment_id   uuid,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (staff_id, key)
);

INSERT INTO programs (code, name, description, open_for_applications)
VALUES ('returning-citizens', 'Returning Citizens',
        'Re-entry support for people leaving the adult facilities of the Illinois '
        'Department of Corrections. Partner staff with the reentry role add customers '
        'through Add Customer; there is no public application.', false);
INSERT INTO program_questions (program, version, questions)
VALUES ('returning-citizens', 1, '[]');
