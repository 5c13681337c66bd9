//! The expiry of unpaid holds: the sweeper frees the units of unpaid and
//! stranded holds, never those of a paid order.

use super::*;

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
    let order = app.place("forgetful", items.clone()).await;
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

    app.place("patient", items).await;
}

#[tokio::test]
async fn holds_stranded_without_an_order_are_expired_by_the_sweeper() {
    // A saga of an earlier version (holds and order in separate commits)
    // that died after placing a hold, before recording the order: logs
    // written then may hold such holds, which must not block a unit for ever.
    let app = spawn_short_ttl(Duration::from_secs(2)).await;
    let listing = one_unit_rental(&app).await;
    let (order_id, hold_id) = (Uuid::now_v7(), Uuid::now_v7());
    let now = Utc::now();
    let expires_at = now + chrono::Duration::seconds(2);
    let period = (at(3, 0), at(4, 0));

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
    // The availability read model, where the sweeper found the hold, sees
    // it expired too.
    let settled = ledger_tests::pipeline::eventually(SWEEP_WAIT, || async {
        let kind: Option<String> = sqlx::query_scalar(
            "SELECT kind FROM rm_allocations WHERE listing_id = $1 AND allocation_id = $2",
        )
        .bind(listing)
        .bind(hold_id)
        .fetch_optional(&app.pool)
        .await
        .expect("read the allocation");
        kind.as_deref() == Some("expired")
    })
    .await;
    assert!(settled, "the read model shows the hold expired");
    assert_placed(
        &app.place_order(
            "blocked",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await,
    );
}

#[tokio::test]
async fn the_sweeper_never_releases_a_paid_orders_units() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let listing = one_unit_rental(&app).await;
    let period = (at(2, 0), at(5, 0));
    let order = app
        .place(
            "prompt-payer",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
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

#[tokio::test]
async fn a_failed_payment_leaves_the_order_placed_until_its_holds_expire() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let listing = one_unit_rental(&app).await;
    let period = (at(6, 0), at(7, 0));
    let order = app
        .place("broke", vec![rental_item(listing, 1, &period.0, &period.1)])
        .await;
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
