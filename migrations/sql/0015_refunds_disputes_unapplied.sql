-- Refunds, disputes and unapplied payments (API.md "Money").

-- Vendor earnings: net reversed by refunds and lost disputes, frozen by
-- open disputes, and owed by the vendor when a refund exceeded its
-- available balance (projectors/src/ledger/reversals.rs).
ALTER TABLE ledger_vendor_earnings
    ADD COLUMN refunded   numeric(20, 2) NOT NULL DEFAULT 0,
    ADD COLUMN frozen     numeric(20, 2) NOT NULL DEFAULT 0,
    ADD COLUMN receivable numeric(20, 2) NOT NULL DEFAULT 0;

-- `POST /v1/payments/{payment_id}/apply` · `/refund` find the order of an
-- unapplied payment in the log (command side; no read model decides).
CREATE INDEX events_unapplied_payment
    ON events ((payload -> 'PaymentUnapplied' ->> 'payment_id'))
    WHERE event_type = 'PaymentUnapplied';
