-- Rental listings' schedules and policies (API.md "Rentals"), as the
-- availability projector copies them from the Inventory and Listing
-- events, for `GET /v1/listings/{id}` to show. NULL: none set.
ALTER TABLE rm_listings ADD COLUMN schedule jsonb, ADD COLUMN policies jsonb;
