//! Refunds, unapplied payments and the provider's refund and dispute events
//! end to end (API.md "Money"; DESIGN.md invariant 2): every example is
//! worked out by hand, posted in the double-entry ledger, shown on the
//! order and in the vendor's entries, and reconciled to the cent by the
//! independent checker (`ledger_tests::reconcile`) with the trial balance
//! at zero.

use std::time::Duration;

use ledger_tests::answer::decimal;
use ledger_tests::webhooks::{signed, PAYOUT_FAILED};
use ledger_tests::WEBHOOK_SECRET;
use ledger_tests::{assert_ok, assert_problem, reconcile, sale_item, Answer, TestApp};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

async fn settle(app: &TestApp) -> i64 {
    ledger_tests::pipeline::settle(app, Duration::from_secs(30))
        .await
        .expect("the read models settle")
}

/// The checker finds nothing, and debits equal credits.
async fn reconciles(app: &TestApp) {
    settle(app).await;
    let observed = reconcile::observe(app).await.expect("observe the ledger");
    assert_eq!(observed.total_debit, observed.total_credit);
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

async fn refund(app: &TestApp, token: &str, order_id: Uuid, body: Value) -> Answer {
    app.post(&format!("/v1/orders/{order_id}/refunds"), token, body)
        .await
}

/// An account's balance (debit − credit) in the trial balance.
async fn balance(app: &TestApp, account: &str, min: i64) -> Decimal {
    let answer = app
        .get_at("/v1/ledger/trial-balance", &app.admin(), Some(min))
        .await;
    assert_ok(&answer);
    answer.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .find(|a| a["account"] == account)
        .map(|a| decimal(&a["balance"]))
        .unwrap_or_default()
}

async fn order_document(app: &TestApp, order_id: Uuid, min: i64) -> Value {
    let answer = app
        .get_at(&format!("/v1/orders/{order_id}"), &app.admin(), Some(min))
        .await;
    assert_ok(&answer);
    answer.body
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

/// A provider event, signed now.
async fn provider_event(app: &TestApp, event: Value) -> Answer {
    let (raw, signature) = signed(&event, WEBHOOK_SECRET, chrono::Utc::now().timestamp());
    app.send_raw_webhook(raw, &signature).await
}

fn charge_refunded(order_id: Uuid, refunds: Value) -> Value {
    json!({"id": format!("evt_{}", Uuid::new_v4().simple()), "type": "charge.refunded",
           "data": {"object": {"id": "ch_1", "metadata": {"order_id": order_id},
                               "refunds": {"data": refunds}}}})
}

fn dispute(kind: &str, order_id: Uuid, id: &str, amount: i64, status: &str) -> Value {
    json!({"id": format!("evt_{}", Uuid::new_v4().simple()), "type": kind,
           "data": {"object": {"id": id, "amount": amount, "status": status,
                               "metadata": {"order_id": order_id}}}})
}

/// One vendor selling 3 × 33.33 = 99.99 (no tax): fee 10.00, net 89.99;
/// paid. Returns (vendor, order).
async fn paid_order(app: &TestApp) -> (Uuid, Answer) {
    let vendor = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(vendor, "33.33", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 3)]).await;
    assert_eq!(order.body["total"], "99.99", "{:?}", order.body);
    app.pay(&order).await;
    (vendor, order)
}

#[tokio::test]
async fn a_partial_refund_reverses_the_fee_and_the_vendors_net_pro_rata_to_the_cent() {
    let app = TestApp::spawn().await;
    let (vendor, order) = paid_order(&app).await;
    let order_id = order.uuid("order_id");

    let answer = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"amount": "10.00", "reason": "scratched"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    // fee reversed = round(10.00 × 10.00 ÷ 99.99) = 1.00; net = the rest.
    assert_eq!(answer.body["amount"], "10.00");
    assert_eq!(answer.body["fee_reversed"], "1.00");
    assert_eq!(
        answer.body["vendor_reversed"],
        json!([{"vendor_id": vendor, "amount": "9.00"}])
    );
    let refund_id = answer.uuid("refund_id");
    let at = answer.position();

    // Shown on the order, with what it reversed.
    let shown = order_document(&app, order_id, at).await;
    let refunds = shown["refunds"].as_array().expect("refunds");
    assert_eq!(refunds.len(), 1, "{shown:?}");
    assert_eq!(refunds[0]["refund_id"], json!(refund_id));
    assert_eq!(refunds[0]["amount"], "10.00");
    assert_eq!(refunds[0]["fee_reversed"], "1.00");
    assert_eq!(refunds[0]["reason"], "scratched");

    // In the books: cash 89.99, the vendor's pending 80.99, fees 9.00.
    assert_eq!(balance(&app, "cash", at).await, Decimal::new(8999, 2));
    assert_eq!(
        balance(&app, &reconcile::vendor_pending(vendor), at).await,
        Decimal::new(-8099, 2)
    );
    assert_eq!(
        balance(&app, "platform_fees", at).await,
        Decimal::new(-900, 2)
    );
    let e = earnings(&app, vendor, at).await;
    assert_eq!(
        (e["pending"].clone(), e["refunded"].clone()),
        (json!("80.99"), json!("9.00"))
    );

    // And in the vendor's own entries.
    let entries = app
        .get_at(
            &format!("/v1/vendors/{vendor}/earnings/entries"),
            &app.vendor(vendor),
            Some(at),
        )
        .await;
    assert_ok(&entries);
    let refund_lines: Vec<&Value> = entries.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|p| p["kind"] == "refund_recorded")
        .collect();
    assert_eq!(refund_lines.len(), 2, "fee and net: {:?}", entries.body);
    reconciles(&app).await;
}

#[tokio::test]
async fn refunds_by_lines_end_by_reversing_exactly_what_the_part_has_left() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(vendor, "33.33", 10).await;
    let blade = app.sale_listing(vendor, "33.33", 10).await;
    let order = app
        .place("c-1", vec![sale_item(paddle, 1), sale_item(blade, 2)])
        .await;
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let (first, second) = (order.line_id(0), order.line_id(1));

    let one = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"lines": [first], "reason": "returned"}),
    )
    .await;
    assert_eq!(one.status, StatusCode::CREATED, "{:?}", one.body);
    // round(33.33 × 10.00 ÷ 99.99) = 3.33.
    assert_eq!(
        (one.body["amount"].clone(), one.body["fee_reversed"].clone()),
        (json!("33.33"), json!("3.33"))
    );
    let rest = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"lines": [second], "reason": "returned"}),
    )
    .await;
    assert_eq!(rest.status, StatusCode::CREATED, "{:?}", rest.body);
    // The last refund of the part: the fee and net that are left.
    assert_eq!(rest.body["amount"], "66.66");
    assert_eq!(rest.body["fee_reversed"], "6.67");
    assert_eq!(
        rest.body["vendor_reversed"],
        json!([{"vendor_id": vendor, "amount": "59.99"}])
    );
    // Nothing left: a third is a conflict.
    let more = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"amount": "0.01", "reason": "again"}),
    )
    .await;
    assert_problem(&more, StatusCode::CONFLICT, "invalid-state");
    let at = rest.position();
    assert_eq!(balance(&app, "platform_fees", at).await, Decimal::ZERO);
    assert_eq!(
        balance(&app, &reconcile::vendor_pending(vendor), at).await,
        Decimal::ZERO
    );
    reconciles(&app).await;
}

#[tokio::test]
async fn a_refund_above_captured_less_refunded_is_409_and_a_retried_one_is_recorded_once() {
    let app = TestApp::spawn().await;
    let (_, order) = paid_order(&app).await;
    let order_id = order.uuid("order_id");
    let path = format!("/v1/orders/{order_id}/refunds");
    let body = json!({"amount": "60.00", "reason": "late"});
    let first = app
        .post_with_key(&path, &app.admin(), body.clone(), "refund-1")
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    let again = app
        .post_with_key(&path, &app.admin(), body, "refund-1")
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);

    let above = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"amount": "40.00", "reason": "more"}),
    )
    .await;
    assert_problem(&above, StatusCode::CONFLICT, "invalid-state");
    let recorded = app
        .event_payloads("Order", order_id)
        .await
        .iter()
        .filter(|(kind, _)| kind == "RefundRecorded")
        .count();
    assert_eq!(recorded, 1);

    // Bad input changes nothing.
    let bad = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"amount": "-1", "reason": "x"}),
    )
    .await;
    assert_eq!(
        bad.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        bad.body
    );
    let no_reason = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"amount": "1.00", "reason": ""}),
    )
    .await;
    assert_eq!(
        no_reason.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{:?}",
        no_reason.body
    );
    let unknown = refund(&app, &app.admin(), Uuid::now_v7(), json!({"reason": "x"})).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    reconciles(&app).await;
}

#[tokio::test]
async fn a_vendor_refunds_its_own_lines_only_and_a_customer_none() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Alpine").await;
    let b = app.register_vendor("Coast").await;
    let boots = app.sale_listing(a, "50.00", 10).await;
    let kayak = app.sale_listing(b, "80.00", 10).await;
    let order = app
        .place("c-1", vec![sale_item(boots, 1), sale_item(kayak, 1)])
        .await;
    app.pay(&order).await;
    let order_id = order.uuid("order_id");
    let (boots_line, kayak_line) = (order.line_id(0), order.line_id(1));

    let foreign = refund(
        &app,
        &app.vendor(a),
        order_id,
        json!({"lines": [kayak_line], "reason": "x"}),
    )
    .await;
    assert_eq!(foreign.status, StatusCode::FORBIDDEN, "{:?}", foreign.body);
    let customer = refund(&app, &app.customer("c-1"), order_id, json!({"reason": "x"})).await;
    assert_eq!(customer.status, StatusCode::FORBIDDEN);
    let outsider = app.register_vendor("Elsewhere").await;
    let stranger = refund(
        &app,
        &app.vendor(outsider),
        order_id,
        json!({"reason": "x"}),
    )
    .await;
    assert_eq!(stranger.status, StatusCode::FORBIDDEN);

    // Without lines, a vendor's refund takes only from its own part.
    let own = refund(
        &app,
        &app.vendor(a),
        order_id,
        json!({"amount": "20.00", "reason": "goodwill"}),
    )
    .await;
    assert_eq!(own.status, StatusCode::CREATED, "{:?}", own.body);
    assert_eq!(
        own.body["vendor_reversed"],
        json!([{"vendor_id": a, "amount": "18.00"}])
    );
    let own_line = refund(
        &app,
        &app.vendor(a),
        order_id,
        json!({"lines": [boots_line], "reason": "returned"}),
    )
    .await;
    assert_eq!(own_line.status, StatusCode::CREATED, "{:?}", own_line.body);
    assert_eq!(own_line.body["amount"], "30.00");
    reconciles(&app).await;
}

#[tokio::test]
async fn a_refund_after_the_payout_leaves_a_receivable_settled_from_the_next_earnings_or_a_failed_payout(
) {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(vendor, "100.00", 10).await;
    let first = app.place("c-1", vec![sale_item(paddle, 1)]).await;
    app.pay(&first).await;
    let first_id = first.uuid("order_id");
    assert_ok(&app.ship(&app.vendor(vendor), first_id, vendor).await);
    assert_ok(&app.deliver(&app.vendor(vendor), first_id, vendor).await);
    settle(&app).await;
    let payout = app.request_payout(vendor, "90.00").await;
    assert_eq!(payout.status, StatusCode::CREATED, "{:?}", payout.body);

    let answer = refund(
        &app,
        &app.admin(),
        first_id,
        json!({"amount": "50.00", "reason": "broken"}),
    )
    .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let at = settle(&app).await;
    let e = earnings(&app, vendor, at).await;
    assert_eq!(e["available"], "0.00", "never negative: {e:?}");
    assert_eq!(e["receivable"], "45.00", "{e:?}");
    let nothing = app.request_payout(vendor, "0.01").await;
    assert_eq!(nothing.status, StatusCode::CONFLICT);

    // The next fulfilled order settles what the vendor owes first.
    let second = app.place("c-2", vec![sale_item(paddle, 1)]).await;
    app.pay(&second).await;
    let second_id = second.uuid("order_id");
    assert_ok(&app.ship(&app.vendor(vendor), second_id, vendor).await);
    assert_ok(&app.deliver(&app.vendor(vendor), second_id, vendor).await);
    let at = settle(&app).await;
    let e = earnings(&app, vendor, at).await;
    assert_eq!(
        (e["available"].clone(), e["receivable"].clone()),
        (json!("45.00"), json!("0.00"))
    );

    // The second order refunded whole: its 90.00 net takes the 45.00
    // available and leaves 45.00 owed. Then the 90.00 payout fails: what
    // comes back settles the 45.00 first, and 45.00 is available again.
    let answer = refund(&app, &app.admin(), second_id, json!({"reason": "returned"})).await;
    assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    let at = settle(&app).await;
    let e = earnings(&app, vendor, at).await;
    assert_eq!(
        (e["available"].clone(), e["receivable"].clone()),
        (json!("0.00"), json!("45.00"))
    );
    let failed = app
        .payout_webhook("evt_po_fails", PAYOUT_FAILED, payout.uuid("payout_id"))
        .await;
    assert_ok(&failed);
    let at = settle(&app).await;
    let e = earnings(&app, vendor, at).await;
    assert_eq!(
        (e["available"].clone(), e["receivable"].clone()),
        (json!("45.00"), json!("0.00")),
        "{e:?}"
    );
    reconciles(&app).await;
}

#[tokio::test]
async fn a_payment_of_another_amount_is_unapplied_cash_until_a_second_payment_completes_the_total()
{
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(vendor, "100.00", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 1)]).await;
    let order_id = order.uuid("order_id");

    let part = app.pay_order(order_id, 4_000).await;
    assert_eq!(part.body["status"], "placed");
    let at = part.position();
    let shown = order_document(&app, order_id, at).await;
    assert_eq!(shown["payments"][0]["outcome"], "unapplied", "{shown:?}");
    assert_eq!(shown["payments"][0]["unapplied"], "40.00");
    assert_eq!(balance(&app, "cash", at).await, Decimal::new(4000, 2));
    assert_eq!(balance(&app, "unapplied", at).await, Decimal::new(-4000, 2));

    let rest = app.pay_order(order_id, 6_000).await;
    assert_eq!(rest.body["status"], "confirmed", "{:?}", rest.body);
    let at = rest.position();
    let shown = order_document(&app, order_id, at).await;
    assert_eq!(shown["status"], "confirmed");
    assert_eq!(shown["payments"][0]["unapplied"], "0.00", "{shown:?}");
    assert_eq!(balance(&app, "unapplied", at).await, Decimal::ZERO);
    assert_eq!(balance(&app, "cash", at).await, Decimal::new(10_000, 2));
    let summary = app
        .get_at("/v1/analytics/summary", &app.analyst(), Some(at))
        .await;
    assert_eq!(summary.body["unapplied_cash"], "0.00", "{:?}", summary.body);
    reconciles(&app).await;
}

#[tokio::test]
async fn an_admin_applies_or_refunds_unapplied_cash() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(vendor, "100.00", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 1)]).await;
    let order_id = order.uuid("order_id");
    // Too much: cannot be applied, can be refunded.
    let over = app
        .payment_webhook(
            "evt_over",
            ledger_tests::webhooks::SUCCEEDED,
            order_id,
            15_000,
            None,
        )
        .await;
    assert_ok(&over);
    let apply = app
        .post("/v1/payments/evt_over/apply", &app.admin(), json!({}))
        .await;
    assert_problem(&apply, StatusCode::CONFLICT, "invalid-state");
    let not_admin = app
        .post(
            "/v1/payments/evt_over/refund",
            &app.customer("c-1"),
            json!({}),
        )
        .await;
    assert_eq!(not_admin.status, StatusCode::FORBIDDEN);
    let refunded = app
        .post("/v1/payments/evt_over/refund", &app.admin(), json!({}))
        .await;
    assert_ok(&refunded);
    assert_eq!(refunded.body["amount"], "150.00");
    let twice = app
        .post("/v1/payments/evt_over/refund", &app.admin(), json!({}))
        .await;
    assert_problem(&twice, StatusCode::CONFLICT, "invalid-state");
    let unknown = app
        .post("/v1/payments/evt_none/apply", &app.admin(), json!({}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Too little: applied by an admin; the rest confirms the order.
    let part = app
        .payment_webhook(
            "evt_part",
            ledger_tests::webhooks::SUCCEEDED,
            order_id,
            3_000,
            None,
        )
        .await;
    assert_ok(&part);
    let applied = app
        .post("/v1/payments/evt_part/apply", &app.admin(), json!({}))
        .await;
    assert_ok(&applied);
    assert_eq!(applied.body["order_status"], "placed");
    let rest = app.pay_order(order_id, 7_000).await;
    assert_eq!(rest.body["status"], "confirmed", "{:?}", rest.body);
    let at = rest.position();
    assert_eq!(balance(&app, "unapplied", at).await, Decimal::ZERO);
    assert_eq!(balance(&app, "cash", at).await, Decimal::new(10_000, 2));
    reconciles(&app).await;
}

#[tokio::test]
async fn refunds_made_at_the_provider_are_recorded_once_or_matched_to_ours() {
    let app = TestApp::spawn().await;
    let (_, order) = paid_order(&app).await;
    let order_id = order.uuid("order_id");

    let event = charge_refunded(order_id, json!([{"id": "re_1", "amount": 1_000}]));
    let first = provider_event(&app, event).await;
    assert_ok(&first);
    assert_eq!(first.body["duplicate"], false, "{:?}", first.body);
    // The same provider refund in another event: recorded once.
    let again = provider_event(
        &app,
        charge_refunded(order_id, json!([{"id": "re_1", "amount": 1_000}])),
    )
    .await;
    assert_ok(&again);
    assert_eq!(again.body["duplicate"], true, "{:?}", again.body);

    let ours = refund(
        &app,
        &app.admin(),
        order_id,
        json!({"amount": "5.00", "reason": "late"}),
    )
    .await;
    assert_eq!(ours.status, StatusCode::CREATED);
    let refund_id = ours.uuid("refund_id");
    let matched = provider_event(
        &app,
        charge_refunded(
            order_id,
            json!([{"id": "re_2", "amount": 500, "metadata": {"refund_id": refund_id}}]),
        ),
    )
    .await;
    assert_ok(&matched);
    let payloads = app.event_payloads("Order", order_id).await;
    let count = |kind: &str| payloads.iter().filter(|(k, _)| k == kind).count();
    assert_eq!(count("RefundRecorded"), 2, "{payloads:?}");
    assert_eq!(count("ProviderRefundMatched"), 1);
    let at = matched.body["position"].as_i64().unwrap_or_default();
    let shown = order_document(&app, order_id, at).await;
    assert_eq!(
        shown["refunds"][1]["provider_refund_id"], "re_2",
        "{shown:?}"
    );

    // Other types are acknowledged and ignored.
    let other = provider_event(
        &app,
        json!({"id": "evt_x", "type": "customer.created", "data": {"object": {}}}),
    )
    .await;
    assert_ok(&other);
    assert!(other.body["ignored"].is_string());
    reconciles(&app).await;
}

#[tokio::test]
async fn a_dispute_freezes_the_vendors_share_then_is_released_when_won_or_written_off_when_lost() {
    let app = TestApp::spawn().await;
    let (vendor, lost_order) = paid_order(&app).await;
    let lost_id = lost_order.uuid("order_id");
    let paddle = app.sale_listing(vendor, "50.00", 10).await;
    let won_order = app.place("c-2", vec![sale_item(paddle, 1)]).await;
    app.pay(&won_order).await;
    let won_id = won_order.uuid("order_id");

    let opened = provider_event(
        &app,
        dispute(
            "charge.dispute.created",
            lost_id,
            "dp_1",
            3_000,
            "needs_response",
        ),
    )
    .await;
    assert_ok(&opened);
    let opened_won = provider_event(
        &app,
        dispute(
            "charge.dispute.created",
            won_id,
            "dp_2",
            5_000,
            "needs_response",
        ),
    )
    .await;
    assert_ok(&opened_won);
    let at = settle(&app).await;
    assert_eq!(balance(&app, "disputed", at).await, Decimal::new(8_000, 2));
    // 30.00 of 99.99: fee round(30.00 × 10.00 ÷ 99.99) = 3.00, net 27.00;
    // all of 50.00: fee 5.00, net 45.00.
    assert_eq!(
        balance(&app, &reconcile::vendor_frozen(vendor), at).await,
        Decimal::new(-7_200, 2)
    );
    let shown = order_document(&app, lost_id, at).await;
    assert_eq!(shown["disputes"][0]["status"], "open", "{shown:?}");
    // Held out of refunds while open.
    let blocked = refund(
        &app,
        &app.admin(),
        won_id,
        json!({"amount": "0.01", "reason": "x"}),
    )
    .await;
    assert_problem(&blocked, StatusCode::CONFLICT, "invalid-state");

    let lost = provider_event(
        &app,
        dispute("charge.dispute.closed", lost_id, "dp_1", 3_000, "lost"),
    )
    .await;
    assert_ok(&lost);
    let won = provider_event(
        &app,
        dispute("charge.dispute.closed", won_id, "dp_2", 5_000, "won"),
    )
    .await;
    assert_ok(&won);
    let at = settle(&app).await;
    assert_eq!(balance(&app, "disputed", at).await, Decimal::ZERO);
    assert_eq!(
        balance(&app, &reconcile::vendor_frozen(vendor), at).await,
        Decimal::ZERO
    );
    // Cash: 99.99 + 50.00 − 30.00 lost.
    assert_eq!(balance(&app, "cash", at).await, Decimal::new(11_999, 2));
    let e = earnings(&app, vendor, at).await;
    assert_eq!(e["refunded"], "27.00", "{e:?}");
    assert_eq!(e["pending"], "107.99", "89.99 − 27.00 + 45.00: {e:?}");
    let summary = app
        .get_at("/v1/analytics/summary", &app.analyst(), Some(at))
        .await;
    assert_eq!(
        summary.body["disputes"],
        json!({"open": "0.00", "lost": "30.00"}),
        "{:?}",
        summary.body
    );
    let shown = order_document(&app, won_id, at).await;
    assert_eq!(shown["disputes"][0]["status"], "won");
    reconciles(&app).await;
}
