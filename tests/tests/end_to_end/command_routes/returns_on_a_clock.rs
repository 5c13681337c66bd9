//! Rentals against the clock (API.md "Rentals", issue 13 items 2 and 5), on
//! a ledger whose every part runs on a `ManualClock`: the test moves time,
//! never sleeps for it.
//!
//! - a line kept past its end is marked overdue by the sweeper, keeps its
//!   unit (availability and new orders see it out), and its return posts
//!   the late fee, from the deposit first, the rest a customer receivable,
//!   the ledger balanced;
//! - a line returned early frees its unit from the return;
//! - a pickup before the booked start is 409 while those hours are taken,
//!   and otherwise extends the line back to the pickup, priced and paid as
//!   an extension.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_clock::ManualClock;
use ledger_tests::answer::{dec, money, position};
use ledger_tests::pipeline::eventually;
use ledger_tests::webhooks::minor_units;
use ledger_tests::{assert_problem, rental_item, Answer, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use super::assert_created_order;

fn time(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

/// A ledger on a manual clock standing at 2030-01-01T08:00Z, with one
/// vendor's hourly listing of `units` units at 10.00 an hour, deposit
/// 30.00 and a late fee of 20.00 an hour.
async fn shop(units: u32) -> (TestApp, Arc<ManualClock>, Uuid, Uuid) {
    let clock = Arc::new(ManualClock::new(time("2030-01-01T08:00:00Z")));
    let app = TestApp::spawn_with_clock(clock.clone()).await;
    let vendor = app.register_vendor("Harbour Rentals").await;
    let listing = app
        .rental_listing(vendor, "hour", "10.00", "30.00", units)
        .await;
    let set = app
        .send(
            Method::PUT,
            &format!("/v1/listings/{listing}/policies"),
            Some(&app.vendor(vendor)),
            Some(&json!({"late_fee_per_unit": "20.00"})),
            &[],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    (app, clock, vendor, listing)
}

/// A paid order of one unit of `listing` for `[start, end)`.
async fn paid(app: &TestApp, customer: &str, listing: Uuid, start: &str, end: &str) -> Answer {
    let order = app
        .place_order(customer, vec![rental_item(listing, 1, start, end)])
        .await;
    assert_created_order(&order);
    app.pay(&order).await;
    order
}

fn line_of(order: &Answer) -> Uuid {
    let id = order.body["lines"][0]["line_id"]
        .as_str()
        .expect("a line id");
    Uuid::parse_str(id).expect("a uuid")
}

/// The line's status as `GET /v1/orders/{id}` shows it.
async fn line_status(app: &TestApp, order_id: Uuid) -> Value {
    let shown = app.order(&app.admin(), order_id, None).await;
    shown.body["lines"][0]["status"].clone()
}

/// Free units of `listing` over `[from, to)` by `/availability`.
async fn free_min(app: &TestApp, listing: Uuid, from: &str, to: &str, min: Option<i64>) -> i64 {
    let shown = app
        .get_at(
            &format!("/v1/listings/{listing}/availability?from={from}&to={to}"),
            &app.admin(),
            min,
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    shown.body["free_min"].as_i64().expect("free_min")
}

/// Whether a search for listings free 15:00-16:00 on 2030-01-01 finds `listing`.
async fn searched_free(app: &TestApp, listing: Uuid) -> bool {
    let found = app
        .get(
            "/v1/listings?available_from=2030-01-01T15:00:00Z&available_to=2030-01-01T16:00:00Z",
            &app.admin(),
        )
        .await;
    assert_eq!(found.status, StatusCode::OK, "{:?}", found.body);
    found.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .any(|l| l["listing_id"] == listing.to_string())
}

/// The trial balance once the ledger reached `min`, debits equal to credits.
async fn balanced_trial(app: &TestApp, min: i64) -> Value {
    let trial = app
        .get_at("/v1/ledger/trial-balance", &app.admin(), Some(min))
        .await;
    assert_eq!(trial.status, StatusCode::OK, "{:?}", trial.body);
    assert_eq!(
        trial.body["total_debit"], trial.body["total_credit"],
        "{:?}",
        trial.body
    );
    trial.body
}

fn balance(trial: &Value, account: &str) -> rust_decimal::Decimal {
    trial["accounts"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["account"] == account))
        .map(|r| money(r, "balance"))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_line_kept_past_its_end_is_overdue_keeps_its_unit_and_pays_its_late_fee() {
    let (app, clock, vendor, listing) = shop(1).await;
    let order = paid(
        &app,
        "alice",
        listing,
        "2030-01-01T10:00:00Z",
        "2030-01-01T12:00:00Z",
    )
    .await;
    let (order_id, line) = (order.uuid("order_id"), line_of(&order));
    clock.set(time("2030-01-01T10:00:00Z"));
    let picked = app.pickup(&app.vendor(vendor), order_id, line).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);

    // Two and a half hours past its end: three started hours late.
    clock.set(time("2030-01-01T14:30:00Z"));
    // The sweeper marks it overdue, and the unit stays out until it is
    // returned: availability shows it taken after the booked end.
    let overdue = eventually(Duration::from_secs(10), || async {
        line_status(&app, order_id).await == "overdue"
            && free_min(
                &app,
                listing,
                "2030-01-01T15:00:00Z",
                "2030-01-01T16:00:00Z",
                None,
            )
            .await
                == 0
    })
    .await;
    assert!(
        overdue,
        "the sweeper marks the line overdue and its unit out"
    );
    assert!(
        !searched_free(&app, listing).await,
        "search does not offer an overdue unit"
    );
    // Nor can anyone book it.
    let refused = app
        .place_order(
            "bob",
            vec![rental_item(
                listing,
                1,
                "2030-01-01T15:00:00Z",
                "2030-01-01T16:00:00Z",
            )],
        )
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "unavailable");

    // Returned now: 3 × 20.00 = 60.00, 30.00 of it from the deposit.
    let returned = app
        .return_line(&app.vendor(vendor), order_id, line, json!({}))
        .await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(returned.body["late_fee"], "60.00");
    assert_eq!(returned.body["late_fee_owed"], "30.00");
    assert_eq!(returned.body["deposit_refunded"], "0.00");
    let trial = balanced_trial(&app, position(&returned)).await;
    assert_eq!(balance(&trial, "customer_receivable"), dec("30.00"));
    assert_eq!(balance(&trial, "deposits_held"), dec("0.00"));

    // The analytics count the overdue line and its late fee.
    let summary = app
        .get_at(
            "/v1/analytics/summary?from=2030-01-01T00:00:00Z&to=2030-01-02T00:00:00Z",
            &app.admin(),
            Some(position(&returned)),
        )
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{:?}", summary.body);
    assert_eq!(summary.body["overdue_lines"], 1);
    assert_eq!(summary.body["late_fees"], "60.00");
    assert_eq!(summary.body["late_fees_owed"], "30.00");

    let shown = app
        .order(&app.admin(), order_id, Some(position(&returned)))
        .await;
    assert_eq!(shown.body["lines"][0]["status"], "returned");
    assert_eq!(shown.body["lines"][0]["late_fee"], "60.00");
    assert_eq!(
        shown.body["lines"][0]["returned_at"],
        "2030-01-01T14:30:00Z"
    );

    // Back, the unit is free again from the return.
    assert_eq!(
        free_min(
            &app,
            listing,
            "2030-01-01T15:00:00Z",
            "2030-01-01T16:00:00Z",
            Some(position(&returned))
        )
        .await,
        1
    );
    assert!(searched_free(&app, listing).await);
    let booked = app
        .place_order(
            "bob",
            vec![rental_item(
                listing,
                1,
                "2030-01-01T15:00:00Z",
                "2030-01-01T16:00:00Z",
            )],
        )
        .await;
    assert_created_order(&booked);
}

#[tokio::test]
async fn a_line_returned_early_frees_its_unit_from_the_return() {
    let (app, clock, vendor, listing) = shop(1).await;
    let order = paid(
        &app,
        "alice",
        listing,
        "2030-01-01T10:00:00Z",
        "2030-01-01T16:00:00Z",
    )
    .await;
    let (order_id, line) = (order.uuid("order_id"), line_of(&order));
    clock.set(time("2030-01-01T10:00:00Z"));
    let picked = app.pickup(&app.vendor(vendor), order_id, line).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);

    clock.set(time("2030-01-01T11:00:00Z"));
    let returned = app
        .return_line(&app.vendor(vendor), order_id, line, json!({}))
        .await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(returned.body["late_fee"], "0.00");
    assert_eq!(returned.body["deposit_refunded"], "30.00");
    assert_eq!(
        free_min(
            &app,
            listing,
            "2030-01-01T12:00:00Z",
            "2030-01-01T16:00:00Z",
            Some(position(&returned))
        )
        .await,
        1,
        "the unit is free from its return"
    );
    let booked = app
        .place_order(
            "bob",
            vec![rental_item(
                listing,
                1,
                "2030-01-01T12:00:00Z",
                "2030-01-01T14:00:00Z",
            )],
        )
        .await;
    assert_created_order(&booked);
    balanced_trial(&app, position(&booked)).await;
}

#[tokio::test]
async fn a_pickup_before_the_start_is_409_while_those_hours_are_taken_and_else_an_extension() {
    let (app, clock, vendor, listing) = shop(1).await;
    // Bob has the unit 08:00-09:00 (never picked up); Alice 10:00-12:00.
    paid(
        &app,
        "bob",
        listing,
        "2030-01-01T08:00:00Z",
        "2030-01-01T09:00:00Z",
    )
    .await;
    let order = paid(
        &app,
        "alice",
        listing,
        "2030-01-01T10:00:00Z",
        "2030-01-01T12:00:00Z",
    )
    .await;
    let (order_id, line) = (order.uuid("order_id"), line_of(&order));

    clock.set(time("2030-01-01T08:30:00Z"));
    let refused = app.pickup(&app.vendor(vendor), order_id, line).await;
    assert_problem(&refused, StatusCode::CONFLICT, "unavailable");
    assert_eq!(line_status(&app, order_id).await, "pending");

    // From 09:00 the unit is free: picked up at 09:30, the line is
    // extended back to 09:30, half an hour started = one hour, 10.00.
    clock.set(time("2030-01-01T09:30:00Z"));
    let picked = app.pickup(&app.vendor(vendor), order_id, line).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);
    assert_eq!(picked.body["amount_due"], "10.00");
    let adjustment = picked.uuid("adjustment_id");
    let paid_change = app
        .pay_adjustment(adjustment, minor_units(dec("10.00")))
        .await;
    let shown = app
        .order(&app.admin(), order_id, Some(position(&paid_change)))
        .await;
    let shown_line = &shown.body["lines"][0];
    assert_eq!(shown_line["status"], "picked_up");
    assert_eq!(shown_line["start"], "2030-01-01T09:30:00Z");
    assert_eq!(shown_line["subtotal"], "30.00");
    assert_eq!(shown_line["local_start"], "2030-01-01T09:30:00Z");
    assert_eq!(shown_line["time_zone"], "UTC");
    balanced_trial(&app, position(&paid_change)).await;
}

/// `PUT /v1/listings/{id}/policies` with `body`, as the vendor.
async fn set_policies(app: &TestApp, vendor: Uuid, listing: Uuid, body: Value) {
    let set = app
        .send(
            Method::PUT,
            &format!("/v1/listings/{listing}/policies"),
            Some(&app.vendor(vendor)),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
}

#[tokio::test]
async fn an_early_return_refunds_the_unused_hours_by_the_cancellation_policy() {
    let (app, clock, vendor, listing) = shop(1).await;
    // 100 % with two hours' notice, 50 % with less.
    set_policies(
        &app,
        vendor,
        listing,
        json!({"late_fee_per_unit": "20.00", "cancellation_policy": [
            {"notice": "PT2H", "refund_percent": 100},
            {"notice": "PT0S", "refund_percent": 50}]}),
    )
    .await;
    // 10:00-16:00: 60.00 (fee 6.00, net 54.00) + 30.00 deposit.
    let order = paid(
        &app,
        "alice",
        listing,
        "2030-01-01T10:00:00Z",
        "2030-01-01T16:00:00Z",
    )
    .await;
    let (order_id, line) = (order.uuid("order_id"), line_of(&order));
    clock.set(time("2030-01-01T10:00:00Z"));
    let picked = app.pickup(&app.vendor(vendor), order_id, line).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);

    // Back at 11:30: two hours used; of the four left, 12:00 and 13:00
    // start within two hours (50 %), 14:00 and 15:00 not (100 %):
    // 10.00 × (0.5 + 0.5 + 1 + 1) = 30.00, fee 3.00 and net 27.00 reversed.
    clock.set(time("2030-01-01T11:30:00Z"));
    let returned = app
        .return_line(&app.vendor(vendor), order_id, line, json!({}))
        .await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(returned.body["refund"], "30.00");
    assert_eq!(returned.body["refund_id"], json!(line));
    assert_eq!(returned.body["deposit_refunded"], "30.00");
    assert_eq!(returned.body["order_status"], "completed");

    let at = position(&returned);
    let shown = app.order(&app.admin(), order_id, Some(at)).await;
    assert_eq!(shown.body["lines"][0]["refund"], "30.00");
    let refund = &shown.body["refunds"][0];
    assert_eq!(refund["amount"], "30.00");
    assert_eq!(refund["fee_reversed"], "3.00");
    assert_eq!(refund["vendor_reversed"][0]["amount"], "27.00");

    // The ledger: cash 90.00 in, 30.00 refunded, 30.00 deposit back; the
    // platform keeps 3.00, the vendor 27.00, made available.
    let trial = balanced_trial(&app, at).await;
    assert_eq!(balance(&trial, "cash"), dec("30.00"));
    assert_eq!(balance(&trial, "platform_fees"), dec("-3.00"));
    assert_eq!(
        balance(&trial, &format!("vendor_available:{vendor}")),
        dec("-27.00")
    );
    assert_eq!(
        balance(&trial, &format!("vendor_pending:{vendor}")),
        dec("0.00")
    );
    let earnings = app
        .get_at(
            &format!("/v1/vendors/{vendor}/earnings"),
            &app.admin(),
            Some(at),
        )
        .await;
    assert_eq!(earnings.status, StatusCode::OK, "{:?}", earnings.body);
    assert_eq!(earnings.body["available"], "27.00");
    assert_eq!(earnings.body["pending"], "0.00");

    // A credit note of the vendor's part, for the refund.
    let noted = eventually(Duration::from_secs(20), || async {
        let docs = app
            .get(&format!("/v1/orders/{order_id}/invoices"), &app.admin())
            .await;
        docs.body.as_array().is_some_and(|docs| {
            docs.iter()
                .any(|d| d["kind"] == "credit_note" && d["total"] == "30.00")
        })
    })
    .await;
    assert!(noted, "a credit note of 30.00 is issued");
    // The analytics count it among refunds; GMV stays what was booked.
    let summary = app
        .get_at(
            "/v1/analytics/summary?from=2026-01-01T00:00:00Z&to=2031-01-01T00:00:00Z",
            &app.admin(),
            Some(at),
        )
        .await;
    assert_eq!(summary.body["refunds"], "30.00");
    assert_eq!(summary.body["gmv"], "60.00");
    assert_eq!(summary.body["rental_days"], "0.06", "1.5 hours of 24");
}

#[tokio::test]
async fn a_late_fee_owed_is_collected_by_a_payment_of_it_or_by_unapplied_cash_applied() {
    let (app, clock, vendor, listing) = shop(1).await;
    let order = paid(
        &app,
        "alice",
        listing,
        "2030-01-01T10:00:00Z",
        "2030-01-01T12:00:00Z",
    )
    .await;
    let (order_id, line) = (order.uuid("order_id"), line_of(&order));
    clock.set(time("2030-01-01T10:00:00Z"));
    let picked = app.pickup(&app.vendor(vendor), order_id, line).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);
    // Three started hours late: 60.00, 30.00 of it from the deposit.
    clock.set(time("2030-01-01T14:30:00Z"));
    let returned = app
        .return_line(&app.vendor(vendor), order_id, line, json!({}))
        .await;
    assert_eq!(returned.body["late_fee_owed"], "30.00");
    let shown = app
        .order(&app.admin(), order_id, Some(position(&returned)))
        .await;
    assert_eq!(shown.body["late_fee_owed"], "30.00");
    assert_eq!(shown.body["late_fee_paid"], "0.00");
    assert_eq!(shown.body["lines"][0]["late_fee_owed"], "30.00");

    // 10.00 paid: not what is owed, so unapplied cash; an admin applies it.
    let short = format!("evt_{}", Uuid::new_v4().simple());
    let paid_short = app
        .payment_webhook(&short, "payment_intent.succeeded", order_id, 1000, None)
        .await;
    assert_eq!(paid_short.status, StatusCode::OK, "{:?}", paid_short.body);
    let applied = app
        .post(
            &format!("/v1/payments/{short}/apply"),
            &app.admin(),
            json!({}),
        )
        .await;
    assert_eq!(applied.status, StatusCode::OK, "{:?}", applied.body);
    assert_eq!(applied.body["amount"], "10.00");
    assert_eq!(applied.body["outcome"], "applied");
    let summary = |min: i64| {
        let app = &app;
        async move {
            let s = app
                .get_at(
                    "/v1/analytics/summary?from=2030-01-01T00:00:00Z&to=2030-01-02T00:00:00Z",
                    &app.admin(),
                    Some(min),
                )
                .await;
            assert_eq!(s.status, StatusCode::OK, "{:?}", s.body);
            s.body
        }
    };
    assert_eq!(summary(position(&applied)).await["late_fees_owed"], "20.00");
    let shown = app
        .order(&app.admin(), order_id, Some(position(&applied)))
        .await;
    assert_eq!(shown.body["late_fee_owed"], "20.00");
    assert_eq!(shown.body["late_fee_paid"], "10.00");

    // A payment of exactly the 20.00 still owed pays it.
    let paid_rest = app.pay_order(order_id, 2000).await;
    let at = position(&paid_rest);
    let shown = app.order(&app.admin(), order_id, Some(at)).await;
    assert_eq!(shown.body["late_fee_owed"], "0.00");
    assert_eq!(shown.body["late_fee_paid"], "30.00");
    assert_eq!(shown.body["lines"][0]["late_fee_owed"], "0.00");
    assert_eq!(summary(at).await["late_fees_owed"], "0.00");
    assert_eq!(summary(at).await["late_fees"], "60.00");

    // The receivable is collected; the vendor has its whole late fee:
    // net 18.00 + 30.00 from the deposit + 30.00 collected.
    let trial = balanced_trial(&app, at).await;
    assert_eq!(balance(&trial, "customer_receivable"), dec("0.00"));
    assert_eq!(balance(&trial, "unapplied"), dec("0.00"));
    assert_eq!(
        balance(&trial, "cash"),
        dec("80.00"),
        "50.00 + 10.00 + 20.00"
    );
    let earnings = app
        .get_at(
            &format!("/v1/vendors/{vendor}/earnings"),
            &app.admin(),
            Some(at),
        )
        .await;
    assert_eq!(earnings.body["available"], "78.00", "{:?}", earnings.body);
    assert_eq!(earnings.body["pending"], "0.00");

    // Nothing is owed now: more cash stays unapplied and cannot be applied.
    let extra = format!("evt_{}", Uuid::new_v4().simple());
    let paid_extra = app
        .payment_webhook(&extra, "payment_intent.succeeded", order_id, 500, None)
        .await;
    assert_eq!(paid_extra.status, StatusCode::OK, "{:?}", paid_extra.body);
    let refused = app
        .post(
            &format!("/v1/payments/{extra}/apply"),
            &app.admin(),
            json!({}),
        )
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "invalid-state");
}
