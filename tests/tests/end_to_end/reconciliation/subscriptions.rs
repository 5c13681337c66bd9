//! The random marketplace's passes (issue 15): plans at random prices and
//! intervals, customers subscribing, and each subscription's money going one
//! of the ways API.md allows: its first invoice paid, paid with another
//! amount (unapplied cash), declined, paid then upgraded (a proration
//! invoice) or downgraded (a credit), or cancelled unpaid (the invoice
//! voided and written off). The checker then finds every cent of it in the
//! books as the log says.

use std::sync::atomic::AtomicUsize;

use ledger_tests::tokens::WEBHOOK_SECRET;
use ledger_tests::webhooks::{invoice_payment_event, minor_units, signed, FAILED, SUCCEEDED};
use ledger_tests::TestApp;
use rand::rngs::StdRng;
use rand::Rng;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::json;
use uuid::Uuid;

use super::{cents, expect, post, Tally};

const INTERVALS: &[&str] = &["week", "month", "year"];

/// What happens to each subscription's money.
#[derive(Clone, Copy, Debug)]
enum Path {
    Paid,
    PaidAnotherAmount,
    Declined,
    PaidThenChanged,
    CancelledUnpaid,
}

/// How the passes went.
#[derive(Default)]
pub(super) struct PassTally {
    pub(super) subscribed: AtomicUsize,
    pub(super) paid: AtomicUsize,
    pub(super) unapplied: AtomicUsize,
    pub(super) declined: AtomicUsize,
    pub(super) changed: AtomicUsize,
    pub(super) cancelled: AtomicUsize,
}

/// What an invoice is due, as the log recorded it.
async fn invoice_amount(app: &TestApp, invoice_id: Uuid) -> Decimal {
    let amount: String = sqlx::query_scalar(
        "SELECT payload -> 'InvoiceIssued' ->> 'amount' FROM events
          WHERE event_type = 'InvoiceIssued'
            AND payload -> 'InvoiceIssued' ->> 'invoice_id' = $1",
    )
    .bind(invoice_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("the invoice in the log");
    amount.parse().expect("an amount")
}

/// The provider's event about `invoice_id`, signed at the ledger's time.
async fn pay(app: &TestApp, event_id: &str, kind: &str, invoice_id: Uuid, amount: Decimal) {
    let failure = (kind == FAILED).then_some("Your card was declined.");
    let event = invoice_payment_event(
        event_id,
        kind,
        &invoice_id.to_string(),
        minor_units(amount),
        failure,
    );
    let (raw, signature) = signed(&event, WEBHOOK_SECRET, app.now().timestamp());
    let answer = app.send_raw_webhook(raw, &signature).await;
    expect(&answer, StatusCode::OK, "a subscription payment");
}

fn uuid_of(answer: &ledger_tests::Answer, field: &str) -> Option<Uuid> {
    answer.body[field]
        .as_str()
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// Creates `plans` plans and drives `subscriptions` subscriptions.
pub(super) async fn drive(
    app: &TestApp,
    rng: &mut StdRng,
    plans: usize,
    subscriptions: usize,
    tally: &PassTally,
) {
    let admin = app.admin();
    let mut plan_ids = Vec::new();
    for n in 0..plans {
        let price = cents(rng.gen_range(500..=15_000));
        let interval = INTERVALS[rng.gen_range(0..INTERVALS.len())];
        let created = post(
            app,
            "/v1/plans",
            &admin,
            json!({"name": format!("Pass {n}"), "price": price, "interval": interval}),
        )
        .await;
        expect(&created, StatusCode::CREATED, "a plan");
        plan_ids.push(uuid_of(&created, "plan_id").expect("a plan id"));
    }
    for n in 0..subscriptions {
        let customer = app.customer(&format!("pass-holder-{n}"));
        let plan = plan_ids[rng.gen_range(0..plan_ids.len())];
        let started = post(
            app,
            "/v1/subscriptions",
            &customer,
            json!({"plan_id": plan}),
        )
        .await;
        expect(&started, StatusCode::CREATED, "a subscription");
        Tally::bump(&tally.subscribed);
        let id = uuid_of(&started, "subscription_id").expect("a subscription id");
        let Some(invoice) = uuid_of(&started, "invoice_id") else {
            continue;
        };
        let due = invoice_amount(app, invoice).await;
        let path = match rng.gen_range(0..100) {
            0..=34 => Path::Paid,
            35..=44 => Path::PaidAnotherAmount,
            45..=59 => Path::Declined,
            60..=84 => Path::PaidThenChanged,
            _ => Path::CancelledUnpaid,
        };
        let event = format!("evt_pass_{n}");
        match path {
            Path::Paid => {
                pay(app, &event, SUCCEEDED, invoice, due).await;
                Tally::bump(&tally.paid);
            }
            Path::PaidAnotherAmount => {
                pay(app, &event, SUCCEEDED, invoice, due + Decimal::ONE).await;
                Tally::bump(&tally.unapplied);
            }
            Path::Declined => {
                pay(app, &event, FAILED, invoice, due).await;
                Tally::bump(&tally.declined);
            }
            Path::PaidThenChanged => {
                pay(app, &event, SUCCEEDED, invoice, due).await;
                let other = plan_ids[rng.gen_range(0..plan_ids.len())];
                let changed = post(
                    app,
                    &format!("/v1/subscriptions/{id}/change-plan"),
                    &customer,
                    json!({"plan_id": other}),
                )
                .await;
                // Another interval, or the same plan: a refusal, as API.md says.
                if changed.status == StatusCode::OK {
                    Tally::bump(&tally.changed);
                    if let Some(prorated) = uuid_of(&changed, "invoice_id") {
                        if rng.gen_bool(0.5) {
                            let owed = invoice_amount(app, prorated).await;
                            pay(app, &format!("{event}_p"), SUCCEEDED, prorated, owed).await;
                        }
                    }
                }
            }
            Path::CancelledUnpaid => {
                let cancelled = post(
                    app,
                    &format!("/v1/subscriptions/{id}/cancel"),
                    &customer,
                    json!({"at_period_end": false}),
                )
                .await;
                expect(&cancelled, StatusCode::OK, "a cancellation");
                Tally::bump(&tally.cancelled);
            }
        }
    }
}
