-- When the billing scheduler should next look at each subscription: the
-- Subscription aggregate's own `next_due` (a period begins, a dunning step
-- or a scheduled cancellation falls due). The row is written before the
-- subscription starts and after every command on it, so a crash can leave
-- it early (the scheduler then finds nothing due and moves it on) but never
-- late or missing. NULL: nothing will ever be due again (cancelled).
CREATE TABLE subscription_schedule
(
    subscription_id uuid PRIMARY KEY,
    next_due_at     timestamptz,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX subscription_schedule_due ON subscription_schedule (next_due_at)
    WHERE next_due_at IS NOT NULL;
