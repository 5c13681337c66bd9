//! Subscriptions started and billed on the app's clock (DESIGN.md
//! "Subscriptions and instalments", invariant 10).
//!
//! The Subscription aggregate decides everything; this module only asks it
//! at the right times. `subscription_schedule` (migration 0025) keeps when
//! each subscription next needs a look: written *before* the subscription
//! starts and after every step, so a crash can leave the row early (the
//! next look finds nothing due and moves it on) but never missing. Several
//! processes may look at the same subscription at once: each `Bill` or
//! `Dun` command takes one step on the stored state, and the bus's sequence
//! check makes the loser decide again on the winner's events, where the
//! same step is a no-op, so a period is billed exactly once.

use chrono::{DateTime, Utc};
use domain::{DomainError, Subscription, SubscriptionCommand, SubscriptionEvent};
use uuid::Uuid;

use crate::auth::Principal;
use crate::bus::{CommandError, Committed};
use crate::context::CommandContext;
use crate::CommandApp;

/// Subscriptions looked at per round.
pub const BATCH: i64 = 100;
/// Steps one look may take (a subscription many periods behind catches up
/// over several rounds rather than holding the scheduler).
const MAX_STEPS: usize = 64;

/// Records when `subscription_id` next needs a look (`None`: never).
pub async fn schedule(
    app: &CommandApp,
    subscription_id: Uuid,
    next_due: Option<DateTime<Utc>>,
) -> Result<(), CommandError> {
    sqlx::query(
        "INSERT INTO subscription_schedule (subscription_id, next_due_at, updated_at)
         VALUES ($1, $2, $3)
         ON CONFLICT (subscription_id)
         DO UPDATE SET next_due_at = EXCLUDED.next_due_at, updated_at = EXCLUDED.updated_at",
    )
    .bind(subscription_id)
    .bind(next_due)
    .bind(app.clock.now())
    .execute(&app.pool)
    .await?;
    Ok(())
}

/// Starts a subscription of `customer` on `plan_id`; the first period is
/// invoiced at once unless the plan has a trial.
pub async fn start(
    app: &CommandApp,
    context: &CommandContext,
    subscription_id: Uuid,
    plan_id: Uuid,
    customer: &str,
) -> Result<(Committed<Subscription>, Subscription), CommandError> {
    let plan = app
        .plans
        .load(&plan_id.to_string(), &context.principal)
        .await?;
    let terms = plan
        .terms()
        .cloned()
        .ok_or(DomainError::not_found("plan"))?;
    let now = app.clock.now();
    // First, so that a crash right after the start still gets it billed.
    schedule(app, subscription_id, Some(now)).await?;
    let command = SubscriptionCommand::Start {
        subscription_id,
        customer: customer.to_owned(),
        plan: terms,
        dunning: app.config.dunning.clone(),
        tax_rate: app.tenant_terms(&context.principal).await?.rates.tax_rate,
        first_invoice_id: Uuid::now_v7(),
        at: now,
    };
    let committed = app
        .subscriptions
        .execute_new(
            &subscription_id.to_string(),
            command,
            context,
            "StartSubscription",
        )
        .await?;
    let mut state = Subscription::default();
    for event in &committed.events {
        cqrs_es::Aggregate::apply(&mut state, event.payload.clone());
    }
    schedule(app, subscription_id, state.next_due()).await?;
    Ok((committed, state))
}

/// Runs `command` on a subscription, then records when it is next due.
pub async fn execute(
    app: &CommandApp,
    context: &CommandContext,
    subscription_id: Uuid,
    command: SubscriptionCommand,
    name: &str,
) -> Result<Committed<Subscription>, CommandError> {
    let id = subscription_id.to_string();
    let committed = app
        .subscriptions
        .execute(&id, command, context, name)
        .await?;
    let state = app.subscriptions.load(&id, &context.principal).await?;
    schedule(app, subscription_id, state.next_due()).await?;
    Ok(committed)
}

/// Takes every step due by now on one subscription: periods invoiced,
/// dunning steps, a cancellation at period end. Returns the events
/// recorded.
pub async fn advance(app: &CommandApp, subscription_id: Uuid) -> Result<usize, CommandError> {
    let context = CommandContext::background(
        Principal::system("billing"),
        format!("billing:{subscription_id}"),
    );
    let id = subscription_id.to_string();
    let mut recorded = 0;
    for _ in 0..MAX_STEPS {
        let at = app.clock.now();
        let billed = app
            .subscriptions
            .execute(
                &id,
                SubscriptionCommand::Bill {
                    invoice_id: Uuid::now_v7(),
                    at,
                },
                &context,
                "BillSubscription",
            )
            .await?;
        let dunned = app
            .subscriptions
            .execute(
                &id,
                SubscriptionCommand::Dun { at },
                &context,
                "DunSubscription",
            )
            .await?;
        let step = billed.events.len() + dunned.events.len();
        recorded += step;
        if step == 0 {
            break;
        }
    }
    let state = app.subscriptions.load(&id, &context.principal).await?;
    schedule(app, subscription_id, state.next_due()).await?;
    Ok(recorded)
}

/// One round of the scheduler: every subscription due by the app's clock
/// (up to [`BATCH`]) advanced. Returns the events recorded.
pub async fn tick(app: &CommandApp) -> Result<usize, CommandError> {
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT subscription_id FROM subscription_schedule
         WHERE next_due_at <= $1 ORDER BY next_due_at LIMIT $2",
    )
    .bind(app.clock.now())
    .bind(BATCH)
    .fetch_all(&app.pool)
    .await?;
    let mut recorded = 0;
    for subscription_id in due {
        match advance(app, subscription_id).await {
            Ok(n) => recorded += n,
            // Scheduled but never started (a crash before the start, or a
            // refused start): nothing will ever be due.
            Err(CommandError::Rejected(DomainError::NotFound { .. })) => {
                schedule(app, subscription_id, None).await?
            }
            Err(err) if err.is_failure() => return Err(err),
            Err(err) => {
                tracing::warn!(%subscription_id, error = %err, "could not advance a subscription")
            }
        }
    }
    Ok(recorded)
}

/// The invoice a command issued, if it issued one.
pub fn issued_invoice(committed: &Committed<Subscription>) -> Option<Uuid> {
    committed.events.iter().find_map(|e| match &e.payload {
        SubscriptionEvent::InvoiceIssued { invoice_id, .. } => Some(*invoice_id),
        _ => None,
    })
}
