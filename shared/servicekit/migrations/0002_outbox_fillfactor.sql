-- The relay updates each outbox row twice: a lease, then published. Room left on
-- every page lets the lease (no indexed column changes) be a HOT update, written
-- beside the row without an entry in each of the outbox's five indexes.
ALTER TABLE outbox SET (fillfactor = 50);
