//! How a subscription decides: its start, the scheduler's `Bill` and `Dun`
//! ticks, payments, cancellation and plan changes.

use chrono::{DateTime, Duration, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

use super::billing::{self, DunningPolicy};
use super::plan::PlanTerms;
use super::{
    CancelCause, InvoiceKind, InvoiceStatus, Subscription, SubscriptionCommand, SubscriptionEvent,
    SubscriptionInvoice, SubscriptionStatus, MAX_CUSTOMER, MAX_REASON,
};
use crate::aggregate::Decide;
use crate::error::DomainError;
use crate::money::{is_valid_order_amount, round_cents};

pub(super) type Decision = Result<Vec<SubscriptionEvent>, DomainError>;

impl Decide for Subscription {
    fn decide(&self, command: SubscriptionCommand) -> Decision {
        use SubscriptionCommand as C;
        match command {
            C::Start {
                subscription_id,
                customer,
                plan,
                dunning,
                tax_rate,
                first_invoice_id,
                at,
            } => self.start(
                subscription_id,
                customer,
                plan,
                (dunning, tax_rate),
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
            } => self.record_failure(invoice_id, reason, None, at),
            C::ReceivePayment {
                invoice_id,
                payment_ref,
                amount_minor,
                currency,
                ledger_currency,
                outcome,
                at,
            } => self.receive_payment(
                invoice_id,
                payment_ref,
                (amount_minor, currency, ledger_currency),
                outcome,
                at,
            ),
            C::Cancel { at_period_end, at } => Ok(self.cancel(at_period_end, at)),
            C::RefundUnappliedPayment { payment_ref, at } => self.refund_unapplied(payment_ref, at),
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
        (dunning, tax_rate): (DunningPolicy, Decimal),
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
        if tax_rate < Decimal::ZERO || tax_rate >= Decimal::ONE {
            return Err(DomainError::invalid(
                "tax_rate",
                "must be from 0 to below 1",
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
            tax_rate,
        };
        if trial_end.is_some() {
            return Ok(vec![started]);
        }
        let first = self.period_invoice(anchor, &plan, first_invoice_id, tax_rate);
        Ok(vec![started, first])
    }

    /// The invoice of the next period, anchored at `anchor`, on `plan`.
    fn period_invoice(
        &self,
        anchor: DateTime<Utc>,
        plan: &PlanTerms,
        invoice_id: Uuid,
        tax_rate: Decimal,
    ) -> SubscriptionEvent {
        let period = billing::period(anchor, plan.interval, self.next_period);
        let credit_applied = self.credit.min(plan.price);
        let (amount, tax) = taxed(plan.price - credit_applied, tax_rate);
        SubscriptionEvent::InvoiceIssued {
            invoice_id,
            number: self.issued + 1,
            kind: InvoiceKind::Period,
            period: Some(period),
            amount,
            credit_applied: round_cents(credit_applied),
            tax,
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
        vec![self.period_invoice(anchor, plan, invoice_id, self.tax_rate)]
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
                    return self.failure(invoice, "no payment by the due date".into(), None, at);
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
        payment_ref: Option<String>,
        at: DateTime<Utc>,
    ) -> Vec<SubscriptionEvent> {
        let mut events = vec![SubscriptionEvent::InvoicePaymentFailed {
            invoice_id: invoice.invoice_id,
            failure: invoice.failures + 1,
            reason,
            failed_at: at,
            payment_ref,
        }];
        if matches!(
            self.status,
            SubscriptionStatus::Pending | SubscriptionStatus::Active
        ) {
            events.push(SubscriptionEvent::SubscriptionPastDue { at });
        }
        events
    }

    pub(super) fn known_invoice(
        &self,
        invoice_id: Uuid,
    ) -> Result<&SubscriptionInvoice, DomainError> {
        self.invoices
            .get(&invoice_id)
            .ok_or(DomainError::not_found("invoice"))
    }

    pub(super) fn record_payment(
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

    pub(super) fn record_failure(
        &self,
        invoice_id: Uuid,
        reason: String,
        payment_ref: Option<String>,
        at: DateTime<Utc>,
    ) -> Decision {
        let invoice = self.known_invoice(invoice_id)?;
        if invoice.status != InvoiceStatus::Open {
            // A late report about an invoice settled or voided since.
            return Ok(vec![]);
        }
        let reason: String = reason.chars().take(MAX_REASON).collect();
        Ok(self.failure(invoice, reason, payment_ref, at))
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
            let (amount, tax) = taxed(proration, self.tax_rate);
            events.push(SubscriptionEvent::InvoiceIssued {
                invoice_id,
                number: self.issued + 1,
                kind: InvoiceKind::Proration,
                period: None,
                amount,
                credit_applied: round_cents(Decimal::ZERO),
                tax,
                due_at: at,
            });
        }
        Ok(events)
    }
}

/// What a net `subtotal` is due with its tax at `rate`: `(amount, tax)`,
/// the tax rounded to the cent half away from zero.
fn taxed(subtotal: Decimal, rate: Decimal) -> (Decimal, Decimal) {
    let subtotal = round_cents(subtotal);
    let tax = round_cents(subtotal * rate);
    (round_cents(subtotal + tax), tax)
}
