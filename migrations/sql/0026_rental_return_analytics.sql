-- Late returns in the analytics (issue 13 item 7; `GET /v1/analytics/summary`
-- `overdue_lines` and `late_fees`): per rental line that went overdue or came
-- back, when it became overdue, when it was returned and the late fee its
-- return posted (and the part of it the deposit did not cover).
CREATE TABLE an_rental_returns
(
    line_id       uuid PRIMARY KEY,
    order_id      uuid           NOT NULL,
    overdue_at    timestamptz,
    returned_at   timestamptz,
    late_fee      numeric(20, 2) NOT NULL DEFAULT 0,
    late_fee_owed numeric(20, 2) NOT NULL DEFAULT 0
);
CREATE INDEX an_rental_returns_overdue ON an_rental_returns (overdue_at)
    WHERE overdue_at IS NOT NULL;
CREATE INDEX an_rental_returns_returned ON an_rental_returns (returned_at)
    WHERE returned_at IS NOT NULL;
