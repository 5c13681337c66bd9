-- Extensions and reschedules awaiting payment (API.md "Rentals"): which
-- order an adjustment belongs to (a payment webhook may name only the
-- adjustment) and when it lapses unpaid. The sweeper lapses the due ones
-- (events on the Order and the Inventory), or repairs one paid but not
-- yet applied, then settles the row. Settling twice records nothing new,
-- so rows are not claimed.
CREATE TABLE adjustment_deadlines
(
    adjustment_id uuid PRIMARY KEY,
    order_id      uuid        NOT NULL,
    line_id       uuid        NOT NULL,
    listing_id    uuid        NOT NULL,
    hold_id       uuid        NOT NULL,
    expires_at    timestamptz NOT NULL,
    settled_at    timestamptz
);
CREATE INDEX adjustment_deadlines_due ON adjustment_deadlines (expires_at) WHERE settled_at IS NULL;
