//! Payments, their webhook, and the expiry of unpaid holds (DESIGN.md
//! "Domain": lifecycle; API.md "Payment webhook"). The policies run
//! synchronously in the command API, so every effect is visible in the
//! events table as soon as the webhook (or the sweeper) is done.

use std::time::Duration;

use chrono::Utc;
use ledger_tests::answer::decimal;
use ledger_tests::events::HoldRecord;
use ledger_tests::rental_item;
use ledger_tests::webhooks::total_minor;
use ledger_tests::webhooks::{payment_event, signed, FAILED, SUCCEEDED};
use ledger_tests::{at, Answer, TestApp, WEBHOOK_SECRET};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

mod cancellations;
mod expiry;
mod late_payments;
mod payments;

/// How long the tests with a short hold TTL wait for the sweeper at most.
const SWEEP_WAIT: Duration = Duration::from_secs(10);

/// A short hold TTL and a fast sweeper.
async fn spawn_short_ttl(ttl: Duration) -> TestApp {
    TestApp::spawn_with(|config| {
        config.hold_ttl = ttl;
        config.sweep_interval = Duration::from_millis(200);
    })
    .await
}

#[track_caller]
fn assert_placed(order: &Answer) {
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
}

#[track_caller]
fn assert_unavailable(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::CONFLICT, "{:?}", answer.body);
    assert_eq!(answer.problem_type(), "unavailable", "{:?}", answer.body);
}

/// Waits until the order's hold on the listing no longer counts (expired
/// by the sweeper, or released) and returns the hold's history.
async fn hold_settled(app: &TestApp, listing_id: Uuid, order_id: Uuid) -> Vec<String> {
    let deadline = tokio::time::Instant::now() + SWEEP_WAIT;
    loop {
        let hold = app.hold_of(listing_id, order_id).await;
        if !hold.is_live() {
            return app.hold_history(listing_id, hold.hold_id).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the hold of {order_id} on {listing_id} still counts: {hold:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn count(types: &[String], kind: &str) -> usize {
    types.iter().filter(|t| *t == kind).count()
}

/// The order was cancelled (or expired) before its payment came: the
/// payment is captured and refunded in full, and the order ends `refunded`.
async fn assert_cancelled_then_refunded_in_full(app: &TestApp, order: &Answer) {
    let order_id = order.uuid("order_id");
    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "OrderCancelled",
            "PaymentCaptured",
            "RefundIssued"
        ]
    );
    assert_eq!(
        decimal(&events[3].1["amount"]),
        decimal(&order.body["total"]),
        "the whole payment is refunded"
    );
    assert_eq!(app.order_status(order_id).await, "refunded");
}

/// A vendor with a 1-unit daily rental listing.
async fn one_unit_rental(app: &TestApp) -> Uuid {
    let vendor = app.register_vendor("Single Kayak").await;
    app.rental_listing(vendor, "day", "30.00", "20.00", 1).await
}
