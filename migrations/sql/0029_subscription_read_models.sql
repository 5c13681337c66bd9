-- Plans and subscriptions for the query side (API.md "Subscriptions and
-- instalments": `GET /v1/plans`, `GET /v1/subscriptions`,
-- `GET /v1/subscriptions/{id}`), written by projectors/src/subscriptions.rs
-- from the Plan and Subscription aggregates' events.
CREATE TABLE rm_plans
(
    plan_id     uuid PRIMARY KEY,
    name        text           NOT NULL,
    price       numeric(20, 2) NOT NULL,
    billing_interval text      NOT NULL CHECK (billing_interval IN ('week', 'month', 'year')),
    trial_days  integer        NOT NULL,
    entitlement text,
    created_at  timestamptz    NOT NULL,
    position    bigint         NOT NULL
);

CREATE TABLE rm_subscriptions
(
    subscription_id      uuid PRIMARY KEY,
    customer_id          text           NOT NULL,
    plan_id              uuid           NOT NULL,
    price                numeric(20, 2) NOT NULL,
    billing_interval     text           NOT NULL,
    status               text           NOT NULL
        CHECK (status IN ('trialing', 'pending', 'active', 'past_due', 'suspended', 'cancelled')),
    started_at           timestamptz    NOT NULL,
    trial_end            timestamptz,
    current_period_start timestamptz,
    current_period_end   timestamptz,
    -- A cancellation scheduled for the end of the period.
    cancel_at            timestamptz,
    cancelled_at         timestamptz,
    cancel_cause         text,
    -- Downgrade credit not yet taken off an invoice.
    credit               numeric(20, 2) NOT NULL DEFAULT 0,
    position             bigint         NOT NULL
);
CREATE INDEX rm_subscriptions_customer ON rm_subscriptions (customer_id, subscription_id);
CREATE INDEX rm_subscriptions_status ON rm_subscriptions (status, subscription_id);

CREATE TABLE rm_subscription_invoices
(
    invoice_id      uuid PRIMARY KEY,
    subscription_id uuid           NOT NULL,
    number          integer        NOT NULL,
    kind            text           NOT NULL CHECK (kind IN ('period', 'proration')),
    period_start    timestamptz,
    period_end      timestamptz,
    amount          numeric(20, 2) NOT NULL,
    credit_applied  numeric(20, 2) NOT NULL,
    due_at          timestamptz    NOT NULL,
    status          text           NOT NULL CHECK (status IN ('open', 'paid', 'void')),
    failures        integer        NOT NULL DEFAULT 0,
    paid_at         timestamptz,
    -- Money received for it that did not pay it (held for an admin).
    unapplied       numeric(20, 2) NOT NULL DEFAULT 0,
    position        bigint         NOT NULL,
    UNIQUE (subscription_id, number)
);

-- What the ledger projector remembers of each subscription invoice: its
-- amount, to write it off when it is voided unpaid.
CREATE TABLE ledger_subscription_invoices
(
    invoice_id uuid PRIMARY KEY,
    amount     numeric(20, 2) NOT NULL,
    status     text           NOT NULL CHECK (status IN ('open', 'paid', 'void'))
);
