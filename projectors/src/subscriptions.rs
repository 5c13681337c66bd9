//! Plans and subscriptions for the query side (`rm_plans`,
//! `rm_subscriptions`, `rm_subscription_invoices`; migration 0029): each
//! subscription's status, plan, current period, scheduled cancellation and
//! downgrade credit, and each of its invoices with its amount and status.
//! The aggregates decide all of it; this model only copies what their
//! events say, one statement per event (subscriptions change a few times a
//! period, not thousands of times a second like inventory).

use domain::subscription::SubscriptionEvent;
use domain::{PlanEvent, SubscriptionStatus};
use event_log::{Aggregate, Event};
use futures::future::BoxFuture;
use ledger_nats::EventEnvelope;
use rust_decimal::Decimal;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::Consumer;
use crate::Error;

pub const NAME: &str = "subscriptions";

pub struct Subscriptions;

impl Consumer for Subscriptions {
    fn name(&self) -> &'static str {
        NAME
    }

    fn tables(&self) -> &'static [&'static str] {
        &["rm_plans", "rm_subscriptions", "rm_subscription_invoices"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let wanted = [Aggregate::Plan, Aggregate::Subscription];
            for event in events {
                if !event.aggregate().is_some_and(|a| wanted.contains(&a)) {
                    continue;
                }
                let id =
                    Uuid::parse_str(&event.aggregate_id).map_err(|e| Error::apply(event, e))?;
                match crate::decode(event, &wanted)? {
                    Some(Event::Plan(plan)) => apply_plan(tx, event, plan).await?,
                    Some(Event::Subscription(change)) => {
                        apply_subscription(tx, event, id, change).await?
                    }
                    _ => {}
                }
            }
            Ok(())
        })
    }
}

async fn apply_plan(
    tx: &mut PgConnection,
    event: &EventEnvelope,
    plan: PlanEvent,
) -> Result<(), Error> {
    let PlanEvent::PlanCreated {
        plan_id,
        name,
        price,
        interval,
        trial_days,
        entitlement,
        created_at,
    } = plan;
    let trial_days = i32::try_from(trial_days).map_err(|e| Error::apply(event, e))?;
    sqlx::query(
        "INSERT INTO rm_plans
             (plan_id, name, price, billing_interval, trial_days, entitlement, created_at, position,
              tenant)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (plan_id) DO NOTHING",
    )
    .bind(plan_id)
    .bind(name)
    .bind(price)
    .bind(interval.as_str())
    .bind(trial_days)
    .bind(entitlement)
    .bind(created_at)
    .bind(event.position)
    .bind(&event.tenant)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Sets a subscription's status.
async fn set_status(
    tx: &mut PgConnection,
    event: &EventEnvelope,
    id: Uuid,
    status: SubscriptionStatus,
) -> Result<(), Error> {
    sqlx::query(
        "UPDATE rm_subscriptions SET status = $2, position = $3 WHERE subscription_id = $1",
    )
    .bind(id)
    .bind(status.as_str())
    .bind(event.position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn apply_subscription(
    tx: &mut PgConnection,
    event: &EventEnvelope,
    id: Uuid,
    change: SubscriptionEvent,
) -> Result<(), Error> {
    use SubscriptionEvent as E;
    let position = event.position;
    match change {
        E::SubscriptionStarted {
            customer,
            plan,
            started_at,
            trial_end,
            ..
        } => {
            let status = if trial_end.is_some() {
                SubscriptionStatus::Trialing
            } else {
                SubscriptionStatus::Pending
            };
            sqlx::query(
                "INSERT INTO rm_subscriptions
                     (subscription_id, customer_id, plan_id, price, billing_interval, status,
                      started_at, trial_end, current_period_start, current_period_end, position,
                      tenant)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8, $10, $11)
                 ON CONFLICT (subscription_id) DO NOTHING",
            )
            .bind(id)
            .bind(customer)
            .bind(plan.plan_id)
            .bind(plan.price)
            .bind(plan.interval.as_str())
            .bind(status.as_str())
            .bind(started_at)
            .bind(trial_end)
            // While trialing, the trial is the current period.
            .bind(trial_end.map(|_| started_at))
            .bind(position)
            .bind(&event.tenant)
            .execute(&mut *tx)
            .await?;
        }
        E::InvoiceIssued {
            invoice_id,
            number,
            kind,
            period,
            amount,
            credit_applied,
            tax,
            due_at,
        } => {
            let number = i32::try_from(number).map_err(|e| Error::apply(event, e))?;
            let kind = match kind {
                domain::subscription::InvoiceKind::Period => "period",
                domain::subscription::InvoiceKind::Proration => "proration",
            };
            // An invoice of nothing (all of it credited) is paid as issued.
            let status = if amount == Decimal::ZERO {
                "paid"
            } else {
                "open"
            };
            sqlx::query(
                "INSERT INTO rm_subscription_invoices
                     (invoice_id, subscription_id, number, kind, period_start, period_end, amount,
                      credit_applied, due_at, status, position, tax, tenant)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (invoice_id) DO NOTHING",
            )
            .bind(invoice_id)
            .bind(id)
            .bind(number)
            .bind(kind)
            .bind(period.map(|p| p.start))
            .bind(period.map(|p| p.end))
            .bind(amount)
            .bind(credit_applied)
            .bind(due_at)
            .bind(status)
            .bind(position)
            .bind(tax)
            .bind(&event.tenant)
            .execute(&mut *tx)
            .await?;
            // A period's invoice starts that period (and ends a trial).
            sqlx::query(
                "UPDATE rm_subscriptions
                    SET credit = credit - $2,
                        current_period_start = COALESCE($3, current_period_start),
                        current_period_end = COALESCE($4, current_period_end),
                        status = CASE WHEN $3 IS NOT NULL AND status = 'trialing'
                                      THEN 'active' ELSE status END,
                        position = $5
                  WHERE subscription_id = $1",
            )
            .bind(id)
            .bind(credit_applied)
            .bind(period.map(|p| p.start))
            .bind(period.map(|p| p.end))
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        E::InvoicePaid {
            invoice_id,
            paid_at,
            ..
        } => {
            update_invoice(
                tx,
                "status = 'paid', paid_at = $2",
                invoice_id,
                paid_at,
                position,
            )
            .await?;
        }
        E::InvoicePaymentFailed {
            invoice_id,
            failure,
            ..
        } => {
            let failure = i32::try_from(failure).map_err(|e| Error::apply(event, e))?;
            update_invoice(tx, "failures = $2", invoice_id, failure, position).await?;
        }
        E::InvoicePaymentUnapplied {
            invoice_id, amount, ..
        } => {
            update_invoice(
                tx,
                "unapplied = unapplied + $2",
                invoice_id,
                amount,
                position,
            )
            .await?;
        }
        E::UnappliedPaymentRefunded {
            invoice_id, amount, ..
        } => {
            update_invoice(tx, "refunded = refunded + $2", invoice_id, amount, position).await?;
        }
        E::InvoiceVoided { invoice_id, .. } => {
            sqlx::query(
                "UPDATE rm_subscription_invoices SET status = 'void', position = $2
                  WHERE invoice_id = $1",
            )
            .bind(invoice_id)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        E::PaymentRetryRequested { .. } => {}
        E::SubscriptionPastDue { .. } => {
            set_status(tx, event, id, SubscriptionStatus::PastDue).await?
        }
        E::SubscriptionSuspended { .. } => {
            set_status(tx, event, id, SubscriptionStatus::Suspended).await?
        }
        E::SubscriptionActivated { .. } => {
            set_status(tx, event, id, SubscriptionStatus::Active).await?
        }
        E::CancellationScheduled { effective_at } => {
            sqlx::query(
                "UPDATE rm_subscriptions SET cancel_at = $2, position = $3 WHERE subscription_id = $1",
            )
            .bind(id)
            .bind(effective_at)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        E::SubscriptionCancelled { cause, at } => {
            let cause = match cause {
                domain::subscription::CancelCause::Requested => "requested",
                domain::subscription::CancelCause::AtPeriodEnd => "at_period_end",
                domain::subscription::CancelCause::NonPayment => "non_payment",
            };
            sqlx::query(
                "UPDATE rm_subscriptions
                    SET status = 'cancelled', cancelled_at = $2, cancel_cause = $3, position = $4
                  WHERE subscription_id = $1",
            )
            .bind(id)
            .bind(at)
            .bind(cause)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
        E::PlanChanged {
            plan, proration, ..
        } => {
            // A downgrade's credit waits for the next invoices.
            let credit = (-proration).max(Decimal::ZERO);
            sqlx::query(
                "UPDATE rm_subscriptions
                    SET plan_id = $2, price = $3, credit = credit + $4, position = $5
                  WHERE subscription_id = $1",
            )
            .bind(id)
            .bind(plan.plan_id)
            .bind(plan.price)
            .bind(credit)
            .bind(position)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}

/// `UPDATE rm_subscription_invoices SET <set>` of one invoice, `$2` being
/// `value`.
async fn update_invoice<T>(
    tx: &mut PgConnection,
    set: &'static str,
    invoice_id: Uuid,
    value: T,
    position: i64,
) -> Result<(), Error>
where
    T: for<'q> sqlx::Encode<'q, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + Send,
{
    sqlx::query(&format!(
        "UPDATE rm_subscription_invoices SET {set}, position = $3 WHERE invoice_id = $1"
    ))
    .bind(invoice_id)
    .bind(value)
    .bind(position)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
