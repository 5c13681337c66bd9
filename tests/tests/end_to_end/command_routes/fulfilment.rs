//! Fulfilment: a vendor's part shipped and delivered, a rental line picked
//! up and returned, and what that makes available for payout.

use ledger_tests::answer::{dec, money, position};
use ledger_tests::client::PayoutRecorded;
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{at, rental_item, sale_item, TestApp};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

use super::assert_created_order;

#[tokio::test]
async fn a_sale_part_is_shipped_then_delivered_and_its_net_becomes_available_for_payout_exactly() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let paddle = app.sale_listing(vendor_id, "33.35", 5).await;
    let order = app.place_order("c1", vec![sale_item(paddle, 3)]).await;
    assert_created_order(&order);
    // 100.05: fee 10.01 (10.005 half away from zero), net 90.04.
    assert_eq!(money(&order.body["vendors"][0], "net"), dec("90.04"));
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let paid_position = app.head().await;

    // Nothing is available before delivery.
    let early = app.request_payout(vendor_id, "0.01").await;
    assert_problem(&early, StatusCode::CONFLICT, "insufficient-balance");

    let ship = app.ship(&app.vendor(vendor_id), order_id, vendor_id).await;
    assert_eq!(ship.status, StatusCode::OK, "{:?}", ship.body);
    assert_eq!(ship.body["order_id"], order_id.to_string());
    assert_eq!(ship.body["vendor_id"], vendor_id.to_string());
    assert_eq!(ship.body["order_status"], "confirmed");
    let ship_position = position(&ship);
    assert!(ship_position > paid_position);

    let deliver = app.deliver(&app.admin(), order_id, vendor_id).await;
    assert_eq!(deliver.status, StatusCode::OK, "{:?}", deliver.body);
    assert_eq!(deliver.body["order_status"], "completed");
    let deliver_position = position(&deliver);
    assert!(deliver_position > ship_position);
    let order_events: Vec<String> = app.event_types("Order", order_id).await;
    for expected in [
        "PartShipped",
        "PartDelivered",
        "VendorPartFulfilled",
        "OrderCompleted",
    ] {
        assert!(
            order_events.iter().any(|e| e == expected),
            "{order_events:?}"
        );
    }

    let payout: PayoutRecorded = app
        .request_payout(vendor_id, "50.00")
        .await
        .expect(StatusCode::CREATED);
    assert!(payout.position > deliver_position);

    let before = app.event_count().await;
    let above = app.request_payout(vendor_id, "40.05").await;
    assert_problem(&above, StatusCode::CONFLICT, "insufficient-balance");
    app.assert_nothing_recorded(before, "a payout above the balance")
        .await;

    let rest: PayoutRecorded = app
        .request_payout(vendor_id, "40.04")
        .await
        .expect(StatusCode::CREATED);
    assert_ne!(rest.payout_id, payout.payout_id);
    assert!(rest.position > payout.position);

    let before = app.event_count().await;
    let empty = app.request_payout(vendor_id, "0.01").await;
    assert_problem(&empty, StatusCode::CONFLICT, "insufficient-balance");
    app.assert_nothing_recorded(before, "a payout from an empty balance")
        .await;
}

#[tokio::test]
async fn a_rental_line_is_picked_up_and_returned_refunding_the_deposit_minus_damage_which_is_credited_to_the_vendor(
) {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(vendor_id, "day", "40.00", "150.00", 2)
        .await;
    let order = app
        .place_order("c1", vec![rental_item(kayak, 1, &at(1, 0), &at(3, 0))])
        .await;
    assert_created_order(&order);
    // 80.00: fee 8.00, net 72.00.
    app.pay(&order).await;
    // The payment's follow-ups (confirmations, the invoice) first.
    ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(30))
        .await
        .expect("the policies settle");
    let order_id = order.uuid("order_id");
    let line_id = Uuid::parse_str(order.body["lines"][0]["line_id"].as_str().expect("line"))
        .expect("line uuid");

    // Returning before pickup is refused.
    let before = app.event_count().await;
    let early = app
        .return_line(&app.vendor(vendor_id), order_id, line_id, json!({}))
        .await;
    assert_problem(&early, StatusCode::CONFLICT, "invalid-state");
    app.assert_nothing_recorded(before, "a return before pickup")
        .await;

    let pickup = app.pickup(&app.vendor(vendor_id), order_id, line_id).await;
    assert_eq!(pickup.status, StatusCode::OK, "{:?}", pickup.body);
    assert_eq!(pickup.body["order_id"], order_id.to_string());
    assert_eq!(pickup.body["line_id"], line_id.to_string());
    assert_eq!(pickup.body["vendor_id"], vendor_id.to_string());
    let pickup_position = position(&pickup);

    // Withholding more than the deposit is 422.
    let before = app.event_count().await;
    let too_much = app
        .return_line(
            &app.vendor(vendor_id),
            order_id,
            line_id,
            json!({"damage_withheld": "150.01"}),
        )
        .await;
    assert_invalid_field(&too_much, "damage_withheld");
    app.assert_nothing_recorded(before, "withholding more than the deposit")
        .await;

    // A return is never recorded in the future (API.md "Rentals").
    let future = app
        .return_line(
            &app.vendor(vendor_id),
            order_id,
            line_id,
            json!({"returned_at": at(3, 0)}),
        )
        .await;
    assert_invalid_field(&future, "returned_at");
    assert_eq!(future.body["errors"][0]["code"], "in_future");
    app.assert_nothing_recorded(before, "a return in the future")
        .await;

    let returned = app
        .return_line(
            &app.vendor(vendor_id),
            order_id,
            line_id,
            json!({"damage_withheld": "35.50"}),
        )
        .await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    assert_eq!(money(&returned.body, "deposit_refunded"), dec("114.50"));
    assert_eq!(money(&returned.body, "damage_withheld"), dec("35.50"));
    assert_eq!(returned.body["order_status"], "completed");
    let returned_position = position(&returned);
    assert!(returned_position > pickup_position);
    let vendor_events: Vec<String> = app.event_types("Vendor", vendor_id).await;
    assert!(
        vendor_events.iter().any(|e| e == "DamageCredited"),
        "{vendor_events:?}"
    );
    assert!(
        vendor_events.iter().any(|e| e == "EarningsMadeAvailable"),
        "{vendor_events:?}"
    );

    // Available: net 72.00 + damage 35.50 = 107.50.
    let before = app.event_count().await;
    let above = app.request_payout(vendor_id, "107.51").await;
    assert_problem(&above, StatusCode::CONFLICT, "insufficient-balance");
    assert_eq!(
        above.body["available"].as_str().map(dec),
        Some(dec("107.50"))
    );
    app.assert_nothing_recorded(before, "a payout above the balance")
        .await;
    let exact = app.request_payout(vendor_id, "107.50").await;
    assert_eq!(exact.status, StatusCode::CREATED, "{:?}", exact.body);
    assert!(position(&exact) > returned_position);
}

#[tokio::test]
async fn fulfilment_of_an_unpaid_order_is_409_and_a_sale_line_cannot_be_picked_up() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let kayak = app
        .rental_listing(vendor_id, "day", "40.00", "0.00", 2)
        .await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let order = app
        .place_order(
            "c1",
            vec![
                rental_item(kayak, 1, &at(1, 0), &at(3, 0)),
                sale_item(paddle, 1),
            ],
        )
        .await;
    assert_created_order(&order);
    let order_id = order.uuid("order_id");
    let rental_line = order.body["lines"][0]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();
    let sale_line = order.body["lines"][1]["line_id"]
        .as_str()
        .expect("line")
        .to_owned();

    let before = app.event_count().await;
    let ship = app.ship(&app.vendor(vendor_id), order_id, vendor_id).await;
    assert_problem(&ship, StatusCode::CONFLICT, "invalid-state");
    let pickup = app
        .pickup(&app.vendor(vendor_id), order_id, rental_line)
        .await;
    assert_problem(&pickup, StatusCode::CONFLICT, "invalid-state");
    app.assert_nothing_recorded(before, "fulfilling an unpaid order")
        .await;

    app.pay(&order).await;
    // The payment's follow-ups (confirmations, the invoice) first.
    ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(30))
        .await
        .expect("the policies settle");
    let before = app.event_count().await;
    let sale_pickup = app
        .pickup(&app.vendor(vendor_id), order_id, sale_line)
        .await;
    assert_problem(&sale_pickup, StatusCode::CONFLICT, "invalid-state");
    let deliver = app
        .deliver(&app.vendor(vendor_id), order_id, vendor_id)
        .await;
    assert_problem(&deliver, StatusCode::CONFLICT, "invalid-state");
    app.assert_nothing_recorded(before, "out-of-order fulfilment")
        .await;
}

#[tokio::test]
async fn a_line_or_vendor_that_is_not_part_of_the_order_is_404() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let other = app.register_vendor("Other").await;
    let paddle = app.sale_listing(vendor_id, "10.00", 5).await;
    let order = app.place_order("c1", vec![sale_item(paddle, 1)]).await;
    assert_created_order(&order);
    app.pay(&order).await;
    ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(30))
        .await
        .expect("the policies settle");
    let order_id = order.uuid("order_id");
    let before = app.event_count().await;
    let line = Uuid::now_v7();
    let pickup = app.pickup(&app.admin(), order_id, line).await;
    assert_problem(&pickup, StatusCode::NOT_FOUND, "not-found");
    let ship = app.ship(&app.admin(), order_id, other).await;
    assert_problem(&ship, StatusCode::NOT_FOUND, "not-found");
    app.assert_nothing_recorded(before, "fulfilling a part that does not exist")
        .await;
}
