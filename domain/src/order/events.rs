//! What an Order records (`OrderEvent`): its facts, in the log's words.

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    OrderPlaced {
        order_id: Uuid,
        customer_id: String,
        currency: String,
        priced: PricedOrder,
        rates: Rates,
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
    },
    PaymentFailed {
        payment_id: String,
        intent_id: String,
        reason: String,
        /// The provider's error code (`card_declined`, ...); absent in
        /// events recorded before it was kept, and when none was given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// The issuer's reason for a declined card (`insufficient_funds`, ...).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        decline_code: Option<String>,
    },
    PaymentAmountMismatch {
        payment_id: String,
        intent_id: String,
        expected_minor: i64,
        received_minor: i64,
        currency: String,
    },
    PaymentCaptured {
        payment_id: String,
        intent_id: String,
        amount: Decimal,
    },
    OrderConfirmed {
        confirmed_at: DateTime<Utc>,
    },
    OrderReconfirmed {
        at: DateTime<Utc>,
    },
    RefundIssued {
        amount: Decimal,
        /// Personal when it repeats a cancellation's reason.
        reason: PersonalText,
    },
    /// Schema 2.0 (see [`crate::upcast`]): `cause` replaced 1.0's
    /// `by_expiry: bool`.
    OrderCancelled {
        reason: Option<PersonalText>,
        cause: CancelCause,
        at: DateTime<Utc>,
    },
    PartShipped {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    PartDelivered {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    LinePickedUp {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    LineReturned {
        line_id: Uuid,
        vendor_id: Uuid,
        returned_at: DateTime<Utc>,
        deposit_refunded: Decimal,
        damage_withheld: Decimal,
        /// Late fee = late fee per unit × started pricing units late ×
        /// quantity; taken from the deposit first (`late_fee` −
        /// `late_fee_owed`), the rest owed by the customer.
        #[serde(default, skip_serializing_if = "Decimal::is_zero")]
        late_fee: Decimal,
        #[serde(default, skip_serializing_if = "Decimal::is_zero")]
        late_fee_owed: Decimal,
        /// Returned early: what the cancellation policy refunded of the
        /// unused time (the `RefundRecorded` just before, refund id = the
        /// line id).
        #[serde(default, skip_serializing_if = "Decimal::is_zero")]
        refund: Decimal,
    },
    LineOverdue {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    VendorPartFulfilled {
        vendor_id: Uuid,
        net: Decimal,
    },
    OrderCompleted {
        at: DateTime<Utc>,
    },
    /// A refund (API.md "Money"): what it gave back, and per vendor part
    /// the lines, tax, fee and net it reversed, with where the net came
    /// from. Carries everything a credit note needs.
    RefundRecorded {
        refund_id: Uuid,
        order_id: Uuid,
        amount: Decimal,
        /// Sealed under the customer's key when a person wrote it.
        reason: PersonalText,
        /// Made at the provider (`charge.refunded`): its refund id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        provider_refund_id: Option<String>,
        parts: Vec<RefundPart>,
        at: DateTime<Utc>,
    },
    /// The provider reported a refund of ours as done.
    ProviderRefundMatched {
        refund_id: Uuid,
        provider_refund_id: String,
    },
    /// A payment of another amount than due: cash held for the customer,
    /// not (yet) the order's.
    PaymentUnapplied {
        payment_id: String,
        intent_id: String,
        amount: Decimal,
    },
    UnappliedPaymentApplied {
        payment_id: String,
        amount: Decimal,
    },
    UnappliedPaymentRefunded {
        payment_id: String,
        amount: Decimal,
    },
    /// The provider took `amount` back pending a dispute; `parts` are the
    /// vendors' shares, frozen.
    DisputeOpened {
        dispute_id: String,
        dispute_ref: Uuid,
        amount: Decimal,
        parts: Vec<RefundPart>,
        at: DateTime<Utc>,
    },
    /// Won: the money is back and `releases` say where each frozen share
    /// goes. Lost: `parts` are written off.
    DisputeClosed {
        dispute_id: String,
        dispute_ref: Uuid,
        won: bool,
        amount: Decimal,
        parts: Vec<RefundPart>,
        releases: Vec<DisputeRelease>,
        at: DateTime<Utc>,
    },
    /// A line's extension or reschedule, priced; awaiting payment unless
    /// nothing is due.
    AdjustmentRequested {
        adjustment: Adjustment,
        at: DateTime<Utc>,
    },
    /// The payment captured (`PaymentCaptured`, just before) pays it.
    AdjustmentPaid {
        adjustment_id: Uuid,
        payment_id: String,
    },
    /// The line takes the new period and amounts (the whole adjustment, so
    /// that a projector needs no earlier event to apply it).
    AdjustmentConfirmed {
        adjustment: Adjustment,
        at: DateTime<Utc>,
    },
    AdjustmentLapsed {
        adjustment_id: Uuid,
        at: DateTime<Utc>,
    },
    /// A late fee the deposit did not cover, paid (`late_fees.rs`): by a
    /// payment of exactly what was owed, or by unapplied cash applied to it
    /// (`from_unapplied`). `parts`: what it pays of each line's fee.
    LateFeePaid {
        payment_id: String,
        #[serde(default)]
        intent_id: String,
        amount: Decimal,
        #[serde(default)]
        from_unapplied: bool,
        parts: Vec<super::late_fees::LateFeePart>,
        at: DateTime<Utc>,
    },
    /// A paid order cancelled under its lines' cancellation policies: what
    /// each line refunds and what each vendor keeps (subtotal, platform fee
    /// and net of the kept part). The `RefundIssued` after it refunds the
    /// rest.
    CancellationCharged {
        lines: Vec<LineRefund>,
        vendors: Vec<VendorSplit>,
    },
    /// An instalment of the line's plan paid by the provider's payment.
    InstalmentPaid {
        line_id: Uuid,
        instalment: u32,
        payment_id: String,
        intent_id: String,
        amount: Decimal,
        at: DateTime<Utc>,
    },
    /// Unpaid past its due date and the dunning policy's payment window.
    InstalmentOverdue {
        line_id: Uuid,
        instalment: u32,
        at: DateTime<Utc>,
    },
    LeasePastDue {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    LeaseSuspended {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Every overdue instalment paid: in good standing again.
    LeaseReinstated {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    /// The lease ended early: `cancelled` instalments (not yet due) leave
    /// the schedule and `charge`, if any, is what of them stays due, now.
    LeaseTerminated {
        line_id: Uuid,
        cause: LeaseEnd,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cancelled: Vec<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        charge: Option<Instalment>,
        at: DateTime<Utc>,
    },
    /// What the customer no longer owes: unpaid `instalments` written off
    /// (non-payment) or the part of the cancelled ones a policy waived
    /// (`instalments` empty). `parts`: the tax, fee and vendor's net it
    /// takes back (empty once the vendor's part was fulfilled: then the
    /// platform bears it).
    InstalmentsWrittenOff {
        line_id: Uuid,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        instalments: Vec<u32>,
        amount: Decimal,
        parts: Vec<RefundPart>,
        at: DateTime<Utc>,
    },
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::OrderPlaced { .. } => "OrderPlaced",
            OrderEvent::PaymentFailed { .. } => "PaymentFailed",
            OrderEvent::PaymentAmountMismatch { .. } => "PaymentAmountMismatch",
            OrderEvent::PaymentCaptured { .. } => "PaymentCaptured",
            OrderEvent::OrderConfirmed { .. } => "OrderConfirmed",
            OrderEvent::OrderReconfirmed { .. } => "OrderReconfirmed",
            OrderEvent::RefundIssued { .. } => "RefundIssued",
            OrderEvent::OrderCancelled { .. } => "OrderCancelled",
            OrderEvent::PartShipped { .. } => "PartShipped",
            OrderEvent::PartDelivered { .. } => "PartDelivered",
            OrderEvent::LinePickedUp { .. } => "LinePickedUp",
            OrderEvent::LineReturned { .. } => "LineReturned",
            OrderEvent::LineOverdue { .. } => "LineOverdue",
            OrderEvent::VendorPartFulfilled { .. } => "VendorPartFulfilled",
            OrderEvent::OrderCompleted { .. } => "OrderCompleted",
            OrderEvent::RefundRecorded { .. } => "RefundRecorded",
            OrderEvent::ProviderRefundMatched { .. } => "ProviderRefundMatched",
            OrderEvent::PaymentUnapplied { .. } => "PaymentUnapplied",
            OrderEvent::UnappliedPaymentApplied { .. } => "UnappliedPaymentApplied",
            OrderEvent::UnappliedPaymentRefunded { .. } => "UnappliedPaymentRefunded",
            OrderEvent::DisputeOpened { .. } => "DisputeOpened",
            OrderEvent::DisputeClosed { .. } => "DisputeClosed",
            OrderEvent::AdjustmentRequested { .. } => "AdjustmentRequested",
            OrderEvent::AdjustmentPaid { .. } => "AdjustmentPaid",
            OrderEvent::AdjustmentConfirmed { .. } => "AdjustmentConfirmed",
            OrderEvent::AdjustmentLapsed { .. } => "AdjustmentLapsed",
            OrderEvent::CancellationCharged { .. } => "CancellationCharged",
            OrderEvent::LateFeePaid { .. } => "LateFeePaid",
            OrderEvent::InstalmentPaid { .. } => "InstalmentPaid",
            OrderEvent::InstalmentOverdue { .. } => "InstalmentOverdue",
            OrderEvent::LeasePastDue { .. } => "LeasePastDue",
            OrderEvent::LeaseSuspended { .. } => "LeaseSuspended",
            OrderEvent::LeaseReinstated { .. } => "LeaseReinstated",
            OrderEvent::LeaseTerminated { .. } => "LeaseTerminated",
            OrderEvent::InstalmentsWrittenOff { .. } => "InstalmentsWrittenOff",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            OrderEvent::OrderCancelled { .. } => crate::upcast::ORDER_CANCELLED_VERSION,
            _ => crate::EVENT_VERSION,
        }
        .to_string()
    }
}
