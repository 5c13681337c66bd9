-- Failed payments counted by the provider's `code` and `decline_code`
-- (Stripe's `last_payment_error`), both optional: failures recorded before
-- they were kept, or sent without them, have NULL. Rebuilding the analytics
-- read model fills them from the events.
ALTER TABLE an_payment_failures
    ADD COLUMN code         text,
    ADD COLUMN decline_code text;
