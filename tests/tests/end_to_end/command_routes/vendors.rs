//! Vendors and their payouts: registration (201 with id and position) and
//! the 422s and 409s of their bodies and balances.

use ledger_tests::answer::{dec, money, position};
use ledger_tests::TestApp;
use ledger_tests::{assert_invalid_field, assert_problem};
use reqwest::{Method, StatusCode};
use serde_json::json;

#[tokio::test]
async fn an_admin_registers_a_vendor_201_with_its_id_and_position_and_the_event_carries_the_request_metadata(
) {
    let app = TestApp::spawn().await;
    let before = app.head().await;
    let answer = app
        .send(
            Method::POST,
            "/v1/vendors",
            Some(&app.admin()),
            Some(&json!({"name": "Alpine Outfitters"})),
            &[
                ("x-request-id", "req-register-vendor-1"),
                ("Idempotency-Key", "key-register-vendor-1"),
            ],
        )
        .await;

    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let vendor_id = answer.uuid("vendor_id");
    let position = position(&answer);
    assert!(position > before);
    assert_eq!(answer.header("x-request-id"), Some("req-register-vendor-1"));

    let events = app.events_of("Vendor", vendor_id).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let (event_type, metadata) = &events[0];
    assert_eq!(event_type, "VendorRegistered");
    assert_eq!(metadata["principal"], "admin-1");
    assert_eq!(metadata["principal_role"], "admin");
    assert_eq!(metadata["correlation_id"], "req-register-vendor-1");
    assert!(metadata["causation_id"]
        .as_str()
        .is_some_and(|c| !c.is_empty()));
    assert_eq!(metadata["idempotency_key"], "key-register-vendor-1");
    assert_eq!(app.head().await, position);
}

#[tokio::test]
async fn invalid_vendor_and_payout_bodies_are_422_naming_the_field_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let before = app.event_count().await;
    let payouts = format!("/v1/vendors/{vendor_id}/payouts");
    let cases = [
        ("/v1/vendors", json!({"name": "   "}), "name"),
        ("/v1/vendors", json!({}), "body"),
        ("/v1/vendors", json!({"name": 7}), "name"),
        (payouts.as_str(), json!({"amount": "12.345"}), "amount"),
        (payouts.as_str(), json!({"amount": "-1"}), "amount"),
        (payouts.as_str(), json!({"amount": "0.00"}), "amount"),
        (payouts.as_str(), json!({"amount": 12.5}), "amount"),
        (payouts.as_str(), json!({"amount": "twelve"}), "amount"),
    ];
    for (path, body, field) in cases {
        let answer = app.post(path, &app.admin(), body.clone()).await;
        if field == "body" {
            assert_problem(&answer, StatusCode::UNPROCESSABLE_ENTITY, "validation");
        } else {
            assert_invalid_field(&answer, field);
        }
    }
    app.assert_nothing_recorded(before, "an invalid vendor or payout")
        .await;
}

#[tokio::test]
async fn the_insufficient_balance_problem_names_available_and_requested_as_money() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let before = app.event_count().await;
    let answer = app.request_payout(vendor_id, "5").await;
    assert_problem(&answer, StatusCode::CONFLICT, "insufficient-balance");
    assert_eq!(money(&answer.body, "available"), dec("0.00"));
    assert_eq!(money(&answer.body, "requested"), dec("5.00"));
    app.assert_nothing_recorded(before, "a payout above the balance")
        .await;
}
