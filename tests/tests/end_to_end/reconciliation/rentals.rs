//! The rental side of the random marketplace (issue 13 item 8): listings
//! with late fees and cancellation-policy tiers, paid bookings extended or
//! rescheduled, and every rental line picked up at its start and returned
//! on time, early (refunded by the policy) or late, on the ledger's
//! `ManualClock`; late fees the deposits did not cover are paid by a
//! webhook, or short and the unapplied cash applied, or left owed.
//!
//! The orders are driven concurrently with the clock standing still; the
//! fulfilment comes after, one step at a time in the order of its instants
//! (pickups at the booked starts, returns at their times), the clock set to
//! each, so that every pickup is on time and late returns post late fees.

use chrono::{DateTime, Duration, Utc};
use ledger_clock::ManualClock;
use rand::rngs::StdRng;
use rand::Rng;
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

use ledger_tests::answer::decimal;
use ledger_tests::webhooks::{minor_units, SUCCEEDED};
use ledger_tests::{Answer, TestApp};

use super::{cents, expect, post, uuid_of, Tally};

/// A listing's late fee and cancellation policy.
#[derive(Clone, Copy, Debug)]
pub(super) struct Policies {
    pub late_fee_cents: i64,
    /// The refund of a cancellation with less than 3,000 days' notice
    /// (every booking of the plan: it is in 2030); `None`: the default
    /// full refund.
    pub refund_percent: Option<u8>,
}

impl Policies {
    pub(super) fn random(rng: &mut StdRng, price_cents: i64) -> Policies {
        Policies {
            late_fee_cents: if rng.gen_bool(0.75) {
                rng.gen_range(1..=price_cents.max(2))
            } else {
                0
            },
            refund_percent: rng.gen_bool(0.5).then(|| rng.gen_range(0..=90)),
        }
    }

    fn body(&self) -> Value {
        let mut body = json!({"late_fee_per_unit": cents(self.late_fee_cents)});
        // With an hour's notice, half of that: what an early return of an
        // hourly booking gets back for its unused hours past the next one.
        if let Some(percent) = self.refund_percent {
            body["cancellation_policy"] = json!([
                {"notice": "P3000D", "refund_percent": 100},
                {"notice": "P1D", "refund_percent": percent},
                {"notice": "PT1H", "refund_percent": percent / 2},
            ]);
        }
        body
    }
}

/// `PUT /v1/listings/{id}/policies` as the vendor.
pub(super) async fn set_policies(app: &TestApp, vendor: Uuid, listing: Uuid, policies: Policies) {
    let set = app
        .send(
            Method::PUT,
            &format!("/v1/listings/{listing}/policies"),
            Some(&app.vendor(vendor)),
            Some(&policies.body()),
            &[],
        )
        .await;
    expect(&set, StatusCode::OK, "set a listing's policies");
}

/// What happens to a paid booking before it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Change {
    Nothing,
    /// One pricing unit longer, paid through the webhook.
    Extend,
    /// One pricing unit later and, when longer than one unit, one shorter:
    /// refunded by the listing's policy.
    Reschedule,
}

/// When a rental line comes back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum Return {
    OnTime,
    /// Half-way through its period.
    Early,
    /// This many minutes after its end.
    Late(i64),
}

impl Return {
    pub(super) fn random(rng: &mut StdRng) -> Return {
        match rng.gen_range(0..100) {
            0..=59 => Return::OnTime,
            60..=74 => Return::Early,
            _ => Return::Late(rng.gen_range(1..=60 * 40)),
        }
    }
}

fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not a time: {value}"))
}

fn text(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Extends or reschedules the order's first line (a rental) by one unit of
/// `unit`; an extension is paid at once. Taken units (409) are no error.
pub(super) async fn change_booking(
    app: &TestApp,
    order: &Answer,
    change: Change,
    unit: Duration,
    tally: &Tally,
) {
    let line = &order.body["lines"][0];
    if change == Change::Nothing || line["kind"] != "rental" {
        return;
    }
    let (start, end) = (instant(&line["start"]), instant(&line["end"]));
    let order_id = order.uuid("order_id");
    let line_id = line["line_id"].as_str().expect("a line id");
    let admin = app.admin();
    let (path, body) = match change {
        Change::Extend => ("extend", json!({"end": text(end + unit)})),
        _ => {
            let shorter = if end - start > unit { end } else { end + unit };
            (
                "reschedule",
                json!({"start": text(start + unit), "end": text(shorter)}),
            )
        }
    };
    let path = format!("/v1/orders/{order_id}/lines/{line_id}/{path}");
    let changed = post(app, &path, &admin, body).await;
    if changed.status == StatusCode::CONFLICT && changed.problem_type() == "unavailable" {
        return;
    }
    expect(&changed, StatusCode::CREATED, "change a booking");
    let due = decimal(&changed.body["amount_due"]);
    if due > Decimal::ZERO {
        app.pay_adjustment(changed.uuid("adjustment_id"), minor_units(due))
            .await;
    }
    Tally::bump(match change {
        Change::Extend => &tally.extensions,
        _ => &tally.reschedules,
    });
}

/// One step of the fulfilment, at its instant.
#[derive(Clone, Debug)]
struct Step {
    at: DateTime<Utc>,
    /// 0 ship and deliver, 1 pickup, 2 return: in this order at one instant.
    rank: u8,
    path: String,
    token: String,
    body: Value,
    late: bool,
    order_id: Uuid,
}

/// An order to fulfil: its answer, the damage withheld per line (percent
/// of the deposit) and when each line comes back.
pub(super) struct Work {
    pub order: Answer,
    pub damage_percent: Vec<i64>,
    pub returns: Vec<Return>,
}

fn steps(app: &TestApp, now: DateTime<Utc>, work: &Work) -> Vec<Step> {
    let order_id = work.order.uuid("order_id");
    let lines = work.order.body["lines"].as_array().expect("lines").clone();
    let mut steps = Vec::new();
    let mut sale_vendors: Vec<String> = lines
        .iter()
        .filter(|l| l["kind"] == "sale")
        .map(|l| l["vendor_id"].as_str().expect("vendor").to_owned())
        .collect();
    sale_vendors.sort();
    sale_vendors.dedup();
    for vendor in sale_vendors {
        let token = app.vendor(Uuid::parse_str(&vendor).expect("a uuid"));
        for step in ["ship", "deliver"] {
            steps.push(Step {
                at: now,
                rank: 0,
                path: format!("/v1/orders/{order_id}/vendors/{vendor}/{step}"),
                token: token.clone(),
                body: json!({}),
                late: false,
                order_id,
            });
        }
    }
    for (i, line) in lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l["kind"] == "rental")
    {
        let line_id = line["line_id"].as_str().expect("line id");
        let (start, end) = (instant(&line["start"]), instant(&line["end"]));
        let vendor = app.vendor(uuid_of(&line["vendor_id"]));
        steps.push(Step {
            at: start,
            rank: 1,
            path: format!("/v1/orders/{order_id}/lines/{line_id}/pickup"),
            token: app.admin(),
            body: json!({}),
            late: false,
            order_id,
        });
        let back = work.returns[i];
        let at = match back {
            Return::OnTime => end,
            Return::Early => start + (end - start) / 2,
            Return::Late(minutes) => end + Duration::minutes(minutes),
        };
        let deposit = decimal(&line["deposit"]);
        let damage = (deposit * Decimal::from(work.damage_percent[i]) / Decimal::from(100))
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::ToZero);
        // A late fee comes out of the deposit first: no damage then.
        let late = matches!(back, Return::Late(_));
        let body = if late || (damage.is_zero() && i % 2 == 0) {
            json!({})
        } else {
            json!({"damage_withheld": damage.to_string()})
        };
        steps.push(Step {
            at,
            rank: 2,
            path: format!("/v1/orders/{order_id}/lines/{line_id}/return"),
            token: vendor,
            body,
            late,
            order_id,
        });
    }
    steps
}

/// A late fee the deposit did not cover: every second one is paid by a
/// webhook of exactly what the order owes; every fourth paid short (a cent
/// less, unapplied cash) and the payment applied to it; the rest stays owed.
async fn collect_late_fee(app: &TestApp, order_id: Uuid, owed: Decimal, tally: &Tally) {
    let n = tally
        .late_fees_paid
        .load(std::sync::atomic::Ordering::Relaxed)
        + tally
            .late_fees_applied
            .load(std::sync::atomic::Ordering::Relaxed)
        + tally.returns.load(std::sync::atomic::Ordering::Relaxed);
    let owed_minor = minor_units(owed);
    match n % 4 {
        0 | 1 => {
            app.pay_order(order_id, owed_minor).await;
            Tally::bump(&tally.late_fees_paid);
        }
        2 if owed_minor > 1 => {
            let event = format!("evt_{}", Uuid::new_v4().simple());
            let paid = app
                .payment_webhook(&event, SUCCEEDED, order_id, owed_minor - 1, None)
                .await;
            expect(&paid, StatusCode::OK, "pay a late fee short");
            let applied = post(
                app,
                &format!("/v1/payments/{event}/apply"),
                &app.admin(),
                json!({}),
            )
            .await;
            // A short payment that happens to be the order's total is a
            // duplicate payment (refunded), not unapplied cash.
            if applied.status != StatusCode::NOT_FOUND {
                expect(&applied, StatusCode::OK, "apply a payment to a late fee");
                Tally::bump(&tally.late_fees_applied);
            }
        }
        _ => {}
    }
}

/// Runs every order's fulfilment in the order of its instants, the clock
/// set to each step's.
pub(super) async fn fulfil_in_time(
    app: &TestApp,
    clock: &ManualClock,
    work: &[Work],
    tally: &Tally,
) {
    let now = app.now();
    let mut all: Vec<Step> = work.iter().flat_map(|w| steps(app, now, w)).collect();
    all.sort_by_key(|step| (step.at, step.rank));
    for step in all {
        if step.at > app.now() {
            clock.set(step.at);
        }
        let answer = post(app, &step.path, &step.token, step.body.clone()).await;
        expect(&answer, StatusCode::OK, &step.path);
        if step.rank == 2 {
            Tally::bump(&tally.returns);
            if step.late && decimal(&answer.body["late_fee"]) > Decimal::ZERO {
                Tally::bump(&tally.late_fees);
            }
            if decimal(&answer.body["refund"]) > Decimal::ZERO {
                Tally::bump(&tally.early_refunds);
            }
            let owed = decimal(&answer.body["late_fee_owed"]);
            if owed > Decimal::ZERO {
                collect_late_fee(app, step.order_id, owed, tally).await;
            }
        }
    }
    tally
        .fulfilled
        .fetch_add(work.len(), std::sync::atomic::Ordering::Relaxed);
}

/// Waits until the sweeper has settled every deadline due by the clock:
/// holds, booking changes and returns (the clock jumped past them all).
pub(super) async fn wait_for_the_sweeper(app: &TestApp) {
    let now = app.now();
    let settled = ledger_tests::pipeline::eventually(std::time::Duration::from_secs(120), || {
        let pool = app.pool.clone();
        async move {
            let due: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM rm_allocations
                          WHERE kind = 'hold' AND expires_at <= $1)
                      + (SELECT count(*) FROM adjustment_deadlines
                          WHERE settled_at IS NULL AND expires_at <= $1)
                      + (SELECT count(*) FROM return_deadlines
                          WHERE settled_at IS NULL AND due_at <= $1)",
            )
            .bind(now)
            .fetch_one(&pool)
            .await
            .expect("count due deadlines");
            due == 0
        }
    })
    .await;
    assert!(settled, "the sweeper settles every deadline due");
}
