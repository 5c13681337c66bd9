//! Bookings in the simulated marketplace: a free period, then the hold, the
//! order, the payment and the confirmation, as the order saga and the
//! payment webhook would record them.

use super::*;

impl Sim {
    fn random_period(&mut self, unit: PricingUnit, placed_at: DateTime<Utc>) -> Period {
        let horizon = self.config.horizon_days.max(1);
        let (start, length) = match unit {
            PricingUnit::Day => {
                let day = placed_at
                    .duration_trunc(TimeDelta::days(1))
                    .unwrap_or(placed_at);
                let start = day + TimeDelta::days(self.rng.gen_range(1..=horizon));
                // Mostly short rentals, now and then a long one.
                let days = if self.rng.gen_bool(0.9) {
                    self.rng.gen_range(1..=4)
                } else {
                    self.rng.gen_range(5..=14)
                };
                (start, TimeDelta::days(days))
            }
            PricingUnit::Hour => {
                let hour = placed_at
                    .duration_trunc(TimeDelta::hours(1))
                    .unwrap_or(placed_at);
                let start = hour + TimeDelta::hours(self.rng.gen_range(1..=horizon * 24));
                (start, TimeDelta::hours(self.rng.gen_range(1..=8)))
            }
        };
        Period {
            start,
            end: start + length,
        }
    }

    fn note_inventory_snapshot(&mut self, index: usize) -> Result<(), BenchError> {
        let l = &mut self.listings[index];
        if l.inventory_seq > 0 && l.inventory_seq % SNAPSHOT_EVERY == 0 {
            l.snapshot = Some((
                l.inventory_seq,
                serde_json::to_value(&l.inventory)?.to_string(),
            ));
        }
        Ok(())
    }

    /// One booking as a customer makes it over HTTP: the saga holds the
    /// units and records the order (`POST /v1/orders`), the payment
    /// provider's webhook records the payment and confirms the hold.
    /// Returns its four commits, or `None` when no free period was found.
    /// `paid_at` must be before the hold expires (15 minutes).
    pub fn book(
        &mut self,
        placed_at: DateTime<Utc>,
        paid_at: DateTime<Utc>,
    ) -> Result<Option<[Commit; 4]>, BenchError> {
        if self.rentals.is_empty() {
            return Err(BenchError::Config("no rental listing to book".into()));
        }
        let customer = self.rng.gen_range(1..=self.config.customers.max(1));
        let customer_id = format!("customer-{customer}");
        let order_id = uuid_v7_at(&mut self.rng, placed_at);
        let hold_id = uuid_v7_at(&mut self.rng, placed_at);
        let line_id = uuid_v7_at(&mut self.rng, placed_at);
        let expires_at = placed_at + Duration::minutes(HOLD_TTL_MINUTES);
        let context = self.request_context(customer_id.clone(), "customer", placed_at);

        // The listing and a period with a free unit: the inventory decides.
        let mut chosen = None;
        'listings: for _ in 0..4 {
            let index = self.rentals[self.rng.gen_range(0..self.rentals.len())];
            let Some(ListingTerms::Rental { pricing_unit, .. }) =
                self.listings[index].listing.terms().cloned()
            else {
                continue;
            };
            for _ in 0..6 {
                let period = self.random_period(pricing_unit, placed_at);
                let command = InventoryCommand::PlaceHold {
                    hold_id,
                    order_id,
                    request: HoldRequest::Rental {
                        period,
                        quantity: 1,
                    },
                    expires_at,
                    now: placed_at,
                };
                match execute(&mut self.listings[index].inventory, command) {
                    Ok(events) => {
                        chosen = Some((index, period, events));
                        break 'listings;
                    }
                    Err(DomainError::Unavailable { .. }) => self.retries += 1,
                    Err(err) => return Err(domain_error(err)),
                }
            }
        }
        let Some((index, period, hold_events)) = chosen else {
            self.refused += 1;
            return Ok(None);
        };
        let listing_id = self.listings[index].id;
        let id = listing_id.to_string();

        let mut hold = Vec::with_capacity(1);
        let metadata = context.metadata("PlaceHold")?;
        let mut seq = self.listings[index].inventory_seq;
        self.rows::<Inventory>(
            &id,
            &mut seq,
            hold_events,
            &metadata,
            placed_at + TimeDelta::milliseconds(3),
            &mut hold,
        )?;
        self.listings[index].inventory_seq = seq;
        self.note_inventory_snapshot(index)?;

        let listing = &self.listings[index].listing;
        let (
            Some(vendor_id),
            Some(ListingTerms::Rental {
                pricing_unit,
                price_per_unit,
                deposit,
                ..
            }),
        ) = (listing.vendor_id(), listing.terms().cloned())
        else {
            return Err(BenchError::Unexpected(
                "a rental listing without terms".into(),
            ));
        };
        let mut order = Order::default();
        let events = execute(
            &mut order,
            OrderCommand::Place {
                order_id,
                customer_id,
                currency: self.config.currency.clone(),
                lines: vec![LineInput {
                    line_id,
                    hold_id,
                    listing_id,
                    vendor_id,
                    terms: LineTerms::Rental {
                        late_fee_per_unit: Default::default(),
                        cancellation_policy: Vec::new(),
                        time_zone: domain::Tz::UTC,
                        period,
                        pricing_unit,
                        price_per_unit,
                        deposit_per_unit: deposit,
                    },
                    quantity: 1,
                }],
                rates: self.config.rates,
                fee_rates: Default::default(),
                hold_expires_at: expires_at,
                placed_at,
                payment_plans: Default::default(),
            },
        )
        .map_err(domain_error)?;
        let oid = order_id.to_string();
        let mut order_seq = 0;
        let mut placed = Vec::with_capacity(1);
        let metadata = context.metadata("PlaceOrder")?;
        self.rows::<Order>(
            &oid,
            &mut order_seq,
            events,
            &metadata,
            placed_at + TimeDelta::milliseconds(5),
            &mut placed,
        )?;

        // The provider's webhook: a Stripe event id, no request id header.
        let payment_id = format!("evt_{}", uuid_v4(&mut self.rng).simple());
        let intent_id = format!("pi_{}", uuid_v4(&mut self.rng).simple());
        let amount_minor = domain::to_minor_units(order.total())
            .ok_or_else(|| BenchError::Unexpected("order total out of range".into()))?;
        let provider = Context {
            principal: "payment-provider".to_owned(),
            role: "admin",
            correlation_id: payment_id.clone(),
            causation_id: payment_id.clone(),
        };
        let events = execute(
            &mut order,
            OrderCommand::RecordPayment {
                payment_id,
                intent_id,
                amount_minor,
                currency: self.config.currency.to_ascii_lowercase(),
                outcome: PaymentOutcome::Succeeded,
                received_at: paid_at,
            },
        )
        .map_err(domain_error)?;
        let mut paid = Vec::with_capacity(2);
        let metadata = provider.metadata("RecordPayment")?;
        self.rows::<Order>(&oid, &mut order_seq, events, &metadata, paid_at, &mut paid)?;

        let events = execute(
            &mut self.listings[index].inventory,
            InventoryCommand::ConfirmHold {
                hold_id,
                now: paid_at,
            },
        )
        .map_err(domain_error)?;
        let mut confirmed = Vec::with_capacity(1);
        let metadata = provider.metadata("ConfirmHold")?;
        let mut seq = self.listings[index].inventory_seq;
        self.rows::<Inventory>(
            &id,
            &mut seq,
            events,
            &metadata,
            paid_at + TimeDelta::milliseconds(4),
            &mut confirmed,
        )?;
        self.listings[index].inventory_seq = seq;
        self.note_inventory_snapshot(index)?;
        Ok(Some([hold, placed, paid, confirmed]))
    }
}
