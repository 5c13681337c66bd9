//! Payments that arrive after the hold lapsed: units still free are held
//! again and the order confirmed; units taken meanwhile mean a refund in
//! full, whatever the sweeper or the policies did first.

use super::*;

#[tokio::test]
async fn a_payment_after_expiry_re_holds_units_still_free_and_confirms() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let listing = one_unit_rental(&app).await;
    let period = (at(8, 0), at(9, 0));
    let order = app
        .place(
            "late-payer",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
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
        .place(
            "too-late",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    let late_id = late.uuid("order_id");
    assert!(
        app.wait_for_event("Order", late_id, "OrderCancelled", SWEEP_WAIT)
            .await
    );

    // Someone else books and pays for the freed unit.
    let other = app
        .place("quick", vec![rental_item(listing, 1, &period.0, &period.1)])
        .await;
    app.pay(&other).await;
    let other_id = other.uuid("order_id");
    let other_hold = app.hold_of(listing, other_id).await;

    app.pay(&late).await;
    assert_cancelled_then_refunded_in_full(&app, &late).await;

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
        .place("thief", vec![rental_item(listing, 1, &taken.0, &taken.1)])
        .await;
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
            .place(
                &format!("edge-{n}"),
                vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
            )
            .await;
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

#[tokio::test]
async fn a_late_payment_that_can_re_hold_only_some_lines_releases_them_all_and_refunds() {
    let app = spawn_short_ttl(Duration::from_secs(1)).await;
    let vendor = app.register_vendor("Two Boats").await;
    let free_boat = app.rental_listing(vendor, "day", "30.00", "0.00", 1).await;
    let taken_boat = app.rental_listing(vendor, "day", "35.00", "0.00", 1).await;
    let period = (at(4, 0), at(5, 0));
    let late = app
        .place(
            "two-boats",
            vec![
                rental_item(free_boat, 1, &period.0, &period.1),
                rental_item(taken_boat, 1, &period.0, &period.1),
            ],
        )
        .await;
    let late_id = late.uuid("order_id");
    assert!(
        app.wait_for_event("Order", late_id, "OrderCancelled", SWEEP_WAIT)
            .await
    );
    for listing in [free_boat, taken_boat] {
        hold_settled(&app, listing, late_id).await;
    }
    let other = app
        .place(
            "one-boat",
            vec![rental_item(taken_boat, 1, &period.0, &period.1)],
        )
        .await;
    app.pay(&other).await;

    app.pay(&late).await;
    assert_cancelled_then_refunded_in_full(&app, &late).await;
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
        .place(
            "late-again",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
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
