-- The event pipeline (DESIGN.md "NATS"): the relay's published position per
-- stream, a wake-up signal for it, and each consumer's checkpoint.

-- The relay stores how far it has published (every event at or below
-- `position` is acknowledged by JetStream), after the acks.
CREATE TABLE relay_positions
(
    stream     text        PRIMARY KEY,
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Wakes the relay when events are committed. One notification per
-- statement, without payload, so PostgreSQL folds a transaction's
-- notifications into one.
CREATE FUNCTION events_notify_relay() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('ledger_events', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER events_notify_relay
    AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify_relay();

-- Projectors and policies: the last global position each has applied,
-- written in the same transaction as what it applied.
CREATE TABLE consumer_checkpoints
(
    name       text        PRIMARY KEY,
    position   bigint      NOT NULL CHECK (position >= 0),
    updated_at timestamptz NOT NULL DEFAULT now()
);
