//! Plans and subscriptions on the query side (issue 15): `GET /v1/plans`,
//! `GET /v1/subscriptions` and `/{id}` with their invoices, scoped to who
//! asks; the subscription figures of the analytics summary; the trial
//! balance with subscription money in it; and the read models equal to a
//! fresh rebuild from the log.

use std::time::Duration;

use ledger_tests::pipeline::settle;
use ledger_tests::reconcile;
use ledger_tests::webhooks::{FAILED, SUCCEEDED};
use ledger_tests::TestApp;
use projectors::rebuild::{differences, rebuild_into};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

async fn plan(app: &TestApp, name: &str, price: &str) -> String {
    let plan: Value = app
        .post(
            "/v1/plans",
            &app.admin(),
            json!({"name": name, "price": price, "interval": "month"}),
        )
        .await
        .expect(StatusCode::CREATED);
    plan["plan_id"].as_str().expect("plan_id").to_owned()
}

/// `customer` subscribes to `plan_id`: `(subscription id, first invoice)`.
async fn subscribe(app: &TestApp, customer: &str, plan_id: &str) -> (String, Uuid) {
    let started: Value = app
        .post(
            "/v1/subscriptions",
            &app.customer(customer),
            json!({"plan_id": plan_id}),
        )
        .await
        .expect(StatusCode::CREATED);
    let invoice = started["invoice_id"].as_str().expect("an invoice");
    (
        started["subscription_id"].as_str().expect("id").to_owned(),
        Uuid::parse_str(invoice).expect("a uuid"),
    )
}

/// Pays `minor` of `invoice_id`; the webhook's position.
async fn pay(app: &TestApp, event_id: &str, invoice_id: Uuid, minor: i64) -> i64 {
    let answer = app
        .invoice_webhook(event_id, SUCCEEDED, invoice_id, minor)
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    answer.body["position"].as_i64().expect("a position")
}

#[tokio::test]
async fn subscriptions_are_read_by_their_customer_and_admins_with_their_invoices_and_books() {
    let app = TestApp::spawn().await;
    let monthly = plan(&app, "Monthly garage pass", "89.00").await;
    let gold = plan(&app, "Gold pass", "120.00").await;

    // Plans: every role reads them; an unknown one is 404.
    let head = Some(app.head().await);
    let plans = app.get_at("/v1/plans", &app.customer("c-1"), head).await;
    assert_eq!(plans.status, StatusCode::OK, "{}", plans.body);
    let names: Vec<&str> = plans.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|p| p["name"].as_str())
        .collect();
    assert_eq!(names.len(), 2, "{}", plans.body);
    let one = app
        .get(&format!("/v1/plans/{monthly}"), &app.analyst())
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    assert_eq!(
        (one.body["price"].clone(), one.body["interval"].clone()),
        (json!("89.00"), json!("month"))
    );
    let missing = app
        .get(&format!("/v1/plans/{}", Uuid::now_v7()), &app.admin())
        .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    // c-1 pays its first period, upgrades, pays 1.00 of the proration
    // (unapplied) and cancels at once: the proration is written off.
    let (first, first_invoice) = subscribe(&app, "c-1", &monthly).await;
    pay(&app, "evt_1", first_invoice, 8900).await;
    let changed: Value = app
        .post(
            &format!("/v1/subscriptions/{first}/change-plan"),
            &app.customer("c-1"),
            json!({"plan_id": gold}),
        )
        .await
        .expect(StatusCode::OK);
    let proration_invoice =
        Uuid::parse_str(changed["invoice_id"].as_str().expect("an invoice")).expect("a uuid");
    let proration = changed["proration"].as_str().expect("proration").to_owned();
    pay(&app, "evt_2", proration_invoice, 100).await;
    let cancelled: Value = app
        .post(
            &format!("/v1/subscriptions/{first}/cancel"),
            &app.customer("c-1"),
            json!({"at_period_end": false}),
        )
        .await
        .expect(StatusCode::OK);
    // c-2's first charge is declined (past due, never paid); c-3 pays.
    let (second, second_invoice) = subscribe(&app, "c-2", &monthly).await;
    let declined = app
        .invoice_webhook("evt_4", FAILED, second_invoice, 8900)
        .await;
    assert_eq!(declined.status, StatusCode::OK, "{}", declined.body);
    assert_eq!(declined.body["subscription_status"], "past_due");
    let (third, third_invoice) = subscribe(&app, "c-3", &monthly).await;
    let last = pay(&app, "evt_3", third_invoice, 8900).await;
    let at = Some(last.max(cancelled["position"].as_i64().expect("position")));

    // The owner reads it, with its invoices and where each stands.
    let path = format!("/v1/subscriptions/{first}");
    let mine = app.get_at(&path, &app.customer("c-1"), at).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    let body = &mine.body;
    assert_eq!(body["status"], "cancelled", "{body}");
    assert_eq!(body["cancel_cause"], "requested", "{body}");
    assert_eq!(body["plan_id"], json!(gold), "{body}");
    assert!(body["current_period"]["start"].is_string(), "{body}");
    let invoices = body["invoices"].as_array().expect("invoices");
    let shown: Vec<(Value, Value, Value, Value)> = invoices
        .iter()
        .map(|i| {
            (
                i["kind"].clone(),
                i["amount"].clone(),
                i["status"].clone(),
                i["unapplied"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            (
                json!("period"),
                json!("89.00"),
                json!("paid"),
                json!("0.00")
            ),
            (
                json!("proration"),
                json!(proration),
                json!("void"),
                json!("1.00")
            ),
        ]
    );

    // Untaxed here (no tax rate): the subtotal is the amount; nothing of
    // the unapplied cash was refunded.
    for field in ["subtotal", "amount"] {
        assert_eq!(invoices[0][field], "89.00", "{body}");
    }
    for field in ["tax", "refunded"] {
        assert_eq!(invoices[1][field], "0.00", "{body}");
    }

    // Another customer's is 404 (no existence leak), as on the command
    // side; roles without subscriptions are 403; an admin reads any.
    for (token, expected) in [
        (app.customer("c-2"), StatusCode::NOT_FOUND),
        (app.vendor(Uuid::now_v7()), StatusCode::FORBIDDEN),
        (app.analyst(), StatusCode::FORBIDDEN),
        (app.auditor(), StatusCode::FORBIDDEN),
        (app.admin(), StatusCode::OK),
    ] {
        let answer = app.get(&path, &token).await;
        assert_eq!(answer.status, expected, "{}", answer.body);
    }
    let unknown = app
        .get(
            &format!("/v1/subscriptions/{}", Uuid::now_v7()),
            &app.admin(),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Lists: a customer's own only; an admin's all, by status.
    let ids = |answer: &ledger_tests::Answer| -> Vec<String> {
        answer.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter_map(|s| s["subscription_id"].as_str().map(str::to_owned))
            .collect()
    };
    let own = app
        .get_at("/v1/subscriptions", &app.customer("c-2"), at)
        .await;
    assert_eq!(ids(&own), [second], "{}", own.body);
    assert_eq!(own.body["items"][0]["status"], "past_due");
    assert_eq!(own.body["items"][0]["invoices"][0]["failures"], 1);
    let all = app.get("/v1/subscriptions?limit=2", &app.admin()).await;
    assert_eq!(ids(&all).len(), 2, "{}", all.body);
    let cursor = all.body["next_cursor"].as_str().expect("a next page");
    let rest = app
        .get(
            &format!("/v1/subscriptions?limit=2&cursor={cursor}"),
            &app.admin(),
        )
        .await;
    assert_eq!(ids(&rest).len(), 1, "{}", rest.body);
    let active = app
        .get("/v1/subscriptions?status=active", &app.admin())
        .await;
    assert_eq!(ids(&active), [third], "{}", active.body);
    let bad = app
        .get("/v1/subscriptions?status=paused", &app.admin())
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let refused = app
        .get("/v1/subscriptions", &app.vendor(Uuid::now_v7()))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);

    // Analytics: c-3 active at 89.00 a month (c-2, past due without ever
    // paying, is not); one of three cancelled; c-2's declined invoice is
    // past due.
    let summary = app
        .get_at("/v1/analytics/summary", &app.analyst(), at)
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{}", summary.body);
    assert_eq!(summary.body["mrr"], "89.00", "{}", summary.body);
    assert_eq!(summary.body["active_subscriptions"], 1);
    assert_eq!(summary.body["churn_rate"], "0.3333");
    assert_eq!(summary.body["past_due"], "89.00");

    // The books balance, and owe exactly c-2's open invoice.
    let balance = app
        .get_at("/v1/ledger/trial-balance", &app.auditor(), at)
        .await;
    assert_eq!(balance.status, StatusCode::OK, "{}", balance.body);
    assert_eq!(
        balance.body["total_debit"], balance.body["total_credit"],
        "{}",
        balance.body
    );
    let account = |name: &str| -> Value {
        balance.body["accounts"]
            .as_array()
            .expect("accounts")
            .iter()
            .find(|a| a["account"] == name)
            .map(|a| a["balance"].clone())
            .unwrap_or(Value::Null)
    };
    assert_eq!(
        account("subscription_receivable"),
        "89.00",
        "{}",
        balance.body
    );
    assert_eq!(account("cash"), "179.00", "{}", balance.body);

    // The live read models equal a fresh rebuild of the log.
    settle(&app, Duration::from_secs(30))
        .await
        .expect("the pipeline settles");
    rebuild_into(
        &app.pool,
        &app.stream,
        "verify_subscriptions",
        &projectors::read_models(),
    )
    .await
    .expect("a fresh rebuild");
    for table in [
        "rm_plans",
        "rm_subscriptions",
        "rm_subscription_invoices",
        "ledger_subscription_invoices",
        "ledger_accounts",
    ] {
        let differing = differences(&app.pool, "verify_subscriptions", table)
            .await
            .expect("compare");
        assert_eq!(differing, 0, "{table} differs from a fresh rebuild");
    }

    // Every subscription's money (invoices, the payment that did not pay,
    // the upgrade's proration written off) is as the log says, to the cent.
    let observed = reconcile::observe(&app).await.expect("observe the ledger");
    let found = reconcile::check(&app.pool, &observed)
        .await
        .expect("read the log");
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(found.is_empty(), "{}", lines.join("\n"));

    // And the checker is not blind to them: a cent moved from one
    // subscription account to another is caught.
    let moved = "UPDATE ledger_accounts SET debit = debit + 0.01
                  WHERE account = 'subscription_receivable'";
    sqlx::query(moved)
        .execute(&app.pool)
        .await
        .expect("plant a cent");
    let found = reconcile::check(
        &app.pool,
        &reconcile::observe(&app).await.expect("observe the ledger"),
    )
    .await
    .expect("read the log");
    assert!(
        found
            .iter()
            .any(|d| d.subject.contains("subscription_receivable")),
        "a planted cent is reported: {found:?}"
    );
    app.stop().await;
}
