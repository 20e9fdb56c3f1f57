-- Person matching: block keys, remembered decisions, the duplicates queue, merges.

-- Block keys (64-bit hashes of phonetic name codes combined with parts of the
-- date of birth, see identity.blocking.index_keys), looked up with `&&`.
ALTER TABLE customers
    ADD COLUMN match_keys  bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN merged_into uuid REFERENCES customers (id),
    -- a keyed fingerprint of an imported row: re-running an import creates nothing new
    ADD COLUMN import_key  bytea;
CREATE INDEX customers_match_keys ON customers USING gin (match_keys);
CREATE UNIQUE INDEX customers_import_key ON customers (import_key) WHERE import_key IS NOT NULL;

-- Two accounts staff said belong to different people: never proposed again.
CREATE TABLE match_decisions (
    account_a  uuid NOT NULL,
    account_b  uuid NOT NULL,
    decision   text NOT NULL CHECK (decision = 'different'),
    decided_by uuid,
    decided_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account_a, account_b),
    CHECK (account_a < account_b)
);
CREATE INDEX match_decisions_b ON match_decisions (account_b);

-- Pairs of accounts that may be one person, found when an account is created or changed.
CREATE TABLE duplicate_pairs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account_a   uuid NOT NULL REFERENCES customers (id),
    account_b   uuid NOT NULL REFERENCES customers (id),
    score       double precision NOT NULL,
    band        text NOT NULL CHECK (band IN ('strong', 'possible')),
    evidence    jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'merged', 'dismissed')),
    found_at    timestamptz NOT NULL DEFAULT now(),
    resolved_by uuid,
    resolved_at timestamptz,
    UNIQUE (account_a, account_b),
    CHECK (account_a < account_b)
);
CREATE INDEX duplicate_pairs_open ON duplicate_pairs (score DESC, id) WHERE status = 'open';

-- A merge keeps both accounts: what moved, and the merged account's status before.
CREATE TABLE merges (
    id                bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    pair_id           bigint NOT NULL REFERENCES duplicate_pairs (id),
    survivor_id       uuid NOT NULL REFERENCES customers (id),
    merged_id         uuid NOT NULL REFERENCES customers (id),
    moved_identifiers jsonb NOT NULL,
    merged_status     text NOT NULL,
    merged_by         uuid NOT NULL,
    merged_at         timestamptz NOT NULL DEFAULT now(),
    unmerged_by       uuid,
    unmerged_at       timestamptz
);
CREATE UNIQUE INDEX merges_in_force ON merges (merged_id) WHERE unmerged_at IS NULL;
