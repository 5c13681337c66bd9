-- Tamper evidence (DESIGN.md "Event store"): a per-aggregate hash chain over
-- the events and signed seals over global-position ranges.
--
-- Each event stores
--     hash = sha256(previous hash ‖ canonical content)
-- where "previous hash" is the hash of the event with sequence − 1 in the
-- same aggregate (empty when there is none: the aggregate's first event) and
-- the canonical content is, in this order:
--     text   aggregate_type     ┐
--     text   aggregate_id       │ text fields: 4-byte big-endian length of
--     int8   sequence           │ the UTF-8 bytes, then the bytes
--     text   event_type         │
--     text   event_version      │ int8: 8 bytes big-endian
--     text   payload::text      │ (the JSON text exactly as stored)
--     text   metadata::text     │
--     16 B   event_id           │ (uuid bytes)
--     int8   recorded_at        │ (microseconds since 1970-01-01 UTC)
--     int8   global_position    ┘
-- `read_api::audit::chain` computes the same bytes; both must stay equal.

CREATE FUNCTION events_canonical_content(
    aggregate_type text, aggregate_id text, sequence bigint,
    event_type text, event_version text, payload text, metadata text,
    event_id uuid, recorded_at timestamptz, global_position bigint
) RETURNS bytea
    LANGUAGE sql STABLE STRICT AS
$$
SELECT int4send(octet_length(convert_to(aggregate_type, 'UTF8'))) || convert_to(aggregate_type, 'UTF8')
    || int4send(octet_length(convert_to(aggregate_id, 'UTF8'))) || convert_to(aggregate_id, 'UTF8')
    || int8send(sequence)
    || int4send(octet_length(convert_to(event_type, 'UTF8'))) || convert_to(event_type, 'UTF8')
    || int4send(octet_length(convert_to(event_version, 'UTF8'))) || convert_to(event_version, 'UTF8')
    || int4send(octet_length(convert_to(payload, 'UTF8'))) || convert_to(payload, 'UTF8')
    || int4send(octet_length(convert_to(metadata, 'UTF8'))) || convert_to(metadata, 'UTF8')
    || uuid_send(event_id)
    || int8send((extract(epoch FROM recorded_at) * 1000000)::bigint)
    || int8send(global_position)
$$;

ALTER TABLE events ADD COLUMN hash bytea;

-- Fills in the hash of every new event; a hash given by the writer is
-- overwritten. Never refuses an insert: a broken chain is for the verifier
-- to report.
CREATE FUNCTION events_chain_hash() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    previous bytea;
BEGIN
    SELECT e.hash INTO previous
      FROM events e
     WHERE e.aggregate_type = NEW.aggregate_type
       AND e.aggregate_id = NEW.aggregate_id
       AND e.sequence = NEW.sequence - 1;
    NEW.hash := sha256(coalesce(previous, ''::bytea) || events_canonical_content(
        NEW.aggregate_type, NEW.aggregate_id, NEW.sequence, NEW.event_type,
        NEW.event_version, NEW.payload::text, NEW.metadata::text, NEW.event_id,
        NEW.recorded_at, NEW.global_position));
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_chain_hash
    BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_chain_hash();

-- Backfill the events recorded before this migration, each aggregate in
-- sequence order, with the immutability trigger briefly off.
ALTER TABLE events DISABLE TRIGGER events_no_update;
DO
$$
DECLARE
    r              record;
    last_type      text;
    last_id        text;
    last_sequence  bigint;
    last_hash      bytea;
    previous       bytea;
BEGIN
    FOR r IN SELECT * FROM events ORDER BY aggregate_type, aggregate_id, sequence
    LOOP
        IF r.aggregate_type = last_type AND r.aggregate_id = last_id
           AND r.sequence = last_sequence + 1 THEN
            previous := last_hash;
        ELSE
            previous := ''::bytea;
        END IF;
        last_hash := sha256(previous || events_canonical_content(
            r.aggregate_type, r.aggregate_id, r.sequence, r.event_type,
            r.event_version, r.payload::text, r.metadata::text, r.event_id,
            r.recorded_at, r.global_position));
        UPDATE events SET hash = last_hash WHERE global_position = r.global_position;
        last_type := r.aggregate_type;
        last_id := r.aggregate_id;
        last_sequence := r.sequence;
    END LOOP;
END;
$$;
ALTER TABLE events ENABLE TRIGGER events_no_update;

ALTER TABLE events ALTER COLUMN hash SET NOT NULL;

-- Seals: signed checkpoints over contiguous, non-overlapping ranges of
-- global positions, numbered 1, 2, 3… and chained by digest. A seal covers
-- only positions at or below the relay's published position, where no
-- transaction can still add an event.
--
--   digest    = sha256(previous_digest ‖ for each sealed event in position
--               order: int8 global_position ‖ its 32-byte hash)
--   positions = the global positions of the sealed events, ascending (so a
--               removed or added event is found at its exact position)
--   signature = Ed25519 over the canonical encoding of the seal (see
--               `read_api::audit::seal::signed_message`).
CREATE TABLE audit_seals
(
    seal_id         bigint      PRIMARY KEY CHECK (seal_id >= 1),
    from_position   bigint      NOT NULL CHECK (from_position >= 1),
    to_position     bigint      NOT NULL,
    event_count     bigint      NOT NULL CHECK (event_count >= 0),
    positions       bigint[]    NOT NULL,
    previous_digest bytea       NOT NULL,
    digest          bytea       NOT NULL,
    key_id          text        NOT NULL,
    signature       bytea       NOT NULL,
    sealed_at       timestamptz NOT NULL,
    CHECK (to_position >= from_position),
    CHECK (cardinality(positions) = event_count),
    CONSTRAINT audit_seals_no_overlap
        EXCLUDE USING gist (int8range(from_position, to_position, '[]') WITH &&)
);
CREATE UNIQUE INDEX audit_seals_from ON audit_seals (from_position);
CREATE UNIQUE INDEX audit_seals_to ON audit_seals (to_position);

-- Each seal starts right after the previous one (the first at position 1)
-- and takes the next number.
CREATE FUNCTION audit_seals_contiguous() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    last audit_seals%ROWTYPE;
BEGIN
    SELECT * INTO last FROM audit_seals ORDER BY seal_id DESC LIMIT 1;
    IF NOT FOUND THEN
        IF NEW.seal_id <> 1 OR NEW.from_position <> 1 THEN
            RAISE EXCEPTION 'the first seal is number 1 from position 1';
        END IF;
    ELSIF NEW.seal_id <> last.seal_id + 1 OR NEW.from_position <> last.to_position + 1 THEN
        RAISE EXCEPTION 'seal % must follow seal % (from position %)',
            NEW.seal_id, last.seal_id, last.to_position + 1;
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER audit_seals_contiguous
    BEFORE INSERT ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION audit_seals_contiguous();

-- Seals are as immutable as the events they vouch for.
CREATE TRIGGER audit_seals_no_update
    BEFORE UPDATE OR DELETE ON audit_seals
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();

CREATE TRIGGER audit_seals_no_truncate
    BEFORE TRUNCATE ON audit_seals
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();
