-- A payment webhook names only the invoice it pays (`metadata.invoice_id`,
-- API.md "Subscriptions and instalments"); the command side finds the
-- Subscription that issued it in the log itself, the one source of truth,
-- so there is no second table that a crash could leave behind the log.
-- This index keeps that lookup one probe however long the log grows.
CREATE INDEX events_subscription_invoice_issued
    ON events ((payload -> 'InvoiceIssued' ->> 'invoice_id'))
    WHERE aggregate_type = 'Subscription' AND event_type = 'InvoiceIssued';
