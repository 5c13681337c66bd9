-- Issue 15: the money read models and the analytics per tenant. Every row
-- records the tenant of the event that wrote it (`StoredEvent::tenant`);
-- rows from before tenants belong to the default tenant. The read API
-- filters every money and analytics query by the principal's tenant.
--
-- Keys that are uuids or log positions are unique across tenants and stay
-- as they are. Account names are not (`cash`, `platform_fees`, ... exist
-- in every tenant's books): `ledger_accounts` is keyed by (tenant, account),
-- so each tenant's trial balance balances on its own.
ALTER TABLE ledger_postings ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE ledger_accounts ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE ledger_orders ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE ledger_vendor_earnings ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE ledger_payouts ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE ledger_subscription_invoices ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE an_orders ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE an_order_lines ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE an_listings ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE an_payment_failures ADD COLUMN tenant text NOT NULL DEFAULT 'default';
ALTER TABLE an_rental_returns ADD COLUMN tenant text NOT NULL DEFAULT 'default';

ALTER TABLE ledger_accounts DROP CONSTRAINT ledger_accounts_pkey;
ALTER TABLE ledger_accounts ADD PRIMARY KEY (tenant, account);

-- The analytics read a tenant's period: by tenant, then time.
CREATE INDEX an_orders_tenant_placed ON an_orders (tenant, placed_at);
CREATE INDEX an_order_lines_tenant_placed ON an_order_lines (tenant, placed_at);
CREATE INDEX an_payment_failures_tenant_at ON an_payment_failures (tenant, failed_at);
CREATE INDEX ledger_postings_tenant_position ON ledger_postings (tenant, position);
