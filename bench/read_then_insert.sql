-- What a command does: load one aggregate's events, then append the next
-- one (each statement its own transaction). The aggregates are the ones
-- pgbench.sh seeds (inv-1 .. inv-N, a few events each). Two clients racing on
-- the same aggregate would make one INSERT a primary-key conflict (the
-- optimistic-concurrency error a command retries); it is skipped here
-- (ON CONFLICT DO NOTHING) so that pgbench does not abort the client.
\set a random(1, :aggregates)
SELECT sequence, event_type, event_version, payload, metadata
  FROM events
 WHERE aggregate_type = 'Inventory' AND aggregate_id = 'inv-' || :a
 ORDER BY sequence;
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Inventory', 'inv-' || :a, coalesce(max(sequence), 0) + 1, 'HoldPlaced', '1.0',
       '{"HoldPlaced":{"hold_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a01","order_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a02","request":{"kind":"rental","period":{"start":"2026-06-01T09:00:00Z","end":"2026-06-04T09:00:00Z"},"quantity":1},"expires_at":"2026-05-25T09:15:00Z","note":"bench payload padding to ~300 bytes"}}',
       '{"correlation_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a03","causation_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a04","actor":"customer-42"}'
  FROM events
 WHERE aggregate_type = 'Inventory' AND aggregate_id = 'inv-' || :a
ON CONFLICT DO NOTHING;
