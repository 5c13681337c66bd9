-- Idempotency keys (API.md "Idempotency-Key"): the first answer to a keyed
-- request, kept 24 h per principal. A row is `in_flight` while its request
-- runs; `lease_until` lets a retry take over a request whose process died.
CREATE TABLE idempotency_keys
(
    principal       text        NOT NULL,
    idempotency_key text        NOT NULL,
    request_hash    bytea       NOT NULL,
    state           text        NOT NULL CHECK (state IN ('in_flight', 'completed')),
    lease_until     timestamptz NOT NULL,
    response_status smallint,
    response_body   bytea,
    response_headers jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (principal, idempotency_key)
);
CREATE INDEX idempotency_keys_created_at ON idempotency_keys (created_at);

-- The order-placement saga writes its intent here before it places any
-- hold, so that holds left behind by a crash are found and expired by the
-- sweeper. This is a work queue, never a source of business decisions: the
-- Inventory and Order aggregates decide whether anything expires.
CREATE TABLE hold_deadlines
(
    order_id   uuid        PRIMARY KEY,
    holds      jsonb       NOT NULL, -- [{listing_id, hold_id}]
    expires_at timestamptz NOT NULL,
    settled_at timestamptz
);
CREATE INDEX hold_deadlines_due ON hold_deadlines (expires_at) WHERE settled_at IS NULL;
