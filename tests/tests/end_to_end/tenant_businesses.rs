//! Issue 15, "done when": a garage operator runs monthly passes and a lease
//! company runs instalment leases, each in its own tenant of one deployment
//! on a controlled clock, with every money movement in its own tenant's
//! books and neither seeing nor touching the other's.
//!
//! The same customer name (`alice`) exists in both tenants: two people. The
//! billing scheduler and the lease scheduler (system work, acting in every
//! tenant) record each step in the tenant of the aggregate it is about.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use command_api::Role;
use domain::SubscriptionStatus;
use ledger_clock::ManualClock;
use ledger_tests::answer::{dec, money, position};
use ledger_tests::pipeline::{eventually, settle};
use ledger_tests::tokens::WEBHOOK_SECRET;
use ledger_tests::webhooks::{
    invoice_payment_event, minor_units, payment_event, signed, SUCCEEDED,
};
use ledger_tests::{Answer, TestApp};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

const GARAGE: &str = "garage";
const LESSOR: &str = "lessor";

fn time(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

/// Delivers `event` in `currency`, signed at the ledger's (manual) time.
async fn deliver(app: &TestApp, mut event: Value, currency: &str) -> Answer {
    event["data"]["object"]["currency"] = json!(currency);
    let (raw, signature) = signed(&event, WEBHOOK_SECRET, app.now().timestamp());
    let answer = app.send_raw_webhook(raw, &signature).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer
}

/// The tenants of every event of one aggregate.
async fn tenants_of(app: &TestApp, aggregate_id: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT DISTINCT tenant FROM events WHERE aggregate_id = $1 ORDER BY tenant")
        .bind(aggregate_id)
        .fetch_all(&app.pool)
        .await
        .expect("read the log")
}

async fn subscription_status(app: &TestApp, id: &str) -> SubscriptionStatus {
    app.command_app()
        .subscriptions
        .load_any_tenant(id)
        .await
        .expect("load the subscription")
        .aggregate
        .status()
}

/// The tenant's trial balance once its ledger reached `min`: balanced.
async fn trial_balance(app: &TestApp, admin: &str, min: i64) -> Value {
    let trial = app
        .get_at("/v1/ledger/trial-balance", admin, Some(min))
        .await;
    assert_eq!(trial.status, StatusCode::OK, "{:?}", trial.body);
    assert_eq!(
        trial.body["total_debit"], trial.body["total_credit"],
        "{:?}",
        trial.body
    );
    trial.body
}

fn balance(trial: &Value, account: &str) -> Decimal {
    trial["accounts"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["account"] == account))
        .map(|r| money(r, "balance"))
        .unwrap_or_default()
}

#[tokio::test]
async fn a_garage_runs_passes_and_a_lessor_runs_leases_in_one_deployment_apart() {
    let clock = Arc::new(ManualClock::new(time("2030-01-01T08:00:00Z")));
    let app = TestApp::spawn_with_clock(clock.clone()).await;
    let platform = app.platform_admin();
    for body in [
        json!({"slug": GARAGE, "name": "Garage North", "currency": "EUR", "tax_rate": "0.2"}),
        json!({"slug": LESSOR, "name": "City Car Lease", "currency": "USD"}),
    ] {
        let created = app.post("/v1/tenants", &platform, body).await;
        assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    }
    let garage_admin = app.token_in(GARAGE, Role::Admin, "admin-1", None);
    let lessor_admin = app.token_in(LESSOR, Role::Admin, "admin-1", None);
    let garage_alice = app.token_in(GARAGE, Role::Customer, "alice", None);
    let lessor_alice = app.token_in(LESSOR, Role::Customer, "alice", None);

    // The garage sells a monthly pass; alice subscribes and pays the first
    // period, taxed at the garage's 20 %, in euros.
    let plan = app
        .post(
            "/v1/plans",
            &garage_admin,
            json!({"name": "Monthly pass", "price": "89.00", "interval": "month"}),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED, "{:?}", plan.body);
    let started = app
        .post(
            "/v1/subscriptions",
            &garage_alice,
            json!({"plan_id": plan.body["plan_id"]}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let pass = started.body["subscription_id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let first_invoice = started.uuid("invoice_id");
    deliver(
        &app,
        invoice_payment_event(
            "evt_garage_1",
            SUCCEEDED,
            &first_invoice.to_string(),
            minor_units(dec("106.80")),
            None,
        ),
        "eur",
    )
    .await;
    assert_eq!(
        subscription_status(&app, &pass).await,
        SubscriptionStatus::Active
    );

    // The lessor leases a car to its own alice: 90.00 upfront, then three
    // monthly instalments.
    let vendor = app
        .post("/v1/vendors", &lessor_admin, json!({"name": "Fleet"}))
        .await;
    assert_eq!(vendor.status, StatusCode::CREATED, "{:?}", vendor.body);
    let vendor_id = vendor.uuid("vendor_id");
    let vendor_token = app.token_in(LESSOR, Role::Vendor, "fleet", Some(vendor_id));
    let listing = app
        .post(
            "/v1/listings",
            &vendor_token,
            json!({"title": "Car", "description": "Estate", "category": "cars",
                   "kind": "rental", "pricing_unit": "day", "price_per_unit": "10.00",
                   "deposit": "100.00", "units": 1}),
        )
        .await;
    assert_eq!(listing.status, StatusCode::CREATED, "{:?}", listing.body);
    let car = listing.uuid("listing_id");
    let published = app
        .post(
            &format!("/v1/listings/{car}/publish"),
            &vendor_token,
            json!({}),
        )
        .await;
    assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
    let lease = app
        .post(
            "/v1/orders",
            &lessor_alice,
            json!({"items": [{"listing_id": car, "quantity": 1,
                   "start": "2030-01-31T10:00:00Z", "end": "2030-05-01T10:00:00Z",
                   "payment_plan": {"deposit": "90.00", "instalments": 3, "interval": "month"}}]}),
        )
        .await;
    assert_eq!(lease.status, StatusCode::CREATED, "{:?}", lease.body);
    assert_eq!(lease.body["currency"], "USD");
    let order_id = lease.uuid("order_id");
    let line_id =
        Uuid::parse_str(lease.body["lines"][0]["line_id"].as_str().expect("line")).expect("a uuid");
    let due_now = money(&lease.body, "due_now");
    let confirmed = deliver(
        &app,
        payment_event(
            "evt_lessor_0",
            SUCCEEDED,
            order_id,
            minor_units(due_now),
            None,
        ),
        "usd",
    )
    .await;
    assert_eq!(
        confirmed.body["status"], "confirmed",
        "{:?}",
        confirmed.body
    );

    // Neither alice can touch the other's; the admins neither.
    let crossed = [
        (
            format!("/v1/subscriptions/{pass}/cancel"),
            lessor_alice.clone(),
            json!({"at_period_end": false}),
        ),
        (
            format!("/v1/subscriptions/{pass}/cancel"),
            lessor_admin.clone(),
            json!({"at_period_end": false}),
        ),
        (
            format!("/v1/orders/{order_id}/lines/{line_id}/terminate"),
            garage_alice.clone(),
            json!({}),
        ),
        (
            format!("/v1/orders/{order_id}/cancel"),
            garage_admin.clone(),
            json!({}),
        ),
    ];
    // What the payments set off (holds confirmed, invoices issued) first.
    settle(&app, Duration::from_secs(30))
        .await
        .expect("the policies settle");
    let before = app.event_count().await;
    for (path, token, body) in &crossed {
        let answer = app.post(path, token, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{path}: {:?}",
            answer.body
        );
    }
    let recorded: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT aggregate_type, event_type, tenant FROM events
          ORDER BY global_position OFFSET $1",
    )
    .bind(before)
    .fetch_all(&app.pool)
    .await
    .expect("read the log");
    assert!(
        recorded.is_empty(),
        "nothing crossed recorded: {recorded:?}"
    );

    // February: the garage bills period 2 (alice does not pay); the lessor's
    // first instalment falls due on Jan 31 and is paid.
    clock.set(time("2030-02-01T09:00:00Z"));
    let billed = eventually(Duration::from_secs(10), || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT count(*) FROM events
              WHERE aggregate_id = $1 AND event_type = 'InvoiceIssued'",
        )
        .bind(&pass)
        .fetch_one(&app.pool)
        .await
        .unwrap_or(0)
            == 2
    })
    .await;
    assert!(billed, "the garage's second period is invoiced");
    let instalment = money(&lease.body["schedule"][0], "amount");
    let paid = deliver(
        &app,
        payment_event(
            "evt_lessor_1",
            SUCCEEDED,
            order_id,
            minor_units(instalment),
            None,
        ),
        "usd",
    )
    .await;

    // Unpaid, the pass goes past due, then is suspended a week after.
    clock.set(time("2030-02-03T09:00:00Z"));
    let past_due = eventually(Duration::from_secs(10), || async {
        subscription_status(&app, &pass).await == SubscriptionStatus::PastDue
    })
    .await;
    assert!(past_due, "{:?}", subscription_status(&app, &pass).await);
    clock.set(time("2030-02-10T09:00:00Z"));
    let suspended = eventually(Duration::from_secs(10), || async {
        subscription_status(&app, &pass).await == SubscriptionStatus::Suspended
    })
    .await;
    assert!(suspended, "{:?}", subscription_status(&app, &pass).await);

    // Every event of each business is its tenant's, the schedulers' too.
    assert_eq!(tenants_of(&app, &pass).await, [GARAGE]);
    assert_eq!(tenants_of(&app, &order_id.to_string()).await, [LESSOR]);
    assert_eq!(tenants_of(&app, &vendor_id.to_string()).await, [LESSOR]);
    assert_eq!(tenants_of(&app, &car.to_string()).await, [LESSOR]);
    let scheduled: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT metadata->>'principal' FROM events
          WHERE aggregate_id = $1 AND tenant = $2",
    )
    .bind(&pass)
    .bind(GARAGE)
    .fetch_all(&app.pool)
    .await
    .expect("read the log");
    assert!(
        scheduled.iter().any(|p| p.starts_with("system:")),
        "the scheduler's own steps are in the garage's tenant: {scheduled:?}"
    );

    // Each tenant reads its own business only.
    settle(&app, Duration::from_secs(60))
        .await
        .expect("the read models settle");
    let head = position(&paid).max(app.head().await);
    let garage_passes = app
        .get_at("/v1/subscriptions", &garage_alice, Some(head))
        .await;
    assert_eq!(garage_passes.status, StatusCode::OK);
    assert_eq!(
        garage_passes.body["items"].as_array().map(Vec::len),
        Some(1)
    );
    let lessor_passes = app.get("/v1/subscriptions", &lessor_alice).await;
    assert_eq!(lessor_passes.status, StatusCode::OK);
    assert_eq!(
        lessor_passes.body["items"].as_array().map(Vec::len),
        Some(0)
    );
    let lessor_orders = app.get("/v1/orders", &lessor_alice).await;
    assert_eq!(
        lessor_orders.body["items"].as_array().map(Vec::len),
        Some(1)
    );
    let garage_orders = app.get("/v1/orders", &garage_alice).await;
    assert_eq!(
        garage_orders.body["items"].as_array().map(Vec::len),
        Some(0)
    );
    let seen = app
        .send(
            Method::GET,
            &format!("/v1/orders/{order_id}"),
            Some(&garage_admin),
            None,
            &[],
        )
        .await;
    assert_eq!(seen.status, StatusCode::NOT_FOUND, "{:?}", seen.body);

    // The books: each tenant's balances on its own; the garage's cash is the
    // pass it was paid, the lessor's what alice paid for her lease.
    let garage = trial_balance(&app, &garage_admin, head).await;
    let lessor = trial_balance(&app, &lessor_admin, head).await;
    assert_eq!(balance(&garage, "cash"), dec("106.80"), "{garage}");
    assert_eq!(balance(&lessor, "cash"), due_now + instalment, "{lessor}");
    assert_eq!(balance(&lessor, "subscription_revenue"), Decimal::ZERO);
    let window = "from=2030-01-01T00:00:00Z&to=2031-01-01T00:00:00Z";
    let garage_figures = app
        .get(&format!("/v1/analytics/summary?{window}"), &garage_admin)
        .await;
    let lessor_figures = app
        .get(&format!("/v1/analytics/summary?{window}"), &lessor_admin)
        .await;
    assert_eq!(
        garage_figures.status,
        StatusCode::OK,
        "{:?}",
        garage_figures.body
    );
    assert_eq!(
        garage_figures.body["past_due"], "106.80",
        "{:?}",
        garage_figures.body
    );
    assert_eq!(
        lessor_figures.body["past_due"], "0.00",
        "{:?}",
        lessor_figures.body
    );
    assert_eq!(
        lessor_figures.body["mrr"], "0.00",
        "{:?}",
        lessor_figures.body
    );
}
