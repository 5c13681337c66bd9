-- Analytics of refunds, disputes and unapplied payments (API.md "Money";
-- `GET /v1/analytics/summary` `disputes` and `unapplied_cash`).
ALTER TABLE an_orders
    ADD COLUMN disputed      numeric(20, 2) NOT NULL DEFAULT 0,
    ADD COLUMN disputes_lost numeric(20, 2) NOT NULL DEFAULT 0,
    ADD COLUMN unapplied     numeric(20, 2) NOT NULL DEFAULT 0;
