-- What refunds took of each vendor part of an order, as the ledger saw them
-- (per vendor id: subtotal, tax, fee, net). A later cancellation reverses
-- only what the order still holds, and takes the refunded net out of the
-- vendor's earnings with the order.
ALTER TABLE ledger_orders
    ADD COLUMN refunded jsonb NOT NULL DEFAULT '{}';
