//! Reconciliation (DESIGN.md invariant 2): a seeded random marketplace is
//! driven through the HTTP API, left to settle, and then every money figure
//! the ledger answers is compared to the cent with the raw event log by
//! [`ledger_tests::reconcile`]. A second test proves the checker is not
//! blind: a one-cent error planted in any money read model is reported.
//!
//! The seed is printed; set `RECONCILE_SEED` to replay a plan (the
//! interleaving of the concurrent clients still varies). The ledger runs on
//! a `ManualClock`: the orders are driven while it stands still, then the
//! rentals are picked up and returned at their instants (`rentals`).

mod leases;
mod rentals;
mod subscriptions;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use ledger_tests::answer::decimal;
use ledger_tests::reconcile::{self, Discrepancy, Observed};
use ledger_tests::scenario::seed;
use ledger_tests::webhooks::{self, minor_units, total_minor};
use ledger_tests::{at, Answer, TestApp};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

/// Concurrent HTTP clients.
const CLIENTS: usize = 32;

const CATEGORIES: &[&str] = &["boats", "bikes", "tents", "tools", "cameras", "gear"];
const FAILURES: &[&str] = &[
    "Your card was declined.",
    "Insufficient funds.",
    "Your card has expired.",
];

/// Vendors' own fee rates (the others pay the deployment's 12.5 %).
const FEE_RATES: &[&str] = &["0.0825", "0.05"];

pub(super) fn cents(c: i64) -> String {
    format!("{}.{:02}", c / 100, c % 100)
}

// ---------------------------------------------------------------------------
// The plan: everything random is decided up front from the seed
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
enum Kind {
    Rental { hourly: bool, units: u32 },
    Sale,
}

#[derive(Clone, Debug)]
struct ListingPlan {
    vendor: usize,
    kind: Kind,
    price_cents: i64,
    deposit_cents: i64,
    category: &'static str,
    /// Rentals: the late fee and cancellation policy.
    policies: Option<rentals::Policies>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Payment {
    /// Paid at once.
    Paid,
    /// A failed attempt, then paid.
    FailedThenPaid,
    /// A failed attempt, never paid.
    Failed,
    /// Cancelled by the customer before paying.
    CancelledUnpaid,
    /// Paid, then cancelled before fulfilment (refunded).
    CancelledPaid,
    /// Paid twice (the second payment is refunded as a duplicate).
    PaidTwice,
    /// A wrong amount first (held as unapplied cash), then paid.
    MismatchThenPaid,
    /// Part of the total (unapplied), then the rest, which applies it.
    PaidInTwoParts,
    /// Left awaiting payment.
    Unpaid,
}

impl Payment {
    fn is_paid(self) -> bool {
        matches!(
            self,
            Payment::Paid
                | Payment::FailedThenPaid
                | Payment::PaidTwice
                | Payment::MismatchThenPaid
                | Payment::PaidInTwoParts
        )
    }
}

#[derive(Clone, Debug)]
struct OrderPlan {
    customer: String,
    items: Vec<Value>,
    payment: Payment,
    failure: &'static str,
    /// Fulfil the order's parts (only if paid).
    fulfil: bool,
    /// Per line, the damage withheld as a percentage of its deposit.
    damage_percent: Vec<i64>,
    /// What happens to the money afterwards (only if paid).
    after: After,
    /// A change of the first line's booking (paid, not fulfilled, nothing
    /// after), by one of its pricing units (`change_unit`).
    change: rentals::Change,
    change_unit: chrono::Duration,
    /// Per line, when a rental comes back.
    returns: Vec<rentals::Return>,
}

/// API.md "Money": refunds and the provider's disputes of a paid order.
#[derive(Clone, Copy, Debug, PartialEq)]
enum After {
    Nothing,
    /// A refund of this percentage of the total, then (by lines) the first
    /// line's rest.
    Refund {
        percent: i64,
        by_lines: bool,
    },
    /// A dispute of this percentage of the total, then won or lost.
    Dispute {
        percent: i64,
        won: bool,
    },
}

struct Plan {
    vendors: usize,
    listings: Vec<ListingPlan>,
    orders: Vec<OrderPlan>,
}

fn plan(rng: &mut StdRng, vendors: usize, listings: usize, orders: usize) -> Plan {
    let listings: Vec<ListingPlan> = (0..listings)
        .map(|i| {
            let kind = match rng.gen_range(0..100) {
                0..=39 => Kind::Rental {
                    hourly: false,
                    units: rng.gen_range(3..=8),
                },
                40..=64 => Kind::Rental {
                    hourly: true,
                    units: rng.gen_range(2..=5),
                },
                _ => Kind::Sale,
            };
            ListingPlan {
                // Every vendor gets listings.
                vendor: if i < vendors {
                    i
                } else {
                    rng.gen_range(0..vendors)
                },
                kind,
                price_cents: rng.gen_range(1..=25_000),
                deposit_cents: match rng.gen_range(0..4) {
                    0 => 0,
                    _ => rng.gen_range(1..=40_000),
                },
                category: CATEGORIES[rng.gen_range(0..CATEGORIES.len())],
                policies: None,
            }
        })
        .collect();
    let listings: Vec<ListingPlan> = listings
        .into_iter()
        .map(|mut listing| {
            if matches!(listing.kind, Kind::Rental { .. }) {
                listing.policies = Some(rentals::Policies::random(rng, listing.price_cents));
            }
            listing
        })
        .collect();
    let orders = (0..orders)
        .map(|n| {
            let lines = rng.gen_range(1..=3);
            let mut chosen: Vec<usize> = Vec::new();
            while chosen.len() < lines {
                let l = rng.gen_range(0..listings.len());
                if !chosen.contains(&l) {
                    chosen.push(l);
                }
            }
            let items = chosen
                .iter()
                .map(|&l| {
                    let listing = &listings[l];
                    let quantity = rng.gen_range(1..=2);
                    match listing.kind {
                        Kind::Rental { hourly: false, .. } => {
                            let start = rng.gen_range(0..340);
                            let days = rng.gen_range(1..=5);
                            json!({"listing": l, "quantity": quantity,
                                   "start": at(start, 0), "end": at(start + days, 0)})
                        }
                        Kind::Rental { hourly: true, .. } => {
                            let day = rng.gen_range(0..340);
                            let hour = rng.gen_range(0..14);
                            let hours = rng.gen_range(1..=9);
                            json!({"listing": l, "quantity": quantity,
                                   "start": at(day, hour), "end": at(day, hour + hours)})
                        }
                        Kind::Sale => json!({"listing": l, "quantity": quantity}),
                    }
                })
                .collect();
            let payment = match rng.gen_range(0..100) {
                0..=64 => Payment::Paid,
                65..=69 => Payment::FailedThenPaid,
                70..=74 => Payment::Failed,
                75..=84 => Payment::CancelledUnpaid,
                85..=89 => Payment::CancelledPaid,
                90..=91 => Payment::PaidTwice,
                92..=93 => Payment::MismatchThenPaid,
                94..=95 => Payment::PaidInTwoParts,
                _ => Payment::Unpaid,
            };
            OrderPlan {
                customer: format!("customer-{}", n % 97),
                items,
                payment,
                failure: FAILURES[rng.gen_range(0..FAILURES.len())],
                fulfil: rng.gen_bool(0.35),
                damage_percent: (0..lines)
                    .map(|_| {
                        if rng.gen_bool(0.5) {
                            0
                        } else {
                            rng.gen_range(1..=100)
                        }
                    })
                    .collect(),
                change: match rng.gen_range(0..100) {
                    0..=19 => rentals::Change::Extend,
                    20..=34 => rentals::Change::Reschedule,
                    _ => rentals::Change::Nothing,
                },
                change_unit: match listings[chosen[0]].kind {
                    Kind::Rental { hourly: true, .. } => chrono::Duration::hours(1),
                    _ => chrono::Duration::days(1),
                },
                returns: (0..lines).map(|_| rentals::Return::random(rng)).collect(),
                after: match rng.gen_range(0..100) {
                    0..=14 => After::Refund {
                        percent: rng.gen_range(1..=60),
                        by_lines: rng.gen_bool(0.5),
                    },
                    15..=22 => After::Dispute {
                        percent: rng.gen_range(1..=50),
                        won: rng.gen_bool(0.5),
                    },
                    _ => After::Nothing,
                },
            }
        })
        .collect();
    Plan {
        vendors,
        listings,
        orders,
    }
}

// ---------------------------------------------------------------------------
// Driving the plan over HTTP
// ---------------------------------------------------------------------------

/// What happened, for the test's own report.
#[derive(Default)]
pub(super) struct Tally {
    placed: AtomicUsize,
    unavailable: AtomicUsize,
    paid: AtomicUsize,
    failed: AtomicUsize,
    cancelled_unpaid: AtomicUsize,
    cancelled_paid: AtomicUsize,
    fulfilled: AtomicUsize,
    returns: AtomicUsize,
    payouts: AtomicUsize,
    refunds: AtomicUsize,
    disputes: AtomicUsize,
    failed_payouts: AtomicUsize,
    extensions: AtomicUsize,
    reschedules: AtomicUsize,
    late_fees: AtomicUsize,
    late_fees_paid: AtomicUsize,
    late_fees_applied: AtomicUsize,
    early_refunds: AtomicUsize,
}

impl Tally {
    pub(super) fn bump(counter: &AtomicUsize) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// POSTs, retrying what a concurrent writer can cause (a conflict that is
/// not a business refusal, or a dependency briefly down).
pub(super) async fn post(app: &TestApp, path: &str, token: &str, body: Value) -> Answer {
    let mut attempt = 0;
    loop {
        let answer = app.post(path, token, body.clone()).await;
        let retry = answer.status == StatusCode::SERVICE_UNAVAILABLE
            || (answer.status == StatusCode::CONFLICT && answer.problem_type() == "concurrency");
        attempt += 1;
        if !retry || attempt >= 5 {
            return answer;
        }
        tokio::time::sleep(Duration::from_millis(20 * attempt)).await;
    }
}

#[track_caller]
pub(super) fn expect(answer: &Answer, status: StatusCode, what: &str) {
    assert_eq!(answer.status, status, "{what}: {:?}", answer.body);
}

async fn webhook(app: &TestApp, kind: &str, order: &Answer, minor: i64, failure: Option<&str>) {
    let event = format!("evt_{}", Uuid::new_v4().simple());
    let answer = app
        .payment_webhook(&event, kind, order.uuid("order_id"), minor, failure)
        .await;
    expect(&answer, StatusCode::OK, kind);
}

async fn create_listings(app: &TestApp, plan: &Plan) -> (Vec<Uuid>, Vec<Uuid>) {
    let vendors: Vec<Uuid> = stream::iter(0..plan.vendors)
        .map(|v| async move {
            let vendor_id = app.register_vendor(&format!("Vendor {v}")).await;
            // Two vendors in three pay their own platform fee rate (set
            // before any order, so every order of theirs is priced with it).
            if let Some(rate) = FEE_RATES.get(v % 3) {
                let set = post(
                    app,
                    &format!("/v1/vendors/{vendor_id}/fee-rate"),
                    &app.admin(),
                    json!({"rate": rate}),
                )
                .await;
                expect(&set, StatusCode::OK, "set a vendor's fee rate");
            }
            vendor_id
        })
        .buffered(CLIENTS)
        .collect()
        .await;
    let listings: Vec<Uuid> = stream::iter(plan.listings.iter().enumerate())
        .map(|(i, l)| {
            let vendor_id = vendors[l.vendor];
            async move {
                let body = match l.kind {
                    Kind::Rental { hourly, units } => json!({
                        "title": format!("Rental {i}"), "description": "For hire",
                        "category": l.category, "kind": "rental",
                        "pricing_unit": if hourly { "hour" } else { "day" },
                        "price_per_unit": cents(l.price_cents),
                        "deposit": cents(l.deposit_cents), "units": units}),
                    Kind::Sale => json!({
                        "title": format!("Item {i}"), "description": "For sale",
                        "category": l.category, "kind": "sale",
                        "unit_price": cents(l.price_cents), "stock": 100_000}),
                };
                let token = app.vendor(vendor_id);
                let created = post(app, "/v1/listings", &token, body).await;
                expect(&created, StatusCode::CREATED, "create a listing");
                let listing_id = created.uuid("listing_id");
                let published = post(
                    app,
                    &format!("/v1/listings/{listing_id}/publish"),
                    &token,
                    json!({}),
                )
                .await;
                expect(&published, StatusCode::OK, "publish a listing");
                if let Some(policies) = l.policies {
                    rentals::set_policies(app, vendor_id, listing_id, policies).await;
                }
                listing_id
            }
        })
        .buffered(CLIENTS)
        .collect()
        .await;
    (vendors, listings)
}

pub(super) fn uuid_of(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("not a uuid: {value}"))
}

/// Places and pays (or not) one order, changes its booking, refunds or
/// disputes it; what is to be fulfilled goes to `fulfilment`, for later.
async fn run_order(
    app: &TestApp,
    listings: &[Uuid],
    plan: &OrderPlan,
    tally: &Tally,
    fulfilment: &Mutex<Vec<rentals::Work>>,
) {
    let customer = app.customer(&plan.customer);
    let items: Vec<Value> = plan
        .items
        .iter()
        .map(|item| {
            let mut item = item.clone();
            let listing = item["listing"].as_u64().expect("a listing index") as usize;
            let map = item.as_object_mut().expect("an item");
            map.remove("listing");
            map.insert("listing_id".to_owned(), json!(listings[listing]));
            item
        })
        .collect();
    let order = post(app, "/v1/orders", &customer, json!({ "items": items })).await;
    if order.status == StatusCode::CONFLICT && order.problem_type() == "unavailable" {
        Tally::bump(&tally.unavailable);
        return;
    }
    expect(&order, StatusCode::CREATED, "place an order");
    Tally::bump(&tally.placed);
    let minor = total_minor(&order);
    let order_id = order.uuid("order_id");
    let (ok, failed) = ("payment_intent.succeeded", "payment_intent.payment_failed");
    match plan.payment {
        Payment::FailedThenPaid | Payment::Failed => {
            webhook(app, failed, &order, minor, Some(plan.failure)).await;
            Tally::bump(&tally.failed);
        }
        Payment::MismatchThenPaid => webhook(app, ok, &order, minor + 1, None).await,
        Payment::PaidInTwoParts => webhook(app, ok, &order, minor / 2, None).await,
        _ => {}
    }
    if plan.payment == Payment::PaidInTwoParts {
        webhook(app, ok, &order, minor - minor / 2, None).await;
        Tally::bump(&tally.paid);
    } else if plan.payment.is_paid() || plan.payment == Payment::CancelledPaid {
        webhook(app, ok, &order, minor, None).await;
        Tally::bump(&tally.paid);
    }
    if plan.payment == Payment::PaidTwice {
        webhook(app, ok, &order, minor, None).await;
    }
    match plan.payment {
        Payment::CancelledUnpaid | Payment::CancelledPaid => {
            if let (Payment::CancelledPaid, After::Refund { percent, .. }) =
                (plan.payment, plan.after)
            {
                // Refunded in part first: the cancellation refunds the rest.
                let goods =
                    minor_units(decimal(&order.body["subtotal"]) + decimal(&order.body["tax"]));
                let amount = (goods * percent / 100).max(1);
                let path = format!("/v1/orders/{order_id}/refunds");
                let body = json!({"amount": cents(amount), "reason": "goodwill"});
                let refunded = post(app, &path, &app.admin(), body).await;
                expect(
                    &refunded,
                    StatusCode::CREATED,
                    "refund before a cancellation",
                );
                Tally::bump(&tally.refunds);
            }
            let path = format!("/v1/orders/{order_id}/cancel");
            let cancelled = post(app, &path, &customer, json!({"reason": "changed my mind"})).await;
            expect(&cancelled, StatusCode::OK, "cancel");
            let (statuses, counter): (&[&str], _) = if plan.payment == Payment::CancelledPaid {
                // `cancelled` when refunds before it and the policy's tier
                // left nothing to give back (the checker sees the money).
                (&["refunded", "cancelled"], &tally.cancelled_paid)
            } else {
                (&["cancelled"], &tally.cancelled_unpaid)
            };
            let status = cancelled.body["status"].as_str().unwrap_or_default();
            assert!(statuses.contains(&status), "{:?}", cancelled.body);
            Tally::bump(counter);
        }
        p if p.is_paid() && plan.fulfil => {
            let work = rentals::Work {
                order: order.clone(),
                damage_percent: plan.damage_percent.clone(),
                returns: plan.returns.clone(),
            };
            fulfilment.lock().expect("the fulfilment list").push(work);
        }
        p if p.is_paid() && plan.after == After::Nothing => {
            rentals::change_booking(app, &order, plan.change, plan.change_unit, tally).await
        }
        _ => {}
    }
    if plan.payment.is_paid() {
        // Refunds and disputes take goods and tax, not deposits.
        let goods = minor_units(decimal(&order.body["subtotal"]) + decimal(&order.body["tax"]));
        money_after(app, &order, goods, plan.after, tally).await;
    }
}

/// Refunds (by amount, then by lines) and disputes (won or lost) of a paid
/// order. A refund may find nothing left (409), never a server error.
async fn money_after(app: &TestApp, order: &Answer, goods: i64, after: After, tally: &Tally) {
    let order_id = order.uuid("order_id");
    let path = format!("/v1/orders/{order_id}/refunds");
    match after {
        After::Nothing => {}
        After::Refund { percent, by_lines } => {
            let amount = (goods * percent / 100).max(1);
            let refunded = post(
                app,
                &path,
                &app.admin(),
                json!({"amount": cents(amount), "reason": "goodwill"}),
            )
            .await;
            expect(&refunded, StatusCode::CREATED, "refund by amount");
            Tally::bump(&tally.refunds);
            if by_lines {
                let line = order.line_id(0);
                let rest = post(
                    app,
                    &path,
                    &app.admin(),
                    json!({"lines": [line], "reason": "returned"}),
                )
                .await;
                assert!(
                    rest.status == StatusCode::CREATED || rest.status == StatusCode::CONFLICT,
                    "refund by lines: {:?}",
                    rest.body
                );
            }
        }
        After::Dispute { percent, won } => {
            let amount = (goods * percent / 100).max(1);
            let dispute_id = format!("dp_{}", Uuid::new_v4().simple());
            for (kind, status) in [
                ("charge.dispute.created", "needs_response"),
                ("charge.dispute.closed", if won { "won" } else { "lost" }),
            ] {
                let event = json!({"id": format!("evt_{}", Uuid::new_v4().simple()),
                    "type": kind, "data": {"object": {"id": dispute_id, "amount": amount,
                    "status": status, "metadata": {"order_id": order_id}}}});
                let (raw, signature) = ledger_tests::webhooks::signed(
                    &event,
                    ledger_tests::WEBHOOK_SECRET,
                    app.now().timestamp(),
                );
                let answer = app.send_raw_webhook(raw, &signature).await;
                expect(&answer, StatusCode::OK, kind);
            }
            Tally::bump(&tally.disputes);
        }
    }
}

/// Pays every vendor out once or twice, random amounts within what is
/// available; the provider then reports each paid, failed (its amount is
/// available again) or nothing yet; a cent more than what is left is
/// refused.
async fn payouts(app: &TestApp, vendors: &[Uuid], rng: &mut StdRng, tally: &Tally) {
    let head = ledger_tests::pipeline::settle(app, Duration::from_secs(120))
        .await
        .expect("settle before payouts");
    let plans: Vec<(Uuid, u64)> = vendors.iter().map(|v| (*v, rng.gen())).collect();
    stream::iter(plans)
        .for_each_concurrent(CLIENTS, |(vendor_id, seed)| async move {
            let mut rng = StdRng::seed_from_u64(seed);
            let earnings = app
                .send(
                    reqwest::Method::GET,
                    &format!("/v1/vendors/{vendor_id}/earnings"),
                    Some(&app.admin()),
                    None,
                    &[("Ledger-Min-Position", &head.to_string())],
                )
                .await;
            expect(&earnings, StatusCode::OK, "earnings");
            let available = decimal(&earnings.body["available"]);
            let mut left = (available * Decimal::from(100))
                .trunc()
                .to_string()
                .parse::<i64>()
                .expect("cents");
            let path = format!("/v1/vendors/{vendor_id}/payouts");
            for _ in 0..rng.gen_range(1..=2) {
                if left == 0 {
                    break;
                }
                let amount = rng.gen_range(1..=left);
                let paid = post(app, &path, &app.admin(), json!({"amount": cents(amount)})).await;
                expect(&paid, StatusCode::CREATED, "payout");
                left -= amount;
                Tally::bump(&tally.payouts);
                let payout_id = paid.uuid("payout_id");
                let event_id = format!("evt_{}", Uuid::new_v4().simple());
                match rng.gen_range(0..3) {
                    0 => {
                        let outcome = app
                            .payout_webhook(&event_id, webhooks::PAYOUT_PAID, payout_id)
                            .await;
                        expect(&outcome, StatusCode::OK, "payout paid");
                    }
                    1 => {
                        let outcome = app
                            .payout_webhook(&event_id, webhooks::PAYOUT_FAILED, payout_id)
                            .await;
                        expect(&outcome, StatusCode::OK, "payout failed");
                        left += amount;
                        Tally::bump(&tally.failed_payouts);
                    }
                    _ => {}
                }
            }
            let too_much = post(app, &path, &app.admin(), json!({"amount": cents(left + 1)})).await;
            expect(&too_much, StatusCode::CONFLICT, "payout above the balance");
        })
        .await;
}

struct Market {
    app: TestApp,
    tally: Tally,
}

/// Builds and runs a marketplace from `seed`; returns once it has settled.
/// Without `snapshots`, aggregates are never snapshotted (see
/// `a_random_marketplace_with_snapshots_reconciles_to_the_cent`).
async fn marketplace(
    seed: u64,
    vendors: usize,
    listings: usize,
    orders: usize,
    snapshots: bool,
) -> Market {
    let mut rng = StdRng::seed_from_u64(seed);
    let plan = plan(&mut rng, vendors, listings, orders);
    let clock = Arc::new(ledger_clock::ManualClock::new(chrono::Utc::now()));
    let app = TestApp::spawn_server(|s| {
        s.clock = clock.clone();
        s.command_api.sweep_interval = Duration::from_millis(200);
        let c = &mut s.command_api;
        c.tax_rate = Decimal::new(825, 4);
        c.platform_fee_rate = Decimal::new(125, 3);
        if !snapshots {
            c.snapshot_every = usize::MAX / 2;
        }
    })
    .await;
    let tally = Tally::default();
    let started = Instant::now();
    let (vendor_ids, listing_ids) = create_listings(&app, &plan).await;
    println!(
        "{} vendors, {} listings in {:.1?}",
        vendor_ids.len(),
        listing_ids.len(),
        started.elapsed()
    );
    let started = Instant::now();
    let done = Arc::new(AtomicUsize::new(0));
    let fulfilment = Mutex::new(Vec::new());
    stream::iter(plan.orders.iter())
        .for_each_concurrent(CLIENTS, |order| {
            let (app, listing_ids, tally, done) = (&app, &listing_ids, &tally, done.clone());
            let fulfilment = &fulfilment;
            async move {
                run_order(app, listing_ids, order, tally, fulfilment).await;
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n % 500 == 0 {
                    println!("  {n} orders driven ({:.1?})", started.elapsed());
                }
            }
        })
        .await;
    println!("{} orders driven in {:.1?}", orders, started.elapsed());
    // Passes, while the clock still stands at the start: the rentals'
    // fulfilment then moves it, and the billing scheduler renews and duns
    // what falls due on the way.
    let started = Instant::now();
    let passes = subscriptions::PassTally::default();
    subscriptions::drive(&app, &mut rng, 4, 60, &passes).await;
    let day_rentals: Vec<Uuid> = plan
        .listings
        .iter()
        .zip(&listing_ids)
        .filter(|(l, _)| matches!(l.kind, Kind::Rental { hourly: false, .. }))
        .map(|(_, id)| *id)
        .collect();
    let leased = leases::LeaseTally::default();
    leases::drive(&app, &mut rng, &day_rentals, 24, &leased).await;
    println!(
        "leases: {} placed ({} first instalment paid), {} unavailable",
        n_of(&leased.placed),
        n_of(&leased.first_paid),
        n_of(&leased.unavailable)
    );
    println!(
        "passes: {} subscribed ({} paid, {} another amount, {} declined, {} changed plan, {} cancelled unpaid) in {:.1?}",
        n_of(&passes.subscribed),
        n_of(&passes.paid),
        n_of(&passes.unapplied),
        n_of(&passes.declined),
        n_of(&passes.changed),
        n_of(&passes.cancelled),
        started.elapsed()
    );
    let started = Instant::now();
    let work = fulfilment.into_inner().expect("the fulfilment list");
    rentals::fulfil_in_time(&app, &clock, &work, &tally).await;
    rentals::wait_for_the_sweeper(&app).await;
    println!(
        "{} orders fulfilled in time in {:.1?}",
        work.len(),
        started.elapsed()
    );
    let started = Instant::now();
    payouts(&app, &vendor_ids, &mut rng, &tally).await;
    ledger_tests::pipeline::settle(&app, Duration::from_secs(120))
        .await
        .expect("the read models settle");
    println!("payouts and settling in {:.1?}", started.elapsed());
    let t = &tally;
    let n = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    println!(
        "placed {}, unavailable {}, paid {}, failed payments {}, cancelled unpaid {}, \
         cancelled paid {}, fulfilled {}, rental returns {} (late fees {}, paid {}, applied {}; early refunds {}), \
         payouts {} (failed {}), refunds {}, disputes {}, extensions {}, reschedules {}",
        n(&t.placed),
        n(&t.unavailable),
        n(&t.paid),
        n(&t.failed),
        n(&t.cancelled_unpaid),
        n(&t.cancelled_paid),
        n(&t.fulfilled),
        n(&t.returns),
        n(&t.late_fees),
        n(&t.late_fees_paid),
        n(&t.late_fees_applied),
        n(&t.early_refunds),
        n(&t.payouts),
        n(&t.failed_payouts),
        n(&t.refunds),
        n(&t.disputes),
        n(&t.extensions),
        n(&t.reschedules)
    );
    Market { app, tally }
}

fn n_of(counter: &AtomicUsize) -> usize {
    counter.load(Ordering::Relaxed)
}

fn report(found: &[Discrepancy]) -> String {
    let mut lines: Vec<String> = found.iter().take(40).map(ToString::to_string).collect();
    if found.len() > 40 {
        lines.push(format!("… and {} more", found.len() - 40));
    }
    lines.join("\n")
}

async fn reconcile_now(app: &TestApp) -> (Observed, Vec<Discrepancy>) {
    let observed = reconcile::observe(app).await.expect("observe the ledger");
    let found = reconcile::check(&app.pool, &observed)
        .await
        .expect("read the log");
    (observed, found)
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// ≥ 20 vendors, ≥ 200 listings, ≥ 2,000 orders, then the checker: not a
/// cent astray. Vendors and inventories are snapshotted as in production
/// (this run once caught snapshots counting a command's events twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_random_marketplace_reconciles_to_the_cent() {
    reconciled_marketplace(true).await;
}

async fn reconciled_marketplace(snapshots: bool) {
    let seed = seed("RECONCILE_SEED");
    println!("RECONCILE_SEED={seed}");
    let started = Instant::now();
    let market = marketplace(seed, 20, 200, 2_050, snapshots).await;
    let placed = market.tally.placed.load(Ordering::Relaxed);
    assert!(placed >= 2_000, "only {placed} orders placed (seed {seed})");

    let checking = Instant::now();
    let (observed, found) = reconcile_now(&market.app).await;
    println!(
        "checked {} postings, {} vendors in {:.1?}; total {:.1?}",
        observed.postings.len(),
        observed.earnings.len(),
        checking.elapsed(),
        started.elapsed()
    );
    assert!(
        found.is_empty(),
        "seed {seed}: {} discrepancies:\n{}",
        found.len(),
        report(&found)
    );
    // The marketplace exercised what it had to.
    let s = &observed.summary;
    assert!(s.orders >= 2_000 && s.paid_orders > 1_000, "{s:?}");
    assert!(
        !s.payment_failures.is_empty() && s.refunds > Decimal::ZERO,
        "{s:?}"
    );
    let (mut damage, mut paid_out) = (Decimal::ZERO, Decimal::ZERO);
    for e in observed.earnings.values() {
        damage += e.damage_credits;
        paid_out += e.paid_out;
    }
    assert!(damage > Decimal::ZERO && paid_out > Decimal::ZERO);
    // API.md "Money": refunds, disputes won and lost, and unapplied cash.
    for kind in [
        "refund_recorded",
        "dispute_opened",
        "dispute_won",
        "dispute_lost",
        "payment_unapplied",
        "unapplied_applied",
        // API.md "Rentals": booking changes, late fees, policy tiers.
        "booking_change",
        "late_fee_credit",
        "cancellation_kept",
        // API.md "Subscriptions": invoices, payments, unapplied cash,
        // write-offs of voided invoices.
        "subscription_invoice",
        "subscription_payment",
        "subscription_unapplied",
        "subscription_write_off",
        // Leases: instalments owed, paid.
        "instalment_paid",
    ] {
        assert!(
            observed.postings.iter().any(|p| p.kind == kind),
            "no {kind} posting (seed {seed})"
        );
    }
    market.app.stop().await;
}

/// Asserts `found` holds a discrepancy of a check whose name contains `check`.
#[track_caller]
fn caught(found: &[Discrepancy], check: &str, what: &str) {
    assert!(
        found.iter().any(|d| d.check.contains(check)),
        "{what}: no `{check}` discrepancy among:\n{}",
        report(found)
    );
}

/// Runs `sql` on the read models, checks what the checker says, undoes it.
async fn planted(app: &TestApp, sql: &str, undo: &str) -> Vec<Discrepancy> {
    sqlx::query(sql)
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let (_, found) = reconcile_now(app).await;
    sqlx::query(undo)
        .execute(&app.pool)
        .await
        .unwrap_or_else(|e| panic!("{undo}: {e}"));
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_one_cent_error_in_a_posting_is_caught_by_the_checker() {
    let seed = seed("RECONCILE_SEED");
    println!("RECONCILE_SEED={seed}");
    let market = marketplace(seed, 4, 16, 80, false).await;
    let app = &market.app;
    let (observed, found) = reconcile_now(app).await;
    assert!(found.is_empty(), "seed {seed}: {}", report(&found));
    let cent = Decimal::new(1, 2);

    // Fed to the checker: one posting's debit a cent too high.
    let mut wrong = observed.clone();
    let captured = wrong
        .postings
        .iter_mut()
        .find(|p| p.kind == "payment_captured" && p.account == reconcile::CASH)
        .expect("a captured payment");
    captured.debit += cent;
    let found = reconcile::check(&app.pool, &wrong).await.expect("check");
    caught(&found, "entry balanced", "a posting a cent too high");
    caught(&found, "Σ debit = Σ credit", "a posting a cent too high");
    caught(
        &found,
        "as the event calls for",
        "a posting a cent too high",
    );

    // Fed to the checker: a balanced entry that moves a cent from the
    // platform's fees to a vendor. Debits still equal credits.
    let mut wrong = observed.clone();
    let fee = wrong
        .postings
        .iter()
        .find(|p| p.account == reconcile::PLATFORM_FEES && !p.credit.is_zero())
        .cloned()
        .expect("a fee posting");
    let vendor_id = fee.vendor_id.expect("a fee names its vendor");
    for (account, debit, credit) in [
        (reconcile::PLATFORM_FEES.to_owned(), cent, Decimal::ZERO),
        (reconcile::vendor_pending(vendor_id), Decimal::ZERO, cent),
    ] {
        wrong.postings.push(reconcile::Posting {
            posting_id: i64::MAX,
            account,
            debit,
            credit,
            ..fee.clone()
        });
    }
    let found = reconcile::check(&app.pool, &wrong).await.expect("check");
    assert!(
        !found.iter().any(|d| d.check.contains("balanced")),
        "{}",
        report(&found)
    );
    caught(
        &found,
        "as the event calls for",
        "a cent moved within an entry",
    );

    // Planted in the tables the API answers from.
    let posting: i64 = sqlx::query_scalar(
        "SELECT min(posting_id) FROM ledger_postings WHERE account LIKE 'vendor_pending:%'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("a pending posting");
    let found = planted(
        app,
        &format!("UPDATE ledger_postings SET credit = credit + 0.01 WHERE posting_id = {posting}"),
        &format!("UPDATE ledger_postings SET credit = credit - 0.01 WHERE posting_id = {posting}"),
    )
    .await;
    caught(&found, "entry balanced", "a journal line altered");
    caught(&found, "Σ journal lines", "a journal line altered");

    let found = planted(
        app,
        "INSERT INTO ledger_postings (position, account, kind, debit, credit, recorded_at)
         SELECT position, 'cash', kind, 0.01, 0, recorded_at FROM ledger_postings
          ORDER BY posting_id LIMIT 1",
        "DELETE FROM ledger_postings WHERE posting_id = (SELECT max(posting_id) FROM ledger_postings)",
    )
    .await;
    caught(&found, "entry balanced", "an extra journal line");

    let found = planted(
        app,
        "UPDATE ledger_accounts SET credit = credit + 0.01 WHERE account = 'platform_fees'",
        "UPDATE ledger_accounts SET credit = credit - 0.01 WHERE account = 'platform_fees'",
    )
    .await;
    caught(
        &found,
        "trial balance: total debit = total credit",
        "an account total",
    );
    caught(&found, "Σ movements of the log", "an account total");

    let vendor = vendor_id;
    for column in [
        "gross",
        "platform_fees",
        "pending",
        "available",
        "paid_out",
        "damage_credits",
    ] {
        let found = planted(
            app,
            &format!(
                "UPDATE ledger_vendor_earnings SET {column} = {column} + 0.01 WHERE vendor_id = '{vendor}'"
            ),
            &format!(
                "UPDATE ledger_vendor_earnings SET {column} = {column} - 0.01 WHERE vendor_id = '{vendor}'"
            ),
        )
        .await;
        caught(&found, &format!("earnings.{column}"), column);
    }

    let paid_order: Uuid = sqlx::query_scalar(
        "SELECT order_id FROM an_orders WHERE paid AND NOT cancelled ORDER BY order_id LIMIT 1",
    )
    .fetch_one(&app.pool)
    .await
    .expect("a paid order");
    let found = planted(
        app,
        &format!("UPDATE an_orders SET subtotal = subtotal + 0.01 WHERE order_id = '{paid_order}'"),
        &format!("UPDATE an_orders SET subtotal = subtotal - 0.01 WHERE order_id = '{paid_order}'"),
    )
    .await;
    caught(
        &found,
        "summary.gmv",
        "an order's subtotal in the analytics",
    );
    // A line of the best-selling listing, so that the top ten show it too.
    let top = observed.summary.top_listings[0].0;
    let line = format!(
        "(SELECT min(l.line_id::text)::uuid FROM an_order_lines l JOIN an_orders o USING (order_id)
           WHERE o.paid AND NOT o.cancelled AND l.listing_id = '{top}')"
    );
    let found = planted(
        app,
        &format!("UPDATE an_order_lines SET subtotal = subtotal + 0.01 WHERE line_id = {line}"),
        &format!("UPDATE an_order_lines SET subtotal = subtotal - 0.01 WHERE line_id = {line}"),
    )
    .await;
    caught(
        &found,
        "revenue by day",
        "a line's subtotal in the analytics",
    );
    caught(
        &found,
        "summary.top_listings",
        "a line's subtotal in the analytics",
    );

    // Everything undone, the checker is satisfied again.
    let (_, found) = reconcile_now(app).await;
    assert!(found.is_empty(), "{}", report(&found));
    market.app.stop().await;
}
