//! Racing partial refunds (API.md "Money", issue 14 item 7): twenty
//! refunds of one paid order that together exceed what was captured;
//! exactly those that fit succeed, whatever the interleaving.

use ledger_tests::answer::decimal;
use ledger_tests::{reconcile, sale_item, TestApp};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;

use super::{assert_no_server_errors, race};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_racing_partial_refunds_over_the_captured_amount_succeed_exactly_as_far_as_they_fit()
{
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(vendor, "100.00", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 1)]).await;
    app.pay(&order).await;
    let order_id = order.uuid("order_id");

    // 20 × 7.00 = 140.00 against 100.00 captured: 14 fit (98.00).
    let requests = (0..20)
        .map(|i| {
            (
                app.admin(),
                format!("/v1/orders/{order_id}/refunds"),
                json!({"amount": "7.00", "reason": format!("goodwill {i}")}),
            )
        })
        .collect();
    let answers = race(&app, requests).await;
    assert_no_server_errors(&answers);
    let granted = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .count();
    assert_eq!(granted, 14, "exactly the refunds that fit");

    let refunded: Decimal = app
        .event_payloads("Order", order_id)
        .await
        .iter()
        .filter(|(kind, _)| kind == "RefundRecorded")
        .map(|(_, p)| decimal(&p["amount"]))
        .sum();
    assert_eq!(refunded, Decimal::new(9_800, 2));

    ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(30))
        .await
        .expect("settle");
    let observed = reconcile::observe(&app).await.expect("observe");
    let found = reconcile::check(&app.pool, &observed).await.expect("check");
    assert!(found.is_empty(), "{found:#?}");
    assert_eq!(observed.total_debit, observed.total_credit);
}
