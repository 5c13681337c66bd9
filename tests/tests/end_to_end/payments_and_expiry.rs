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

/// A vendor with a 1-unit daily rental listing.
async fn one_unit_rental(app: &TestApp) -> Uuid {
    let vendor = app.register_vendor("Single Kayak").await;
    app.rental_listing(vendor, "day", "30.00", "20.00", 1).await
}

#[tokio::test]
async fn a_payment_of_the_total_confirms_the_order_and_every_hold() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Lake Outfitters").await;
    let kayak = app.rental_listing(vendor, "day", "25.00", "50.00", 2).await;
    let paddle = app.sale_listing(vendor, "12.50", 10).await;
    let order = app
        .place_order(
            "payer",
            vec![
                rental_item(kayak, 1, &at(1, 0), &at(3, 0)),
                json!({"listing_id": paddle, "quantity": 2}),
            ],
        )
        .await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    assert_eq!(order.body["total"], "125.00", "50 rent + 50 deposit + 25");

    let answer = app
        .payment_webhook("evt_paid_1", SUCCEEDED, order_id, 12_500, None)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);

    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["OrderPlaced", "PaymentCaptured", "OrderConfirmed"]);
    assert_eq!(decimal(&events[1].1["amount"]), Decimal::new(12_500, 2));
    assert_eq!(app.order_status(order_id).await, "confirmed");
    for listing in [kayak, paddle] {
        let hold = app.hold_of(listing, order_id).await;
        assert_eq!(
            app.hold_history(listing, hold.hold_id).await,
            ["HoldPlaced", "HoldConfirmed"],
            "the hold on {listing} is confirmed"
        );
    }
}

#[tokio::test]
async fn a_redelivered_payment_event_records_nothing_new() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order(
            "redelivered",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    assert_placed(&order);
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    let first = app
        .payment_webhook("evt_once", SUCCEEDED, order_id, minor, None)
        .await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let recorded = app.event_count().await;
    assert_eq!(
        count(&app.event_types("Order", order_id).await, "PaymentCaptured"),
        1
    );

    for _ in 0..2 {
        let again = app
            .payment_webhook("evt_once", SUCCEEDED, order_id, minor, None)
            .await;
        assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
        assert_eq!(
            app.event_count().await,
            recorded,
            "a duplicate records nothing"
        );
    }
    assert_eq!(app.order_status(order_id).await, "confirmed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deliveries_of_one_payment_event_capture_it_once() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order("storm", vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))])
        .await;
    assert_placed(&order);
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    let deliveries =
        (0..8).map(|_| app.payment_webhook("evt_storm", SUCCEEDED, order_id, minor, None));
    let answers = futures::future::join_all(deliveries).await;
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let types = app.event_types("Order", order_id).await;
    assert_eq!(count(&types, "PaymentCaptured"), 1, "{types:?}");
    assert_eq!(count(&types, "OrderConfirmed"), 1, "{types:?}");
    assert_eq!(count(&types, "RefundIssued"), 0, "{types:?}");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
}

#[tokio::test]
async fn a_failed_payment_is_recorded_and_leaves_the_order_placed() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order(
            "declined",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    assert_placed(&order);
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    let failed = app
        .payment_webhook(
            "evt_declined",
            FAILED,
            order_id,
            minor,
            Some("Your card was declined."),
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{:?}", failed.body);
    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["OrderPlaced", "PaymentFailed"]);
    assert_eq!(events[1].1["reason"], "Your card was declined.");
    assert_eq!(app.order_status(order_id).await, "placed");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        hold.last, "HoldPlaced",
        "the hold stays active, unconfirmed"
    );
    // The units stay held for the order meanwhile.
    assert_unavailable(
        &app.place_order("other", vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))])
            .await,
    );

    // The customer retries with another card.
    let paid = app
        .payment_webhook("evt_retry", SUCCEEDED, order_id, minor, None)
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    let types = app.event_types("Order", order_id).await;
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentFailed",
            "PaymentCaptured",
            "OrderConfirmed"
        ]
    );
    assert_eq!(app.order_status(order_id).await, "confirmed");
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
}

#[tokio::test]
async fn a_payment_of_another_amount_is_a_mismatch_and_confirms_nothing() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order(
            "short-payer",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    assert_placed(&order);
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));

    for (n, amount) in [minor - 1, minor + 100].into_iter().enumerate() {
        let answer = app
            .payment_webhook(&format!("evt_wrong_{n}"), SUCCEEDED, order_id, amount, None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentAmountMismatch",
            "PaymentAmountMismatch"
        ]
    );
    assert_eq!(events[1].1["expected_minor"], json!(minor));
    assert_eq!(events[1].1["received_minor"], json!(minor - 1));
    assert_eq!(events[2].1["received_minor"], json!(minor + 100));
    assert_eq!(app.order_status(order_id).await, "placed");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced"],
        "no hold is confirmed by a mismatched payment"
    );
}

#[tokio::test]
async fn webhooks_with_a_bad_signature_a_stale_timestamp_or_no_signature_are_refused() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order(
            "forged",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    assert_placed(&order);
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));
    let body = payment_event("evt_forged", SUCCEEDED, order_id, minor, None);
    let now = Utc::now().timestamp();
    let recorded = app.event_count().await;

    let (raw, _) = signed(&body, WEBHOOK_SECRET, now);
    let (_, wrong_secret) = signed(&body, "whsec_attacker", now);
    let (_, stale) = signed(&body, WEBHOOK_SECRET, now - 400);
    let (_, future) = signed(&body, WEBHOOK_SECRET, now + 400);
    let (_, for_another_body) = signed(
        &payment_event("evt_forged", SUCCEEDED, order_id, 1, None),
        WEBHOOK_SECRET,
        now,
    );
    for (case, signature) in [
        ("another secret", wrong_secret),
        ("stale timestamp", stale),
        ("future timestamp", future),
        ("signature of another body", for_another_body),
        ("garbage", "t=abc,v1=zz".to_owned()),
        ("no v1", format!("t={now}")),
    ] {
        let answer = app.send_raw_webhook(raw.clone(), &signature).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{case}: {:?}",
            answer.body
        );
        assert_eq!(
            app.event_count().await,
            recorded,
            "{case}: nothing recorded"
        );
    }

    let unsigned = app
        .client
        .post(format!("{}/v1/webhooks/payments", app.base_url))
        .header("content-type", "application/json")
        .body(raw.clone())
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(
        unsigned.status(),
        StatusCode::BAD_REQUEST,
        "no signature header"
    );
    assert_eq!(app.event_count().await, recorded, "nothing recorded");
    assert_eq!(app.order_status(order_id).await, "placed");

    // The same body, properly signed within the tolerance, is accepted.
    let (_, good) = signed(&body, WEBHOOK_SECRET, now - 200);
    let accepted = app.send_raw_webhook(raw, &good).await;
    assert_eq!(accepted.status, StatusCode::OK, "{:?}", accepted.body);
    assert_eq!(app.order_status(order_id).await, "confirmed");
}

#[tokio::test]
async fn unknown_event_types_are_acknowledged_and_ignored() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order(
            "ignored",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    assert_placed(&order);
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));
    let recorded = app.event_count().await;

    for (n, kind) in [
        "payment_intent.created",
        "charge.refunded",
        "customer.created",
    ]
    .into_iter()
    .enumerate()
    {
        let answer = app
            .payment_webhook(&format!("evt_other_{n}"), kind, order_id, minor, None)
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{kind}: {:?}", answer.body);
    }
    assert_eq!(app.event_count().await, recorded, "nothing recorded");
    assert_eq!(app.order_status(order_id).await, "placed");
}

#[tokio::test]
async fn an_unpaid_hold_expires_and_frees_its_units() {
    let app = spawn_short_ttl(Duration::from_secs(2)).await;
    let vendor = app.register_vendor("Last One").await;
    let kayak = app.rental_listing(vendor, "day", "30.00", "20.00", 1).await;
    let paddle = app.sale_listing(vendor, "19.00", 1).await;
    let period = (at(5, 0), at(7, 0));
    let items = vec![
        rental_item(kayak, 1, &period.0, &period.1),
        json!({"listing_id": paddle, "quantity": 1}),
    ];
    let order = app.place_order("forgetful", items.clone()).await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    // Held for now, both the rental unit and the last item in stock.
    let refused = app.place_order("patient", items.clone()).await;
    assert_unavailable(&refused);
    assert_eq!(refused.body["conflicts"].as_array().map(Vec::len), Some(2));

    assert!(
        app.wait_for_event("Order", order_id, "OrderCancelled", SWEEP_WAIT)
            .await,
        "the unpaid order is cancelled by the sweeper"
    );
    let events = app.event_payloads("Order", order_id).await;
    let (last, payload) = events.last().expect("events");
    assert_eq!(last, "OrderCancelled", "{events:?}");
    assert_eq!(payload["cause"], json!("expiry"), "{payload}");
    assert_eq!(app.order_status(order_id).await, "cancelled");
    for listing in [kayak, paddle] {
        // Whether the sweeper or the policies get there first, a lapsed
        // hold expires (a late payment may still re-hold it); never released.
        let history = hold_settled(&app, listing, order_id).await;
        assert_eq!(
            history,
            ["HoldPlaced", "HoldExpired"],
            "the hold on {listing} ends once, expired"
        );
    }

    let second = app.place_order("patient", items).await;
    assert_placed(&second);
}

#[tokio::test]
async fn holds_stranded_without_an_order_are_expired_by_the_sweeper() {
    // A saga that died after writing its deadline and placing a hold, before
    // recording the order: the hold must not block the unit for ever.
    let app = spawn_short_ttl(Duration::from_secs(2)).await;
    let listing = one_unit_rental(&app).await;
    let (order_id, hold_id) = (Uuid::now_v7(), Uuid::now_v7());
    let now = Utc::now();
    let expires_at = now + chrono::Duration::seconds(2);
    let period = (at(3, 0), at(4, 0));

    sqlx::query("INSERT INTO hold_deadlines (order_id, holds, expires_at) VALUES ($1, $2, $3)")
        .bind(order_id)
        .bind(json!([{"listing_id": listing, "hold_id": hold_id}]))
        .bind(expires_at)
        .execute(&app.pool)
        .await
        .expect("write the deadline");
    let replica = app.command_app();
    let command = serde_json::from_value(json!({"PlaceHold": {
        "hold_id": hold_id,
        "order_id": order_id,
        "request": {"kind": "rental", "period": {"start": period.0, "end": period.1}, "quantity": 1},
        "expires_at": expires_at,
        "now": now,
    }}))
    .expect("a PlaceHold command");
    let context = command_api::context::CommandContext::background(
        command_api::Principal::system("dead-saga"),
        "test:dead-saga",
    );
    replica
        .inventory
        .execute(&listing.to_string(), command, &context, "PlaceHold")
        .await
        .expect("the stranded hold is placed");
    assert_unavailable(
        &app.place_order(
            "blocked",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await,
    );

    assert!(
        app.wait_for_event("Inventory", listing, "HoldExpired", SWEEP_WAIT)
            .await,
        "the stranded hold expires"
    );
    assert_eq!(
        app.hold_history(listing, hold_id).await,
        ["HoldPlaced", "HoldExpired"]
    );
    assert!(
        app.event_types("Order", order_id).await.is_empty(),
        "no order comes into being"
    );
    let settled: Option<chrono::DateTime<Utc>> =
        sqlx::query_scalar("SELECT settled_at FROM hold_deadlines WHERE order_id = $1")
            .bind(order_id)
            .fetch_one(&app.pool)
            .await
            .expect("read the deadline");
    assert!(settled.is_some(), "the deadline is settled");
    assert_placed(
        &app.place_order(
            "blocked",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await,
    );
}

#[tokio::test]
async fn a_payment_after_expiry_re_holds_units_still_free_and_confirms() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let listing = one_unit_rental(&app).await;
    let period = (at(8, 0), at(9, 0));
    let order = app
        .place_order(
            "late-payer",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    let hold = app.hold_of(listing, order_id).await;
    assert!(
        app.wait_for_event("Order", order_id, "OrderCancelled", SWEEP_WAIT)
            .await
    );
    hold_settled(&app, listing, order_id).await;

    let answer = app.pay(&order).await;
    assert_eq!(answer.status, StatusCode::OK);
    let types = app.event_types("Order", order_id).await;
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "OrderCancelled",
            "PaymentCaptured",
            "OrderReconfirmed"
        ]
    );
    assert_eq!(app.order_status(order_id).await, "confirmed");
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        [
            "HoldPlaced",
            "HoldExpired",
            "HoldReinstated",
            "HoldConfirmed"
        ]
    );
    // The unit is the late payer's again, and stays so.
    assert_unavailable(
        &app.place_order("after", vec![rental_item(listing, 1, &period.0, &period.1)])
            .await,
    );
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id)
            .await
            .last()
            .map(String::as_str),
        Some("HoldConfirmed")
    );
}

#[tokio::test]
async fn a_payment_after_expiry_on_units_taken_meanwhile_is_refunded_in_full() {
    let app = spawn_short_ttl(Duration::from_secs(2)).await;
    let listing = one_unit_rental(&app).await;
    let period = (at(10, 0), at(12, 0));
    let late = app
        .place_order(
            "too-late",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    assert_placed(&late);
    let late_id = late.uuid("order_id");
    assert!(
        app.wait_for_event("Order", late_id, "OrderCancelled", SWEEP_WAIT)
            .await
    );

    // Someone else books and pays for the freed unit.
    let other = app
        .place_order("quick", vec![rental_item(listing, 1, &period.0, &period.1)])
        .await;
    assert_placed(&other);
    app.pay(&other).await;
    let other_id = other.uuid("order_id");
    let other_hold = app.hold_of(listing, other_id).await;

    app.pay(&late).await;
    let events = app.event_payloads("Order", late_id).await;
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
        decimal(&late.body["total"]),
        "the whole payment is refunded"
    );
    assert_eq!(app.order_status(late_id).await, "refunded");

    // The other customer's booking is untouched.
    assert_eq!(
        app.hold_history(listing, other_hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
    assert_eq!(
        app.event_types("Order", other_id).await,
        ["OrderPlaced", "PaymentCaptured", "OrderConfirmed"]
    );
    let live: Vec<HoldRecord> = app
        .holds_of(listing)
        .await
        .into_iter()
        .filter(HoldRecord::is_live)
        .collect();
    assert_eq!(live.len(), 1, "{live:?}");
    assert_eq!(live[0].order_id, other_id);
}

#[tokio::test]
async fn a_payment_after_the_hold_lapsed_but_before_any_sweep_re_holds_or_refunds() {
    // The sweeper is slow: the holds lapse (stop counting) but nothing has
    // expired them yet when the payments arrive.
    let app = TestApp::spawn_with(|config| {
        config.hold_ttl = Duration::from_secs(1);
        config.sweep_interval = Duration::from_secs(600);
    })
    .await;
    let listing = one_unit_rental(&app).await;
    let free = (at(1, 0), at(2, 0));
    let taken = (at(3, 0), at(4, 0));
    let keeps = app
        .place_order("keeps", vec![rental_item(listing, 1, &free.0, &free.1)])
        .await;
    let loses = app
        .place_order("loses", vec![rental_item(listing, 1, &taken.0, &taken.1)])
        .await;
    assert_placed(&keeps);
    assert_placed(&loses);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // A lapsed hold does not block: someone else takes the second period.
    let thief = app
        .place_order("thief", vec![rental_item(listing, 1, &taken.0, &taken.1)])
        .await;
    assert_placed(&thief);
    app.pay(&thief).await;

    app.pay(&keeps).await;
    let keeps_id = keeps.uuid("order_id");
    assert_eq!(app.order_status(keeps_id).await, "confirmed");
    let hold = app.hold_of(listing, keeps_id).await;
    assert_eq!(hold.last, "HoldConfirmed", "{hold:?}");

    app.pay(&loses).await;
    let loses_id = loses.uuid("order_id");
    let events = app.event_payloads("Order", loses_id).await;
    let refunded: Decimal = events
        .iter()
        .filter(|(t, _)| t == "RefundIssued")
        .map(|(_, p)| decimal(&p["amount"]))
        .sum();
    assert_eq!(refunded, decimal(&loses.body["total"]), "{events:?}");
    assert_eq!(app.order_status(loses_id).await, "refunded");
    let live: Vec<HoldRecord> = app
        .holds_of(listing)
        .await
        .into_iter()
        .filter(HoldRecord::is_live)
        .collect();
    let owners: Vec<Uuid> = live.iter().map(|h| h.order_id).collect();
    assert_eq!(owners, [keeps_id, thief.uuid("order_id")], "{live:?}");
}

#[tokio::test]
async fn cancelling_a_paid_order_refunds_the_total_and_frees_its_units() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Refunds Inc").await;
    let kayak = app.rental_listing(vendor, "day", "40.00", "25.00", 1).await;
    let paddle = app.sale_listing(vendor, "9.99", 1).await;
    let items = vec![
        rental_item(kayak, 1, &at(1, 0), &at(3, 0)),
        json!({"listing_id": paddle, "quantity": 1}),
    ];
    let order = app.place_order("changes-mind", items.clone()).await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    app.pay(&order).await;
    assert_unavailable(&app.place_order("waiting", items.clone()).await);

    let cancel = app
        .cancel_order(
            &app.customer("changes-mind"),
            order_id,
            json!({"reason": "plans changed"}),
        )
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    assert_eq!(cancel.body["status"], "refunded", "{:?}", cancel.body);
    assert_eq!(app.order_status(order_id).await, "refunded");
    let events = app.event_payloads("Order", order_id).await;
    let refunds: Vec<Decimal> = events
        .iter()
        .filter(|(t, _)| t == "RefundIssued")
        .map(|(_, p)| decimal(&p["amount"]))
        .collect();
    assert_eq!(refunds, [decimal(&order.body["total"])], "{events:?}");
    for listing in [kayak, paddle] {
        let hold = app.hold_of(listing, order_id).await;
        assert_eq!(
            app.hold_history(listing, hold.hold_id).await,
            ["HoldPlaced", "HoldConfirmed", "HoldReleased"]
        );
    }
    assert_placed(&app.place_order("waiting", items).await);
}

#[tokio::test]
async fn the_sweeper_never_releases_a_paid_orders_units() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let listing = one_unit_rental(&app).await;
    let period = (at(2, 0), at(5, 0));
    let order = app
        .place_order(
            "prompt-payer",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    app.pay(&order).await;

    // Past the TTL and many sweeps.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let types = app.event_types("Order", order_id).await;
    assert_eq!(types, ["OrderPlaced", "PaymentCaptured", "OrderConfirmed"]);
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
    assert_eq!(app.order_status(order_id).await, "confirmed");
    assert_unavailable(
        &app.place_order(
            "hopeful",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await,
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_racing_a_cancellation_leaves_no_money_or_units_stranded() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Racy").await;
    let listing = app.rental_listing(vendor, "day", "10.00", "0.00", 5).await;
    for n in 0..5 {
        let customer = format!("racer-{n}");
        let order = app
            .place_order(
                &customer,
                vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
            )
            .await;
        assert_placed(&order);
        let order_id = order.uuid("order_id");
        let cancel_path = format!("/v1/orders/{order_id}/cancel");
        let token = app.customer(&customer);
        let event_id = format!("evt_race_{n}");
        let (paid, cancelled) = tokio::join!(
            app.payment_webhook(&event_id, SUCCEEDED, order_id, total_minor(&order), None),
            app.post(&cancel_path, &token, json!({})),
        );
        assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
        assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);

        // Whichever came first, the customer gets the money back and the
        // unit is free.
        let events = app.event_payloads("Order", order_id).await;
        let sum = |kind: &str| -> Decimal {
            events
                .iter()
                .filter(|(t, _)| t == kind)
                .map(|(_, p)| decimal(&p["amount"]))
                .sum()
        };
        assert_eq!(
            sum("PaymentCaptured"),
            decimal(&order.body["total"]),
            "{events:?}"
        );
        assert_eq!(sum("RefundIssued"), sum("PaymentCaptured"), "{events:?}");
        assert_eq!(app.order_status(order_id).await, "refunded");
        let hold = app.hold_of(listing, order_id).await;
        assert!(!hold.is_live(), "the unit is released: {hold:?}");
    }
}

#[tokio::test]
async fn a_failed_payment_leaves_the_order_placed_until_its_holds_expire() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let listing = one_unit_rental(&app).await;
    let period = (at(6, 0), at(7, 0));
    let order = app
        .place_order("broke", vec![rental_item(listing, 1, &period.0, &period.1)])
        .await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    let failed = app
        .payment_webhook(
            "evt_insufficient",
            FAILED,
            order_id,
            total_minor(&order),
            Some("insufficient funds"),
        )
        .await;
    assert_eq!(failed.status, StatusCode::OK, "{:?}", failed.body);

    assert!(
        app.wait_for_event("Order", order_id, "OrderCancelled", SWEEP_WAIT)
            .await
    );
    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(types, ["OrderPlaced", "PaymentFailed", "OrderCancelled"]);
    assert_eq!(events[2].1["cause"], json!("expiry"));
    hold_settled(&app, listing, order_id).await;
    assert_placed(
        &app.place_order("next", vec![rental_item(listing, 1, &period.0, &period.1)])
            .await,
    );
}

#[tokio::test]
async fn a_payment_for_an_order_the_customer_cancelled_is_refunded_at_once() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let period = (at(1, 0), at(2, 0));
    let order = app
        .place_order(
            "cancels-first",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    let cancel = app
        .cancel_order(&app.customer("cancels-first"), order_id, json!({}))
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    assert_eq!(cancel.body["status"], "cancelled");
    // Someone else takes the unit.
    let other = app
        .place_order(
            "next-in-line",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    assert_placed(&other);

    app.pay(&order).await;
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
        decimal(&order.body["total"])
    );
    assert_eq!(app.order_status(order_id).await, "refunded");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldReleased"],
        "a cancelled order is not re-held"
    );
    let other_hold = app.hold_of(listing, other.uuid("order_id")).await;
    assert!(other_hold.is_live(), "{other_hold:?}");
}

#[tokio::test]
async fn a_second_payment_for_a_paid_order_is_refunded() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order(
            "pays-twice",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    app.pay(&order).await;
    app.pay(&order).await;

    let events = app.event_payloads("Order", order_id).await;
    let types: Vec<&str> = events.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "PaymentCaptured",
            "OrderConfirmed",
            "PaymentCaptured",
            "RefundIssued"
        ]
    );
    assert_eq!(
        decimal(&events[4].1["amount"]),
        decimal(&order.body["total"])
    );
    assert_eq!(app.order_status(order_id).await, "confirmed");
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldConfirmed"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn payments_arriving_around_the_expiry_always_end_with_a_confirmed_booking() {
    // Units are plentiful, so whether a payment beats the sweeper or not,
    // every order must end confirmed with its hold confirmed, never refunded.
    let app = TestApp::spawn_with(|config| {
        config.hold_ttl = Duration::from_secs(1);
        config.sweep_interval = Duration::from_millis(50);
    })
    .await;
    let vendor = app.register_vendor("Plenty").await;
    let listing = app.rental_listing(vendor, "day", "10.00", "0.00", 20).await;
    let mut orders = Vec::new();
    for n in 0..12 {
        let order = app
            .place_order(
                &format!("edge-{n}"),
                vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
            )
            .await;
        assert_placed(&order);
        orders.push(order);
    }
    let payments = orders.iter().enumerate().map(|(n, order)| {
        let app = &app;
        async move {
            // Spread over [0.6 s, 1.7 s] after placement: before, at and after expiry.
            tokio::time::sleep(Duration::from_millis(600 + 100 * n as u64)).await;
            app.pay(order).await
        }
    });
    futures::future::join_all(payments).await;
    // Let any sweep in progress finish.
    tokio::time::sleep(Duration::from_millis(500)).await;

    for order in &orders {
        let order_id = order.uuid("order_id");
        let types = app.event_types("Order", order_id).await;
        let hold = app.hold_of(listing, order_id).await;
        let history = app.hold_history(listing, hold.hold_id).await;
        assert_eq!(
            app.order_status(order_id).await,
            "confirmed",
            "order {types:?}, hold {history:?}"
        );
        assert_eq!(count(&types, "RefundIssued"), 0, "{types:?}");
        assert_eq!(hold.last, "HoldConfirmed", "{history:?}");
    }
}

/// A payment intent with no or no valid `metadata.order_id` is acknowledged
/// and ignored (200): strict_input::signed_events_the_ledger_does_not_handle_are_200_and_ignored.
#[tokio::test]
async fn a_signed_webhook_that_is_malformed_or_names_no_order_is_refused_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let order = app
        .place_order(
            "garbled",
            vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
        )
        .await;
    assert_placed(&order);
    let (order_id, minor) = (order.uuid("order_id"), total_minor(&order));
    let recorded = app.event_count().await;
    let now = Utc::now().timestamp();

    let unknown_order = payment_event("evt_unknown", SUCCEEDED, Uuid::now_v7(), minor, None);
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("malformed JSON", b"{\"id\": \"evt_x\", \"type\":".to_vec()),
        (
            "order never placed",
            serde_json::to_vec(&unknown_order).expect("json"),
        ),
    ];
    for (case, raw) in cases {
        let signature = command_api::routes::webhooks::sign(&raw, WEBHOOK_SECRET, now);
        let answer = app.send_raw_webhook(raw, &signature).await;
        assert!(
            answer.status.is_client_error(),
            "{case}: {} {:?}",
            answer.status,
            answer.body
        );
        assert_eq!(
            app.event_count().await,
            recorded,
            "{case}: nothing recorded"
        );
    }
    assert_eq!(app.order_status(order_id).await, "placed");
}

#[tokio::test]
async fn a_late_payment_that_can_re_hold_only_some_lines_releases_them_all_and_refunds() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let vendor = app.register_vendor("Two Boats").await;
    let free_boat = app.rental_listing(vendor, "day", "30.00", "0.00", 1).await;
    let taken_boat = app.rental_listing(vendor, "day", "35.00", "0.00", 1).await;
    let period = (at(4, 0), at(5, 0));
    let late = app
        .place_order(
            "two-boats",
            vec![
                rental_item(free_boat, 1, &period.0, &period.1),
                rental_item(taken_boat, 1, &period.0, &period.1),
            ],
        )
        .await;
    assert_placed(&late);
    let late_id = late.uuid("order_id");
    assert!(
        app.wait_for_event("Order", late_id, "OrderCancelled", SWEEP_WAIT)
            .await
    );
    for listing in [free_boat, taken_boat] {
        hold_settled(&app, listing, late_id).await;
    }
    let other = app
        .place_order(
            "one-boat",
            vec![rental_item(taken_boat, 1, &period.0, &period.1)],
        )
        .await;
    assert_placed(&other);
    app.pay(&other).await;

    app.pay(&late).await;
    let events = app.event_payloads("Order", late_id).await;
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
        decimal(&late.body["total"])
    );
    assert_eq!(app.order_status(late_id).await, "refunded");
    for listing in [free_boat, taken_boat] {
        let hold = app.hold_of(listing, late_id).await;
        assert!(
            !hold.is_live(),
            "the refunded order keeps no unit: {hold:?}"
        );
    }
    // The free boat is orderable; the other customer keeps the taken one.
    assert_placed(
        &app.place_order(
            "after",
            vec![rental_item(free_boat, 1, &period.0, &period.1)],
        )
        .await,
    );
    let kept = app.hold_of(taken_boat, other.uuid("order_id")).await;
    assert_eq!(kept.last, "HoldConfirmed");
}

#[tokio::test]
async fn a_payment_after_expiry_re_holds_free_units_even_once_the_policies_reacted_to_the_expiry() {
    // The sweeper is slow, so the expiry is driven by hand, as a sweeper that
    // crashed right after cancelling the order would leave it: the order is
    // cancelled by expiry, its hold not yet expired. The policies react to
    // the cancellation; the units stay free all along.
    let app = TestApp::spawn_with(|config| {
        config.hold_ttl = Duration::from_secs(1);
        config.sweep_interval = Duration::from_secs(600);
    })
    .await;
    let listing = one_unit_rental(&app).await;
    let period = (at(3, 0), at(4, 0));
    let order = app
        .place_order(
            "late-again",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    assert_placed(&order);
    let order_id = order.uuid("order_id");
    let hold = app.hold_of(listing, order_id).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;

    let replica = app.command_app();
    let expire = serde_json::from_value(json!({"ExpireUnpaid": {"at": Utc::now()}}))
        .expect("an ExpireUnpaid command");
    let context = command_api::context::CommandContext::background(
        command_api::Principal::system("sweeper"),
        "test:crashed-sweeper",
    );
    replica
        .orders
        .execute(&order_id.to_string(), expire, &context, "ExpireUnpaidOrder")
        .await
        .expect("the order expires");
    assert_eq!(app.order_status(order_id).await, "cancelled");
    // Wait for the policies to settle the hold of the cancelled order.
    let deadline = tokio::time::Instant::now() + SWEEP_WAIT;
    while app.hold_history(listing, hold.hold_id).await.len() < 2 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing settled the hold of the expired order"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    app.pay(&order).await;
    let types = app.event_types("Order", order_id).await;
    let history = app.hold_history(listing, hold.hold_id).await;
    assert_eq!(
        app.order_status(order_id).await,
        "confirmed",
        "units still free: the order is re-held; order {types:?}, hold {history:?}"
    );
    assert_eq!(count(&types, "OrderReconfirmed"), 1, "{types:?}");
    assert_eq!(count(&types, "RefundIssued"), 0, "{types:?}");
    assert_eq!(history.last().map(String::as_str), Some("HoldConfirmed"));
    assert_unavailable(
        &app.place_order("after", vec![rental_item(listing, 1, &period.0, &period.1)])
            .await,
    );
}
