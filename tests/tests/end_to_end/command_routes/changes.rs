//! Booking changes (API.md "Rentals", issue 13 items 4 and 6): a paid
//! rental line extended (held, paid by a webhook naming the adjustment,
//! then shown on the order and posted in the ledger), refused when the
//! units are taken (409 `unavailable` with `conflicts`) or the period
//! breaks a rule (422), rescheduled to a cheaper period and refunded by the
//! listing's cancellation policy, and a paid order cancelled under its
//! policy with a refund per line.

use ledger_tests::answer::{dec, money, position};
use ledger_tests::assert_problem;
use ledger_tests::{at, rental_item, Answer, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use super::assert_created_order;

/// A paid order of `quantity` units of `listing` for `[start, end)`.
async fn paid_order(
    app: &TestApp,
    customer: &str,
    listing: Uuid,
    start: &str,
    end: &str,
) -> Answer {
    let order = app
        .place_order(customer, vec![rental_item(listing, 1, start, end)])
        .await;
    assert_created_order(&order);
    app.pay(&order).await;
    order
}

fn line_id(order: &Answer) -> Uuid {
    Uuid::parse_str(
        order.body["lines"][0]["line_id"]
            .as_str()
            .expect("a line id"),
    )
    .expect("a uuid")
}

/// The trial balance's debits equal its credits once the ledger reached `min`.
async fn assert_balanced(app: &TestApp, min: i64) -> Value {
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

fn account(trial: &Value, name: &str) -> rust_decimal::Decimal {
    trial["accounts"]
        .as_array()
        .and_then(|a| a.iter().find(|r| r["account"] == name))
        .map_or(rust_decimal::Decimal::ZERO, |r| {
            dec(r["balance"].as_str().expect("a balance"))
        })
}

#[tokio::test]
async fn an_extension_is_held_paid_by_its_adjustment_id_and_moves_the_line() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Kayaks").await;
    let kayaks = app
        .rental_listing(vendor_id, "day", "20.00", "5.00", 1)
        .await;
    let order = paid_order(&app, "carol", kayaks, &at(1, 0), &at(3, 0)).await;
    let (order_id, line) = (order.uuid("order_id"), line_id(&order));
    // The price went up since: the added day costs today's price.
    let raise = app
        .change_price(
            &app.vendor(vendor_id),
            kayaks,
            json!({"price_per_unit": "25.00"}),
        )
        .await;
    assert_eq!(raise.status, StatusCode::OK, "{:?}", raise.body);

    // Someone else's booking from day 4 on leaves one free day.
    paid_order(&app, "dave", kayaks, &at(4, 0), &at(6, 0)).await;
    let too_far = app
        .extend(&app.customer("carol"), order_id, line, &at(5, 0))
        .await;
    assert_problem(&too_far, StatusCode::CONFLICT, "unavailable");
    let conflict = &too_far.body["conflicts"][0];
    assert_eq!(
        (conflict["requested"].as_u64(), conflict["free"].as_u64()),
        (Some(1), Some(0))
    );
    assert_eq!(conflict["listing_id"], json!(kayaks));

    let others = app
        .extend(&app.customer("mallory"), order_id, line, &at(4, 0))
        .await;
    assert_problem(&others, StatusCode::FORBIDDEN, "forbidden");
    let shorter = app
        .extend(&app.customer("carol"), order_id, line, &at(2, 0))
        .await;
    assert_eq!(
        shorter.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        shorter.body
    );
    assert_eq!(shorter.body["errors"][0]["code"], "not_longer");

    let extended = app
        .extend(&app.customer("carol"), order_id, line, &at(4, 0))
        .await;
    assert_eq!(extended.status, StatusCode::CREATED, "{:?}", extended.body);
    assert_eq!(money(&extended.body, "amount_due"), dec("25.00"));
    assert!(
        extended.body["hold_expires_at"].is_string(),
        "{:?}",
        extended.body
    );
    let adjustment_id = extended.uuid("adjustment_id");

    // While it awaits payment, a second change of the line is refused.
    let again = app
        .extend(&app.customer("carol"), order_id, line, &at(4, 0))
        .await;
    assert_problem(&again, StatusCode::CONFLICT, "invalid-state");

    let paid = app.pay_adjustment(adjustment_id, 2500).await;
    assert_eq!(paid.body["order_id"], json!(order_id), "{:?}", paid.body);
    let shown = app
        .order(&app.customer("carol"), order_id, Some(position(&paid)))
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    let shown_line = &shown.body["lines"][0];
    assert_eq!(
        shown_line["end"].as_str().map(|e| e.replace("+00:00", "Z")),
        Some(at(4, 0))
    );
    assert_eq!(money(shown_line, "subtotal"), dec("65.00"));
    assert_eq!(money(&shown.body, "total"), dec("70.00"));
    assert_eq!(shown.body["adjustments"][0]["status"], "confirmed");
    assert_eq!(
        money(&shown.body["vendors"][0], "platform_fee"),
        dec("6.50")
    );

    // The day is taken now; the ledger holds the new price and stays balanced.
    let late = app
        .place_order("erin", vec![rental_item(kayaks, 1, &at(3, 0), &at(4, 0))])
        .await;
    assert_problem(&late, StatusCode::CONFLICT, "unavailable");
    let trial = assert_balanced(&app, position(&paid)).await;
    assert_eq!(
        account(&trial, "platform_fees"),
        dec("-11.50"),
        "carol's 4.00 + 2.50 for the added day, dave's 5.00"
    );

    // The analytics count carol's order as extended: 65.00 over 3 days.
    let summary = app
        .get_at("/v1/analytics/summary", &app.admin(), Some(position(&paid)))
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{:?}", summary.body);
    assert_eq!(money(&summary.body, "gmv"), dec("115.00"));
    assert_eq!(summary.body["rental_days"], "5.00");
    assert_eq!(summary.body["top_listings"][0]["gmv"], "115.00");
    let revenue = app
        .get_at(
            "/v1/analytics/revenue?granularity=month",
            &app.admin(),
            Some(position(&paid)),
        )
        .await;
    assert_eq!(revenue.status, StatusCode::OK, "{:?}", revenue.body);
    let buckets = revenue.body["buckets"].as_array().expect("buckets");
    let sum =
        |name: &str| -> rust_decimal::Decimal { buckets.iter().map(|b| money(b, name)).sum() };
    assert_eq!(sum("gmv"), dec("115.00"));
    assert_eq!(sum("platform_fees"), dec("11.50"));
    app.stop().await;
}

#[tokio::test]
async fn an_unpaid_extension_lapses_and_the_line_keeps_its_period() {
    let app = TestApp::spawn_with(|c| c.hold_ttl = std::time::Duration::from_secs(3)).await;
    let vendor_id = app.register_vendor("Bikes").await;
    let bikes = app
        .rental_listing(vendor_id, "hour", "4.00", "0.00", 1)
        .await;
    let order = paid_order(&app, "carol", bikes, &at(1, 10), &at(1, 12)).await;
    let (order_id, line) = (order.uuid("order_id"), line_id(&order));
    let extended = app
        .extend(&app.customer("carol"), order_id, line, &at(1, 14))
        .await;
    assert_eq!(extended.status, StatusCode::CREATED, "{:?}", extended.body);
    let adjustment_id = extended.uuid("adjustment_id");
    // Held: nobody else gets 12:00-14:00 meanwhile.
    let taken = app
        .place_order("dave", vec![rental_item(bikes, 1, &at(1, 12), &at(1, 13))])
        .await;
    assert_problem(&taken, StatusCode::CONFLICT, "unavailable");

    // Unpaid past its expiry: the sweeper lapses it and the hours are free.
    let lapsed = app
        .wait_for_event(
            "Order",
            order_id,
            "AdjustmentLapsed",
            std::time::Duration::from_secs(20),
        )
        .await;
    assert!(lapsed, "the sweeper lapses the adjustment");
    paid_order(&app, "dave", bikes, &at(1, 12), &at(1, 13)).await;
    // A payment after it lapsed, with its hours gone, is refunded.
    let paid = app.pay_adjustment(adjustment_id, 800).await;
    let shown = app
        .order(&app.customer("carol"), order_id, Some(position(&paid)))
        .await;
    assert_eq!(
        shown.body["lines"][0]["end"]
            .as_str()
            .map(|e| e.replace("+00:00", "Z")),
        Some(at(1, 12))
    );
    let refunds = shown.body["refunds"].as_array().expect("refunds").clone();
    assert!(
        refunds.iter().any(|r| money(r, "amount") == dec("8.00")),
        "{:?}",
        shown.body
    );
    app.stop().await;
}

#[tokio::test]
async fn a_cheaper_reschedule_and_a_cancellation_are_refunded_by_the_listing_policy() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Tents").await;
    let tents = app
        .rental_listing(vendor_id, "day", "10.00", "5.00", 2)
        .await;
    let policies = app
        .send(
            Method::PUT,
            &format!("/v1/listings/{tents}/policies"),
            Some(&app.vendor(vendor_id)),
            Some(&json!({"cancellation_policy": [
                {"notice": "P400D", "refund_percent": 50},
                {"notice": "P3000D", "refund_percent": 100}]})),
            &[],
        )
        .await;
    assert_eq!(policies.status, StatusCode::OK, "{:?}", policies.body);
    assert_eq!(policies.body["cancellation_policy"][0]["notice"], "P400D");

    // 2030 is more than 400 days but less than 3000 days away: 50 % of
    // what gets cheaper comes back.
    let order = paid_order(&app, "carol", tents, &at(1, 0), &at(5, 0)).await;
    let (order_id, line) = (order.uuid("order_id"), line_id(&order));
    // The invoice is issued (by the policies) before the change: issued
    // after it, under load, it showed the rescheduled price.
    ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(60))
        .await
        .expect("the read models settle");
    let moved = app
        .reschedule(&app.customer("carol"), order_id, line, &at(2, 0), &at(4, 0))
        .await;
    assert_eq!(moved.status, StatusCode::CREATED, "{:?}", moved.body);
    // 40.00 → 20.00: half of 20.00 back.
    assert_eq!(money(&moved.body, "amount_due"), dec("-10.00"));
    assert!(moved.body["hold_expires_at"].is_null());

    // Cancelled: half of the 30.00 line back, the 5.00 deposit in full.
    let cancelled = app
        .cancel_order(&app.customer("carol"), order_id, json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    let shown = app
        .order(&app.customer("carol"), order_id, Some(position(&cancelled)))
        .await;
    assert_eq!(money(&shown.body["lines"][0], "refund"), dec("20.00"));
    let refunded: rust_decimal::Decimal = shown.body["refunds"]
        .as_array()
        .expect("refunds")
        .iter()
        .map(|r| money(r, "amount"))
        .sum();
    assert_eq!(refunded, dec("30.00"), "10.00 + 20.00: {:?}", shown.body);
    // The vendor keeps 15.00 less the 10 % fee, available at once.
    let earnings = app.earnings(vendor_id, Some(position(&cancelled))).await;
    assert_eq!(earnings.available, dec("13.50"), "{earnings:?}");
    let trial = assert_balanced(&app, position(&cancelled)).await;
    assert_eq!(account(&trial, "deposits_held"), dec("0.00"));
    // The invoice of 40.00, a credit note of the 10.00 the reschedule
    // gave back, and one of the 15.00 the cancellation gave back.
    let head = ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(60))
        .await
        .expect("the read models settle");
    let documents = app
        .get_at(
            &format!("/v1/orders/{order_id}/invoices"),
            &app.admin(),
            Some(head),
        )
        .await;
    assert_eq!(documents.status, StatusCode::OK, "{:?}", documents.body);
    let kinds_and_totals: Vec<(String, String)> = documents
        .body
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap_or_default().to_owned(),
                d["total"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        kinds_and_totals,
        [
            ("invoice".to_owned(), "40.00".to_owned()),
            ("credit_note".to_owned(), "10.00".to_owned()),
            ("credit_note".to_owned(), "15.00".to_owned()),
        ],
        "{:?}",
        documents.body
    );
    app.stop().await;
}
