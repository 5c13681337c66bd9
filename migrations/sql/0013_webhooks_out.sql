-- Outgoing webhooks (issue 17): endpoints that integrators register, and a
-- delivery per (endpoint, event) that the `webhooks` consumer fans out in
-- the same transaction as its checkpoint; a dispatcher sends them.
CREATE TABLE webhook_endpoints
(
    endpoint_id uuid        PRIMARY KEY,
    -- The vendor whose order events it receives; NULL: an admin's, all events.
    vendor_id   uuid,
    url         text        NOT NULL,
    -- Event types wanted; '*' is every type.
    event_types text[]      NOT NULL,
    secret      text        NOT NULL,
    created_at  timestamptz NOT NULL,
    deleted_at  timestamptz
);

-- The parties of each order, as its `OrderPlaced` named them: who may be
-- sent its later events.
CREATE TABLE webhook_orders
(
    order_id text  PRIMARY KEY,
    vendors  uuid[] NOT NULL,
    -- line id -> vendor id
    lines    jsonb NOT NULL
);

CREATE TABLE webhook_deliveries
(
    delivery_id      uuid        PRIMARY KEY,
    endpoint_id      uuid        NOT NULL REFERENCES webhook_endpoints (endpoint_id),
    event_id         uuid        NOT NULL,
    position         bigint      NOT NULL,
    event_type       text        NOT NULL,
    body             jsonb       NOT NULL,
    -- pending | delivered | failed
    status           text        NOT NULL,
    attempts         integer     NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL,
    -- Retries stop 24 h after this (reset by a manual redelivery).
    retry_since      timestamptz NOT NULL,
    delivered_at     timestamptz,
    UNIQUE (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_of_endpoint ON webhook_deliveries (endpoint_id, delivery_id);
