-- Issue 15: an admin refunds a subscription's unapplied cash through
-- POST /v1/payments/{payment_id}/refund. The route finds the subscription
-- holding the payment in the log, by the provider's event id; the invoice
-- answer shows what of its unapplied cash was refunded.
CREATE INDEX events_subscription_unapplied_payment
    ON events ((payload -> 'InvoicePaymentUnapplied' ->> 'payment_ref'))
    WHERE aggregate_type = 'Subscription' AND event_type = 'InvoicePaymentUnapplied';
ALTER TABLE rm_subscription_invoices
    ADD COLUMN refunded numeric(20, 2) NOT NULL DEFAULT 0;
