-- When each picked-up rental line is due back (API.md "Rentals"): the
-- sweeper marks a line past it overdue (an event on the Order and on the
-- Inventory, which keeps the unit out until it is returned), then settles
-- the row. Marking twice records nothing new, so rows are not claimed.
CREATE TABLE return_deadlines
(
    line_id    uuid PRIMARY KEY,
    order_id   uuid        NOT NULL,
    listing_id uuid        NOT NULL,
    hold_id    uuid        NOT NULL,
    due_at     timestamptz NOT NULL,
    settled_at timestamptz
);
CREATE INDEX return_deadlines_due ON return_deadlines (due_at) WHERE settled_at IS NULL;
