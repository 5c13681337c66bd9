-- Issue 18: an order and its holds are recorded in one transaction, so no
-- crash strands a hold and no deadline row is written per order. The
-- sweeper finds lapsed holds where they are already recorded, in the
-- availability read model; holds that an earlier version stranded are
-- there too.
CREATE INDEX rm_allocations_lapsed ON rm_allocations (expires_at) WHERE kind = 'hold';
DROP TABLE hold_deadlines;
