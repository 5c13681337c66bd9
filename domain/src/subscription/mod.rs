//! Subscriptions (passes) and their plans (DESIGN.md "Subscriptions and
//! instalments"; API.md "Subscriptions and instalments").
//!
//! The Subscription aggregate owns its billing schedule: a scheduler (at
//! the edge, on an injected clock) only asks it, again and again, to
//! [`SubscriptionCommand::Bill`] and [`SubscriptionCommand::Dun`] at the
//! current time, and the aggregate decides whether a period is due, which
//! one, and what dunning step comes next. Each call takes at most one step,
//! so two schedulers racing on the same subscription cannot bill a period
//! twice: the second one's append conflicts on the sequence, and on the
//! reloaded state the same command is a no-op (DESIGN.md invariant 10).

pub mod billing;
mod decide;
mod events;
mod payment;
pub mod plan;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use billing::{BillingPeriod, DunningPolicy, Interval};
pub use events::{SubscriptionCommand, SubscriptionEvent};
pub use payment::{InvoicePaymentOutcome, UnappliedReason};
pub use plan::{Plan, PlanCommand, PlanEvent, PlanTerms};

use crate::aggregate::handle_by_deciding;
use crate::error::DomainError;

/// Where a subscription stands (API.md: `trialing|active|past_due|suspended|cancelled`,
/// and `pending` until its first invoice is paid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubscriptionStatus {
    /// Not started (no events).
    #[default]
    New,
    Trialing,
    Pending,
    Active,
    PastDue,
    Suspended,
    Cancelled,
}

impl SubscriptionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubscriptionStatus::New => "new",
            SubscriptionStatus::Trialing => "trialing",
            SubscriptionStatus::Pending => "pending",
            SubscriptionStatus::Active => "active",
            SubscriptionStatus::PastDue => "past_due",
            SubscriptionStatus::Suspended => "suspended",
            SubscriptionStatus::Cancelled => "cancelled",
        }
    }
}

/// What an invoice of a subscription bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceKind {
    /// One period of the plan.
    Period,
    /// The difference owed for the rest of a period after an upgrade.
    Proration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InvoiceStatus {
    Open,
    Paid,
    /// Cancelled unpaid with its subscription (written off).
    Void,
}

/// Why a subscription ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelCause {
    /// The customer or an admin, at once.
    Requested,
    /// The customer or an admin, at the end of the period.
    AtPeriodEnd,
    /// Dunning gave up.
    NonPayment,
}

/// One invoice of a subscription, as the aggregate tracks it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubscriptionInvoice {
    pub invoice_id: Uuid,
    /// 1, 2, 3 … within the subscription: gapless by construction.
    pub number: u32,
    pub kind: InvoiceKind,
    pub period: Option<BillingPeriod>,
    pub amount: Decimal,
    pub due_at: DateTime<Utc>,
    pub status: InvoiceStatus,
    /// Failed payment attempts (a missing payment counts as one).
    pub failures: u32,
    /// Retries asked of the payment provider.
    pub retries_requested: u32,
}

pub const MAX_CUSTOMER: usize = 200;
pub const MAX_REASON: usize = 500;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    subscription_id: Option<Uuid>,
    customer: String,
    plan: Option<PlanTerms>,
    dunning: DunningPolicy,
    status: SubscriptionStatus,
    started_at: Option<DateTime<Utc>>,
    anchor: Option<DateTime<Utc>>,
    trial_end: Option<DateTime<Utc>>,
    /// The index of the next period to invoice.
    next_period: u32,
    /// The period invoiced last (the current one while it runs).
    current: Option<BillingPeriod>,
    invoices: BTreeMap<Uuid, SubscriptionInvoice>,
    issued: u32,
    /// Credit from downgrades, taken off the next period invoices.
    credit: Decimal,
    cancel_at: Option<DateTime<Utc>>,
    /// The first failure of the unpaid run of invoices (dunning's clock).
    failing_since: Option<DateTime<Utc>>,
    suspended_at: Option<DateTime<Utc>>,
    /// The provider's payment events already recorded: a redelivery
    /// records nothing new.
    #[serde(default)]
    payments_seen: BTreeSet<String>,
    /// The rate every invoice is taxed at (zero before invoices were taxed).
    #[serde(default)]
    tax_rate: Decimal,
    /// Unapplied cash by the provider's event id it came under.
    #[serde(default)]
    unapplied: BTreeMap<String, UnappliedCash>,
}

/// Money received for an invoice that did not pay it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnappliedCash {
    pub invoice_id: Uuid,
    pub amount: Decimal,
    pub refunded: bool,
}

impl Subscription {
    pub fn subscription_id(&self) -> Option<Uuid> {
        self.subscription_id
    }
    pub fn customer(&self) -> &str {
        &self.customer
    }
    pub fn status(&self) -> SubscriptionStatus {
        self.status
    }
    pub fn plan(&self) -> Option<&PlanTerms> {
        self.plan.as_ref()
    }
    pub fn credit(&self) -> Decimal {
        self.credit
    }
    /// The period running now: the trial, or the period invoiced last.
    pub fn current_period(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        match (self.current, self.started_at, self.trial_end) {
            (Some(p), _, _) => Some((p.start, p.end)),
            (None, Some(start), Some(end)) => Some((start, end)),
            _ => None,
        }
    }
    pub fn invoices(&self) -> impl Iterator<Item = &SubscriptionInvoice> {
        let mut all: Vec<_> = self.invoices.values().collect();
        all.sort_by_key(|i| i.number);
        all.into_iter()
    }
    /// Unapplied cash received under the provider's event `payment_ref`.
    pub fn unapplied(&self, payment_ref: &str) -> Option<&UnappliedCash> {
        self.unapplied.get(payment_ref)
    }
    pub fn invoice(&self, invoice_id: Uuid) -> Option<&SubscriptionInvoice> {
        self.invoices.get(&invoice_id)
    }
    /// When the scheduler should next look at this subscription: the next
    /// period's start, a scheduled cancellation, or the next dunning step.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        let anchor = self.anchor?;
        let plan = self.plan.as_ref()?;
        let billing = match self.status {
            SubscriptionStatus::Cancelled | SubscriptionStatus::New => None,
            SubscriptionStatus::Suspended => None,
            SubscriptionStatus::Trialing => Some(anchor),
            _ => Some(billing::period_start(
                anchor,
                plan.interval,
                self.next_period,
            )),
        };
        let dunning = self.next_dunning_at();
        [billing, dunning].into_iter().flatten().min()
    }

    fn open_invoices(&self) -> impl Iterator<Item = &SubscriptionInvoice> {
        self.invoices
            .values()
            .filter(|i| i.status == InvoiceStatus::Open)
    }

    /// The oldest open invoice: dunning chases it first.
    fn oldest_open(&self) -> Option<&SubscriptionInvoice> {
        self.open_invoices().min_by_key(|i| i.number)
    }

    fn next_dunning_at(&self) -> Option<DateTime<Utc>> {
        let policy = &self.dunning;
        match self.status {
            SubscriptionStatus::Cancelled | SubscriptionStatus::New => None,
            SubscriptionStatus::Suspended => {
                self.suspended_at.map(|at| at + policy.cancel_after.delta())
            }
            _ => {
                let invoice = self.oldest_open()?;
                match self.failing_since {
                    None => Some(invoice.due_at + policy.payment_window.delta()),
                    Some(since) => Some(
                        policy
                            .retries
                            .get(invoice.retries_requested as usize)
                            .map_or(since + policy.suspend_after.delta(), |retry| {
                                since + retry.delta()
                            }),
                    ),
                }
            }
        }
    }
}

impl Aggregate for Subscription {
    const TYPE: &'static str = "Subscription";
    type Command = SubscriptionCommand;
    type Event = SubscriptionEvent;
    type Error = DomainError;
    type Services = ();

    handle_by_deciding!();

    fn apply(&mut self, event: SubscriptionEvent) {
        use SubscriptionEvent as E;
        match event {
            E::SubscriptionStarted {
                subscription_id,
                customer,
                plan,
                dunning,
                started_at,
                anchor,
                trial_end,
                tax_rate,
            } => {
                self.tax_rate = tax_rate;
                self.subscription_id = Some(subscription_id);
                self.started_at = Some(started_at);
                self.customer = customer;
                self.plan = Some(plan);
                self.dunning = dunning;
                self.anchor = Some(anchor);
                self.trial_end = trial_end;
                self.status = if trial_end.is_some() {
                    SubscriptionStatus::Trialing
                } else {
                    SubscriptionStatus::Pending
                };
            }
            E::InvoiceIssued {
                invoice_id,
                number,
                kind,
                period,
                amount,
                credit_applied,
                due_at,
                ..
            } => {
                self.issued = self.issued.max(number);
                self.credit -= credit_applied;
                if let (InvoiceKind::Period, Some(p)) = (kind, period) {
                    self.next_period = p.index + 1;
                    self.current = Some(p);
                    if self.status == SubscriptionStatus::Trialing {
                        self.status = SubscriptionStatus::Active;
                    }
                }
                let status = if amount == Decimal::ZERO {
                    InvoiceStatus::Paid
                } else {
                    InvoiceStatus::Open
                };
                self.invoices.insert(
                    invoice_id,
                    SubscriptionInvoice {
                        invoice_id,
                        number,
                        kind,
                        period,
                        amount,
                        due_at,
                        status,
                        failures: 0,
                        retries_requested: 0,
                    },
                );
            }
            E::InvoicePaid {
                invoice_id,
                payment_ref,
                ..
            } => {
                self.payments_seen.insert(payment_ref);
                if let Some(i) = self.invoices.get_mut(&invoice_id) {
                    i.status = InvoiceStatus::Paid;
                }
                // Dunning's clock runs only while a failed invoice is unpaid.
                if !self.open_invoices().any(|i| i.failures > 0) {
                    self.failing_since = None;
                }
            }
            E::InvoicePaymentFailed {
                invoice_id,
                failure,
                failed_at,
                payment_ref,
                ..
            } => {
                self.payments_seen.extend(payment_ref);
                if let Some(i) = self.invoices.get_mut(&invoice_id) {
                    i.failures = failure;
                }
                self.failing_since.get_or_insert(failed_at);
            }
            E::InvoicePaymentUnapplied {
                invoice_id,
                payment_ref,
                amount,
                ..
            } => {
                self.payments_seen.insert(payment_ref.clone());
                self.unapplied.insert(
                    payment_ref,
                    UnappliedCash {
                        invoice_id,
                        amount,
                        refunded: false,
                    },
                );
            }
            E::UnappliedPaymentRefunded { payment_ref, .. } => {
                if let Some(cash) = self.unapplied.get_mut(&payment_ref) {
                    cash.refunded = true;
                }
            }
            E::PaymentRetryRequested {
                invoice_id,
                attempt,
                ..
            } => {
                if let Some(i) = self.invoices.get_mut(&invoice_id) {
                    i.retries_requested = attempt;
                }
            }
            E::SubscriptionPastDue { .. } => self.status = SubscriptionStatus::PastDue,
            E::SubscriptionSuspended { at } => {
                self.status = SubscriptionStatus::Suspended;
                self.suspended_at = Some(at);
            }
            E::SubscriptionActivated {
                resumes_with_period,
                ..
            } => {
                self.status = SubscriptionStatus::Active;
                self.failing_since = None;
                self.suspended_at = None;
                self.next_period = self.next_period.max(resumes_with_period);
            }
            E::CancellationScheduled { effective_at } => self.cancel_at = Some(effective_at),
            E::SubscriptionCancelled { .. } => self.status = SubscriptionStatus::Cancelled,
            E::InvoiceVoided { invoice_id, .. } => {
                if let Some(i) = self.invoices.get_mut(&invoice_id) {
                    i.status = InvoiceStatus::Void;
                }
            }
            E::PlanChanged {
                plan, proration, ..
            } => {
                if proration < Decimal::ZERO {
                    self.credit -= proration;
                }
                self.plan = Some(plan);
            }
        }
    }
}
