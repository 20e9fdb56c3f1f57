-- OAuth2 client credentials for machines (feed producers, services calling identity).
-- The secret is shown once and stored only as a SHA-256 hash (it carries 256 random bits).
CREATE TABLE oauth_clients (
    id          uuid PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    secret_hash bytea NOT NULL,
    scopes      text[] NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    disabled_at timestamptz
);
