-- Payouts that can fail (API.md "Money"): each payout's lifecycle,
-- requested → paid | failed, kept by the ledger projector beside its
-- postings (projectors/src/ledger/payouts.rs) for `GET /v1/vendors/{id}/payouts`
-- and the analytics summary's payouts by status.
CREATE TABLE ledger_payouts
(
    payout_id      uuid PRIMARY KEY,
    vendor_id      uuid           NOT NULL,
    amount         numeric(20, 2) NOT NULL,
    status         text           NOT NULL CHECK (status IN ('requested', 'paid', 'failed')),
    failure_reason text,
    requested_at   timestamptz    NOT NULL,
    settled_at     timestamptz,
    position       bigint         NOT NULL
);
CREATE INDEX ledger_payouts_vendor ON ledger_payouts (vendor_id, payout_id);

-- The payment webhook's `payout.*` events name only the payout: the Vendor
-- aggregate it belongs to is found in the log by its PayoutRecorded event
-- (event-log `reads::vendor_of_payout`), one probe of this index.
CREATE INDEX events_payout_id ON events ((payload -> 'PayoutRecorded' ->> 'payout_id'))
    WHERE event_type = 'PayoutRecorded';
