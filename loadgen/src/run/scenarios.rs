//! The clients' loops, one per scenario.

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::TimeDelta;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use super::client::{Api, Outcome};
use super::setup::{encode, rfc3339, slot, Prepared, CATEGORIES, NOUNS};
use super::stats::Recorder;
use super::{Kind, ListingInfo, Scenario, Shared, Span};
use crate::BenchError;

pub const SEARCH: &str = "search";
pub const AVAILABILITY: &str = "availability";
pub const GET_LISTING: &str = "get_listing";
pub const PLACE_ORDER: &str = "place_order";
pub const PLACE_ORDER_DEEP: &str = "place_order_deep";
pub const PLACE_ORDER_FRESH: &str = "place_order_fresh";
pub const PAYMENT: &str = "payment";
pub const PAYMENT_FAILED: &str = "payment_failed";
pub const CANCEL: &str = "cancel";
pub const GET_ORDER: &str = "get_order";

/// How far ahead `mixed` rentals may start: a year (conflicts are rare but
/// do occur on listings of one or two units in a long run).
const HORIZON_DAYS: i64 = 365;

/// Whether an operation is a command (it records events).
pub fn is_command(op: &str) -> bool {
    [
        PLACE_ORDER,
        PLACE_ORDER_DEEP,
        PLACE_ORDER_FRESH,
        PAYMENT,
        PAYMENT_FAILED,
        CANCEL,
    ]
    .contains(&op)
}

/// The order's total in minor units, from a place-order answer.
fn total_minor(placed: &Outcome) -> Option<i64> {
    let total = Decimal::from_str(placed.str_field("total")?).ok()?;
    (total * Decimal::from(100)).round().to_i64()
}

/// Sends the provider's event for a placed order: succeeded with its exact
/// total, or failed. `None` when the answer is not a placed order.
pub async fn pay(api: &Api, placed: &Outcome, succeed: bool) -> Option<Outcome> {
    let order_id = placed.uuid_field("order_id")?;
    let amount = total_minor(placed)?;
    let currency = placed.str_field("currency").unwrap_or("usd").to_lowercase();
    let event = json!({
        "id": format!("evt_{}", Uuid::now_v7().simple()),
        "type": if succeed { "payment_intent.succeeded" } else { "payment_intent.payment_failed" },
        "data": {"object": {
            "id": format!("pi_{}", Uuid::now_v7().simple()),
            "amount": amount,
            "currency": currency,
            "metadata": {"order_id": order_id},
            "last_payment_error": if succeed { Value::Null } else { json!({"message": "card_declined"}) },
        }},
    });
    Some(api.webhook(&event).await)
}

/// Open-loop pacing of one client: its share of `--rate`.
struct Pacer {
    next: Instant,
    every: Duration,
}

impl Pacer {
    async fn wait(&mut self) {
        let now = Instant::now();
        // After a stall, do not burst to catch up more than a second.
        if self.next + Duration::from_secs(1) < now {
            self.next = now;
        }
        if self.next > now {
            tokio::time::sleep_until(self.next.into()).await;
        }
        self.next += self.every;
    }
}

struct Client {
    shared: Arc<Shared>,
    i: u64,
    k: u64,
    token: String,
    rng: StdRng,
    pacer: Option<Pacer>,
    rec: Recorder,
    listings: Arc<Vec<ListingInfo>>,
    rentals: Arc<Vec<ListingInfo>>,
}

/// Runs the clients until the deadline and merges what they measured.
pub async fn drive(shared: Arc<Shared>, prepared: &Prepared) -> Result<Recorder, BenchError> {
    let config = &shared.config;
    let listings = Arc::new(prepared.listings.clone());
    let rentals = Arc::new(
        prepared
            .listings
            .iter()
            .filter(|l| l.is_rental())
            .cloned()
            .collect::<Vec<_>>(),
    );
    let mut tasks = Vec::with_capacity(config.concurrency);
    for i in 0..config.concurrency {
        let token = shared.api.token(
            "customer",
            &format!("loadgen-{}-customer-{i}", shared.run_id),
            None,
        )?;
        let pacer = config.rate.map(|rate| {
            let every = Duration::from_secs_f64(config.concurrency as f64 / rate);
            Pacer {
                // Spread the clients' first requests over one interval.
                next: Instant::now() + every.mul_f64(i as f64 / config.concurrency as f64),
                every,
            }
        });
        let mut client = Client {
            shared: shared.clone(),
            i: i as u64,
            k: 0,
            token,
            rng: StdRng::from_entropy(),
            pacer,
            rec: Recorder::new(shared.measure_from, shared.deadline),
            listings: listings.clone(),
            rentals: rentals.clone(),
        };
        let hot = prepared.hot.clone();
        let deep = prepared.deep.clone();
        let booked = prepared.deep_bookings as u64;
        tasks.push(tokio::spawn(async move {
            while Instant::now() < client.shared.deadline {
                match client.shared.config.scenario {
                    Scenario::Mixed => client.mixed().await,
                    Scenario::Reads => client.reads().await,
                    Scenario::PlaceOrder => client.place_one().await,
                    Scenario::HotListing => {
                        if let Some(hot) = &hot {
                            let n = client.slot_index();
                            client.book_slot(PLACE_ORDER, hot, n).await;
                        }
                    }
                    Scenario::DeepListing => {
                        if let Some((a, b)) = &deep {
                            let n = client.slot_index();
                            client.book_slot(PLACE_ORDER_DEEP, a, booked + n).await;
                            client.book_slot(PLACE_ORDER_FRESH, b, n).await;
                        }
                    }
                }
                client.k += 1;
            }
            client.rec
        }));
    }
    let mut merged = Recorder::default();
    for task in tasks {
        let rec = task
            .await
            .map_err(|e| BenchError::Unexpected(format!("a client failed: {e}")))?;
        merged.merge(rec);
    }
    Ok(merged)
}

impl Client {
    /// Past the run's end: the rest of an iteration is skipped.
    fn over(&self) -> bool {
        Instant::now() >= self.shared.deadline
    }

    async fn pace(&mut self) {
        if let Some(pacer) = &mut self.pacer {
            pacer.wait().await;
        }
    }

    /// Client `i`'s `k`-th slot: unique across clients and iterations.
    fn slot_index(&self) -> u64 {
        self.k * self.shared.config.concurrency as u64 + self.i
    }

    fn pick<'a>(&mut self, from: &'a [ListingInfo]) -> Option<&'a ListingInfo> {
        if from.is_empty() {
            None
        } else {
            Some(&from[self.rng.gen_range(0..from.len())])
        }
    }

    /// A random period within the horizon, in whole hours or days.
    fn random_period(&mut self, hourly: bool) -> Span {
        let base = self.shared.base;
        if hourly {
            let start = base + TimeDelta::hours(self.rng.gen_range(0..HORIZON_DAYS * 24));
            (start, start + TimeDelta::hours(self.rng.gen_range(1..=24)))
        } else {
            let start = base + TimeDelta::days(self.rng.gen_range(0..HORIZON_DAYS));
            (start, start + TimeDelta::days(self.rng.gen_range(1..=5)))
        }
    }

    async fn get(&mut self, op: &'static str, path: &str) -> Outcome {
        self.pace().await;
        let outcome = self.shared.api.get(path, &self.token).await;
        self.rec.record(op, &outcome);
        outcome
    }

    async fn command(&mut self, op: &'static str, path: &str, body: &Value) -> Outcome {
        self.pace().await;
        let outcome = self.shared.api.post(path, &self.token, body).await;
        self.rec.record(op, &outcome);
        if outcome.ok() {
            self.shared.committed(outcome.position(), outcome.done);
        }
        outcome
    }

    async fn payment(&mut self, placed: &Outcome, succeed: bool) -> Option<Outcome> {
        self.pace().await;
        let outcome = pay(&self.shared.api, placed, succeed).await?;
        self.rec
            .record(if succeed { PAYMENT } else { PAYMENT_FAILED }, &outcome);
        if succeed && outcome.ok() && outcome.str_field("status") != Some("confirmed") {
            self.shared
                .unconfirmed_payments
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if outcome.ok() {
            self.shared.committed(outcome.position(), outcome.done);
        }
        Some(outcome)
    }

    async fn search(&mut self) {
        let mut path = format!(
            "/v1/listings?limit=20&q={}",
            NOUNS[self.rng.gen_range(0..NOUNS.len())]
        );
        if self.rng.gen_bool(0.5) {
            // A category the catalogue has (the ledger's own, with --existing).
            let listings = self.listings.clone();
            let category = match self.pick(&listings) {
                Some(l) => encode(&l.category),
                None => CATEGORIES[self.rng.gen_range(0..CATEGORIES.len())].to_owned(),
            };
            path.push_str("&category=");
            path.push_str(&category);
        }
        if self.rng.gen_bool(0.25) {
            let (from, to) = self.random_period(false);
            path.push_str(&format!(
                "&available_from={}&available_to={}",
                rfc3339(from),
                rfc3339(to)
            ));
        }
        self.get(SEARCH, &path).await;
    }

    async fn availability(&mut self) {
        let rentals = self.rentals.clone();
        let Some(listing) = self.pick(&rentals) else {
            return;
        };
        let from = self.shared.base + TimeDelta::days(self.rng.gen_range(0..HORIZON_DAYS));
        let path = format!(
            "/v1/listings/{}/availability?from={}&to={}",
            listing.listing_id,
            rfc3339(from),
            rfc3339(from + TimeDelta::days(7))
        );
        self.get(AVAILABILITY, &path).await;
    }

    async fn get_listing(&mut self) {
        let listings = self.listings.clone();
        let Some(listing) = self.pick(&listings) else {
            return;
        };
        let path = format!("/v1/listings/{}", listing.listing_id);
        self.get(GET_LISTING, &path).await;
    }

    /// One order line on `listing`; rentals over `period` (random if none).
    fn line(&mut self, listing: &ListingInfo, period: Option<Span>) -> Value {
        match listing.kind {
            Kind::Rental { units, hourly } => {
                let (start, end) = period.unwrap_or_else(|| self.random_period(hourly));
                self.shared.touch(listing.listing_id, start, end);
                let quantity = if units >= 2 && self.rng.gen_bool(0.2) {
                    2
                } else {
                    1
                };
                json!({
                    "listing_id": listing.listing_id, "quantity": quantity,
                    "start": rfc3339(start), "end": rfc3339(end),
                })
            }
            Kind::Sale => json!({
                "listing_id": listing.listing_id,
                "quantity": self.rng.gen_range(1..=3),
            }),
        }
    }

    /// The marketplace mix: browse, order, pay (or not), cancel some, look.
    async fn mixed(&mut self) {
        self.search().await;
        if self.over() {
            return;
        }
        self.availability().await;
        if self.over() {
            return;
        }
        self.get_listing().await;
        if self.over() {
            return;
        }

        let lines = match self.rng.gen_range(0..10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let listings = self.listings.clone();
        let mut chosen: Vec<&ListingInfo> = Vec::new();
        for _ in 0..lines * 8 {
            if chosen.len() == lines {
                break;
            }
            let Some(candidate) = self.pick(&listings) else {
                return;
            };
            let distinct = chosen.iter().all(|c| {
                c.listing_id != candidate.listing_id && c.vendor_id != candidate.vendor_id
            });
            if distinct {
                chosen.push(candidate);
            }
        }
        let items: Vec<Value> = chosen.iter().map(|l| self.line(l, None)).collect();
        let placed = self
            .command(PLACE_ORDER, "/v1/orders", &json!({ "items": items }))
            .await;
        if !placed.ok() {
            return;
        }
        let Some(order_id) = placed.uuid_field("order_id") else {
            return;
        };
        let mut position = placed.position();

        let cancel_path = format!("/v1/orders/{order_id}/cancel");
        let cancel_body = json!({"reason": "loadgen"});
        if self.rng.gen_bool(0.08) {
            let cancelled = self.command(CANCEL, &cancel_path, &cancel_body).await;
            position = cancelled.position().or(position);
        } else {
            let succeed = self.rng.gen_bool(0.97);
            if let Some(paid) = self.payment(&placed, succeed).await {
                if paid.ok() {
                    position = paid.position().or(position);
                }
                if paid.ok() && succeed && self.rng.gen_bool(0.03) {
                    let refunded = self.command(CANCEL, &cancel_path, &cancel_body).await;
                    position = refunded.position().or(position);
                }
            }
        }

        if self.over() {
            return;
        }
        self.pace().await;
        let path = format!("/v1/orders/{order_id}");
        let outcome = match position {
            Some(p) => self.shared.api.get_at(&path, &self.token, p).await,
            None => self.shared.api.get(&path, &self.token).await,
        };
        self.rec.record(GET_ORDER, &outcome);
    }

    async fn reads(&mut self) {
        self.search().await;
        if self.over() {
            return;
        }
        self.get_listing().await;
        if self.over() {
            return;
        }
        self.availability().await;
    }

    /// One single-line order on a random listing, in a slot nobody else asks.
    async fn place_one(&mut self) {
        let listings = self.listings.clone();
        let Some(listing) = self.pick(&listings) else {
            return;
        };
        let period = slot(self.shared.base, self.slot_index());
        let line = self.line(listing, Some(period));
        self.command(PLACE_ORDER, "/v1/orders", &json!({ "items": [line] }))
            .await;
    }

    /// Books the `n`-th one-hour slot on `listing` (one unit).
    async fn book_slot(&mut self, op: &'static str, listing: &ListingInfo, n: u64) {
        let (start, end) = slot(self.shared.base, n);
        self.shared.touch(listing.listing_id, start, end);
        let body = json!({"items": [{
            "listing_id": listing.listing_id, "quantity": 1,
            "start": rfc3339(start), "end": rfc3339(end),
        }]});
        self.command(op, "/v1/orders", &body).await;
    }
}
