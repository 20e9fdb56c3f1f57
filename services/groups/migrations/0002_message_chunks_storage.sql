-- recipient ids are random UUIDs: compression never pays, so do not try it on the
-- 100,000 ids of a large group's message (written while the sender waits for the 202)
ALTER TABLE message_chunks ALTER COLUMN recipient_ids SET STORAGE EXTERNAL;
