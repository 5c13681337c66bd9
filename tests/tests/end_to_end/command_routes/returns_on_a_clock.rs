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
