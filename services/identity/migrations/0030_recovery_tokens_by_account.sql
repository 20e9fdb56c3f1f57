-- A new password spends every outstanding recovery link of the account: find them
-- without reading the whole table.
CREATE INDEX IF NOT EXISTS recovery_tokens_open_by_account
    ON recovery_tokens (account_id) WHERE used_at IS NULL;
