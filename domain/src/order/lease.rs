//! A rental line paid by instalments (a lease): what is paid, overdue or
//! written off, and the standing of the lease (API.md decisions,
//! "Instalment plans (issue 15)").
//!
//! - The order's upfront payment (its total less the instalments) confirms
//!   it; each instalment is then paid by the payment webhook (by number, or
//!   the oldest unpaid one) with exactly its amount.
//! - Dunning follows the subscriptions' policy: an instalment unpaid
//!   `payment_window` after it fell due is overdue and the lease past due;
//!   `suspend_after` that it is suspended (its units stay booked), and
//!   `cancel_after` the suspension it is terminated for non-payment: what
//!   is unpaid is written off.
//! - The customer (or an admin) may terminate it early: the instalments not
//!   yet due are cancelled; of them the line's cancellation policy waives
//!   its percentage (notice from the termination to the line's start; none
//!   once picked up), the rest is one instalment due at once.
//! - A terminated lease not yet picked up is returned at once (its units
//!   free from then on, its deposit refunded); one picked up keeps its
//!   units until the vendor records its return.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::instalments::Instalment;
use super::{LineStatus, Order, OrderEvent as E, OrderStatus, PaymentOutcome};
use crate::cancellation::{refund_of, refund_percent};
use crate::error::DomainError;
use crate::money::{from_minor_units, is_valid_order_amount, round_cents, to_minor_units};
use crate::subscription::DunningPolicy;

type Decision = Result<Vec<E>, DomainError>;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseStatus {
    /// The order is not paid yet.
    #[default]
    Pending,
    Active,
    PastDue,
    Suspended,
    Terminated,
}

impl LeaseStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseStatus::Pending => "pending",
            LeaseStatus::Active => "active",
            LeaseStatus::PastDue => "past_due",
            LeaseStatus::Suspended => "suspended",
            LeaseStatus::Terminated => "terminated",
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InstalmentStatus {
    #[default]
    Due,
    Paid,
    Overdue,
    WrittenOff,
    /// Not yet due when the lease was terminated early.
    Cancelled,
}

impl InstalmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            InstalmentStatus::Due => "due",
            InstalmentStatus::Paid => "paid",
            InstalmentStatus::Overdue => "overdue",
            InstalmentStatus::WrittenOff => "written_off",
            InstalmentStatus::Cancelled => "cancelled",
        }
    }
    pub fn is_unpaid(self) -> bool {
        matches!(self, InstalmentStatus::Due | InstalmentStatus::Overdue)
    }
}

/// Why a lease ended before its last instalment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeaseEnd {
    /// The customer (or an admin for them) terminated it.
    Customer,
    /// Dunning gave up.
    NonPayment,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InstalmentState {
    pub number: u32,
    pub due: DateTime<Utc>,
    pub amount: Decimal,
    pub status: InstalmentStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    pub status: LeaseStatus,
    pub instalments: Vec<InstalmentState>,
    /// When the lease went past due (dunning's clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failing_since: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspended_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<(LeaseEnd, DateTime<Utc>)>,
}

impl Lease {
    pub(super) fn new(schedule: &[Instalment]) -> Lease {
        Lease {
            instalments: schedule.iter().map(InstalmentState::from).collect(),
            ..Lease::default()
        }
    }
    fn instalment(&self, number: u32) -> Option<&InstalmentState> {
        self.instalments.iter().find(|i| i.number == number)
    }
    pub(super) fn instalment_mut(&mut self, number: u32) -> Option<&mut InstalmentState> {
        self.instalments.iter_mut().find(|i| i.number == number)
    }
    fn oldest_unpaid(&self) -> Option<&InstalmentState> {
        self.instalments.iter().find(|i| i.status.is_unpaid())
    }
    /// Σ unpaid (due or overdue) instalments.
    pub fn unpaid(&self) -> Decimal {
        self.instalments
            .iter()
            .filter(|i| i.status.is_unpaid())
            .map(|i| i.amount)
            .sum()
    }
    /// When dunning next has something to do under `policy`.
    pub fn next_dunning_at(&self, policy: &DunningPolicy) -> Option<DateTime<Utc>> {
        let overdue = self
            .instalments
            .iter()
            .filter(|i| i.status == InstalmentStatus::Due)
            .map(|i| i.due + policy.payment_window.delta())
            .min();
        let standing = match self.status {
            LeaseStatus::PastDue => self.failing_since.map(|t| t + policy.suspend_after.delta()),
            LeaseStatus::Suspended => self.suspended_at.map(|t| t + policy.cancel_after.delta()),
            _ => None,
        };
        match self.status {
            LeaseStatus::Pending => None,
            _ => [overdue, standing].into_iter().flatten().min(),
        }
    }
}

impl From<&Instalment> for InstalmentState {
    fn from(i: &Instalment) -> Self {
        InstalmentState {
            number: i.number,
            due: i.due,
            amount: i.amount,
            status: InstalmentStatus::Due,
            paid_at: None,
        }
    }
}

impl Order {
    /// The lease of the order's plan line, with that line's id.
    pub fn lease(&self) -> Option<(Uuid, &Lease)> {
        self.leases.iter().next().map(|(id, l)| (*id, l))
    }

    /// What confirms the order: its total less the instalments of its plan.
    pub fn upfront(&self) -> Decimal {
        self.priced.as_ref().map_or(Decimal::ZERO, |p| p.upfront())
    }

    /// When the scheduler should next look at the order's lease.
    pub fn lease_next_due(&self, policy: &DunningPolicy) -> Option<DateTime<Utc>> {
        if !matches!(self.status, OrderStatus::Confirmed | OrderStatus::Completed) {
            return None;
        }
        self.lease()?.1.next_dunning_at(policy)
    }

    /// A payment naming an instalment (`number`), or any payment of a
    /// confirmed order with a plan (the oldest unpaid instalment).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn pay_instalment(
        &self,
        number: Option<u32>,
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
        at: DateTime<Utc>,
    ) -> Decision {
        if let Some(settled) = self.seen_or_failed(&payment_id, &intent_id, &outcome) {
            return Ok(settled);
        }
        let Some((line_id, lease)) = self.lease() else {
            return Err(DomainError::invalid_state(
                "the order is not paid by instalments",
            ));
        };
        if self.status == OrderStatus::Placed || lease.status == LeaseStatus::Pending {
            // The upfront payment comes first, whatever it names.
            return self.record_payment(payment_id, intent_id, amount_minor, currency, outcome, at);
        }
        let target = match number {
            Some(n) => Some(
                lease
                    .instalment(n)
                    .ok_or(DomainError::not_found("instalment"))?,
            ),
            None => lease.oldest_unpaid(),
        };
        let amount = from_minor_units(amount_minor);
        if !currency.trim().eq_ignore_ascii_case(&self.currency)
            || amount <= Decimal::ZERO
            || !is_valid_order_amount(amount)
        {
            return Ok(vec![E::PaymentAmountMismatch {
                payment_id,
                intent_id,
                expected_minor: target.and_then(|t| to_minor_units(t.amount)).unwrap_or(0),
                received_minor: amount_minor,
                currency,
            }]);
        }
        let Some(target) = target.filter(|t| t.status.is_unpaid() && t.amount == amount) else {
            // Another amount, a paid, cancelled or written-off instalment:
            // cash held for the customer (applied or refunded by an admin).
            return Ok(vec![E::PaymentUnapplied {
                payment_id,
                intent_id,
                amount,
            }]);
        };
        let mut events = vec![E::InstalmentPaid {
            line_id,
            instalment: target.number,
            payment_id,
            intent_id,
            amount,
            at,
        }];
        let others_overdue = lease
            .instalments
            .iter()
            .any(|i| i.number != target.number && i.status == InstalmentStatus::Overdue);
        if !others_overdue && matches!(lease.status, LeaseStatus::PastDue | LeaseStatus::Suspended)
        {
            events.push(E::LeaseReinstated { line_id, at });
        }
        Ok(events)
    }

    /// Every dunning step due by `at` under `policy`.
    pub(super) fn dun_instalments(&self, policy: &DunningPolicy, at: DateTime<Utc>) -> Decision {
        if !matches!(self.status, OrderStatus::Confirmed | OrderStatus::Completed) {
            return Ok(vec![]);
        }
        let mut next = self.clone();
        let mut events = Vec::new();
        // Each instalment goes overdue once, then at most three changes of
        // standing: bounded well within this.
        for _ in 0..(2 * super::instalments::MAX_INSTALMENTS + 8) {
            let step = next.dunning_step(policy, at);
            if step.is_empty() {
                break;
            }
            for e in &step {
                cqrs_es::Aggregate::apply(&mut next, e.clone());
            }
            events.extend(step);
        }
        Ok(events)
    }

    fn dunning_step(&self, policy: &DunningPolicy, at: DateTime<Utc>) -> Vec<E> {
        let Some((line_id, lease)) = self.lease() else {
            return vec![];
        };
        if lease.status == LeaseStatus::Pending {
            return vec![];
        }
        if let Some(late) = lease.instalments.iter().find(|i| {
            i.status == InstalmentStatus::Due && i.due + policy.payment_window.delta() <= at
        }) {
            let mut events = vec![E::InstalmentOverdue {
                line_id,
                instalment: late.number,
                at,
            }];
            if lease.status == LeaseStatus::Active {
                events.push(E::LeasePastDue { line_id, at });
            }
            return events;
        }
        match (lease.status, lease.failing_since, lease.suspended_at) {
            (LeaseStatus::PastDue, Some(since), _)
                if since + policy.suspend_after.delta() <= at =>
            {
                vec![E::LeaseSuspended { line_id, at }]
            }
            (LeaseStatus::Suspended, _, Some(since))
                if since + policy.cancel_after.delta() <= at =>
            {
                self.termination(line_id, lease, LeaseEnd::NonPayment, at)
            }
            _ => vec![],
        }
    }

    /// The customer or an admin ends the lease of `line_id` early.
    pub(super) fn terminate_lease(&self, line_id: Uuid, at: DateTime<Utc>) -> Decision {
        let line = self.line(line_id).ok_or(DomainError::not_found("line"))?;
        let Some(lease) = self.leases.get(&line_id) else {
            return Err(DomainError::invalid_state(format!(
                "line {} is not paid by instalments",
                line.line_id
            )));
        };
        match lease.status {
            LeaseStatus::Terminated => return Ok(vec![]),
            LeaseStatus::Pending => {
                return Err(DomainError::invalid_state(
                    "the order is not paid yet; cancel it instead",
                ))
            }
            _ => {}
        }
        if self.line_status(line_id) == Some(LineStatus::Returned) {
            return Err(DomainError::invalid_state("the line was returned"));
        }
        Ok(self.termination(line_id, lease, LeaseEnd::Customer, at))
    }

    fn termination(
        &self,
        line_id: Uuid,
        lease: &Lease,
        cause: LeaseEnd,
        at: DateTime<Utc>,
    ) -> Vec<E> {
        let Some(line) = self.line(line_id) else {
            return vec![];
        };
        let picked_up = matches!(
            self.line_status(line_id),
            Some(LineStatus::PickedUp | LineStatus::Overdue)
        );
        let (cancelled, charge, written_off, amount) = match cause {
            LeaseEnd::Customer => {
                let future: Vec<&InstalmentState> = lease
                    .instalments
                    .iter()
                    .filter(|i| i.status == InstalmentStatus::Due && i.due > at)
                    .collect();
                let rest: Decimal = future.iter().map(|i| i.amount).sum();
                let percent = match line.start {
                    Some(start) if !picked_up => {
                        refund_percent(&line.cancellation_policy, start - at)
                    }
                    _ => 0,
                };
                let waived = refund_of(rest, percent);
                let charge = round_cents(rest - waived);
                let next_number = lease
                    .instalments
                    .iter()
                    .map(|i| i.number)
                    .max()
                    .unwrap_or(0)
                    + 1;
                (
                    future.iter().map(|i| i.number).collect::<Vec<_>>(),
                    (charge > Decimal::ZERO).then_some(Instalment {
                        number: next_number,
                        due: at,
                        amount: charge,
                    }),
                    Vec::new(),
                    waived,
                )
            }
            LeaseEnd::NonPayment => {
                let unpaid: Vec<u32> = lease
                    .instalments
                    .iter()
                    .filter(|i| i.status.is_unpaid())
                    .map(|i| i.number)
                    .collect();
                (Vec::new(), None, unpaid, round_cents(lease.unpaid()))
            }
        };
        let mut events = vec![E::LeaseTerminated {
            line_id,
            cause,
            cancelled,
            charge,
            at,
        }];
        if amount > Decimal::ZERO {
            // The vendor's part gives up its share while it is pending;
            // once fulfilled the platform bears the loss (no parts).
            let parts = if self.fulfilled_vendors.contains(&line.vendor_id) {
                Vec::new()
            } else {
                self.allocate(amount, &[line])
            };
            events.push(E::InstalmentsWrittenOff {
                line_id,
                instalments: written_off,
                amount,
                parts,
                at,
            });
        }
        if self.line_status(line_id) == Some(LineStatus::Pending) {
            // Never picked up: nothing to bring back; its units are free
            // from now on and its deposit is refunded.
            events.push(E::LineReturned {
                line_id,
                vendor_id: line.vendor_id,
                returned_at: at,
                deposit_refunded: round_cents(line.deposit),
                damage_withheld: round_cents(Decimal::ZERO),
                late_fee: round_cents(Decimal::ZERO),
                late_fee_owed: round_cents(Decimal::ZERO),
                refund: round_cents(Decimal::ZERO),
            });
            return self.with_completion(events, at);
        }
        events
    }
}
