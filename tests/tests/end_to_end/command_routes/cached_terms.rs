//! The terms an order is priced with come from a cache (issue 18, item 2),
//! checked when the order is recorded: an order placed after the listing's
//! price, the vendor's fee rate or the schedule's time zone changed is
//! priced on the new terms, by one line (the inventory's worker) and by
//! several (the joint append), and records nothing on the old ones.

use ledger_tests::{at, rental_item, sale_item, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::assert_created_order;

#[tokio::test]
async fn orders_after_a_price_a_fee_rate_and_a_time_zone_change_are_priced_on_the_new_terms() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Changing Terms").await;
    let rental = app.rental_listing(vendor, "day", "10.00", "0.00", 5).await;
    let sale = app.sale_listing(vendor, "5.00", 50).await;

    // Orders by one line and by two read (and cache) every term.
    let warm = app
        .place("c-1", vec![rental_item(rental, 1, &at(1, 0), &at(2, 0))])
        .await;
    assert_created_order(&warm);
    assert_eq!(warm.body["lines"][0]["unit_price"], "10.00");
    assert_eq!(warm.body["lines"][0]["time_zone"], "UTC");
    assert_eq!(warm.body["vendors"][0]["platform_fee"], "1.00");
    let warm_both = app
        .place(
            "c-1",
            vec![
                rental_item(rental, 1, &at(1, 0), &at(2, 0)),
                sale_item(sale, 1),
            ],
        )
        .await;
    assert_created_order(&warm_both);

    // Then every term changes.
    let price = app
        .change_price(
            &app.vendor(vendor),
            rental,
            json!({"price_per_unit": "20.00"}),
        )
        .await;
    assert_eq!(price.status, StatusCode::OK, "{:?}", price.body);
    let price = app
        .change_price(&app.vendor(vendor), sale, json!({"unit_price": "7.00"}))
        .await;
    assert_eq!(price.status, StatusCode::OK, "{:?}", price.body);
    let rate = app
        .post(
            &format!("/v1/vendors/{vendor}/fee-rate"),
            &app.admin(),
            json!({"rate": "0.20"}),
        )
        .await;
    assert_eq!(rate.status, StatusCode::OK, "{:?}", rate.body);
    let schedule = app
        .send(
            Method::PUT,
            &format!("/v1/listings/{rental}/schedule"),
            Some(&app.vendor(vendor)),
            Some(&json!({"time_zone": "America/New_York"})),
            &[],
        )
        .await;
    assert_eq!(schedule.status, StatusCode::OK, "{:?}", schedule.body);

    // One line: the new price, fee rate and time zone.
    let one = app
        .place("c-2", vec![rental_item(rental, 1, &at(3, 5), &at(4, 5))])
        .await;
    assert_created_order(&one);
    assert_eq!(
        one.body["lines"][0]["unit_price"], "20.00",
        "{:?}",
        one.body
    );
    assert_eq!(one.body["lines"][0]["time_zone"], "America/New_York");
    assert_eq!(one.body["vendors"][0]["platform_fee"], "4.00");

    // Two lines: the same.
    let two = app
        .place(
            "c-3",
            vec![
                rental_item(rental, 1, &at(5, 5), &at(6, 5)),
                sale_item(sale, 2),
            ],
        )
        .await;
    assert_created_order(&two);
    assert_eq!(
        two.body["lines"][0]["unit_price"], "20.00",
        "{:?}",
        two.body
    );
    assert_eq!(two.body["lines"][1]["unit_price"], "7.00");
    assert_eq!(two.body["vendors"][0]["platform_fee"], "6.80");
}
