//! Payments and cancellations: a paid order cancelled is refunded and its
//! units freed, and a payment racing or following a cancellation leaves no
//! money or units stranded.

use super::*;

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
    let order = app.place("changes-mind", items.clone()).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_payment_racing_a_cancellation_leaves_no_money_or_units_stranded() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Racy").await;
    let listing = app.rental_listing(vendor, "day", "10.00", "0.00", 5).await;
    for n in 0..5 {
        let customer = format!("racer-{n}");
        let order = app
            .place(
                &customer,
                vec![rental_item(listing, 1, &at(1, 0), &at(2, 0))],
            )
            .await;
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
async fn a_payment_for_an_order_the_customer_cancelled_is_refunded_at_once() {
    let app = TestApp::spawn().await;
    let listing = one_unit_rental(&app).await;
    let period = (at(1, 0), at(2, 0));
    let order = app
        .place(
            "cancels-first",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;
    let order_id = order.uuid("order_id");
    let cancel = app
        .cancel_order(&app.customer("cancels-first"), order_id, json!({}))
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    assert_eq!(cancel.body["status"], "cancelled");
    // Someone else takes the unit.
    let other = app
        .place(
            "next-in-line",
            vec![rental_item(listing, 1, &period.0, &period.1)],
        )
        .await;

    app.pay(&order).await;
    assert_cancelled_then_refunded_in_full(&app, &order).await;
    let hold = app.hold_of(listing, order_id).await;
    assert_eq!(
        app.hold_history(listing, hold.hold_id).await,
        ["HoldPlaced", "HoldReleased"],
        "a cancelled order is not re-held"
    );
    let other_hold = app.hold_of(listing, other.uuid("order_id")).await;
    assert!(other_hold.is_live(), "{other_hold:?}");
}

/// Σ balances of the accounts whose name starts with `prefix`, in the
/// trial balance at `min` or later.
async fn balance_of(app: &TestApp, prefix: &str, min: i64) -> Decimal {
    let answer = app
        .get_at("/v1/ledger/trial-balance", &app.admin(), Some(min))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .filter(|a| a["account"].as_str().is_some_and(|n| n.starts_with(prefix)))
        .map(|a| decimal(&a["balance"]))
        .sum()
}

/// 4 × 25.00 (no tax, fee 10 %): 30.00 refunded in part, then the order is
/// cancelled: the cancellation refunds the 70.00 left (no policy), the
/// stock comes back, each refund gets its credit note, and every account
/// the order touched is back at zero.
#[tokio::test]
async fn a_paid_order_refunded_in_part_can_still_be_cancelled_for_the_rest() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(vendor, "25.00", 4).await;
    let items = vec![json!({"listing_id": paddle, "quantity": 4})];
    let order = app.place("changes-mind", items.clone()).await;
    let order_id = order.uuid("order_id");
    app.pay(&order).await;
    let refund = app
        .post(
            &format!("/v1/orders/{order_id}/refunds"),
            &app.admin(),
            json!({"amount": "30.00", "reason": "goodwill"}),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{:?}", refund.body);

    let cancel = app
        .cancel_order(&app.customer("changes-mind"), order_id, json!({}))
        .await;
    assert_eq!(cancel.status, StatusCode::OK, "{:?}", cancel.body);
    assert_eq!(cancel.body["status"], "refunded", "{:?}", cancel.body);
    let events = app.event_payloads("Order", order_id).await;
    let issued: Vec<Decimal> = events
        .iter()
        .filter(|(t, _)| t == "RefundIssued")
        .map(|(_, p)| decimal(&p["amount"]))
        .collect();
    assert_eq!(issued, [Decimal::new(7000, 2)], "{events:?}");
    // The stock is back for the next customer.
    assert_placed(&app.place_order("next", items).await);

    let head = ledger_tests::pipeline::settle(&app, Duration::from_secs(60))
        .await
        .expect("the read models settle");
    for account in [
        "cash",
        "customer_funds",
        "platform_fees",
        "tax_payable",
        "vendor_pending:",
        "vendor_available:",
    ] {
        assert_eq!(
            balance_of(&app, account, head).await,
            Decimal::ZERO,
            "{account}"
        );
    }
    let earnings = app
        .get_at(
            &format!("/v1/vendors/{vendor}/earnings"),
            &app.admin(),
            Some(head),
        )
        .await;
    // The order leaves the vendor's earnings whole, its refund with it.
    for figure in ["gross", "platform_fees", "net", "pending", "refunded"] {
        assert_eq!(
            earnings.body[figure], "0.00",
            "{figure}: {:?}",
            earnings.body
        );
    }
    let documents = app
        .get_at(
            &format!("/v1/orders/{order_id}/invoices"),
            &app.admin(),
            Some(head),
        )
        .await;
    let totals: Vec<&str> = documents
        .body
        .as_array()
        .expect("a list")
        .iter()
        .map(|d| d["total"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(totals, ["100.00", "30.00", "70.00"], "{:?}", documents.body);
}
