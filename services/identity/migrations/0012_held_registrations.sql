-- Self-registrations held for staff: the person may already have an account (a
-- strong match) or gave an email already on one. No account is made (the caller
-- gets the same answer as for a new account); staff see the attempt beside the
-- duplicates queue and reach the person. Never an SSN or a password here.
CREATE TABLE held_registrations (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_id    uuid NOT NULL REFERENCES customers (id),  -- the account it may be
    reason        text NOT NULL CHECK (reason IN ('strong-match', 'email-in-use')),
    score         double precision,
    evidence      jsonb NOT NULL DEFAULT '[]',
    username      text NOT NULL,
    first_name    text NOT NULL,
    last_name     text NOT NULL,
    date_of_birth date,
    email         text,
    status        text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'dismissed')),
    found_at      timestamptz NOT NULL DEFAULT now(),
    resolved_by   uuid,
    resolved_at   timestamptz
);
CREATE INDEX held_registrations_open ON held_registrations (id) WHERE status = 'open';
