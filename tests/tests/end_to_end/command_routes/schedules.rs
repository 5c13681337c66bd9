//! A rental listing's schedule (API.md "Rentals"): set with
//! `PUT /v1/listings/{id}/schedule`, shown on `GET /v1/listings/{id}`, and
//! every order judged by it, refused with 422 naming the item and the rule.

use ledger_tests::answer::position;
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{rental_item, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use super::assert_created_order;

async fn put_schedule(
    app: &TestApp,
    token: &str,
    listing: Uuid,
    body: Value,
) -> ledger_tests::Answer {
    app.send(
        Method::PUT,
        &format!("/v1/listings/{listing}/schedule"),
        Some(token),
        Some(&body),
        &[],
    )
    .await
}

/// The `(field, code)` of each problem of a 422.
fn rules(answer: &ledger_tests::Answer) -> Vec<(String, String)> {
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        answer.body
    );
    answer.body["errors"]
        .as_array()
        .map(|errors| {
            errors
                .iter()
                .map(|e| {
                    (
                        e["field"].as_str().unwrap_or_default().to_owned(),
                        e["code"].as_str().unwrap_or_default().to_owned(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_schedule_is_set_shown_and_decides_every_order() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Bikes Berlin").await;
    let bikes = app
        .rental_listing(vendor_id, "hour", "10.00", "0.00", 1)
        .await;
    let weekdays: Vec<Value> = ["mon", "tue", "wed", "thu", "fri"]
        .iter()
        .map(|d| json!({"weekday": d, "start": "09:00", "end": "18:00"}))
        .collect();
    let set = put_schedule(
        &app,
        &app.vendor(vendor_id),
        bikes,
        json!({"time_zone": "Europe/Berlin", "weekly": weekdays,
               "exceptions": [{"date": "2030-01-02", "closed": true}],
               "min_duration": "PT1H", "slot_step": "PT1H"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["listing_id"], bikes.to_string());

    let shown = app
        .get_at(
            &format!("/v1/listings/{bikes}"),
            &app.customer("alice"),
            Some(position(&set)),
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    let schedule = &shown.body["schedule"];
    assert_eq!(schedule["time_zone"], "Europe/Berlin");
    assert_eq!(schedule["weekly"][0]["start"], "09:00");
    assert_eq!(schedule["exceptions"][0]["closed"], true);
    assert_eq!(schedule["slot_step"], "PT1H");

    // 2030-01-01 is a Tuesday; 09:00 UTC is 10:00 in Berlin.
    let before = app.event_count().await;
    let sunday = app
        .place_order(
            "alice",
            vec![rental_item(
                bikes,
                1,
                "2030-01-06T02:00:00Z",
                "2030-01-06T03:00:00Z",
            )],
        )
        .await;
    assert_eq!(
        rules(&sunday),
        [("items[0].start".to_owned(), "closed".to_owned())]
    );
    let seven_minutes = app
        .place_order(
            "alice",
            vec![rental_item(
                bikes,
                1,
                "2030-01-01T09:17:00Z",
                "2030-01-01T09:24:00Z",
            )],
        )
        .await;
    assert_eq!(
        rules(&seven_minutes),
        [
            ("items[0].end".to_owned(), "too_short".to_owned()),
            ("items[0].start".to_owned(), "off_grid".to_owned()),
            ("items[0].end".to_owned(), "off_grid".to_owned()),
        ]
    );
    let holiday = app
        .place_order(
            "alice",
            vec![rental_item(
                bikes,
                1,
                "2030-01-02T09:00:00Z",
                "2030-01-02T10:00:00Z",
            )],
        )
        .await;
    assert_eq!(
        rules(&holiday),
        [("items[0].start".to_owned(), "closed".to_owned())]
    );
    let past = app
        .place_order(
            "alice",
            vec![rental_item(
                bikes,
                1,
                "2020-01-01T09:00:00Z",
                "2020-01-01T10:00:00Z",
            )],
        )
        .await;
    assert_eq!(
        rules(&past),
        [("items[0].start".to_owned(), "in_past".to_owned())]
    );
    app.assert_nothing_recorded(before, "orders the schedule refuses")
        .await;

    let placed = app
        .place_order(
            "alice",
            vec![rental_item(
                bikes,
                1,
                "2030-01-01T09:00:00Z",
                "2030-01-01T11:00:00Z",
            )],
        )
        .await;
    assert_created_order(&placed);
    let line = &placed.body["lines"][0];
    assert_eq!(line["local_start"], "2030-01-01T10:00:00+01:00");
    assert_eq!(line["local_end"], "2030-01-01T12:00:00+01:00");
    assert_eq!(line["billable_units"], 2);

    // The availability shows the shut hours: 07:00-08:00 UTC is 08:00-09:00
    // in Berlin, closed; 09:00-11:00 UTC is held.
    let shown = app
        .get_at(
            &format!(
                "/v1/listings/{bikes}/availability?from=2030-01-01T07:00:00Z&to=2030-01-01T12:00:00Z"
            ),
            &app.customer("bob"),
            Some(position(&placed)),
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    let slots: Vec<(String, i64, bool)> = shown.body["slots"]
        .as_array()
        .expect("slots")
        .iter()
        .map(|s| {
            (
                s["start"].as_str().unwrap_or_default().to_owned(),
                s["free"].as_i64().unwrap_or(-1),
                s["closed"].as_bool().unwrap_or(false),
            )
        })
        .collect();
    assert_eq!(
        slots,
        [
            ("2030-01-01T07:00:00Z".to_owned(), 0, true),
            ("2030-01-01T08:00:00Z".to_owned(), 1, false),
            ("2030-01-01T09:00:00Z".to_owned(), 0, false),
            ("2030-01-01T11:00:00Z".to_owned(), 1, false),
        ]
    );
    app.stop().await;
}

#[tokio::test]
async fn a_bad_schedule_is_422_by_field_and_a_sale_listing_takes_none() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let rental = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 1)
        .await;
    let vendor = app.vendor(vendor_id);
    let before = app.event_count().await;
    let zone = put_schedule(&app, &vendor, rental, json!({"time_zone": "Mars/Olympus"})).await;
    assert_invalid_field(&zone, "time_zone");
    let hours = put_schedule(
        &app,
        &vendor,
        rental,
        json!({"weekly": [{"weekday": "mon", "start": "18:00", "end": "09:00"}]}),
    )
    .await;
    assert_invalid_field(&hours, "weekly[0].end");
    let duration = put_schedule(&app, &vendor, rental, json!({"buffer": "1 hour"})).await;
    assert_invalid_field(&duration, "buffer");
    let months = put_schedule(&app, &vendor, rental, json!({"max_advance": "P1M"})).await;
    assert_invalid_field(&months, "max_advance");
    app.assert_nothing_recorded(before, "bad schedules").await;

    let sale = app.sale_listing(vendor_id, "5.00", 3).await;
    let refused = put_schedule(&app, &vendor, sale, json!({"time_zone": "UTC"})).await;
    assert_problem(&refused, StatusCode::CONFLICT, "invalid-state");

    // The late fee policy: set, shown on the listing, validated.
    let policies = |body: Value| {
        let (app, vendor) = (&app, vendor.clone());
        async move {
            app.send(
                Method::PUT,
                &format!("/v1/listings/{rental}/policies"),
                Some(&vendor),
                Some(&body),
                &[],
            )
            .await
        }
    };
    let negative = policies(json!({"late_fee_per_unit": "-1.00"})).await;
    assert_invalid_field(&negative, "late_fee_per_unit");
    let tiers =
        policies(json!({"cancellation_policy": [{"notice": "P1D", "refund_percent": 101}]})).await;
    assert_invalid_field(&tiers, "cancellation_policy[0].refund_percent");
    let set = policies(json!({"late_fee_per_unit": "20.00"})).await;
    assert_eq!(set.status, StatusCode::OK, "{:?}", set.body);
    assert_eq!(set.body["late_fee_per_unit"], "20.00");
    let shown = app
        .get_at(
            &format!("/v1/listings/{rental}"),
            &app.customer("alice"),
            Some(position(&set)),
        )
        .await;
    assert_eq!(shown.body["policies"]["late_fee_per_unit"], "20.00");
    app.stop().await;
}
