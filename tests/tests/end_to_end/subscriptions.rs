//! Subscriptions (issue 15 item 2): plans and passes over HTTP with their
//! authorization, and the billing scheduler on PostgreSQL with a controlled
//! clock: each period billed once when it begins, dunning through to
//! suspension, two schedulers racing on the same subscriptions (every
//! period billed exactly once, invoice numbers gapless), and a schedule row
//! left by a crash before the start.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use command_api::application::billing;
use command_api::auth::Principal;
use command_api::context::CommandContext;
use command_api::{AppState, CommandApiConfig, CommandApp};
use domain::subscription::InvoiceStatus;
use domain::{Interval, PlanCommand, SubscriptionStatus};
use ledger_clock::{Clock, ManualClock};
use ledger_tests::database::fresh_database;
use ledger_tests::TestApp;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

#[tokio::test]
async fn plans_and_subscriptions_over_http_with_their_authorization() {
    let app = TestApp::spawn().await;
    let admin = app.admin();

    // Only an admin creates plans; bad input is a 422 naming the field.
    let body = json!({"name": "Monthly garage pass", "price": "89.00", "interval": "month"});
    let refused = app
        .post("/v1/plans", &app.customer("c-1"), body.clone())
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let bad = app
        .post(
            "/v1/plans",
            &admin,
            json!({"name": "x", "price": "0", "interval": "month"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let bad = app
        .post(
            "/v1/plans",
            &admin,
            json!({"name": "x", "price": "1.00", "interval": "fortnight"}),
        )
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", bad.body);
    let plan: Value = app
        .post("/v1/plans", &admin, body)
        .await
        .expect(StatusCode::CREATED);
    let plan_id = plan["plan_id"].as_str().expect("plan_id").to_owned();

    // A customer subscribes: pending, the first period invoiced at once.
    let customer = app.customer("c-1");
    let started: Value = app
        .post("/v1/subscriptions", &customer, json!({"plan_id": plan_id}))
        .await
        .expect(StatusCode::CREATED);
    assert_eq!(started["status"], "pending", "{started}");
    assert!(started["invoice_id"].is_string(), "{started}");
    let period = &started["current_period"];
    let start: DateTime<Utc> = serde_json::from_value(period["start"].clone()).expect("start");
    let end: DateTime<Utc> = serde_json::from_value(period["end"].clone()).expect("end");
    assert!(end > start + Duration::days(27) && end <= start + Duration::days(31));
    let id = started["subscription_id"].as_str().expect("id").to_owned();

    // An unknown plan is 404; only customers subscribe.
    let unknown = app
        .post(
            "/v1/subscriptions",
            &customer,
            json!({"plan_id": Uuid::now_v7()}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND, "{}", unknown.body);
    let analyst = app
        .post(
            "/v1/subscriptions",
            &app.analyst(),
            json!({"plan_id": plan_id}),
        )
        .await;
    assert_eq!(analyst.status, StatusCode::FORBIDDEN);

    // Another customer's subscription does not exist for them.
    let cancel = format!("/v1/subscriptions/{id}/cancel");
    let other = app
        .post(
            &cancel,
            &app.customer("c-2"),
            json!({"at_period_end": true}),
        )
        .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND, "{}", other.body);

    // A plan change to a dearer plan of the same interval, right after the
    // start, owes nearly the whole difference (prorated to the cent).
    let gold: Value = app
        .post(
            "/v1/plans",
            &admin,
            json!({"name": "Gold", "price": "120.00", "interval": "month"}),
        )
        .await
        .expect(StatusCode::CREATED);
    let changed: Value = app
        .post(
            &format!("/v1/subscriptions/{id}/change-plan"),
            &customer,
            json!({"plan_id": gold["plan_id"]}),
        )
        .await
        .expect(StatusCode::OK);
    let proration: Decimal = changed["proration"]
        .as_str()
        .expect("proration")
        .parse()
        .expect("a decimal");
    assert!(
        proration > Decimal::new(3000, 2) && proration <= Decimal::new(3100, 2),
        "{changed}"
    );
    assert!(changed["invoice_id"].is_string(), "{changed}");

    // The owner cancels at period end; asking twice changes nothing.
    let cancelled: Value = app
        .post(&cancel, &customer, json!({"at_period_end": true}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(cancelled["status"], "pending");
    let again: Value = app
        .post(&cancel, &admin, json!({"at_period_end": true}))
        .await
        .expect(StatusCode::OK);
    assert_eq!(again["position"], cancelled["position"]);
    app.stop().await;
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 31, 9, 0, 0).unwrap()
}

/// A command side on `pool` whose time is `clock` (a process of its own:
/// its own buses and caches).
fn process(pool: &PgPool, clock: &Arc<ManualClock>) -> AppState {
    process_with(pool, clock, domain::DunningPolicy::default())
}

fn process_with(
    pool: &PgPool,
    clock: &Arc<ManualClock>,
    dunning: domain::DunningPolicy,
) -> AppState {
    let mut config = CommandApiConfig::for_tests("jwt", "whsec");
    config.dunning = dunning;
    CommandApp::with_clock(config, pool.clone(), clock.clone())
}

/// Dunning that never acts within a test's months: only billing runs.
fn patient() -> domain::DunningPolicy {
    let days = |d: i64| domain::IsoDuration::from_seconds(d * 86_400);
    domain::DunningPolicy {
        payment_window: days(1000),
        retries: vec![],
        suspend_after: days(1000),
        cancel_after: days(1000),
    }
}

async fn monthly_plan(app: &CommandApp, price: Decimal) -> Uuid {
    let plan_id = Uuid::now_v7();
    let context = CommandContext::background(Principal::system("test"), "test");
    app.plans
        .execute(
            &plan_id.to_string(),
            PlanCommand::Create {
                plan_id,
                name: "Monthly pass".into(),
                price,
                interval: Interval::Month,
                trial_days: 0,
                entitlement: None,
                at: app.clock.now(),
            },
            &context,
            "CreatePlan",
        )
        .await
        .expect("create a plan");
    plan_id
}

async fn subscribe(app: &CommandApp, plan_id: Uuid, customer: &str) -> Uuid {
    let id = Uuid::now_v7();
    let context = CommandContext::background(Principal::system("test"), "test");
    billing::start(app, &context, id, plan_id, customer)
        .await
        .expect("start a subscription");
    id
}

/// `(number, period index)` of every invoice recorded for `id`, read from
/// the events table (what every process appended).
async fn invoices_in_the_log(pool: &PgPool, id: Uuid) -> Vec<(i64, Option<i64>)> {
    sqlx::query_as(
        "SELECT (payload->'InvoiceIssued'->>'number')::bigint,
                (payload->'InvoiceIssued'->'period'->>'index')::bigint
         FROM events WHERE aggregate_type = 'Subscription' AND aggregate_id = $1
           AND event_type = 'InvoiceIssued' ORDER BY sequence",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await
    .expect("read the log")
}

#[tokio::test]
async fn each_period_is_billed_once_when_it_begins_and_dunning_suspends_an_unpaid_pass() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let clock = Arc::new(ManualClock::new(t0()));
    let app = process(&pool, &clock);
    let plan = monthly_plan(&app, Decimal::new(8900, 2)).await;
    let id = subscribe(&app, plan, "c-1").await;
    let key = id.to_string();

    // Pay the first invoice.
    let pending = app
        .subscriptions
        .load(&key, &command_api::Principal::system("test"))
        .await
        .expect("load");
    assert_eq!(pending.status(), SubscriptionStatus::Pending);
    let first = pending.invoices().next().expect("an invoice").invoice_id;
    let context = CommandContext::background(Principal::system("test"), "test");
    billing::execute(
        &app,
        &context,
        id,
        domain::SubscriptionCommand::RecordPayment {
            invoice_id: first,
            amount: Decimal::new(8900, 2),
            payment_ref: "pi_1".into(),
            at: clock.now(),
        },
        "RecordSubscriptionPayment",
    )
    .await
    .expect("pay");

    // Nothing until the next period begins (Feb 28), then one invoice.
    clock.set(t0() + Duration::days(27));
    assert_eq!(billing::tick(&app).await.expect("tick"), 0);
    clock.set(Utc.with_ymd_and_hms(2031, 2, 28, 9, 0, 0).unwrap());
    assert_eq!(billing::tick(&app).await.expect("tick"), 1);
    assert_eq!(billing::tick(&app).await.expect("tick"), 0);
    assert_eq!(
        invoices_in_the_log(&pool, id).await,
        [(1, Some(0)), (2, Some(1))]
    );

    // Unpaid: a day later it failed (past due), then three retries, then
    // suspended a week after the failure; nothing more is billed then.
    let failed = Utc.with_ymd_and_hms(2031, 3, 1, 9, 0, 0).unwrap();
    clock.set(failed);
    billing::tick(&app).await.expect("tick");
    let state = app
        .subscriptions
        .load(&key, &command_api::Principal::system("test"))
        .await
        .expect("load");
    assert_eq!(state.status(), SubscriptionStatus::PastDue);
    for day in [1, 3, 5] {
        clock.set(failed + Duration::days(day));
        assert_eq!(
            billing::tick(&app).await.expect("tick"),
            1,
            "retry on day {day}"
        );
    }
    clock.set(failed + Duration::days(7));
    billing::tick(&app).await.expect("tick");
    let state = app
        .subscriptions
        .load(&key, &command_api::Principal::system("test"))
        .await
        .expect("load");
    assert_eq!(state.status(), SubscriptionStatus::Suspended);
    let second = state.invoices().nth(1).expect("the second invoice");
    assert_eq!((second.failures, second.retries_requested), (1, 3));
    clock.set(failed + Duration::days(20));
    billing::tick(&app).await.expect("tick");
    assert_eq!(invoices_in_the_log(&pool, id).await.len(), 2);

    // Cancelled 14 days after the suspension, the unpaid invoice voided;
    // then the schedule forgets it.
    clock.set(failed + Duration::days(21));
    billing::tick(&app).await.expect("tick");
    let state = app
        .subscriptions
        .load(&key, &command_api::Principal::system("test"))
        .await
        .expect("load");
    assert_eq!(state.status(), SubscriptionStatus::Cancelled);
    assert_eq!(
        state.invoices().nth(1).map(|i| i.status),
        Some(InvoiceStatus::Void)
    );
    let next: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT next_due_at FROM subscription_schedule WHERE subscription_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("the schedule row");
    assert_eq!(next, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_racing_bill_every_period_exactly_once() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let clock = Arc::new(ManualClock::new(t0()));
    let (a, b) = (
        process_with(&pool, &clock, patient()),
        process_with(&pool, &clock, patient()),
    );
    let plan = monthly_plan(&a, Decimal::new(1000, 2)).await;
    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(subscribe(&a, plan, &format!("c-{n}")).await);
    }
    // Six months pass in steps of ten days; at each step both processes
    // run their scheduler at the same time, twice.
    for step in 1..=18 {
        clock.set(t0() + Duration::days(10 * step));
        let (x, y) = tokio::join!(billing::tick(&a), billing::tick(&b));
        x.expect("scheduler a");
        y.expect("scheduler b");
        let (x, y) = tokio::join!(billing::tick(&a), billing::tick(&b));
        assert_eq!(
            (x.expect("a"), y.expect("b")),
            (0, 0),
            "step {step}: nothing left"
        );
    }
    // Jan 31 + 180 days = Jul 30: periods 0..=5 began (Jan 31, Feb 28,
    // Mar 31, Apr 30, May 31, Jun 30), each billed once, numbered 1..=6.
    for id in ids {
        let invoices = invoices_in_the_log(&pool, id).await;
        let expected: Vec<(i64, Option<i64>)> = (0..6).map(|i| (i + 1, Some(i))).collect();
        assert_eq!(invoices, expected, "subscription {id}");
    }
}

#[tokio::test]
async fn a_schedule_row_left_by_a_crash_before_the_start_is_forgotten() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let clock = Arc::new(ManualClock::new(t0()));
    let app = process(&pool, &clock);
    let never_started = Uuid::now_v7();
    billing::schedule(&app, never_started, Some(t0()))
        .await
        .expect("a row");
    assert_eq!(billing::tick(&app).await.expect("tick"), 0);
    let next: Option<DateTime<Utc>> = sqlx::query_scalar(
        "SELECT next_due_at FROM subscription_schedule WHERE subscription_id = $1",
    )
    .bind(never_started)
    .fetch_one(&pool)
    .await
    .expect("the row");
    assert_eq!(next, None);
}
