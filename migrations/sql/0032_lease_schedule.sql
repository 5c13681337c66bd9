-- When the lease scheduler should next look at each order paid by
-- instalments (issue 15 item 3): the Order aggregate's own
-- `lease_next_due` (an instalment falls overdue, a suspension or a
-- termination for non-payment falls due). Rewritten after every command
-- that may change it (a payment, a termination, a dunning step). NULL:
-- nothing will ever be due again.
CREATE TABLE lease_schedule
(
    order_id    uuid PRIMARY KEY,
    next_due_at timestamptz,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX lease_schedule_due ON lease_schedule (next_due_at)
    WHERE next_due_at IS NOT NULL;
