-- Sign-in sessions identity ended before their tokens expired (SessionRevoked),
-- kept by every service until no token of the session can still be alive
-- (forget_after). shared/servicekit/sessions.py loads them into memory and the
-- token check refuses every token naming one (claim sid).
CREATE TABLE revoked_sessions (
    session_id   uuid        PRIMARY KEY,
    account_id   uuid        NOT NULL,
    revoked_at   timestamptz NOT NULL,
    forget_after timestamptz NOT NULL
);
CREATE INDEX revoked_sessions_forget ON revoked_sessions (forget_after);
