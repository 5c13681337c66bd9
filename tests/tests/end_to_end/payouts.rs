//! Payouts that can fail and per-vendor fee rates, end to end (API.md
//! "Money", issue 14 item 4): a payout is `requested`, then `paid` or
//! `failed` through the payment webhook (`payout.paid`, `payout.failed`);
//! a failed payout's amount is available again; racing payouts never
//! overdraw; `GET /v1/vendors/{id}/payouts` lists them; each step is posted
//! in the ledger (payouts in transit → cash, or back to the vendor); a
//! vendor's own fee rate prices its new orders only. Every example ends
//! reconciled to the cent.

use std::sync::Arc;
use std::time::Duration;

use ledger_tests::answer::{money, position};
use ledger_tests::webhooks::{PAYOUT_FAILED, PAYOUT_PAID};
use ledger_tests::{assert_invalid_field, assert_ok, assert_problem, reconcile, sale_item};
use ledger_tests::{Answer, TestApp};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::Barrier;
use uuid::Uuid;

async fn settle(app: &TestApp) -> i64 {
    ledger_tests::pipeline::settle(app, Duration::from_secs(30))
        .await
        .expect("the read models settle")
}

async fn reconciles(app: &TestApp) {
    settle(app).await;
    let observed = reconcile::observe(app).await.expect("observe the ledger");
    let found = reconcile::check(&app.pool, &observed)
        .await
        .expect("read the log");
    assert!(
        found.is_empty(),
        "discrepancies:\n{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

fn dec(text: &str) -> Decimal {
    ledger_tests::answer::dec(text)
}

/// A vendor with 45.00 available: a sale of 2 × 25.00 (fee 5.00) shipped
/// and delivered.
async fn vendor_with_45_available(app: &TestApp) -> Uuid {
    let b = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(b, "25.00", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 2)]).await;
    app.pay(&order).await;
    settle(app).await;
    let order_id = order.uuid("order_id");
    for step in ["ship", "deliver"] {
        let path = format!("/v1/orders/{order_id}/vendors/{b}/{step}");
        assert_ok(&app.post(&path, &app.vendor(b), json!({})).await);
    }
    settle(app).await;
    b
}

async fn payouts(app: &TestApp, vendor_id: Uuid, token: &str, min: i64) -> Vec<Value> {
    let answer = app
        .get_at(
            &format!("/v1/vendors/{vendor_id}/payouts"),
            token,
            Some(min),
        )
        .await;
    assert_ok(&answer);
    answer.body["items"].as_array().expect("items").clone()
}

async fn earnings(app: &TestApp, vendor_id: Uuid, min: i64) -> Value {
    let answer = app
        .get_at(
            &format!("/v1/vendors/{vendor_id}/earnings"),
            &app.admin(),
            Some(min),
        )
        .await;
    assert_ok(&answer);
    answer.body
}

/// account → balance (debit − credit) in the trial balance.
async fn balances(app: &TestApp, min: i64) -> std::collections::BTreeMap<String, Decimal> {
    let answer = app
        .get_at("/v1/ledger/trial-balance", &app.admin(), Some(min))
        .await;
    assert_ok(&answer);
    assert_eq!(answer.body["total_debit"], answer.body["total_credit"]);
    answer.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                a["account"].as_str().expect("account").to_owned(),
                money(a, "balance"),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_requested_payout_is_paid_through_the_webhook_once() {
    let app = TestApp::spawn().await;
    let b = vendor_with_45_available(&app).await;
    let requested = app.request_payout(b, "20.00").await;
    assert_eq!(
        requested.status,
        StatusCode::CREATED,
        "{:?}",
        requested.body
    );
    let payout_id = requested.uuid("payout_id");

    let listed = payouts(&app, b, &app.vendor(b), position(&requested)).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["payout_id"], json!(payout_id));
    assert_eq!(listed[0]["amount"], "20.00");
    assert_eq!(listed[0]["status"], "requested");
    let at_request = balances(&app, position(&requested)).await;
    assert_eq!(at_request["payouts_in_transit"], dec("-20.00"));
    assert_eq!(
        at_request["cash"],
        dec("50.00"),
        "nothing left the bank yet"
    );

    let paid = app.payout_webhook("evt_po_1", PAYOUT_PAID, payout_id).await;
    assert_ok(&paid);
    assert_eq!(paid.body["payout_id"], json!(payout_id));
    assert_eq!(paid.body["duplicate"], false);
    let again = app
        .payout_webhook("evt_po_1b", PAYOUT_PAID, payout_id)
        .await;
    assert_ok(&again);
    assert_eq!(again.body["duplicate"], true, "{:?}", again.body);

    let at_paid = position(&paid);
    let listed = payouts(&app, b, &app.admin(), at_paid).await;
    assert_eq!(listed[0]["status"], "paid");
    assert!(listed[0]["settled_at"].is_string(), "{listed:?}");
    let after = balances(&app, at_paid).await;
    assert_eq!(after["payouts_in_transit"], dec("0.00"));
    assert_eq!(after["cash"], dec("30.00"));
    let e = earnings(&app, b, at_paid).await;
    assert_eq!(
        (e["available"].clone(), e["paid_out"].clone()),
        (json!("25.00"), json!("20.00"))
    );

    // Failed after paid is a contradiction the ledger does not take.
    let contrary = app
        .payout_webhook("evt_po_1c", PAYOUT_FAILED, payout_id)
        .await;
    assert_eq!(contrary.status, StatusCode::CONFLICT, "{:?}", contrary.body);
    reconciles(&app).await;
}

#[tokio::test]
async fn a_failed_payout_returns_its_amount_to_available() {
    let app = TestApp::spawn().await;
    let b = vendor_with_45_available(&app).await;
    let requested = app.request_payout(b, "45.00").await;
    assert_eq!(
        requested.status,
        StatusCode::CREATED,
        "{:?}",
        requested.body
    );
    let payout_id = requested.uuid("payout_id");
    let nothing_left = app.request_payout(b, "0.01").await;
    assert_eq!(nothing_left.status, StatusCode::CONFLICT);

    let failed = app
        .payout_webhook("evt_po_2", PAYOUT_FAILED, payout_id)
        .await;
    assert_ok(&failed);
    let at_failed = position(&failed);
    let listed = payouts(&app, b, &app.vendor(b), at_failed).await;
    assert_eq!(listed[0]["status"], "failed");
    assert_eq!(
        listed[0]["failure_reason"],
        "The bank account has been closed."
    );
    let e = earnings(&app, b, at_failed).await;
    assert_eq!(
        (e["available"].clone(), e["paid_out"].clone()),
        (json!("45.00"), json!("0.00"))
    );
    let after = balances(&app, at_failed).await;
    assert_eq!(after["payouts_in_transit"], dec("0.00"));
    assert_eq!(after["cash"], dec("50.00"));
    assert_eq!(after[&reconcile::vendor_available(b)], dec("-45.00"));

    // The amount can be paid out again, and that payout paid.
    let retry = app.request_payout(b, "45.00").await;
    assert_eq!(retry.status, StatusCode::CREATED, "{:?}", retry.body);
    let paid = app
        .payout_webhook("evt_po_3", PAYOUT_PAID, retry.uuid("payout_id"))
        .await;
    assert_ok(&paid);
    let listed = payouts(&app, b, &app.admin(), position(&paid)).await;
    let statuses: Vec<&str> = listed.iter().filter_map(|p| p["status"].as_str()).collect();
    assert_eq!(statuses, ["failed", "paid"]);
    reconciles(&app).await;
}

#[tokio::test]
async fn payout_events_naming_no_payout_of_the_ledger_are_acknowledged_and_ignored() {
    let app = TestApp::spawn().await;
    let unknown = app
        .payout_webhook("evt_po_x", PAYOUT_PAID, Uuid::now_v7())
        .await;
    assert_ok(&unknown);
    assert!(unknown.body["ignored"].is_string(), "{:?}", unknown.body);
    let b = vendor_with_45_available(&app).await;
    let requested = app.request_payout(b, "5.00").await;
    let other_type = app
        .payout_webhook("evt_po_y", "payout.updated", requested.uuid("payout_id"))
        .await;
    assert_ok(&other_type);
    assert!(
        other_type.body["ignored"].is_string(),
        "{:?}",
        other_type.body
    );
    let listed = payouts(&app, b, &app.admin(), settle(&app).await).await;
    assert_eq!(listed[0]["status"], "requested");
}

#[tokio::test]
async fn payouts_are_shown_to_that_vendor_and_admins_only() {
    let app = TestApp::spawn().await;
    let b = vendor_with_45_available(&app).await;
    let other = app.register_vendor("Other").await;
    let path = format!("/v1/vendors/{b}/payouts");
    let head = settle(&app).await;
    for token in [app.vendor(other), app.customer("c-1"), app.analyst()] {
        let answer = app.get_at(&path, &token, Some(head)).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
    }
    let unknown = app
        .get(
            &format!("/v1/vendors/{}/payouts", Uuid::now_v7()),
            &app.admin(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let empty = app.get_at(&path, &app.vendor(b), Some(head)).await;
    assert_ok(&empty);
    assert_eq!(empty.body, json!({"items": [], "next_cursor": null}));
}

/// Sends every `(path, body)` at once as an admin, each from its own
/// client (its own connection), released together by a barrier.
async fn race_admin_posts(app: &TestApp, requests: Vec<(String, Value)>) -> Vec<Answer> {
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .map(|(path, body)| {
            let barrier = barrier.clone();
            let url = format!("{}{path}", app.base_url);
            let token = app.admin();
            tokio::spawn(async move {
                let client = reqwest::Client::builder()
                    .timeout(Duration::from_secs(30))
                    .build()
                    .expect("a client");
                barrier.wait().await;
                let response = client
                    .post(url)
                    .bearer_auth(token)
                    .json(&body)
                    .send()
                    .await
                    .expect("the ledger answers");
                ledger_tests::client::read(response).await
            })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.expect("a racing client"));
    }
    answers
}

/// 45.00 available: thirty clients each ask 10.00 at once, and exactly four
/// are paid out (40.00), never more. One of them fails: its 10.00 is back,
/// and of twenty more racing clients exactly one gets it (15.00 available).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_payouts_never_overdraw_even_as_one_fails() {
    let app = TestApp::spawn().await;
    let b = vendor_with_45_available(&app).await;
    let path = format!("/v1/vendors/{b}/payouts");
    let requests = (0..30)
        .map(|_| (path.clone(), json!({"amount": "10.00"})))
        .collect();
    let answers = race_admin_posts(&app, requests).await;
    let created: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    assert_eq!(created.len(), 4, "four payouts of 10.00 fit in 45.00");
    assert!(answers
        .iter()
        .all(|a| a.status == StatusCode::CREATED || a.status == StatusCode::CONFLICT));

    let failed = app
        .payout_webhook("evt_race_fail", PAYOUT_FAILED, created[0].uuid("payout_id"))
        .await;
    assert_ok(&failed);
    let requests = (0..20)
        .map(|_| (path.clone(), json!({"amount": "10.00"})))
        .collect();
    let answers = race_admin_posts(&app, requests).await;
    let again = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(again, 1, "15.00 available: one payout of 10.00 fits");

    let head = settle(&app).await;
    let e = earnings(&app, b, head).await;
    assert_eq!(
        (e["available"].clone(), e["paid_out"].clone()),
        (json!("5.00"), json!("40.00"))
    );
    let listed = payouts(&app, b, &app.admin(), head).await;
    assert_eq!(listed.len(), 5);
    reconciles(&app).await;
}

/// Vendor fee 8 % from its second order on: the first (placed before) keeps
/// the deployment's 10 %. Sale of 33.33: fee 3.33 then round(2.6664) = 2.67.
#[tokio::test]
async fn a_vendors_fee_rate_prices_its_new_orders_only() {
    let app = TestApp::spawn().await;
    let b = app.register_vendor("Lanterns").await;
    let other = app.register_vendor("Ropes").await;
    let lantern = app.sale_listing(b, "33.33", 10).await;
    let rope = app.sale_listing(other, "33.33", 10).await;
    let before = app.place("c-1", vec![sale_item(lantern, 1)]).await;
    assert_eq!(before.body["vendors"][0]["platform_fee"], "3.33");

    let path = format!("/v1/vendors/{b}/fee-rate");
    let set = app.post(&path, &app.admin(), json!({"rate": "0.08"})).await;
    assert_ok(&set);
    assert_eq!(set.body["fee_rate"], "0.08");

    let after = app
        .place("c-1", vec![sale_item(lantern, 1), sale_item(rope, 1)])
        .await;
    assert_eq!(after.status, StatusCode::CREATED, "{:?}", after.body);
    let parts = after.body["vendors"].as_array().expect("vendors");
    let part = |v: Uuid| {
        parts
            .iter()
            .find(|p| p["vendor_id"] == json!(v))
            .expect("the vendor's part")
            .clone()
    };
    assert_eq!(part(b)["platform_fee"], "2.67");
    assert_eq!(part(b)["net"], "30.66");
    assert_eq!(
        part(other)["platform_fee"],
        "3.33",
        "other vendors keep the deployment's rate"
    );
    app.pay(&before).await;
    app.pay(&after).await;
    reconciles(&app).await;
}

#[tokio::test]
async fn a_fee_rate_is_set_by_admins_only_and_must_be_a_rate() {
    let app = TestApp::spawn().await;
    let b = app.register_vendor("Lanterns").await;
    let path = format!("/v1/vendors/{b}/fee-rate");
    for rate in ["1.5", "-0.1", "0.123456", "abc", "", "0.1.2"] {
        let answer = app.post(&path, &app.admin(), json!({"rate": rate})).await;
        assert_invalid_field(&answer, "rate");
    }
    let number = app.post(&path, &app.admin(), json!({"rate": 0.08})).await;
    assert!(number.status.is_client_error(), "{:?}", number.body);
    let vendor = app
        .post(&path, &app.vendor(b), json!({"rate": "0.01"}))
        .await;
    assert_problem(&vendor, StatusCode::FORBIDDEN, "forbidden");
    let unknown = app
        .post(
            &format!("/v1/vendors/{}/fee-rate", Uuid::now_v7()),
            &app.admin(),
            json!({"rate": "0.05"}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{:?}", unknown.body);
}
