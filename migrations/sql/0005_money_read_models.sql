-- Money read models (projectors/src/ledger.rs, analytics.rs).

-- The double-entry journal: every money movement as balanced lines. An
-- entry is the set of lines of one event (same `position`); Σ debit =
-- Σ credit within every entry.
CREATE TABLE ledger_postings
(
    posting_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    position    bigint         NOT NULL,
    account     text           NOT NULL,
    vendor_id   uuid,
    order_id    uuid,
    kind        text           NOT NULL,
    debit       numeric(20, 2) NOT NULL DEFAULT 0 CHECK (debit >= 0),
    credit      numeric(20, 2) NOT NULL DEFAULT 0 CHECK (credit >= 0),
    recorded_at timestamptz    NOT NULL
);
CREATE INDEX ledger_postings_vendor ON ledger_postings (vendor_id, posting_id) WHERE vendor_id IS NOT NULL;
CREATE INDEX ledger_postings_position ON ledger_postings (position);

-- Running totals per account, for the trial balance.
CREATE TABLE ledger_accounts
(
    account text PRIMARY KEY,
    debit   numeric(20, 2) NOT NULL DEFAULT 0,
    credit  numeric(20, 2) NOT NULL DEFAULT 0
);

-- What the ledger projector needs to remember of each order: its priced
-- split, and whether the payment is currently allocated to it.
CREATE TABLE ledger_orders
(
    order_id  uuid PRIMARY KEY,
    priced    jsonb   NOT NULL,
    allocated boolean NOT NULL DEFAULT false
);

-- Per-vendor earnings, kept with the postings.
CREATE TABLE ledger_vendor_earnings
(
    vendor_id      uuid PRIMARY KEY,
    gross          numeric(20, 2) NOT NULL DEFAULT 0,
    platform_fees  numeric(20, 2) NOT NULL DEFAULT 0,
    pending        numeric(20, 2) NOT NULL DEFAULT 0,
    available      numeric(20, 2) NOT NULL DEFAULT 0,
    paid_out       numeric(20, 2) NOT NULL DEFAULT 0,
    damage_credits numeric(20, 2) NOT NULL DEFAULT 0
);

-- Analytics facts: one row per order, one per line, one per failed payment.
CREATE TABLE an_orders
(
    order_id     uuid PRIMARY KEY,
    placed_at    timestamptz    NOT NULL,
    subtotal     numeric(20, 2) NOT NULL,
    total        numeric(20, 2) NOT NULL,
    paid         boolean        NOT NULL DEFAULT false,
    cancelled    boolean        NOT NULL DEFAULT false,
    refunded     numeric(20, 2) NOT NULL DEFAULT 0
);
CREATE INDEX an_orders_placed ON an_orders (placed_at);

CREATE TABLE an_order_lines
(
    order_id     uuid           NOT NULL,
    line_id      uuid           NOT NULL,
    listing_id   uuid           NOT NULL,
    vendor_id    uuid           NOT NULL,
    category     text           NOT NULL,
    title        text           NOT NULL,
    kind         text           NOT NULL,
    placed_at    timestamptz    NOT NULL,
    subtotal     numeric(20, 2) NOT NULL,
    platform_fee numeric(20, 6) NOT NULL,
    quantity     integer        NOT NULL,
    start_at     timestamptz,
    end_at       timestamptz,
    PRIMARY KEY (order_id, line_id)
);
CREATE INDEX an_order_lines_placed ON an_order_lines (placed_at);

-- Listing facts the analytics need (category, title, units) by listing.
CREATE TABLE an_listings
(
    listing_id uuid PRIMARY KEY,
    vendor_id  uuid    NOT NULL,
    title      text    NOT NULL,
    category   text    NOT NULL,
    kind       text    NOT NULL,
    units      integer NOT NULL DEFAULT 0,
    created_at timestamptz NOT NULL
);

CREATE TABLE an_payment_failures
(
    position  bigint PRIMARY KEY,
    order_id  uuid        NOT NULL,
    reason    text        NOT NULL,
    failed_at timestamptz NOT NULL
);
CREATE INDEX an_payment_failures_at ON an_payment_failures (failed_at);
