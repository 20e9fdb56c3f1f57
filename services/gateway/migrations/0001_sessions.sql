-- Page sessions: the browser holds only a random cookie; its hash finds the row.
-- Identity's access and refresh tokens stay here, sealed with GATEWAY_DATA_KEY.
CREATE TABLE sessions (
    id              uuid PRIMARY KEY,
    cookie_hash     bytea NOT NULL UNIQUE,
    account_id      uuid NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('staff', 'customer')),
    username        text NOT NULL,
    display_name    text NOT NULL,
    roles           text[] NOT NULL DEFAULT '{}',
    password_change_required boolean NOT NULL DEFAULT false,
    access_sealed   bytea NOT NULL,
    refresh_sealed  bytea,
    access_expires_at timestamptz NOT NULL,
    csrf_token      text NOT NULL,
    notice          text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    last_seen_at    timestamptz NOT NULL DEFAULT now(),
    ended_at        timestamptz
);
CREATE INDEX sessions_open_by_account ON sessions (account_id) WHERE ended_at IS NULL;

-- An Add Customer form between its two steps: the form (SSN included) is kept
-- sealed here, never in the page, a hidden field or a URL; gone after step 2.
CREATE TABLE intakes (
    id          uuid PRIMARY KEY,
    session_id  uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    form_sealed bytea NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX intakes_by_session ON intakes (session_id);
