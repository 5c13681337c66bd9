-- Issue 15: one deployment, many tenants. Every event records its tenant
-- in its metadata (`tenant`, a slug; events from before tenants have none
-- and belong to the default tenant). The column is derived from the
-- metadata, never written on its own: the hash chain covers the metadata,
-- so a changed tenant is a changed hash, and the per-tenant event API,
-- exports and verification read it through this index.
ALTER TABLE events
    ADD COLUMN tenant text GENERATED ALWAYS AS
        (coalesce(metadata ->> 'tenant', 'default')) STORED NOT NULL;
CREATE INDEX events_tenant_position ON events (tenant, global_position);
