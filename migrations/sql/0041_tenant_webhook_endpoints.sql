-- Issue 15: an outgoing webhook endpoint belongs to the tenant that
-- registered it, and is sent that tenant's events only.
ALTER TABLE webhook_endpoints
    ADD COLUMN tenant text NOT NULL DEFAULT 'default';
