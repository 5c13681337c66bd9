-- Faults of the event pipeline that an operator must see (DESIGN.md
-- invariant 8): a consumer stalled on an event it cannot apply, a stream
-- that does not belong to this database's history. One row per component
-- while the fault lasts; readiness, `GET /v1/projections` and `/metrics`
-- read it, so every replica reports the same thing.
CREATE TABLE pipeline_faults
(
    -- `consumer:<name>` or `relay:<stream>`.
    component  text        PRIMARY KEY,
    -- `stalled` (a batch failed its retries) or `stream_mismatch`.
    kind       text        NOT NULL,
    -- The global position the component stopped at, when it has one.
    position   bigint,
    detail     text        NOT NULL,
    since      timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
