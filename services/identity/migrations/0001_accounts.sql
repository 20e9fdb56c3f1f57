-- Accounts, credentials, sessions, signing keys and idempotency.

-- One namespace of usernames for customers and staff: sign-in takes a
-- username and must find exactly one account.
CREATE TABLE usernames (
    username_lower text PRIMARY KEY,
    account_id     uuid NOT NULL UNIQUE,
    kind           text NOT NULL CHECK (kind IN ('customer', 'staff'))
);

CREATE TABLE customers (
    id                    uuid PRIMARY KEY,
    username              text NOT NULL,
    first_name            text NOT NULL,
    last_name             text NOT NULL,
    date_of_birth         date,
    email                 text,
    ssn_ciphertext        bytea,
    ssn_key_id            text,
    ssn_lookup            bytea,
    ssn_last4             text,
    status                text NOT NULL DEFAULT 'active'
                          CHECK (status IN ('active', 'locked', 'disabled')),
    password_hash         text,
    password_is_temporary boolean NOT NULL DEFAULT false,
    password_expires_at   timestamptz,
    failed_signins        integer NOT NULL DEFAULT 0,
    locked_until          timestamptz,
    source                text NOT NULL CHECK (source IN ('staff', 'self', 'import')),
    created_by            uuid,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now(),
    CHECK ((ssn_ciphertext IS NULL) = (ssn_lookup IS NULL))
);
CREATE UNIQUE INDEX customers_username ON customers (lower(username));
CREATE UNIQUE INDEX customers_email ON customers (lower(email)) WHERE email IS NOT NULL;
CREATE INDEX customers_ssn_lookup ON customers (ssn_lookup) WHERE ssn_lookup IS NOT NULL;

CREATE TABLE customer_identifiers (
    account_id uuid NOT NULL REFERENCES customers (id),
    kind       text NOT NULL,
    value      text NOT NULL,
    PRIMARY KEY (kind, value)
);
CREATE INDEX customer_identifiers_account ON customer_identifiers (account_id);

CREATE TABLE staff (
    id             uuid PRIMARY KEY,
    username       text NOT NULL,
    first_name     text NOT NULL,
    last_name      text NOT NULL,
    email          text,
    roles          text[] NOT NULL,
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'locked', 'disabled')),
    password_hash  text NOT NULL,
    failed_signins integer NOT NULL DEFAULT 0,
    locked_until   timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX staff_username ON staff (lower(username));

-- A sign-in session; its refresh tokens rotate on use, and a reused one
-- revokes the whole session.
CREATE TABLE sessions (
    id          uuid PRIMARY KEY,
    account_id  uuid NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('customer', 'staff')),
    scope       text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX sessions_account ON sessions (account_id) WHERE revoked_at IS NULL;

CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

CREATE TABLE recovery_tokens (
    token_hash  bytea PRIMARY KEY,
    account_id  uuid NOT NULL REFERENCES customers (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz
);

CREATE TABLE signing_keys (
    kid         text PRIMARY KEY,
    sealed      bytea NOT NULL,
    status      text NOT NULL CHECK (status IN ('active', 'retiring', 'retired')),
    created_at  timestamptz NOT NULL
);

CREATE TABLE idempotency_keys (
    staff_id     uuid NOT NULL,
    key          text NOT NULL,
    request_hash bytea NOT NULL,
    status_code  integer NOT NULL,
    sealed_body  bytea NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (staff_id, key)
);

-- The audit log is the kit's (shared/servicekit/migrations/0003_audit.sql).
