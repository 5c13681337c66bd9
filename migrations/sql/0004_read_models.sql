-- Read models built by the projectors (projectors/src/*). Never read to
-- decide a command; rebuilt from the events table at will.

-- Availability: the listings catalogue and every allocation of their units.
CREATE TABLE rm_listings
(
    listing_id   uuid PRIMARY KEY,
    vendor_id    uuid        NOT NULL,
    title        text        NOT NULL,
    description  text        NOT NULL,
    category     text        NOT NULL,
    kind         text        NOT NULL CHECK (kind IN ('rental', 'sale')),
    status       text        NOT NULL,
    pricing_unit text,
    price        numeric(20, 2) NOT NULL,
    deposit      numeric(20, 2),
    units        integer,     -- rentals: identical units
    stock        integer,     -- sales: total stock on hand
    stock_held   integer NOT NULL DEFAULT 0, -- sales: held or sold units
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    search       tsvector GENERATED ALWAYS AS (
        to_tsvector('simple', coalesce(title, '') || ' ' || coalesce(description, '') || ' ' || coalesce(category, ''))
    ) STORED
);
CREATE INDEX rm_listings_category ON rm_listings (category, listing_id);
CREATE INDEX rm_listings_vendor ON rm_listings (vendor_id, listing_id);
CREATE INDEX rm_listings_search ON rm_listings USING gin (search);

-- Units in use over time: active holds (until `expires_at`), confirmed
-- bookings (until returned) and blackouts (`quantity` NULL = all units).
-- Released and expired holds stay as such (a late payment may reinstate
-- them). Sale holds have no period.
CREATE TABLE rm_allocations
(
    listing_id    uuid        NOT NULL,
    allocation_id uuid        NOT NULL,
    kind          text        NOT NULL
        CHECK (kind IN ('hold', 'booking', 'blackout', 'released', 'expired')),
    start_at      timestamptz,
    end_at        timestamptz,
    quantity      integer,
    expires_at    timestamptz,
    order_id      uuid,
    PRIMARY KEY (listing_id, allocation_id)
);
CREATE INDEX rm_allocations_period ON rm_allocations (listing_id, start_at, end_at);

-- Orders as placed, with their status, per-vendor parts, payments and refunds.
CREATE TABLE rm_orders
(
    order_id        uuid PRIMARY KEY,
    customer_id     text        NOT NULL,
    status          text        NOT NULL,
    currency        text        NOT NULL,
    total           numeric(20, 2) NOT NULL,
    placed_at       timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    document        jsonb       NOT NULL
);
CREATE INDEX rm_orders_customer ON rm_orders (customer_id, order_id);
CREATE INDEX rm_orders_status ON rm_orders (status, order_id);

CREATE TABLE rm_order_vendors
(
    order_id  uuid NOT NULL,
    vendor_id uuid NOT NULL,
    PRIMARY KEY (vendor_id, order_id)
);
