//! What every command route refuses before the domain sees it: malformed
//! JSON (400), a body not declared JSON (415) or over one mebibyte (413),
//! and unknown or non-UUID ids in paths (404); none of it records anything.

use ledger_tests::assert_problem;
use ledger_tests::{at, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn malformed_json_is_400_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let listing = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 1)
        .await;
    let before = app.event_count().await;
    for (path, token) in [
        ("/v1/vendors".to_owned(), app.admin()),
        ("/v1/listings".to_owned(), app.vendor(vendor_id)),
        (
            format!("/v1/listings/{listing}/price"),
            app.vendor(vendor_id),
        ),
        (format!("/v1/listings/{listing}/blackouts"), app.admin()),
        ("/v1/orders".to_owned(), app.customer("c1")),
        (format!("/v1/vendors/{vendor_id}/payouts"), app.admin()),
    ] {
        for body in [&b"{"[..], b"{not json}", b"{,}", b"nope"] {
            let answer = app
                .send_bytes(
                    Method::POST,
                    &path,
                    Some(&token),
                    Some("application/json"),
                    body.to_vec(),
                    &[],
                )
                .await;
            assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
        }
    }
    app.assert_nothing_recorded(before, "a malformed body")
        .await;
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_415_and_records_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let before = app.event_count().await;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let answer = app
            .send_bytes(
                Method::POST,
                "/v1/vendors",
                Some(&app.admin()),
                Some(content_type),
                br#"{"name": "Sneaky"}"#.to_vec(),
                &[],
            )
            .await;
        assert_problem(
            &answer,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
        );
    }
    let order = app
        .send_bytes(
            Method::POST,
            "/v1/orders",
            Some(&app.customer("c1")),
            Some("text/plain"),
            br#"{"items": []}"#.to_vec(),
            &[],
        )
        .await;
    assert_problem(
        &order,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    let payout = app
        .send_bytes(
            Method::POST,
            &format!("/v1/vendors/{vendor_id}/payouts"),
            Some(&app.admin()),
            Some("text/plain"),
            br#"{"amount": "1.00"}"#.to_vec(),
            &[],
        )
        .await;
    assert_problem(
        &payout,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    app.assert_nothing_recorded(before, "a non-JSON body").await;
}

#[tokio::test]
async fn a_body_over_one_mebibyte_is_413_and_records_nothing() {
    let app = TestApp::spawn().await;
    let before = app.event_count().await;
    let name = "x".repeat(1024 * 1024 + 16);
    let body = serde_json::to_vec(&json!({ "name": name })).expect("serialise");
    for headers in [&[][..], &[("Idempotency-Key", "big-body-1")][..]] {
        let answer = app
            .send_bytes(
                Method::POST,
                "/v1/vendors",
                Some(&app.admin()),
                Some("application/json"),
                body.clone(),
                headers,
            )
            .await;
        assert_problem(&answer, StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large");
    }
    app.assert_nothing_recorded(before, "an oversized body")
        .await;
}

#[tokio::test]
async fn unknown_and_non_uuid_ids_in_paths_are_404_and_record_nothing() {
    let app = TestApp::spawn().await;
    let vendor_id = app.register_vendor("Alpine").await;
    let listing = app
        .rental_listing(vendor_id, "day", "10.00", "0.00", 1)
        .await;
    let unknown = Uuid::now_v7();
    let admin = app.admin();
    let before = app.event_count().await;

    let posts: Vec<(String, Value, String)> = vec![
        (
            format!("/v1/listings/{unknown}/publish"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/archive"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/price"),
            json!({"unit_price": "1.00"}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/stock"),
            json!({"delta": 1}),
            admin.clone(),
        ),
        (
            format!("/v1/listings/{unknown}/blackouts"),
            json!({"start": at(1, 0), "end": at(2, 0), "reason": "x"}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/cancel"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/cancel"),
            json!({}),
            app.customer("c1"),
        ),
        (
            format!("/v1/orders/{unknown}/vendors/{vendor_id}/ship"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/vendors/{vendor_id}/deliver"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/lines/{unknown}/pickup"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/lines/{unknown}/return"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/vendors/{unknown}/payouts"),
            json!({"amount": "1.00"}),
            admin.clone(),
        ),
        // Ids that are not UUIDs cannot name anything.
        (
            "/v1/listings/kayak/publish".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/listings/123/archive".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/listings/kayak/price".to_owned(),
            json!({"unit_price": "1.00"}),
            admin.clone(),
        ),
        (
            "/v1/listings/kayak/stock".to_owned(),
            json!({"delta": 1}),
            admin.clone(),
        ),
        (
            "/v1/orders/not-an-order/cancel".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/x/vendors/{vendor_id}/ship"),
            json!({}),
            admin.clone(),
        ),
        (
            format!("/v1/orders/{unknown}/vendors/y/deliver"),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/orders/x/lines/y/pickup".to_owned(),
            json!({}),
            admin.clone(),
        ),
        (
            "/v1/vendors/alpine/payouts".to_owned(),
            json!({"amount": "1.00"}),
            admin.clone(),
        ),
    ];
    for (path, body, token) in posts {
        let answer = app.post(&path, &token, body).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
    }
    for path in [
        format!("/v1/listings/{listing}/blackouts/{unknown}"),
        format!("/v1/listings/{unknown}/blackouts/{unknown}"),
        format!("/v1/listings/{listing}/blackouts/not-a-uuid"),
    ] {
        let answer = app.delete(&path, &admin).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
    }
    app.assert_nothing_recorded(before, "a command on an unknown id")
        .await;
}
