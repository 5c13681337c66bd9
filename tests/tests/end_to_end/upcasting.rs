//! Event upcasting (DESIGN.md "Event store": an old version is upcast on
//! load, never rewritten). `OrderCancelled` 1.0 stored `by_expiry: bool`;
//! 2.0 stores `cause: "customer" | "expiry"`. Rows written by an older
//! version of the ledger are inserted here as it wrote them, into orders
//! whose other events are normal; every reader then sees 2.0: the command
//! side, the policies, the read models, the event API and the state route.
//! The stored rows stay as they were.

use std::time::Duration;

use command_api::Role;
use ledger_tests::pipeline::eventually;
use ledger_tests::scenario::rental_days;
use ledger_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// Inserts `OrderCancelled` as version 1.0 wrote it, as the order's next
/// event; returns its position and the stored payload.
async fn insert_v1_cancellation(app: &TestApp, order_id: Uuid, by_expiry: bool) -> (i64, Value) {
    let (sequence, metadata): (i64, Value) = sqlx::query_as(
        "SELECT sequence, metadata::jsonb FROM events
          WHERE aggregate_type = 'Order' AND aggregate_id = $1
          ORDER BY sequence DESC LIMIT 1",
    )
    .bind(order_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("the order's last event");
    let reason = if by_expiry {
        "hold expired"
    } else {
        "changed my mind"
    };
    let payload = json!({"OrderCancelled": {
        "reason": reason,
        "by_expiry": by_expiry,
        "at": chrono::Utc::now(),
    }});
    let position: i64 = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         VALUES ('Order', $1, $2, 'OrderCancelled', '1.0', $3, $4)
         RETURNING global_position",
    )
    .bind(order_id.to_string())
    .bind(sequence + 1)
    .bind(&payload)
    .bind(&metadata)
    .fetch_one(&app.pool)
    .await
    .expect("insert a 1.0 cancellation");
    (position, payload)
}

#[tokio::test]
async fn cancellations_stored_as_version_1_load_as_version_2_everywhere() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Old Timer Rentals").await;
    let kayak = app
        .rental_listing(vendor, "day", "40.00", "100.00", 3)
        .await;
    let by_customer = app
        .place("cust-a", vec![rental_days(kayak, 1, 1, 1 + 1)])
        .await
        .uuid("order_id");
    let by_expiry = app
        .place("cust-b", vec![rental_days(kayak, 1, 5, 5 + 1)])
        .await
        .uuid("order_id");
    let (customer_position, customer_payload) =
        insert_v1_cancellation(&app, by_customer, false).await;
    let (expiry_position, expiry_payload) = insert_v1_cancellation(&app, by_expiry, true).await;

    // The command side loads them (through the store's upcasters).
    let commands = app.command_app();
    let order = commands
        .orders
        .load(
            &by_customer.to_string(),
            &command_api::Principal::system("test"),
        )
        .await
        .unwrap();
    assert_eq!(json!(order.status()), "cancelled");
    assert!(!order.cancelled_by_expiry());
    assert_eq!(
        order.cancel_reason().and_then(|r| r.clear_text()),
        Some("changed my mind")
    );
    let hold = order.hold_ids()[0].1;
    let expired = commands
        .orders
        .load(
            &by_expiry.to_string(),
            &command_api::Principal::system("test"),
        )
        .await
        .unwrap();
    assert_eq!(json!(expired.status()), "cancelled");
    assert!(expired.cancelled_by_expiry());

    // A further command on the order sees the cancellation: cancelling
    // again changes nothing, a late payment is refunded at once.
    let again = app
        .cancel_order(&app.customer("cust-a"), by_customer, json!({}))
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);
    assert_eq!(again.body["status"], "cancelled");
    let total = command_api::routes::money(order.total());
    app.pay(&ledger_tests::Answer {
        status: StatusCode::CREATED,
        headers: Default::default(),
        body: json!({"order_id": by_customer, "total": total}),
    })
    .await;
    let types: Vec<String> = app.event_types("Order", by_customer).await;
    assert_eq!(
        types,
        [
            "OrderPlaced",
            "OrderCancelled",
            "PaymentCaptured",
            "RefundIssued"
        ]
    );

    // The policies decoded it: a customer's cancellation releases the hold.
    assert!(
        eventually(Duration::from_secs(15), || async {
            app.hold_history(kayak, hold)
                .await
                .last()
                .map(String::as_str)
                == Some("HoldReleased")
        })
        .await,
        "{:?}",
        app.hold_history(kayak, hold).await
    );

    // The read models show both cancellations.
    for (order_id, position) in [
        (by_expiry, expiry_position),
        (by_customer, customer_position),
    ] {
        let shown = eventually(Duration::from_secs(15), || async {
            let answer = app
                .send(
                    Method::GET,
                    &format!("/v1/orders/{order_id}"),
                    Some(&app.admin()),
                    None,
                    &[("Ledger-Min-Position", &position.to_string())],
                )
                .await;
            answer.status == StatusCode::OK
                && matches!(
                    answer.body["status"].as_str(),
                    Some("cancelled" | "refunded")
                )
        })
        .await;
        assert!(shown, "order {order_id} is not shown cancelled");
    }

    // The event API shows 2.0 (and what was stored); the state route
    // rebuilds the order from it.
    let analyst = app.token(Role::Analyst, "analyst-1", None);
    for (order_id, cause, by_expiry) in [
        (by_customer, "customer", false),
        (by_expiry, "expiry", true),
    ] {
        let answer = app
            .send(
                Method::GET,
                &format!("/v1/aggregates/Order/{order_id}/events"),
                Some(&analyst),
                None,
                &[],
            )
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        let cancellation = &answer.body["events"][1];
        assert_eq!(cancellation["event_type"], "OrderCancelled");
        assert_eq!(cancellation["event_version"], "2.0");
        assert_eq!(cancellation["stored_version"], "1.0");
        let body = &cancellation["payload"]["OrderCancelled"];
        assert_eq!(body["cause"], cause, "{body}");
        assert!(body.get("by_expiry").is_none(), "{body}");

        let state = app
            .send(
                Method::GET,
                &format!("/v1/aggregates/Order/{order_id}/state?as_of_sequence=2"),
                Some(&analyst),
                None,
                &[],
            )
            .await;
        assert_eq!(state.status, StatusCode::OK, "{:?}", state.body);
        assert_eq!(state.body["sequence"], 2);
        assert_eq!(state.body["state"]["status"], "cancelled");
        assert_eq!(state.body["state"]["cancelled_by_expiry"], by_expiry);
    }
    // Paged, once the relay published it, too.
    let published = eventually(Duration::from_secs(15), || async {
        let answer = app
            .send(
                Method::GET,
                &format!(
                    "/v1/events?after={}&limit=1&event_type=OrderCancelled",
                    customer_position - 1
                ),
                Some(&analyst),
                None,
                &[],
            )
            .await;
        answer.body["events"][0]["payload"]["OrderCancelled"]["cause"] == "customer"
    })
    .await;
    assert!(published);

    // The stored rows are exactly as the old version wrote them.
    for (position, payload) in [
        (customer_position, customer_payload),
        (expiry_position, expiry_payload),
    ] {
        let (version, stored): (String, Value) = sqlx::query_as(
            "SELECT event_version, payload::jsonb FROM events WHERE global_position = $1",
        )
        .bind(position)
        .fetch_one(&app.pool)
        .await
        .unwrap();
        assert_eq!(version, "1.0");
        assert_eq!(stored, payload);
    }
    // New cancellations are written as 2.0.
    let fresh = app
        .place("cust-c", vec![rental_days(kayak, 1, 9, 9 + 1)])
        .await
        .uuid("order_id");
    let cancelled = app
        .cancel_order(&app.customer("cust-c"), fresh, json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    let (version, stored): (String, Value) = sqlx::query_as(
        "SELECT event_version, payload::jsonb FROM events
          WHERE aggregate_id = $1 AND event_type = 'OrderCancelled'",
    )
    .bind(fresh.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(version, "2.0");
    assert_eq!(stored["OrderCancelled"]["cause"], "customer");
}
