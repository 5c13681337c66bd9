//! The Order aggregate: one customer, lines from many vendors, payment and
//! fulfilment.
//!
//! Here: the aggregate's state, its commands and events, and `apply`. The
//! rules, one function per command, are split by concern: placing and
//! cancelling in `decide`, payments and refunds in `payment`, shipping,
//! pick-up and returns in `fulfilment`; where an order stands is in
//! `status`, what a line costs in `pricing`, what may be ordered in
//! `placement`.

pub mod adjustment;
pub mod cancellation;
mod command;
mod decide;
mod dispute;
pub mod early_return;
mod events;
mod fulfilment;
pub mod instalments;
pub mod late_fees;
pub mod lease;
mod payment;
pub mod placement;
pub mod pricing;
pub mod refund;
mod status;

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::handle_by_deciding;
use crate::error::DomainError;
use crate::money::Rates;
use crate::personal::PersonalText;
pub use adjustment::{
    Adjustment, AdjustmentKind, AdjustmentRequest, AdjustmentState, AdjustmentStatus,
};
pub use cancellation::{LineRefund, Settlement};
pub use command::{OrderCommand, PaymentOutcome};
pub use dispute::{DisputeRelease, DisputeState};
pub use events::OrderEvent;
pub use fulfilment::{late_fee, LineReturn};
pub use instalments::{Instalment, PaymentPlan, PlanRequest, MAX_INSTALMENTS};
pub use lease::{InstalmentState, InstalmentStatus, Lease, LeaseEnd, LeaseStatus};
use pricing::{LineInput, PricedLine, PricedOrder, VendorSplit};
pub use refund::{
    check_refund_reason, RefundLine, RefundPart, RefundRequest, Taken, MAX_REFUND_REASON,
};
pub use status::{CancelCause, LineStatus, OrderStatus, PartStatus};

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Order {
    order_id: Option<Uuid>,
    customer_id: String,
    currency: String,
    priced: Option<PricedOrder>,
    rates: Option<Rates>,
    hold_expires_at: Option<DateTime<Utc>>,
    placed_at: Option<DateTime<Utc>>,
    status: OrderStatus,
    cancelled_by_expiry: bool,
    cancel_reason: Option<PersonalText>,
    captured: Decimal,
    refunded: Decimal,
    payments_seen: BTreeSet<String>,
    line_status: BTreeMap<Uuid, LineStatus>,
    fulfilled_vendors: BTreeSet<Uuid>,
    #[serde(default)]
    returns: BTreeMap<Uuid, LineReturn>,
    /// When each rental line was picked up.
    #[serde(default)]
    picked_up_at: BTreeMap<Uuid, DateTime<Utc>>,
    /// What refunds and lost disputes took, per line and per vendor part.
    #[serde(default)]
    line_taken: BTreeMap<Uuid, Taken>,
    #[serde(default)]
    part_taken: BTreeMap<Uuid, Taken>,
    #[serde(default)]
    refund_ids: BTreeSet<Uuid>,
    /// Provider refund id → our refund.
    #[serde(default)]
    provider_refunds: BTreeMap<String, Uuid>,
    /// What each fulfilled part made available to its vendor.
    #[serde(default)]
    fulfilled_net: BTreeMap<Uuid, Decimal>,
    /// Unapplied cash still held, per payment id.
    #[serde(default)]
    unapplied: BTreeMap<String, Decimal>,
    #[serde(default)]
    disputes: BTreeMap<String, DisputeState>,
    #[serde(default)]
    disputes_lost: Decimal,
    /// Extensions and reschedules, by id.
    #[serde(default)]
    adjustments: BTreeMap<Uuid, AdjustmentState>,
    /// A paid order cancelled under a cancellation policy: each line's refund.
    #[serde(default)]
    line_refunds: BTreeMap<Uuid, LineRefund>,
    /// ... and what each vendor kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cancellation_kept: Option<Vec<VendorSplit>>,
    /// It was confirmed once (so invoiced), whatever happened after.
    #[serde(default)]
    confirmed: bool,
    /// Late fees the deposits did not cover, still owed, per line (with
    /// its vendor); and Σ late fees paid since (`late_fees`).
    #[serde(default)]
    late_fees_owed: BTreeMap<Uuid, (Uuid, Decimal)>,
    #[serde(default)]
    late_fees_paid: Decimal,
    /// The line paid by instalments, by line id (at most one).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    leases: BTreeMap<Uuid, Lease>,
}

impl Order {
    /// The order exists (OrderPlaced was recorded), whatever its status.
    pub fn is_placed(&self) -> bool {
        self.order_id.is_some()
    }
    pub fn order_id(&self) -> Option<Uuid> {
        self.order_id
    }
    pub fn status(&self) -> OrderStatus {
        self.status
    }
    pub fn customer_id(&self) -> &str {
        &self.customer_id
    }
    pub fn currency(&self) -> &str {
        &self.currency
    }
    pub fn rates(&self) -> Option<Rates> {
        self.rates
    }
    pub fn placed_at(&self) -> Option<DateTime<Utc>> {
        self.placed_at
    }
    pub fn hold_expires_at(&self) -> Option<DateTime<Utc>> {
        self.hold_expires_at
    }
    pub fn priced(&self) -> Option<&PricedOrder> {
        self.priced.as_ref()
    }
    /// The order total (zero before placement).
    pub fn total(&self) -> Decimal {
        self.priced.as_ref().map_or(Decimal::ZERO, |p| p.total)
    }
    /// `(listing_id, hold_id)` of every line, in line order.
    pub fn hold_ids(&self) -> Vec<(Uuid, Uuid)> {
        self.lines().map(|l| (l.listing_id, l.hold_id)).collect()
    }
    /// Vendors in order of first appearance.
    pub fn vendor_ids(&self) -> Vec<Uuid> {
        self.priced
            .as_ref()
            .map(|p| p.vendors.iter().map(|v| v.vendor_id).collect())
            .unwrap_or_default()
    }
    pub fn lines(&self) -> impl Iterator<Item = &PricedLine> {
        self.priced.iter().flat_map(|p| p.lines.iter())
    }
    pub fn line(&self, line_id: Uuid) -> Option<&PricedLine> {
        self.lines().find(|l| l.line_id == line_id)
    }
    pub fn line_vendor(&self, line_id: Uuid) -> Option<Uuid> {
        self.line(line_id).map(|l| l.vendor_id)
    }
    pub fn line_status(&self, line_id: Uuid) -> Option<LineStatus> {
        self.line_status.get(&line_id).copied()
    }
    /// The cancellation (if still cancelled) was by hold expiry.
    pub fn cancelled_by_expiry(&self) -> bool {
        self.cancelled_by_expiry
    }
    /// As stored (sealed when a person wrote it).
    pub fn cancel_reason(&self) -> Option<&PersonalText> {
        self.cancel_reason.as_ref()
    }
    /// Σ captured payments (refunds not deducted).
    pub fn captured_amount(&self) -> Decimal {
        self.captured
    }
    pub fn refunded_amount(&self) -> Decimal {
        self.refunded
    }
    /// Captured minus refunded.
    pub fn net_paid(&self) -> Decimal {
        self.captured - self.refunded
    }
    /// The recorded return of a rental line, once it came back.
    pub fn line_return(&self, line_id: Uuid) -> Option<&LineReturn> {
        self.returns.get(&line_id)
    }
    /// When a rental line was picked up.
    pub fn picked_up_at(&self, line_id: Uuid) -> Option<DateTime<Utc>> {
        self.picked_up_at.get(&line_id).copied()
    }
    /// Rental lines picked up, not returned and past their end at `now`
    /// (and not yet marked overdue).
    pub fn lines_due_overdue(&self, now: DateTime<Utc>) -> Vec<Uuid> {
        self.lines()
            .filter(|l| {
                self.line_status(l.line_id) == Some(LineStatus::PickedUp)
                    && l.end.is_some_and(|end| end <= now)
            })
            .map(|l| l.line_id)
            .collect()
    }
    /// What a policy cancellation refunded on a line.
    pub fn line_refund(&self, line_id: Uuid) -> Option<&LineRefund> {
        self.line_refunds.get(&line_id)
    }
    /// What each vendor kept of a cancellation under its policies.
    pub fn cancellation_kept(&self) -> Option<&[VendorSplit]> {
        self.cancellation_kept.as_deref()
    }
    fn set_adjustment_status(&mut self, adjustment_id: Uuid, status: AdjustmentStatus) {
        if let Some(state) = self.adjustments.get_mut(&adjustment_id) {
            state.status = status;
        }
    }
    pub fn has_seen_payment(&self, payment_id: &str) -> bool {
        self.payments_seen.contains(payment_id)
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = "Order";
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = DomainError;
    type Services = ();

    handle_by_deciding!();

    fn apply(&mut self, event: Self::Event) {
        use OrderEvent as E;
        match event {
            E::OrderPlaced {
                order_id,
                customer_id,
                currency,
                priced,
                rates,
                hold_expires_at,
                placed_at,
            } => {
                self.order_id = Some(order_id);
                self.customer_id = customer_id;
                self.currency = currency;
                self.line_status = priced
                    .lines
                    .iter()
                    .map(|l| (l.line_id, LineStatus::Pending))
                    .collect();
                self.leases = priced
                    .lines
                    .iter()
                    .filter_map(|l| {
                        let plan = l.payment_plan.as_ref()?;
                        Some((l.line_id, Lease::new(&plan.schedule)))
                    })
                    .collect();
                self.priced = Some(priced);
                self.rates = Some(rates);
                self.hold_expires_at = Some(hold_expires_at);
                self.placed_at = Some(placed_at);
                self.status = OrderStatus::Placed;
            }
            E::PaymentFailed { payment_id, .. } | E::PaymentAmountMismatch { payment_id, .. } => {
                self.payments_seen.insert(payment_id);
            }
            E::PaymentCaptured {
                payment_id, amount, ..
            } => {
                self.payments_seen.insert(payment_id);
                self.captured += amount;
            }
            E::OrderConfirmed { .. } => {
                self.status = OrderStatus::Confirmed;
                self.confirmed = true;
                self.activate_leases();
            }
            E::OrderReconfirmed { .. } => {
                self.status = OrderStatus::Confirmed;
                self.confirmed = true;
                self.activate_leases();
                self.cancelled_by_expiry = false;
                self.cancel_reason = None;
            }
            E::RefundIssued { amount, .. } => {
                self.refunded += amount;
                if self.status == OrderStatus::Cancelled {
                    self.status = OrderStatus::Refunded;
                }
            }
            E::OrderCancelled { reason, cause, .. } => {
                self.status = OrderStatus::Cancelled;
                self.cancelled_by_expiry = cause == CancelCause::Expiry;
                self.cancel_reason = reason;
            }
            E::PartShipped { vendor_id, .. } => {
                self.set_sale_lines(vendor_id, LineStatus::Pending, LineStatus::Shipped)
            }
            E::PartDelivered { vendor_id, .. } => {
                self.set_sale_lines(vendor_id, LineStatus::Shipped, LineStatus::Delivered)
            }
            E::LinePickedUp { line_id, at } => {
                self.line_status.insert(line_id, LineStatus::PickedUp);
                self.picked_up_at.insert(line_id, at);
            }
            E::LineOverdue { line_id, .. } => {
                self.line_status.insert(line_id, LineStatus::Overdue);
            }
            E::LineReturned {
                line_id,
                returned_at,
                deposit_refunded,
                damage_withheld,
                late_fee,
                late_fee_owed,
                refund,
                vendor_id,
            } => {
                self.line_status.insert(line_id, LineStatus::Returned);
                if late_fee_owed > Decimal::ZERO {
                    self.late_fees_owed
                        .insert(line_id, (vendor_id, late_fee_owed));
                }
                self.returns.insert(
                    line_id,
                    LineReturn {
                        returned_at,
                        deposit_refunded,
                        damage_withheld,
                        late_fee,
                        late_fee_owed,
                        refund,
                    },
                );
            }
            E::VendorPartFulfilled { vendor_id, net } => {
                self.fulfilled_vendors.insert(vendor_id);
                self.fulfilled_net.insert(vendor_id, net);
            }
            E::OrderCompleted { .. } => self.status = OrderStatus::Completed,
            E::RefundRecorded {
                refund_id,
                amount,
                provider_refund_id,
                parts,
                ..
            } => {
                self.refund_ids.insert(refund_id);
                if let Some(provider) = provider_refund_id {
                    self.provider_refunds.insert(provider, refund_id);
                }
                self.refunded += amount;
                refund::take(&mut self.line_taken, &mut self.part_taken, &parts);
            }
            E::ProviderRefundMatched {
                refund_id,
                provider_refund_id,
            } => {
                self.provider_refunds.insert(provider_refund_id, refund_id);
            }
            E::PaymentUnapplied {
                payment_id, amount, ..
            } => {
                self.payments_seen.insert(payment_id.clone());
                *self.unapplied.entry(payment_id).or_default() += amount;
            }
            E::UnappliedPaymentApplied { payment_id, amount } => {
                *self.unapplied.entry(payment_id).or_default() -= amount;
                self.captured += amount;
            }
            E::LateFeePaid {
                payment_id,
                amount,
                from_unapplied,
                parts,
                ..
            } => self.late_fee_was_paid(payment_id, amount, from_unapplied, &parts),
            E::UnappliedPaymentRefunded { payment_id, amount } => {
                *self.unapplied.entry(payment_id).or_default() -= amount;
            }
            E::DisputeOpened {
                dispute_id,
                dispute_ref,
                amount,
                parts,
                ..
            } => {
                self.disputes.insert(
                    dispute_id,
                    DisputeState {
                        dispute_ref,
                        amount,
                        parts,
                        open: true,
                    },
                );
            }
            E::DisputeClosed {
                dispute_id,
                won,
                amount,
                parts,
                ..
            } => {
                if let Some(d) = self.disputes.get_mut(&dispute_id) {
                    d.open = false;
                }
                if !won {
                    self.disputes_lost += amount;
                    refund::take(&mut self.line_taken, &mut self.part_taken, &parts);
                }
            }
            E::AdjustmentRequested { adjustment, .. } => {
                self.adjustments.insert(
                    adjustment.adjustment_id,
                    AdjustmentState {
                        adjustment,
                        status: AdjustmentStatus::AwaitingPayment,
                    },
                );
            }
            E::AdjustmentPaid { adjustment_id, .. } => {
                self.set_adjustment_status(adjustment_id, AdjustmentStatus::Paid)
            }
            E::AdjustmentConfirmed { adjustment, .. } => {
                if let Some(priced) = self.priced.as_mut() {
                    priced.apply_adjustment(&adjustment);
                }
                self.set_adjustment_status(adjustment.adjustment_id, AdjustmentStatus::Confirmed)
            }
            E::AdjustmentLapsed { adjustment_id, .. } => {
                self.set_adjustment_status(adjustment_id, AdjustmentStatus::Lapsed)
            }
            E::CancellationCharged { lines, vendors } => {
                self.line_refunds = lines.into_iter().map(|l| (l.line_id, l)).collect();
                self.cancellation_kept = Some(vendors);
            }
            E::InstalmentPaid {
                line_id,
                instalment,
                payment_id,
                at,
                ..
            } => {
                self.payments_seen.insert(payment_id);
                if let Some(i) = self.instalment_mut(line_id, instalment) {
                    i.status = InstalmentStatus::Paid;
                    i.paid_at = Some(at);
                }
            }
            E::InstalmentOverdue {
                line_id,
                instalment,
                ..
            } => {
                if let Some(i) = self.instalment_mut(line_id, instalment) {
                    i.status = InstalmentStatus::Overdue;
                }
            }
            E::LeasePastDue { line_id, at } => {
                if let Some(lease) = self.leases.get_mut(&line_id) {
                    lease.status = LeaseStatus::PastDue;
                    lease.failing_since = Some(at);
                }
            }
            E::LeaseSuspended { line_id, at } => {
                if let Some(lease) = self.leases.get_mut(&line_id) {
                    lease.status = LeaseStatus::Suspended;
                    lease.suspended_at = Some(at);
                }
            }
            E::LeaseReinstated { line_id, .. } => {
                if let Some(lease) = self.leases.get_mut(&line_id) {
                    if lease.status != LeaseStatus::Terminated {
                        lease.status = LeaseStatus::Active;
                    }
                    lease.failing_since = None;
                    lease.suspended_at = None;
                }
            }
            E::LeaseTerminated {
                line_id,
                cause,
                cancelled,
                charge,
                at,
            } => {
                if let Some(lease) = self.leases.get_mut(&line_id) {
                    lease.status = LeaseStatus::Terminated;
                    lease.ended = Some((cause, at));
                    for number in cancelled {
                        if let Some(i) = lease.instalment_mut(number) {
                            i.status = InstalmentStatus::Cancelled;
                        }
                    }
                    if let Some(charge) = charge {
                        lease.instalments.push(InstalmentState::from(&charge));
                    }
                }
            }
            E::InstalmentsWrittenOff {
                line_id,
                instalments,
                parts,
                ..
            } => {
                for number in instalments {
                    if let Some(i) = self.instalment_mut(line_id, number) {
                        i.status = InstalmentStatus::WrittenOff;
                    }
                }
                refund::take(&mut self.line_taken, &mut self.part_taken, &parts);
            }
        }
    }
}

impl Order {
    fn activate_leases(&mut self) {
        for lease in self.leases.values_mut() {
            if lease.status == LeaseStatus::Pending {
                lease.status = LeaseStatus::Active;
            }
        }
    }
    fn instalment_mut(&mut self, line_id: Uuid, number: u32) -> Option<&mut InstalmentState> {
        self.leases.get_mut(&line_id)?.instalment_mut(number)
    }
}
