-- Each seal also records the root of a Merkle tree over the events it
-- seals (RFC 6962 shape; docs/AUDIT.md), so that one event can be proven
-- sealed without the others (`GET /v1/audit/proof`). Seals made before this
-- step have none; their signatures cover the fields they had.
ALTER TABLE audit_seals ADD COLUMN merkle_root bytea;
