-- A NOTIFY inside a transaction makes PostgreSQL take a database-wide lock
-- at commit and hold it until the commit record is flushed (so that
-- notifications are queued in commit order). With the per-statement
-- trigger of 0003 on `events`, every command's commit waited for the one
-- before it to reach disk: no group commit, a few hundred commits per
-- second at most. Writers now notify after they commit, outside the
-- transaction (ledger_nats::wakeup), coalescing bursts.
DROP TRIGGER events_notify_relay ON events;
DROP FUNCTION events_notify_relay();
