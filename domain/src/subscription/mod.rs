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
pub mod plan;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use cqrs_es::{Aggregate, DomainEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use billing::{BillingPeriod, DunningPolicy, Interval};
pub use plan::{Plan, PlanCommand, PlanEvent, PlanTerms};

use crate::aggregate::{handle_by_deciding, Decide};
use crate::error::DomainError;
use crate::money::{is_valid_order_amount, round_cents};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionCommand {
    /// Starts on `plan`: a trial first if the plan has one, otherwise the
    /// first period is invoiced at once as `first_invoice_id`.
    Start {
        subscription_id: Uuid,
        customer: String,
        plan: PlanTerms,
        dunning: DunningPolicy,
        first_invoice_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The scheduler's tick: invoices the next period if it has begun by
    /// `at` (as `invoice_id`), or ends a subscription cancelled at period
    /// end. At most one step; a no-op when nothing is due.
    Bill { invoice_id: Uuid, at: DateTime<Utc> },
    /// The scheduler's other tick: the next dunning step due by `at` for
    /// the oldest open invoice. At most one step; a no-op when none is due.
    Dun { at: DateTime<Utc> },
    /// A payment of an invoice arrived (the payment webhook with
    /// `metadata.invoice_id`). Idempotent per invoice.
    RecordPayment {
        invoice_id: Uuid,
        amount: Decimal,
        payment_ref: String,
        at: DateTime<Utc>,
    },
    /// A payment of an invoice failed at the provider.
    RecordPaymentFailure {
        invoice_id: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    Cancel {
        at_period_end: bool,
        at: DateTime<Utc>,
    },
    /// Moves to another plan of the same interval; the rest of the current
    /// period is prorated to the cent: an upgrade is invoiced at once (as
    /// `invoice_id`), a downgrade is a credit on the next invoice.
    ChangePlan {
        plan: PlanTerms,
        invoice_id: Uuid,
        at: DateTime<Utc>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SubscriptionEvent {
    SubscriptionStarted {
        subscription_id: Uuid,
        customer: String,
        plan: PlanTerms,
        dunning: DunningPolicy,
        started_at: DateTime<Utc>,
        /// Where period 0 starts: the start, or the end of the trial.
        anchor: DateTime<Utc>,
        trial_end: Option<DateTime<Utc>>,
    },
    InvoiceIssued {
        invoice_id: Uuid,
        number: u32,
        kind: InvoiceKind,
        period: Option<BillingPeriod>,
        /// What is due: the price less `credit_applied`.
        amount: Decimal,
        credit_applied: Decimal,
        due_at: DateTime<Utc>,
    },
    InvoicePaid {
        invoice_id: Uuid,
        amount: Decimal,
        payment_ref: String,
        paid_at: DateTime<Utc>,
    },
    InvoicePaymentFailed {
        invoice_id: Uuid,
        /// 1 for the first failure of this invoice.
        failure: u32,
        reason: String,
        failed_at: DateTime<Utc>,
    },
    /// The scheduler asks the provider to charge the invoice again.
    PaymentRetryRequested {
        invoice_id: Uuid,
        attempt: u32,
        requested_at: DateTime<Utc>,
    },
    SubscriptionPastDue {
        at: DateTime<Utc>,
    },
    SubscriptionSuspended {
        at: DateTime<Utc>,
    },
    /// Every open invoice paid: in good standing again. After a suspension
    /// billing resumes with the period containing `at`; the periods that
    /// passed wholly while suspended are not billed.
    SubscriptionActivated {
        at: DateTime<Utc>,
        resumes_with_period: u32,
    },
    CancellationScheduled {
        effective_at: DateTime<Utc>,
    },
    SubscriptionCancelled {
        cause: CancelCause,
        at: DateTime<Utc>,
    },
    /// An open invoice dropped with its cancelled subscription.
    InvoiceVoided {
        invoice_id: Uuid,
        at: DateTime<Utc>,
    },
    PlanChanged {
        from_plan_id: Uuid,
        plan: PlanTerms,
        /// Positive: invoiced now; negative: credited to the next invoice.
        proration: Decimal,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for SubscriptionEvent {
    fn event_type(&self) -> String {
        use SubscriptionEvent as E;
        match self {
            E::SubscriptionStarted { .. } => "SubscriptionStarted",
            E::InvoiceIssued { .. } => "InvoiceIssued",
            E::InvoicePaid { .. } => "InvoicePaid",
            E::InvoicePaymentFailed { .. } => "InvoicePaymentFailed",
            E::PaymentRetryRequested { .. } => "PaymentRetryRequested",
            E::SubscriptionPastDue { .. } => "SubscriptionPastDue",
            E::SubscriptionSuspended { .. } => "SubscriptionSuspended",
            E::SubscriptionActivated { .. } => "SubscriptionActivated",
            E::CancellationScheduled { .. } => "CancellationScheduled",
            E::SubscriptionCancelled { .. } => "SubscriptionCancelled",
            E::InvoiceVoided { .. } => "InvoiceVoided",
            E::PlanChanged { .. } => "PlanChanged",
        }
        .to_string()
    }
    fn event_version(&self) -> String {
        crate::EVENT_VERSION.to_string()
    }
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

type Decision = Result<Vec<SubscriptionEvent>, DomainError>;

impl Decide for Subscription {
    fn decide(&self, command: SubscriptionCommand) -> Decision {
        use SubscriptionCommand as C;
        match command {
            C::Start {
                subscription_id,
                customer,
                plan,
                dunning,
                first_invoice_id,
                at,
            } => self.start(
                subscription_id,
                customer,
                plan,
                dunning,
                first_invoice_id,
                at,
            ),
            _ if self.status == SubscriptionStatus::New => {
                Err(DomainError::not_found("subscription"))
            }
            C::Bill { invoice_id, at } => Ok(self.bill(invoice_id, at)),
            C::Dun { at } => Ok(self.dun(at)),
            C::RecordPayment {
                invoice_id,
                amount,
                payment_ref,
                at,
            } => self.record_payment(invoice_id, amount, payment_ref, at),
            C::RecordPaymentFailure {
                invoice_id,
                reason,
                at,
            } => self.record_failure(invoice_id, reason, at),
            C::Cancel { at_period_end, at } => Ok(self.cancel(at_period_end, at)),
            C::ChangePlan {
                plan,
                invoice_id,
                at,
            } => self.change_plan(plan, invoice_id, at),
        }
    }
}

impl Subscription {
    fn start(
        &self,
        subscription_id: Uuid,
        customer: String,
        plan: PlanTerms,
        dunning: DunningPolicy,
        first_invoice_id: Uuid,
        at: DateTime<Utc>,
    ) -> Decision {
        if self.status != SubscriptionStatus::New {
            return Err(DomainError::AlreadyExists {
                what: "subscription",
            });
        }
        if customer.trim().is_empty() || customer.chars().count() > MAX_CUSTOMER {
            return Err(DomainError::invalid(
                "customer",
                format!("must be 1 to {MAX_CUSTOMER} characters"),
            ));
        }
        if let Some(problem) = dunning.problem() {
            return Err(DomainError::invalid("dunning", problem));
        }
        let trial_end =
            (plan.trial_days > 0).then(|| at + Duration::days(i64::from(plan.trial_days)));
        let anchor = trial_end.unwrap_or(at);
        let started = SubscriptionEvent::SubscriptionStarted {
            subscription_id,
            customer,
            plan: plan.clone(),
            dunning,
            started_at: at,
            anchor,
            trial_end,
        };
        if trial_end.is_some() {
            return Ok(vec![started]);
        }
        let first = self.period_invoice(anchor, &plan, first_invoice_id);
        Ok(vec![started, first])
    }

    /// The invoice of the next period, anchored at `anchor`, on `plan`.
    fn period_invoice(
        &self,
        anchor: DateTime<Utc>,
        plan: &PlanTerms,
        invoice_id: Uuid,
    ) -> SubscriptionEvent {
        let period = billing::period(anchor, plan.interval, self.next_period);
        let credit_applied = self.credit.min(plan.price);
        SubscriptionEvent::InvoiceIssued {
            invoice_id,
            number: self.issued + 1,
            kind: InvoiceKind::Period,
            period: Some(period),
            amount: round_cents(plan.price - credit_applied),
            credit_applied: round_cents(credit_applied),
            due_at: period.start,
        }
    }

    fn bill(&self, invoice_id: Uuid, at: DateTime<Utc>) -> Vec<SubscriptionEvent> {
        let (Some(anchor), Some(plan)) = (self.anchor, self.plan.as_ref()) else {
            return vec![];
        };
        if self.invoices.contains_key(&invoice_id) {
            return vec![];
        }
        match self.status {
            SubscriptionStatus::Cancelled
            | SubscriptionStatus::Suspended
            | SubscriptionStatus::New => return vec![],
            _ => {}
        }
        let next_start = billing::period_start(anchor, plan.interval, self.next_period);
        if let Some(cancel_at) = self.cancel_at {
            if cancel_at <= at && cancel_at <= next_start {
                return self.cancellation(CancelCause::AtPeriodEnd, cancel_at);
            }
        }
        if next_start > at || self.next_period >= billing::MAX_PERIODS {
            return vec![];
        }
        vec![self.period_invoice(anchor, plan, invoice_id)]
    }

    fn cancellation(&self, cause: CancelCause, at: DateTime<Utc>) -> Vec<SubscriptionEvent> {
        let mut events = vec![SubscriptionEvent::SubscriptionCancelled { cause, at }];
        let mut open: Vec<_> = self.open_invoices().collect();
        open.sort_by_key(|i| i.number);
        events.extend(open.into_iter().map(|i| SubscriptionEvent::InvoiceVoided {
            invoice_id: i.invoice_id,
            at,
        }));
        events
    }

    fn dun(&self, at: DateTime<Utc>) -> Vec<SubscriptionEvent> {
        let policy = &self.dunning;
        match self.status {
            SubscriptionStatus::Cancelled | SubscriptionStatus::New => vec![],
            SubscriptionStatus::Suspended => match self.suspended_at {
                Some(since) if at >= since + policy.cancel_after.delta() => {
                    self.cancellation(CancelCause::NonPayment, at)
                }
                _ => vec![],
            },
            _ => {
                let Some(invoice) = self.oldest_open() else {
                    return vec![];
                };
                let Some(since) = self.failing_since else {
                    if at < invoice.due_at + policy.payment_window.delta() {
                        return vec![];
                    }
                    return self.failure(invoice, "no payment by the due date".into(), at);
                };
                if let Some(retry) = policy.retries.get(invoice.retries_requested as usize) {
                    if at >= since + retry.delta() {
                        return vec![SubscriptionEvent::PaymentRetryRequested {
                            invoice_id: invoice.invoice_id,
                            attempt: invoice.retries_requested + 1,
                            requested_at: at,
                        }];
                    }
                    return vec![];
                }
                if at >= since + policy.suspend_after.delta() {
                    return vec![SubscriptionEvent::SubscriptionSuspended { at }];
                }
                vec![]
            }
        }
    }

    fn failure(
        &self,
        invoice: &SubscriptionInvoice,
        reason: String,
        at: DateTime<Utc>,
    ) -> Vec<SubscriptionEvent> {
        let mut events = vec![SubscriptionEvent::InvoicePaymentFailed {
            invoice_id: invoice.invoice_id,
            failure: invoice.failures + 1,
            reason,
            failed_at: at,
        }];
        if matches!(
            self.status,
            SubscriptionStatus::Pending | SubscriptionStatus::Active
        ) {
            events.push(SubscriptionEvent::SubscriptionPastDue { at });
        }
        events
    }

    fn known_invoice(&self, invoice_id: Uuid) -> Result<&SubscriptionInvoice, DomainError> {
        self.invoices
            .get(&invoice_id)
            .ok_or(DomainError::not_found("invoice"))
    }

    fn record_payment(
        &self,
        invoice_id: Uuid,
        amount: Decimal,
        payment_ref: String,
        at: DateTime<Utc>,
    ) -> Decision {
        let invoice = self.known_invoice(invoice_id)?;
        match invoice.status {
            InvoiceStatus::Paid => return Ok(vec![]),
            InvoiceStatus::Void => {
                return Err(DomainError::invalid_state(
                    "the invoice was voided with its subscription",
                ))
            }
            InvoiceStatus::Open => {}
        }
        if !is_valid_order_amount(amount) || amount != invoice.amount {
            return Err(DomainError::invalid_state(format!(
                "a payment of {amount} does not match the invoice's {}",
                invoice.amount
            )));
        }
        let mut events = vec![SubscriptionEvent::InvoicePaid {
            invoice_id,
            amount,
            payment_ref,
            paid_at: at,
        }];
        // In good standing again once nothing failed is left unpaid (a new
        // period's invoice not yet due for dunning does not count).
        let others_failing = self
            .open_invoices()
            .any(|i| i.invoice_id != invoice_id && i.failures > 0);
        if !others_failing
            && matches!(
                self.status,
                SubscriptionStatus::Pending
                    | SubscriptionStatus::PastDue
                    | SubscriptionStatus::Suspended
            )
        {
            let resumes_with_period = match (self.status, self.anchor, self.plan.as_ref()) {
                (SubscriptionStatus::Suspended, Some(anchor), Some(plan)) => self
                    .next_period
                    .max(billing::period_index_at(anchor, plan.interval, at)),
                _ => self.next_period,
            };
            events.push(SubscriptionEvent::SubscriptionActivated {
                at,
                resumes_with_period,
            });
        }
        Ok(events)
    }

    fn record_failure(&self, invoice_id: Uuid, reason: String, at: DateTime<Utc>) -> Decision {
        let invoice = self.known_invoice(invoice_id)?;
        if invoice.status != InvoiceStatus::Open {
            // A late report about an invoice settled or voided since.
            return Ok(vec![]);
        }
        let reason: String = reason.chars().take(MAX_REASON).collect();
        Ok(self.failure(invoice, reason, at))
    }

    fn cancel(&self, at_period_end: bool, at: DateTime<Utc>) -> Vec<SubscriptionEvent> {
        if self.status == SubscriptionStatus::Cancelled {
            return vec![];
        }
        if !at_period_end {
            return self.cancellation(CancelCause::Requested, at);
        }
        if self.cancel_at.is_some() {
            return vec![];
        }
        let effective_at = match (self.status, self.current) {
            (SubscriptionStatus::Trialing, _) => self.anchor.unwrap_or(at),
            (_, Some(period)) if period.end > at => period.end,
            _ => at,
        };
        vec![SubscriptionEvent::CancellationScheduled { effective_at }]
    }

    fn change_plan(&self, plan: PlanTerms, invoice_id: Uuid, at: DateTime<Utc>) -> Decision {
        let Some(current) = self.plan.as_ref() else {
            return Err(DomainError::not_found("subscription"));
        };
        match self.status {
            SubscriptionStatus::Cancelled | SubscriptionStatus::Suspended => {
                return Err(DomainError::invalid_state(format!(
                    "a {} subscription cannot change plan",
                    self.status.as_str()
                )))
            }
            _ => {}
        }
        if plan.plan_id == current.plan_id {
            return Ok(vec![]);
        }
        if plan.interval != current.interval {
            return Err(DomainError::invalid(
                "plan_id",
                format!(
                    "must bill by the {} like the current plan",
                    current.interval.as_str()
                ),
            ));
        }
        let proration = match (self.status, self.current) {
            (SubscriptionStatus::Trialing, _) => round_cents(Decimal::ZERO),
            (_, Some(period)) if period.start <= at && at < period.end => {
                billing::proration(current.price, plan.price, &period, at)
            }
            _ => round_cents(Decimal::ZERO),
        };
        let mut events = vec![SubscriptionEvent::PlanChanged {
            from_plan_id: current.plan_id,
            plan,
            proration,
            at,
        }];
        if proration > Decimal::ZERO {
            if self.invoices.contains_key(&invoice_id) {
                return Err(DomainError::AlreadyExists { what: "invoice" });
            }
            events.push(SubscriptionEvent::InvoiceIssued {
                invoice_id,
                number: self.issued + 1,
                kind: InvoiceKind::Proration,
                period: None,
                amount: proration,
                credit_applied: round_cents(Decimal::ZERO),
                due_at: at,
            });
        }
        Ok(events)
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
            } => {
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
            E::InvoicePaid { invoice_id, .. } => {
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
                ..
            } => {
                if let Some(i) = self.invoices.get_mut(&invoice_id) {
                    i.failures = failure;
                }
                self.failing_since.get_or_insert(failed_at);
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
