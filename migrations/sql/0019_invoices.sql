-- Invoices and credit notes (API.md "Money"), as the vendors' InvoiceBook
-- aggregates issued them, for `GET /v1/orders/{id}/invoices` and
-- `GET /v1/invoices/{id}.pdf` (projectors/src/invoices.rs). `document` is
-- the issued document whole (lines, tax, totals, the vendor's and the
-- platform's parts); the columns beside it are what the routes filter on.
CREATE TABLE invoices
(
    invoice_id  uuid PRIMARY KEY,
    number      text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('invoice', 'credit_note')),
    vendor_id   uuid        NOT NULL,
    order_id    uuid        NOT NULL,
    customer_id text        NOT NULL,
    sequence    bigint      NOT NULL,
    document    jsonb       NOT NULL,
    issued_at   timestamptz NOT NULL,
    position    bigint      NOT NULL,
    UNIQUE (vendor_id, kind, sequence)
);
CREATE INDEX invoices_order ON invoices (order_id, issued_at);
