-- Issue 15: every read-model row carries its tenant (API.md "Tenants":
-- another tenant's ids answer 404). The projectors write the tenant of the
-- event that creates a row (`events.tenant`, migration 0038); the rows of
-- before tenants are the default tenant's. A row never changes tenant.
--
-- The query routes filter every read by the principal's tenant, so the
-- list orderings' indexes lead with it. Listings keep their other indexes
-- (the search and the period filters read them by id).
ALTER TABLE rm_listings ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE rm_allocations ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE rm_orders ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE rm_order_vendors ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE rm_plans ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE rm_subscriptions ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE rm_subscription_invoices ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE invoices ADD COLUMN tenant text NOT NULL DEFAULT 'default';

-- GET /v1/listings: a tenant's listings in id order (and by category or
-- vendor).
CREATE INDEX rm_listings_tenant ON rm_listings (tenant, listing_id);
DROP INDEX rm_listings_category;
CREATE INDEX rm_listings_category ON rm_listings (tenant, category, listing_id);
DROP INDEX rm_listings_vendor;
CREATE INDEX rm_listings_vendor ON rm_listings (tenant, vendor_id, listing_id);

-- GET /v1/orders: an admin's (all of the tenant), a customer's, by status.
CREATE INDEX rm_orders_tenant ON rm_orders (tenant, order_id);
DROP INDEX rm_orders_customer;
CREATE INDEX rm_orders_customer ON rm_orders (tenant, customer_id, order_id);
DROP INDEX rm_orders_status;
CREATE INDEX rm_orders_status ON rm_orders (tenant, status, order_id);

-- GET /v1/plans and GET /v1/subscriptions.
CREATE INDEX rm_plans_tenant ON rm_plans (tenant, plan_id);
CREATE INDEX rm_subscriptions_tenant ON rm_subscriptions (tenant, subscription_id);
DROP INDEX rm_subscriptions_customer;
CREATE INDEX rm_subscriptions_customer ON rm_subscriptions (tenant, customer_id, subscription_id);
DROP INDEX rm_subscriptions_status;
CREATE INDEX rm_subscriptions_status ON rm_subscriptions (tenant, status, subscription_id);
