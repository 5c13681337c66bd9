-- Issue 15: subscription invoices carry tax at the deployment's rate (the
-- plan's price is net). The read model shows it; the ledger remembers it
-- to reverse it when an unpaid invoice is voided. Invoices issued before
-- carry none.
ALTER TABLE rm_subscription_invoices
    ADD COLUMN tax numeric(20, 2) NOT NULL DEFAULT 0;
ALTER TABLE ledger_subscription_invoices
    ADD COLUMN tax numeric(20, 2) NOT NULL DEFAULT 0;
