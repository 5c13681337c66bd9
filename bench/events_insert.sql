-- One event appended to a new aggregate per transaction (autocommit): the
-- raw-insert baseline. The payload is a HoldPlaced event (~300 bytes of
-- JSON), the metadata what the command API records.
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
VALUES ('Inventory', gen_random_uuid()::text, 1, 'HoldPlaced', '1.0',
        '{"HoldPlaced":{"hold_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a01","order_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a02","request":{"kind":"rental","period":{"start":"2026-06-01T09:00:00Z","end":"2026-06-04T09:00:00Z"},"quantity":1},"expires_at":"2026-05-25T09:15:00Z","note":"bench payload padding to ~300 bytes"}}',
        '{"correlation_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a03","causation_id":"0193a4c2-7d1e-7b3a-9f10-2c5e8d4b6a04","actor":"customer-42"}');
