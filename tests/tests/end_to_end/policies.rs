//! The stream-fed policies (command-api/src/policies.rs) do the follow-up
//! work of an order's events even when no HTTP handler ran its reactions:
//! each test records a domain event straight through an aggregate's command
//! bus (as a crash after the first command of a request would leave it),
//! then waits for the policy's commands in the events table.
//!
//! And duplicate work is harmless: the HTTP path and the policies both
//! react to the same events, and a full redelivery of the log to the
//! policies records nothing new.

use std::collections::HashMap;
use std::time::Duration;

use command_api::context::CommandContext;
use command_api::{AppState, Principal};
use ledger_tests::answer::uuid_of;
use ledger_tests::events::Recorded;
use ledger_tests::pipeline::checkpoint;
use ledger_tests::webhooks::total_minor;
use ledger_tests::Marketplace;
use ledger_tests::{at, Answer, TestApp};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use uuid::Uuid;

/// The principal the policies act as.
const POLICIES: &str = "system:policies";
/// How long a policy may take to react.
const POLICY_WAIT: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// A domain command from its serialised form (`{"Variant": {...}}`); the
/// target type is the aggregate's command type, inferred at the call.
fn command<C: DeserializeOwned>(value: Value) -> C {
    serde_json::from_value(value).expect("a well-formed domain command")
}

fn background() -> CommandContext {
    CommandContext::background(Principal::system("test"), "t")
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// Runs an Order command straight on the aggregate; returns its position.
async fn order_command(cmd: &AppState, order_id: Uuid, value: Value, name: &str) -> i64 {
    cmd.orders
        .execute(&order_id.to_string(), command(value), &background(), name)
        .await
        .unwrap_or_else(|e| panic!("{name} on order {order_id}: {e:?}"))
        .position
}

/// Waits until the aggregate has `count` events of `event_type`; returns them.
async fn wait_for(
    app: &TestApp,
    aggregate_type: &str,
    aggregate_id: Uuid,
    event_type: &str,
    count: usize,
) -> Vec<Recorded> {
    let deadline = tokio::time::Instant::now() + POLICY_WAIT;
    loop {
        let found: Vec<Recorded> = app
            .recorded(aggregate_type, aggregate_id)
            .await
            .into_iter()
            .filter(|e| e.event_type == event_type)
            .collect();
        if found.len() >= count {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no {count} {event_type} on {aggregate_type} {aggregate_id} within {POLICY_WAIT:?}: {:?}",
            app.event_types(aggregate_type, aggregate_id).await
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the policies have applied the whole log (including the
/// events their own commands recorded), so nothing more is on its way.
async fn policies_settled(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + POLICY_WAIT;
    loop {
        let head = app.head().await;
        if checkpoint(&app.pool, "policies").await >= head {
            // Still at the head a moment later: nothing in flight.
            tokio::time::sleep(Duration::from_millis(300)).await;
            if checkpoint(&app.pool, "policies").await >= app.head().await {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the policies did not reach the head {head} within {POLICY_WAIT:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[track_caller]
fn assert_by_policy(event: &Recorded, command: &str, causes: &[&Recorded]) {
    assert_eq!(
        event.metadata["principal"], POLICIES,
        "{} not recorded by the policies: {}",
        event.event_type, event.metadata
    );
    assert_eq!(event.metadata["command"], command, "{}", event.metadata);
    let cause = event.metadata["causation_id"].as_str().unwrap_or("");
    assert!(
        causes.iter().any(|c| c.event_id == cause),
        "{} caused by `{cause}`, not by one of {:?}",
        event.event_type,
        causes
            .iter()
            .map(|c| (&c.event_type, &c.event_id))
            .collect::<Vec<_>>()
    );
}

fn of_type<'a>(events: &'a [Recorded], event_type: &str) -> Vec<&'a Recorded> {
    events
        .iter()
        .filter(|e| e.event_type == event_type)
        .collect()
}

fn line_id(order: &Answer, vendor_id: Uuid) -> Uuid {
    order.body["lines"]
        .as_array()
        .and_then(|lines| {
            lines
                .iter()
                .find(|l| l["vendor_id"] == vendor_id.to_string())
        })
        .map(|l| uuid_of(&l["line_id"]))
        .unwrap_or_else(|| panic!("no line of {vendor_id}: {:?}", order.body))
}

fn net_of(order: &Answer, vendor_id: Uuid) -> String {
    order.body["vendors"]
        .as_array()
        .and_then(|parts| {
            parts
                .iter()
                .find(|p| p["vendor_id"] == vendor_id.to_string())
        })
        .and_then(|p| p["net"].as_str())
        .unwrap_or_else(|| panic!("no part of {vendor_id}: {:?}", order.body))
        .to_owned()
}

/// Events of `event_type` on the aggregate that concern `hold_id`.
async fn hold_events(app: &TestApp, listing_id: Uuid, hold_id: Uuid, event_type: &str) -> usize {
    app.recorded("Inventory", listing_id)
        .await
        .iter()
        .filter(|e| e.event_type == event_type && e.payload["hold_id"] == hold_id.to_string())
        .count()
}

async fn http(app: &TestApp, path: &str, token: &str, body: Value) -> Answer {
    let answer = app
        .send(Method::POST, path, Some(token), Some(&body), &[])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
    answer
}

/// Records a full payment of the order straight on the aggregate.
async fn record_payment(cmd: &AppState, order: &Answer, payment_id: &str) -> i64 {
    order_command(
        cmd,
        order.uuid("order_id"),
        json!({"RecordPayment": {
            "payment_id": payment_id, "intent_id": format!("pi_{payment_id}"),
            "amount_minor": total_minor(order), "currency": "usd",
            "outcome": "Succeeded", "received_at": now(),
        }}),
        "RecordPayment",
    )
    .await
}

// ---------------------------------------------------------------------------
// Each policy does its work on its own
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_payment_recorded_behind_the_api_gets_the_orders_holds_confirmed_by_the_policy() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(3, 10).await;
    let order = app.place("alice", shop.mixed_order()).await;
    let order_id = order.uuid("order_id");
    let cmd = app.command_app();

    record_payment(&cmd, &order, "evt_direct").await;
    let order_events = app.recorded("Order", order_id).await;
    let causes: Vec<&Recorded> = order_events
        .iter()
        .filter(|e| matches!(e.event_type.as_str(), "PaymentCaptured" | "OrderConfirmed"))
        .collect();
    assert_eq!(causes.len(), 2, "{order_events:?}");

    for listing in [shop.kayak, shop.boots] {
        let hold = app.hold_of(listing, order_id).await.hold_id;
        let confirmed = wait_for(&app, "Inventory", listing, "HoldConfirmed", 1).await;
        assert_eq!(confirmed[0].payload["hold_id"], hold.to_string());
        assert_by_policy(&confirmed[0], "ConfirmHold", &causes);
    }
    policies_settled(&app).await;
    for listing in [shop.kayak, shop.boots] {
        let hold = app.hold_of(listing, order_id).await.hold_id;
        assert_eq!(
            hold_events(&app, listing, hold, "HoldConfirmed").await,
            1,
            "confirmed once, though the policy saw PaymentCaptured and OrderConfirmed"
        );
    }
    // The paid order keeps its units in the read model.
    let booked = app
        .send(
            Method::GET,
            &format!(
                "/v1/listings/{}/availability?from={}&to={}",
                shop.kayak,
                at(1, 0),
                at(3, 0)
            ),
            Some(&app.customer("bob")),
            None,
            &[("Ledger-Min-Position", &app.head().await.to_string())],
        )
        .await;
    assert_eq!(booked.body["free_min"], 2, "{:?}", booked.body);
    app.stop().await;
}

#[tokio::test]
async fn an_order_cancelled_behind_the_api_gets_its_holds_released_by_the_policy() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(3, 10).await;
    let cmd = app.command_app();

    // Unpaid: OrderCancelled alone.
    let unpaid = app.place("alice", shop.mixed_order()).await;
    let unpaid_id = unpaid.uuid("order_id");
    order_command(
        &cmd,
        unpaid_id,
        json!({"Cancel": {"reason": "direct", "at": now()}}),
        "CancelOrder",
    )
    .await;
    let order_events = app.recorded("Order", unpaid_id).await;
    let cancelled = of_type(&order_events, "OrderCancelled");
    assert_eq!(cancelled.len(), 1, "{order_events:?}");
    for listing in [shop.kayak, shop.boots] {
        let hold = app.hold_of(listing, unpaid_id).await.hold_id;
        let released = wait_for(&app, "Inventory", listing, "HoldReleased", 1).await;
        let released: Vec<&Recorded> = released
            .iter()
            .filter(|e| e.payload["hold_id"] == hold.to_string())
            .collect();
        assert_eq!(released.len(), 1);
        assert_by_policy(released[0], "ReleaseHold", &cancelled);
    }

    // Paid through the API (holds confirmed), then cancelled behind it:
    // OrderCancelled and RefundIssued; the booked units are released too.
    let paid = app.place("alice", shop.mixed_order()).await;
    let paid_id = paid.uuid("order_id");
    app.pay(&paid).await;
    order_command(
        &cmd,
        paid_id,
        json!({"Cancel": {"reason": null, "at": now()}}),
        "CancelOrder",
    )
    .await;
    let order_events = app.recorded("Order", paid_id).await;
    assert_eq!(
        of_type(&order_events, "RefundIssued").len(),
        1,
        "{order_events:?}"
    );
    let causes: Vec<&Recorded> = order_events
        .iter()
        .filter(|e| matches!(e.event_type.as_str(), "OrderCancelled" | "RefundIssued"))
        .collect();
    for listing in [shop.kayak, shop.boots] {
        let hold = app.hold_of(listing, paid_id).await.hold_id;
        let released = wait_for(&app, "Inventory", listing, "HoldReleased", 2).await;
        let released: Vec<&Recorded> = released
            .iter()
            .filter(|e| e.payload["hold_id"] == hold.to_string())
            .collect();
        assert_eq!(released.len(), 1);
        assert_by_policy(released[0], "ReleaseHold", &causes);
    }
    policies_settled(&app).await;
    for (listing, order_id) in [
        (shop.kayak, unpaid_id),
        (shop.boots, unpaid_id),
        (shop.kayak, paid_id),
        (shop.boots, paid_id),
    ] {
        let hold = app.hold_of(listing, order_id).await.hold_id;
        assert_eq!(hold_events(&app, listing, hold, "HoldReleased").await, 1);
    }
    // The stock is back in the read model.
    let detail = app
        .send(
            Method::GET,
            &format!("/v1/listings/{}", shop.boots),
            Some(&app.customer("bob")),
            None,
            &[("Ledger-Min-Position", &app.head().await.to_string())],
        )
        .await;
    assert_eq!(detail.body["stock"], 10, "{:?}", detail.body);
    app.stop().await;
}

#[tokio::test]
async fn a_return_recorded_behind_the_api_is_recorded_on_the_inventory_and_credits_the_vendor() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(3, 10).await;
    let cmd = app.command_app();
    let order = app
        .place(
            "alice",
            json!([{"listing_id": shop.kayak, "quantity": 2, "start": at(1, 0), "end": at(3, 0)}]),
        )
        .await;
    let order_id = order.uuid("order_id");
    let line = line_id(&order, shop.harbour);
    app.pay(&order).await;
    http(
        &app,
        &format!("/v1/orders/{order_id}/lines/{line}/pickup"),
        &app.vendor(shop.harbour),
        json!({}),
    )
    .await;

    order_command(
        &cmd,
        order_id,
        json!({"ReturnLine": {"line_id": line, "returned_at": at(2, 0),
                              "damage_withheld": "30.00", "now": at(2, 1)}}),
        "ReturnLine",
    )
    .await;
    let order_events = app.recorded("Order", order_id).await;
    let returned = of_type(&order_events, "LineReturned");
    let fulfilled = of_type(&order_events, "VendorPartFulfilled");
    assert_eq!(
        (returned.len(), fulfilled.len()),
        (1, 1),
        "{order_events:?}"
    );

    let hold = app.hold_of(shop.kayak, order_id).await.hold_id;
    let recorded_return = wait_for(&app, "Inventory", shop.kayak, "ReturnRecorded", 1).await;
    assert_eq!(recorded_return[0].payload["hold_id"], hold.to_string());
    assert_eq!(
        recorded_return[0].payload["returned_at"]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok()),
        chrono::DateTime::parse_from_rfc3339(&at(2, 0)).ok()
    );
    assert_by_policy(&recorded_return[0], "RecordReturn", &returned);

    let credited = wait_for(&app, "Vendor", shop.harbour, "DamageCredited", 1).await;
    assert_eq!(credited[0].payload["order_id"], order_id.to_string());
    assert_eq!(credited[0].payload["line_id"], line.to_string());
    assert_eq!(
        credited[0].payload["amount"].as_str().map(str::to_owned),
        Some("30.00".to_owned())
    );
    assert_by_policy(&credited[0], "CreditDamage", &returned);

    let available = wait_for(&app, "Vendor", shop.harbour, "EarningsMadeAvailable", 1).await;
    assert_eq!(available[0].payload["order_id"], order_id.to_string());
    assert_eq!(
        available[0].payload["amount"].as_str().map(str::to_owned),
        Some(net_of(&order, shop.harbour))
    );
    assert_by_policy(&available[0], "MakeEarningsAvailable", &fulfilled);

    policies_settled(&app).await;
    let vendor_events = app.event_types("Vendor", shop.harbour).await;
    assert_eq!(
        vendor_events
            .iter()
            .filter(|t| *t == "DamageCredited" || *t == "EarningsMadeAvailable")
            .count(),
        2,
        "{vendor_events:?}"
    );
    // The unit is free from the return on, in the read model.
    let availability = app
        .send(
            Method::GET,
            &format!(
                "/v1/listings/{}/availability?from={}&to={}",
                shop.kayak,
                at(1, 0),
                at(3, 0)
            ),
            Some(&app.customer("bob")),
            None,
            &[("Ledger-Min-Position", &app.head().await.to_string())],
        )
        .await;
    let free: Vec<i64> = availability.body["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| s["free"].as_i64().expect("free"))
        .collect();
    assert_eq!(free, vec![1, 3], "{:?}", availability.body);
    app.stop().await;
}

#[tokio::test]
async fn a_part_fulfilled_behind_the_api_makes_the_vendors_earnings_available() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(3, 10).await;
    let cmd = app.command_app();
    let order = app.place("alice", shop.mixed_order()).await;
    let order_id = order.uuid("order_id");
    app.pay(&order).await;

    for (variant, name) in [("ShipPart", "ShipPart"), ("DeliverPart", "DeliverPart")] {
        order_command(
            &cmd,
            order_id,
            json!({ variant: {"vendor_id": shop.alpine, "at": now()} }),
            name,
        )
        .await;
    }
    let order_events = app.recorded("Order", order_id).await;
    let fulfilled = of_type(&order_events, "VendorPartFulfilled");
    assert_eq!(fulfilled.len(), 1, "{order_events:?}");
    assert_eq!(fulfilled[0].payload["vendor_id"], shop.alpine.to_string());

    let available = wait_for(&app, "Vendor", shop.alpine, "EarningsMadeAvailable", 1).await;
    assert_eq!(available[0].payload["order_id"], order_id.to_string());
    assert_eq!(
        available[0].payload["amount"].as_str().map(str::to_owned),
        Some(net_of(&order, shop.alpine))
    );
    assert_by_policy(&available[0], "MakeEarningsAvailable", &fulfilled);

    policies_settled(&app).await;
    assert_eq!(
        app.event_types("Vendor", shop.alpine)
            .await
            .iter()
            .filter(|t| *t == "EarningsMadeAvailable")
            .count(),
        1
    );
    // The other vendor's part is not fulfilled: nothing for it yet.
    assert!(!app
        .event_types("Vendor", shop.harbour)
        .await
        .iter()
        .any(|t| t == "EarningsMadeAvailable"));
    app.stop().await;
}

// ---------------------------------------------------------------------------
// Duplicate work is harmless
// ---------------------------------------------------------------------------

/// How many events of each type each aggregate has.
async fn census(app: &TestApp) -> HashMap<(String, String, String), i64> {
    sqlx::query_as::<_, (String, String, String, i64)>(
        "SELECT aggregate_type, aggregate_id, event_type, count(*) FROM events
          GROUP BY aggregate_type, aggregate_id, event_type",
    )
    .fetch_all(&app.pool)
    .await
    .expect("count events")
    .into_iter()
    .map(|(t, id, e, n)| ((t, id, e), n))
    .collect()
}

#[tokio::test]
async fn the_http_path_and_the_policies_together_record_each_follow_up_once() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_harbour_and_alpine(3, 10).await;
    let order = app.place("alice", shop.mixed_order()).await;
    let order_id = order.uuid("order_id");
    let kayak_line = line_id(&order, shop.harbour);

    // Paid twice by the provider (a redelivered webhook).
    let event_id = format!("evt_{}", Uuid::new_v4().simple());
    for _ in 0..2 {
        let answer = app
            .payment_webhook(
                &event_id,
                "payment_intent.succeeded",
                order_id,
                total_minor(&order),
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let alpine = app.vendor(shop.alpine);
    for step in ["ship", "deliver", "deliver"] {
        http(
            &app,
            &format!("/v1/orders/{order_id}/vendors/{}/{step}", shop.alpine),
            &alpine,
            json!({}),
        )
        .await;
    }
    let harbour = app.vendor(shop.harbour);
    http(
        &app,
        &format!("/v1/orders/{order_id}/lines/{kayak_line}/pickup"),
        &harbour,
        json!({}),
    )
    .await;
    for _ in 0..2 {
        http(
            &app,
            &format!("/v1/orders/{order_id}/lines/{kayak_line}/return"),
            &harbour,
            json!({"damage_withheld": "5.00"}),
        )
        .await;
    }
    // And one order cancelled through the API.
    let other = app.place("alice", shop.mixed_order()).await;
    let other_id = other.uuid("order_id");
    for _ in 0..2 {
        http(
            &app,
            &format!("/v1/orders/{other_id}/cancel"),
            &app.customer("alice"),
            json!({}),
        )
        .await;
    }
    policies_settled(&app).await;

    for listing in [shop.kayak, shop.boots] {
        let hold = app.hold_of(listing, order_id).await.hold_id;
        assert_eq!(hold_events(&app, listing, hold, "HoldConfirmed").await, 1);
        let other_hold = app.hold_of(listing, other_id).await.hold_id;
        assert_eq!(
            hold_events(&app, listing, other_hold, "HoldReleased").await,
            1
        );
    }
    let hold = app.hold_of(shop.kayak, order_id).await.hold_id;
    assert_eq!(
        hold_events(&app, shop.kayak, hold, "ReturnRecorded").await,
        1
    );
    for (vendor, expected) in [
        (
            shop.alpine,
            vec!["VendorRegistered", "EarningsMadeAvailable"],
        ),
        (
            shop.harbour,
            vec![
                "VendorRegistered",
                "DamageCredited",
                "EarningsMadeAvailable",
            ],
        ),
    ] {
        assert_eq!(app.event_types("Vendor", vendor).await, expected);
    }
    let order_events = app.event_types("Order", order_id).await;
    assert_eq!(
        order_events
            .iter()
            .filter(|t| *t == "PaymentCaptured")
            .count(),
        1,
        "{order_events:?}"
    );
    assert_eq!(
        order_events.last().map(String::as_str),
        Some("OrderCompleted")
    );

    // A redelivery of the whole log to the policies (their checkpoint
    // rewound, as after a lost one) records nothing but what triggers it.
    let before = census(&app).await;
    sqlx::query("UPDATE consumer_checkpoints SET position = 0 WHERE name = 'policies'")
        .execute(&app.pool)
        .await
        .expect("rewind the policies");
    let trigger = app.register_vendor("Trigger").await;
    policies_settled(&app).await;
    let mut after = census(&app).await;
    assert_eq!(
        after.remove(&(
            "Vendor".to_owned(),
            trigger.to_string(),
            "VendorRegistered".to_owned()
        )),
        Some(1)
    );
    assert_eq!(after, before, "a redelivery recorded new events");
    app.stop().await;
}
