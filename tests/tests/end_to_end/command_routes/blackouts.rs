//! Blackouts of a rental listing's units: added and removed, refused where
//! held or booked units would not fit, and their bodies validated.

use ledger_tests::answer::position;
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{at, rental_item, TestApp};
use reqwest::StatusCode;
use serde_json::json;

use super::assert_created_order;

#[tokio::test]
async fn a_blackout_is_added_201_blocks_its_units_and_is_removed_200_freeing_them() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 2)
        .await;

    let added = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(1, 0), "end": at(3, 0), "units": 1, "reason": "maintenance"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let blackout_id = added.uuid("blackout_id");
    let added_position = position(&added);

    // One unit is left during the blackout: two are unavailable.
    let before = app.event_count().await;
    let refused = app
        .place_order("c1", vec![rental_item(rental, 2, &at(2, 0), &at(2, 12))])
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "unavailable");
    assert_eq!(refused.body["conflicts"][0]["free"], 1);
    app.assert_nothing_recorded(before, "an unavailable order")
        .await;

    // A blackout of every unit (no `units`) beside it, then both removed.
    let whole = app
        .add_blackout(
            &app.admin(),
            rental,
            json!({"start": at(5, 0), "end": at(6, 0), "reason": "inspection"}),
        )
        .await;
    assert_eq!(whole.status, StatusCode::CREATED, "{:?}", whole.body);
    assert!(position(&whole) > added_position);
    let refused = app
        .place_order("c1", vec![rental_item(rental, 1, &at(5, 6), &at(5, 7))])
        .await;
    assert_problem(&refused, StatusCode::CONFLICT, "unavailable");
    assert_eq!(refused.body["conflicts"][0]["free"], 0);

    let removed = app
        .remove_blackout(&app.vendor(vendor_id), rental, blackout_id)
        .await;
    assert_eq!(removed.status, StatusCode::OK, "{:?}", removed.body);
    assert_eq!(removed.body["blackout_id"], blackout_id.to_string());
    assert!(position(&removed) > position(&whole));
    let order = app
        .place_order("c1", vec![rental_item(rental, 2, &at(2, 0), &at(2, 12))])
        .await;
    assert_created_order(&order);

    // Removing it again: no such blackout.
    let before = app.event_count().await;
    let again = app
        .remove_blackout(&app.vendor(vendor_id), rental, blackout_id)
        .await;
    assert_problem(&again, StatusCode::NOT_FOUND, "not-found");
    app.assert_nothing_recorded(before, "removing a removed blackout")
        .await;
}

#[tokio::test]
async fn a_blackout_that_held_or_booked_units_would_not_fit_is_409_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 2)
        .await;
    let order = app
        .place_order("c1", vec![rental_item(rental, 1, &at(1, 0), &at(2, 0))])
        .await;
    assert_created_order(&order);
    app.pay(&order).await;
    // The payment's follow-ups (confirmations, the invoice) first.
    ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(30))
        .await
        .expect("the policies settle");

    let before = app.event_count().await;
    let whole = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(1, 12), "end": at(4, 0), "reason": "repair"}),
        )
        .await;
    assert_problem(&whole, StatusCode::CONFLICT, "would-undercut");
    let two = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(0, 0), "end": at(1, 1), "units": 2, "reason": "repair"}),
        )
        .await;
    assert_problem(&two, StatusCode::CONFLICT, "would-undercut");
    app.assert_nothing_recorded(before, "a blackout over booked units")
        .await;

    // The free unit can be blacked out; so can every unit after the booking.
    let one = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(1, 12), "end": at(4, 0), "units": 1, "reason": "repair"}),
        )
        .await;
    assert_eq!(one.status, StatusCode::CREATED, "{:?}", one.body);
    let after = app
        .add_blackout(
            &app.vendor(vendor_id),
            rental,
            json!({"start": at(4, 0), "end": at(5, 0), "reason": "repair"}),
        )
        .await;
    assert_eq!(after.status, StatusCode::CREATED, "{:?}", after.body);
}

#[tokio::test]
async fn blackout_bodies_with_a_bad_period_or_zero_units_are_422_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 2)
        .await;
    let path = format!("/v1/listings/{rental}/blackouts");
    let before = app.event_count().await;

    let backwards = app
        .post(
            &path,
            &app.admin(),
            json!({"start": at(3, 0), "end": at(1, 0), "reason": "x"}),
        )
        .await;
    assert_invalid_field(&backwards, "end");
    let empty = app
        .post(
            &path,
            &app.admin(),
            json!({"start": at(3, 0), "end": at(3, 0), "reason": "x"}),
        )
        .await;
    assert_invalid_field(&empty, "end");
    let zero = app
        .post(
            &path,
            &app.admin(),
            json!({"start": at(1, 0), "end": at(2, 0), "units": 0, "reason": "x"}),
        )
        .await;
    assert_invalid_field(&zero, "units");
    let not_a_time = app
        .post(
            &path,
            &app.admin(),
            json!({"start": "tomorrow", "end": at(2, 0), "reason": "x"}),
        )
        .await;
    assert_invalid_field(&not_a_time, "start");
    let missing = app
        .post(&path, &app.admin(), json!({"end": at(2, 0), "reason": "x"}))
        .await;
    assert_eq!(missing.status, StatusCode::UNPROCESSABLE_ENTITY);
    app.assert_nothing_recorded(before, "an invalid blackout")
        .await;
}
