//! Subscription invoices paid through the payment webhook
//! (`metadata.invoice_id`, issue 15), on a controlled clock: the command
//! routes served over HTTP by a command side whose time is a ManualClock,
//! the scheduler ticked by the test. A lifecycle of payments, a replay, an
//! unknown invoice, another amount, failures that feed dunning through to
//! cancellation and a payment of the voided invoice; then the ledger and
//! subscriptions read models built from that log keep the money conserved
//! to the cent.

use std::sync::Arc;

use chrono::{DateTime, Duration, TimeZone, Utc};
use command_api::application::billing;
use command_api::auth::Principal;
use command_api::context::CommandContext;
use command_api::{AppState, CommandApiConfig, CommandApp, Role};
use domain::subscription::InvoiceStatus;
use domain::{Interval, PlanCommand, SubscriptionStatus};
use ledger_clock::{Clock, ManualClock};
use ledger_tests::database::fresh_database;
use ledger_tests::webhooks::{invoice_payment_event, signed, FAILED, SUCCEEDED};
use projectors::Consumer;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

const SECRET: &str = "whsec";

fn d(amount: &str) -> Decimal {
    amount.parse().expect("a decimal")
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2031, 1, 31, 9, 0, 0).unwrap()
}

/// The command routes of `app`, served on a random port.
async fn serve(app: AppState) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let addr = listener.local_addr().expect("an address");
    tokio::spawn(async move {
        axum::serve(listener, command_api::router(app))
            .await
            .expect("serve");
    });
    format!("http://{addr}")
}

/// The provider, on the test's clock.
struct Provider {
    url: String,
    clock: Arc<ManualClock>,
    client: reqwest::Client,
}

impl Provider {
    async fn send(&self, event: Value) -> (StatusCode, Value) {
        let (raw, signature) = signed(&event, SECRET, self.clock.now().timestamp());
        let response = self
            .client
            .post(format!("{}/v1/webhooks/payments", self.url))
            .header("content-type", "application/json")
            .header("stripe-signature", signature)
            .body(raw)
            .send()
            .await
            .expect("deliver the webhook");
        let status = response.status();
        (status, response.json().await.expect("a JSON answer"))
    }

    async fn pay(&self, event_id: &str, invoice_id: Uuid, minor: i64) -> Value {
        let event =
            invoice_payment_event(event_id, SUCCEEDED, &invoice_id.to_string(), minor, None);
        let (status, body) = self.send(event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
    }

    /// `POST /v1/payments/{payment_id}/{action}` as `role`.
    async fn settle(&self, payment_id: &str, action: &str, role: Role) -> (StatusCode, Value) {
        let token = command_api::Authenticator::new("jwt")
            .issue(
                "someone-1",
                role,
                None,
                std::time::Duration::from_secs(3600),
            )
            .expect("issue a token");
        let response = self
            .client
            .post(format!("{}/v1/payments/{payment_id}/{action}", self.url))
            .bearer_auth(token)
            .send()
            .await
            .expect("settle the payment");
        let status = response.status();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn fail(&self, event_id: &str, invoice_id: Uuid) -> Value {
        let event = invoice_payment_event(
            event_id,
            FAILED,
            &invoice_id.to_string(),
            8900,
            Some("Your card was declined."),
        );
        let (status, body) = self.send(event).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        body
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

/// The `n`th invoice (from 1) of the subscription, as the aggregate has it.
async fn invoice(
    app: &CommandApp,
    id: Uuid,
    n: usize,
) -> domain::subscription::SubscriptionInvoice {
    let state = app
        .subscriptions
        .load(&id.to_string(), &command_api::Principal::system("test"))
        .await
        .expect("load");
    let invoice = state.invoices().nth(n - 1).cloned();
    invoice.expect("the invoice")
}

async fn status(app: &CommandApp, id: Uuid) -> SubscriptionStatus {
    app.subscriptions
        .load(&id.to_string(), &command_api::Principal::system("test"))
        .await
        .expect("load")
        .status()
}

/// Unapplied payments recorded in the log: `(reason, amount)`.
async fn unapplied_in_the_log(pool: &PgPool, id: Uuid) -> Vec<(String, String)> {
    sqlx::query_as(
        "SELECT payload->'InvoicePaymentUnapplied'->>'reason',
                payload->'InvoicePaymentUnapplied'->>'amount'
           FROM events WHERE aggregate_type = 'Subscription' AND aggregate_id = $1
            AND event_type = 'InvoicePaymentUnapplied' ORDER BY sequence",
    )
    .bind(id.to_string())
    .fetch_all(pool)
    .await
    .expect("read the log")
}

#[tokio::test]
async fn invoices_are_paid_by_webhook_once_and_failures_feed_dunning_to_cancellation() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let clock = Arc::new(ManualClock::new(t0()));
    let app = CommandApp::with_clock(
        CommandApiConfig::for_tests("jwt", SECRET),
        pool.clone(),
        clock.clone(),
    );
    let provider = Provider {
        url: serve(app.clone()).await,
        clock: clock.clone(),
        client: reqwest::Client::new(),
    };
    let plan = monthly_plan(&app, d("89.00")).await;
    let id = Uuid::now_v7();
    let context = CommandContext::background(Principal::system("test"), "test");
    billing::start(&app, &context, id, plan, "c-1")
        .await
        .expect("start");
    let first = invoice(&app, id, 1).await.invoice_id;

    // The first invoice paid: active. The same provider event again
    // records nothing and says so.
    let paid = provider.pay("evt_1", first, 8900).await;
    assert_eq!(paid["subscription_id"], id.to_string(), "{paid}");
    assert_eq!(paid["subscription_status"], "active", "{paid}");
    assert_eq!(paid["duplicate"], false, "{paid}");
    let again = provider.pay("evt_1", first, 8900).await;
    assert_eq!(again["duplicate"], true, "{again}");
    assert_eq!(again["position"], paid["position"], "{again}");

    // An invoice this ledger never issued, or no id at all: 200, ignored.
    let unknown = provider.pay("evt_x", Uuid::now_v7(), 8900).await;
    assert!(unknown["ignored"].is_string(), "{unknown}");
    let event = invoice_payment_event("evt_y", SUCCEEDED, "not-an-id", 8900, None);
    let (code, garbage) = provider.send(event).await;
    assert_eq!(code, StatusCode::OK);
    assert!(garbage["ignored"].is_string(), "{garbage}");

    // Feb 28: the second period's invoice. 50.00 of 89.00 does not pay it:
    // unapplied cash, the invoice still open, the pass still active.
    clock.set(Utc.with_ymd_and_hms(2031, 2, 28, 9, 0, 0).unwrap());
    assert_eq!(billing::tick(&app).await.expect("tick"), 1);
    let second = invoice(&app, id, 2).await.invoice_id;
    let short = provider.pay("evt_2", second, 5000).await;
    assert_eq!(short["subscription_status"], "active", "{short}");
    assert_eq!(invoice(&app, id, 2).await.status, InvoiceStatus::Open);

    // An admin gives the 50.00 back (once); nothing applies it, a customer
    // may not, and an unknown payment is 404.
    let (code, body) = provider.settle("evt_2", "refund", Role::Customer).await;
    assert_eq!(code, StatusCode::FORBIDDEN, "{body}");
    let (code, body) = provider.settle("evt_2", "apply", Role::Admin).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, refunded) = provider.settle("evt_2", "refund", Role::Admin).await;
    assert_eq!(code, StatusCode::OK, "{refunded}");
    assert_eq!(refunded["outcome"], "refunded", "{refunded}");
    assert_eq!(refunded["amount"], "50.00", "{refunded}");
    assert_eq!(refunded["subscription_id"], id.to_string(), "{refunded}");
    assert_eq!(refunded["subscription_status"], "active", "{refunded}");
    assert!(refunded.get("order_id").is_none(), "{refunded}");
    let (code, body) = provider.settle("evt_2", "refund", Role::Admin).await;
    assert_eq!(code, StatusCode::CONFLICT, "{body}");
    let (code, body) = provider.settle("evt_none", "refund", Role::Admin).await;
    assert_eq!(code, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(invoice(&app, id, 2).await.status, InvoiceStatus::Open);

    // A declined charge is a failed attempt: past due at once; its replay
    // counts nothing more. Then the right amount restores it.
    let declined = provider.fail("evt_3", second).await;
    assert_eq!(declined["subscription_status"], "past_due", "{declined}");
    let replayed = provider.fail("evt_3", second).await;
    assert_eq!(replayed["duplicate"], true, "{replayed}");
    assert_eq!(invoice(&app, id, 2).await.failures, 1);
    let settled = provider.pay("evt_4", second, 8900).await;
    assert_eq!(settled["subscription_status"], "active", "{settled}");

    // Mar 31: the third invoice, declined; the scheduler's retries go
    // unanswered, the pass is suspended a week after the failure, then
    // cancelled two weeks later and the invoice written off.
    let march = Utc.with_ymd_and_hms(2031, 3, 31, 9, 0, 0).unwrap();
    clock.set(march);
    assert_eq!(billing::tick(&app).await.expect("tick"), 1);
    let third = invoice(&app, id, 3).await.invoice_id;
    provider.fail("evt_5", third).await;
    for day in [1, 3, 5, 7] {
        clock.set(march + Duration::days(day));
        billing::tick(&app).await.expect("tick");
    }
    assert_eq!(status(&app, id).await, SubscriptionStatus::Suspended);
    clock.set(march + Duration::days(21));
    billing::tick(&app).await.expect("tick");
    assert_eq!(status(&app, id).await, SubscriptionStatus::Cancelled);
    assert_eq!(invoice(&app, id, 3).await.status, InvoiceStatus::Void);

    // A charge of the voided invoice still arrives: held as unapplied cash.
    let late = provider.pay("evt_6", third, 8900).await;
    assert_eq!(late["subscription_status"], "cancelled", "{late}");
    assert_eq!(invoice(&app, id, 3).await.status, InvoiceStatus::Void);
    assert_eq!(
        unapplied_in_the_log(&pool, id).await,
        [
            ("amount_mismatch".to_owned(), "50.00".to_owned()),
            ("invoice_voided".to_owned(), "89.00".to_owned())
        ]
    );

    books_of_the_lifecycle(&pool, id).await;
}

/// The ledger and subscriptions read models built from the whole log into
/// `schema` (as a rebuild does); the ledger's accounts `(name, debit,
/// credit)`, asserted balanced.
async fn books(pool: &PgPool, schema: &str) -> Vec<(String, Decimal, Decimal)> {
    let models: Vec<Arc<dyn Consumer>> = vec![
        Arc::new(projectors::ledger::Ledger),
        Arc::new(projectors::subscriptions::Subscriptions),
    ];
    let tables: Vec<&str> = models
        .iter()
        .flat_map(|m| m.tables().iter().copied())
        .collect();
    projectors::rebuild::create_schema_for(pool, schema, &tables)
        .await
        .expect("a schema");
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(pool)
        .await
        .expect("the head");
    projectors::rebuild::apply_until(pool, schema, &models, head, |_, _| {})
        .await
        .expect("apply the log");
    let accounts: Vec<(String, Decimal, Decimal)> = sqlx::query_as(&format!(
        "SELECT account, debit, credit FROM {schema}.ledger_accounts ORDER BY account"
    ))
    .fetch_all(pool)
    .await
    .expect("the accounts");
    let (debits, credits) = accounts.iter().fold(
        (Decimal::ZERO, Decimal::ZERO),
        |(d, c), (_, debit, credit)| (d + debit, c + credit),
    );
    assert_eq!(debits, credits, "the trial balance: {accounts:?}");
    accounts
}

/// An account's balance (debit − credit).
fn balance_of(accounts: &[(String, Decimal, Decimal)], name: &str) -> Decimal {
    accounts
        .iter()
        .find(|(account, _, _)| account == name)
        .map_or(Decimal::ZERO, |(_, debit, credit)| debit - credit)
}

/// The books of the lifecycle above: every entry balanced, the money
/// conserved, and the read model agreeing with the aggregate.
async fn books_of_the_lifecycle(pool: &PgPool, id: Uuid) {
    let accounts = books(pool, "subscription_books").await;
    let balance = |name: &str| balance_of(&accounts, name);
    // Cash: 89 + 50 (unapplied, refunded) + 89 + 89 (unapplied, after the
    // void).
    assert_eq!(balance("cash"), d("267.00"), "{accounts:?}");
    // Three periods invoiced, the third written off; nothing owed now.
    assert_eq!(balance("subscription_revenue"), d("-267.00"));
    assert_eq!(balance("subscription_write_offs"), d("89.00"));
    assert_eq!(balance("subscription_receivable"), d("0.00"));
    assert_eq!(balance("customer_funds"), d("-89.00"));
    // Conservation: cash = revenue kept + unapplied cash held − still owed.
    assert_eq!(
        balance("cash"),
        -balance("subscription_revenue")
            - balance("subscription_write_offs")
            - balance("customer_funds")
            - balance("subscription_receivable")
    );

    // The read model agrees with the aggregate.
    let (status, customer): (String, String) = sqlx::query_as(
        "SELECT status, customer_id FROM subscription_books.rm_subscriptions
          WHERE subscription_id = $1",
    )
    .bind(id)
    .fetch_one(pool)
    .await
    .expect("the subscription row");
    assert_eq!((status.as_str(), customer.as_str()), ("cancelled", "c-1"));
    let invoices: Vec<(i32, String, Decimal, Decimal, Decimal, i32)> = sqlx::query_as(
        "SELECT number, status, amount, unapplied, refunded, failures
           FROM subscription_books.rm_subscription_invoices
          WHERE subscription_id = $1 ORDER BY number",
    )
    .bind(id)
    .fetch_all(pool)
    .await
    .expect("the invoice rows");
    assert_eq!(
        invoices,
        [
            (1, "paid".to_owned(), d("89.00"), d("0.00"), d("0.00"), 0),
            (2, "paid".to_owned(), d("89.00"), d("50.00"), d("50.00"), 1),
            (3, "void".to_owned(), d("89.00"), d("89.00"), d("0.00"), 1),
        ]
    );
}

#[tokio::test]
async fn a_downgrade_credit_is_booked_and_taken_off_the_next_invoice_to_the_cent() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let clock = Arc::new(ManualClock::new(t0()));
    let app = CommandApp::with_clock(
        CommandApiConfig::for_tests("jwt", SECRET),
        pool.clone(),
        clock.clone(),
    );
    let provider = Provider {
        url: serve(app.clone()).await,
        clock: clock.clone(),
        client: reqwest::Client::new(),
    };
    let (gold, basic) = (
        monthly_plan(&app, d("120.00")).await,
        monthly_plan(&app, d("89.00")).await,
    );
    let id = Uuid::now_v7();
    let context = CommandContext::background(Principal::system("test"), "test");
    billing::start(&app, &context, id, gold, "c-1")
        .await
        .expect("start");
    provider
        .pay("evt_1", invoice(&app, id, 1).await.invoice_id, 12000)
        .await;

    // Halfway through Jan 31 – Feb 28, down to 89.00: a credit, no invoice.
    clock.set(t0() + Duration::days(14));
    let terms = app
        .plans
        .load(&basic.to_string(), &command_api::Principal::system("test"))
        .await
        .expect("the plan")
        .terms()
        .cloned()
        .expect("terms");
    let changed = billing::execute(
        &app,
        &context,
        id,
        domain::SubscriptionCommand::ChangePlan {
            plan: terms,
            invoice_id: Uuid::now_v7(),
            at: clock.now(),
        },
        "ChangeSubscriptionPlan",
    )
    .await
    .expect("change plan");
    let proration = changed
        .events
        .iter()
        .find_map(|e| match &e.payload {
            domain::SubscriptionEvent::PlanChanged { proration, .. } => Some(*proration),
            _ => None,
        })
        .expect("a proration");
    assert!(
        proration < Decimal::ZERO,
        "a downgrade credits: {proration}"
    );
    let credit = -proration;

    // The next period's invoice is the new price less the credit; paid.
    clock.set(Utc.with_ymd_and_hms(2031, 2, 28, 9, 0, 0).unwrap());
    billing::tick(&app).await.expect("tick");
    let second = invoice(&app, id, 2).await;
    assert_eq!(second.amount, d("89.00") - credit);
    let minor = ledger_tests::webhooks::minor_units(second.amount);
    let paid = provider.pay("evt_2", second.invoice_id, minor).await;
    assert_eq!(paid["subscription_status"], "active", "{paid}");

    // Books: the credit was owed, then used up; revenue is the first
    // period, less the credit, plus the second at its price; all of it cash.
    let accounts = books(&pool, "downgrade_books").await;
    let balance = |name: &str| balance_of(&accounts, name);
    assert_eq!(balance("subscription_credits"), d("0.00"), "{accounts:?}");
    assert_eq!(balance("subscription_receivable"), d("0.00"));
    assert_eq!(
        balance("subscription_revenue"),
        -(d("120.00") - credit + d("89.00"))
    );
    assert_eq!(balance("cash"), -balance("subscription_revenue"));
    let (credit_left,): (Decimal,) = sqlx::query_as(
        "SELECT credit FROM downgrade_books.rm_subscriptions WHERE subscription_id = $1",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .expect("the subscription row");
    assert_eq!(credit_left, d("0.00"));
}

#[tokio::test]
async fn invoices_are_taxed_at_the_deployments_rate_and_a_voided_invoices_tax_is_reversed() {
    let (pool, _db) = fresh_database().await.expect("a database");
    let clock = Arc::new(ManualClock::new(t0()));
    let mut config = CommandApiConfig::for_tests("jwt", SECRET);
    config.tax_rate = d("0.0825");
    let app = CommandApp::with_clock(config, pool.clone(), clock.clone());
    let provider = Provider {
        url: serve(app.clone()).await,
        clock: clock.clone(),
        client: reqwest::Client::new(),
    };
    let plan = monthly_plan(&app, d("89.00")).await;
    let id = Uuid::now_v7();
    let context = CommandContext::background(Principal::system("test"), "test");
    billing::start(&app, &context, id, plan, "c-1")
        .await
        .expect("start");
    // 89.00 net; 89.00 × 0.0825 = 7.3425 → 7.34 of tax; 96.34 due.
    let first = invoice(&app, id, 1).await;
    assert_eq!(first.amount, d("96.34"));
    let net = provider.pay("evt_net", first.invoice_id, 8900).await;
    assert_eq!(net["subscription_status"], "pending", "{net}");
    let paid = provider.pay("evt_1", first.invoice_id, 9634).await;
    assert_eq!(paid["subscription_status"], "active", "{paid}");
    // Feb 28: the second period, then cancelled at once: voided unpaid.
    clock.set(Utc.with_ymd_and_hms(2031, 2, 28, 9, 0, 0).unwrap());
    assert_eq!(billing::tick(&app).await.expect("tick"), 1);
    billing::execute(
        &app,
        &context,
        id,
        domain::SubscriptionCommand::Cancel {
            at_period_end: false,
            at: clock.now(),
        },
        "CancelSubscription",
    )
    .await
    .expect("cancel");
    assert_eq!(invoice(&app, id, 2).await.status, InvoiceStatus::Void);

    let accounts = books(&pool, "taxed_books").await;
    let balance = |name: &str| balance_of(&accounts, name);
    assert_eq!(balance("cash"), d("185.34"), "{accounts:?}");
    assert_eq!(balance("customer_funds"), d("-89.00"));
    // Revenue is net; the paid invoice's tax is owed, the voided one's
    // reversed; the voided invoice's net written off.
    assert_eq!(balance("subscription_revenue"), d("-178.00"));
    assert_eq!(balance("tax_payable"), d("-7.34"));
    assert_eq!(balance("subscription_write_offs"), d("89.00"));
    assert_eq!(balance("subscription_receivable"), d("0.00"));
    let invoices: Vec<(i32, String, Decimal, Decimal)> = sqlx::query_as(
        "SELECT number, status, amount, tax FROM taxed_books.rm_subscription_invoices
          WHERE subscription_id = $1 ORDER BY number",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .expect("the invoice rows");
    assert_eq!(
        invoices,
        [
            (1, "paid".to_owned(), d("96.34"), d("7.34")),
            (2, "void".to_owned(), d("96.34"), d("7.34")),
        ]
    );
}
