//! What can be asked of an Order (`OrderCommand`) and a payment's outcome
//! as the provider reports it.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::*;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum PaymentOutcome {
    Succeeded,
    /// `code` and `decline_code` are the provider's (Stripe's
    /// `last_payment_error.code` / `.decline_code`), when it gives them.
    Failed {
        reason: String,
        #[serde(default)]
        code: Option<String>,
        #[serde(default)]
        decline_code: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderCommand {
    Place {
        order_id: Uuid,
        customer_id: String,
        currency: String,
        lines: Vec<LineInput>,
        rates: Rates,
        /// Vendors' own fee rates, read from their aggregates by the
        /// placement saga (the others pay `rates.platform_fee_rate`).
        #[serde(default)]
        fee_rates: pricing::FeeRates,
        hold_expires_at: DateTime<Utc>,
        placed_at: DateTime<Utc>,
        /// Lines paid by instalments (issue 15), by line id.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        payment_plans: std::collections::BTreeMap<Uuid, PlanRequest>,
    },
    RecordPayment {
        /// The payment provider's event id (idempotency key).
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
        received_at: DateTime<Utc>,
    },
    Reconfirm {
        at: DateTime<Utc>,
    },
    RefundLapsed {
        at: DateTime<Utc>,
    },
    Cancel {
        /// Personal: sealed by the edge (the order's customer's key).
        reason: Option<PersonalText>,
        at: DateTime<Utc>,
    },
    ExpireUnpaid {
        at: DateTime<Utc>,
    },
    ShipPart {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    DeliverPart {
        vendor_id: Uuid,
        at: DateTime<Utc>,
    },
    PickUpLine {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    ReturnLine {
        line_id: Uuid,
        returned_at: DateTime<Utc>,
        damage_withheld: Decimal,
        /// A return is recorded at or before now.
        now: DateTime<Utc>,
    },
    /// A picked-up rental line not returned by its end (the sweeper).
    MarkLineOverdue {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Money given back, by amount or by lines (`refund.rs`). Idempotent
    /// per `refund_id` and per provider refund id.
    Refund(RefundRequest),
    /// A refund made at the provider (`charge.refunded`): matched to
    /// `matches` when that is a refund of ours, else recorded as
    /// `new_refund_id`. Idempotent per `provider_refund_id`.
    RecordProviderRefund {
        provider_refund_id: String,
        matches: Option<Uuid>,
        new_refund_id: Uuid,
        amount: Decimal,
        at: DateTime<Utc>,
    },
    /// An admin applies unapplied cash to the order.
    ApplyPayment {
        payment_id: String,
        at: DateTime<Utc>,
    },
    /// An admin refunds unapplied cash.
    RefundPayment {
        payment_id: String,
        at: DateTime<Utc>,
    },
    /// `charge.dispute.created`; idempotent per `dispute_id`.
    OpenDispute {
        dispute_id: String,
        dispute_ref: Uuid,
        amount: Decimal,
        at: DateTime<Utc>,
    },
    /// `charge.dispute.closed`: won or lost; idempotent.
    CloseDispute {
        dispute_id: String,
        won: bool,
        at: DateTime<Utc>,
    },
    /// Extend or reschedule a rental line (the Inventory holds the new
    /// period first).
    RequestAdjustment {
        request: AdjustmentRequest,
    },
    /// A provider's payment naming an adjustment.
    PayAdjustment {
        adjustment_id: Uuid,
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
    },
    /// The Inventory moved the hold to the paid adjustment's period.
    ConfirmAdjustment {
        adjustment_id: Uuid,
        at: DateTime<Utc>,
    },
    /// Unpaid past its expiry, or its units went elsewhere.
    LapseAdjustment {
        adjustment_id: Uuid,
        at: DateTime<Utc>,
    },
    /// A provider's payment naming an instalment of the order's plan
    /// (`metadata.instalment`); `None`: the oldest unpaid one.
    PayInstalment {
        instalment: Option<u32>,
        payment_id: String,
        intent_id: String,
        amount_minor: i64,
        currency: String,
        outcome: PaymentOutcome,
        received_at: DateTime<Utc>,
    },
    /// The scheduler: every dunning step of the lease due by `at`.
    DunInstalments {
        dunning: crate::subscription::DunningPolicy,
        at: DateTime<Utc>,
    },
    /// The customer or an admin ends a lease early.
    TerminateLease {
        line_id: Uuid,
        at: DateTime<Utc>,
    },
}
