-- Orders paid by instalments (issue 15 item 3): the analytics summary's
-- `instalments_overdue` reads their schedules from the order documents.
CREATE INDEX rm_orders_leases ON rm_orders (order_id) WHERE document ? 'lease';
