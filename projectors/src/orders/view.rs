//! The order document of `rm_orders`, as the read API serves it.

use chrono::{DateTime, Utc};
use domain::{ListingKind, PersonalText};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct OrderView {
    pub order_id: Uuid,
    pub customer_id: String,
    /// placed, confirmed, completed, cancelled or refunded.
    pub status: String,
    pub currency: String,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub deposit: Decimal,
    pub total: Decimal,
    pub placed_at: DateTime<Utc>,
    pub hold_expires_at: DateTime<Utc>,
    /// As stored: sealed when a person wrote it (the read API opens it;
    /// the read model never holds the plaintext, docs/PRIVACY.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cancel_reason: Option<PersonalText>,
    pub lines: Vec<LineView>,
    pub vendors: Vec<VendorPartView>,
    pub payments: Vec<PaymentView>,
    pub refunds: Vec<RefundView>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub disputes: Vec<DisputeView>,
    /// Extensions and reschedules of its lines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub adjustments: Vec<AdjustmentView>,
    /// Late fees the deposits did not cover, still owed; and paid since.
    #[serde(default)]
    pub late_fee_owed: Decimal,
    #[serde(default)]
    pub late_fee_paid: Decimal,
    /// The line paid by instalments (issue 15), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lease: Option<LeaseView>,
    pub updated_at: DateTime<Utc>,
    pub position: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LineView {
    pub line_id: Uuid,
    pub listing_id: Uuid,
    pub vendor_id: Uuid,
    pub kind: ListingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// Rental lines: the listing's time zone and the period in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_start: Option<DateTime<chrono::FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_end: Option<DateTime<chrono::FixedOffset>>,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable_units: Option<u32>,
    pub unit_price: Decimal,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub deposit: Decimal,
    /// pending, shipped, delivered, picked_up, overdue or returned.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub returned_at: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deposit_refunded: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub damage_withheld: Option<Decimal>,
    /// A late return's fee.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_fee: Option<Decimal>,
    /// What a cancellation under the line's policy refunded (price, tax
    /// and deposit), or what an early return's policy refunded of the
    /// unused time (price and tax).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund: Option<Decimal>,
    /// A late return: what the deposit did not cover, still owed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_fee_owed: Option<Decimal>,
}

/// An extension or reschedule of a line.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdjustmentView {
    pub adjustment_id: Uuid,
    pub line_id: Uuid,
    /// extension or reschedule.
    pub kind: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Negative: refunded.
    pub amount_due: Decimal,
    pub hold_expires_at: DateTime<Utc>,
    /// awaiting_payment, paid, confirmed or lapsed.
    pub status: String,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VendorPartView {
    pub vendor_id: Uuid,
    pub subtotal: Decimal,
    pub platform_fee: Decimal,
    pub net: Decimal,
    /// pending, in_progress or fulfilled.
    pub status: String,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PaymentView {
    pub payment_id: String,
    pub intent_id: String,
    /// captured, failed or amount_mismatch.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount: Option<Decimal>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// A payment of another amount than due: the cash still held
    /// unapplied (zero once applied or refunded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unapplied: Option<Decimal>,
    pub at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RefundView {
    pub amount: Decimal,
    /// As stored: sealed when it repeats a person's cancellation reason.
    pub reason: PersonalText,
    pub at: DateTime<Utc>,
    /// Refunds by amount or lines (not a cancellation's): what each
    /// vendor's part gave back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_refund_id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<domain::RefundPart>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DisputeView {
    pub dispute_id: String,
    pub amount: Decimal,
    /// open, won or lost.
    pub status: String,
    pub opened_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<DateTime<Utc>>,
}

/// A line paid by instalments: its plan, standing and schedule.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LeaseView {
    pub line_id: Uuid,
    pub deposit: Decimal,
    pub instalments: u32,
    /// week or month.
    pub interval: String,
    /// pending, active, past_due, suspended or terminated.
    pub status: String,
    /// customer or non_payment, once terminated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<DateTime<Utc>>,
    pub schedule: Vec<InstalmentView>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct InstalmentView {
    pub instalment: u32,
    pub due: DateTime<Utc>,
    pub amount: Decimal,
    /// due, paid, overdue, written_off or cancelled.
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paid_at: Option<DateTime<Utc>>,
}

impl LeaseView {
    /// The lease of a placed order's plan line, if it has one.
    pub fn placed(priced: &domain::PricedOrder) -> Option<LeaseView> {
        let line = priced.plan_line()?;
        let plan = line.payment_plan.as_ref()?;
        Some(LeaseView {
            line_id: line.line_id,
            deposit: plan.deposit,
            instalments: u32::try_from(plan.schedule.len()).unwrap_or(u32::MAX),
            interval: plan.interval.as_str().to_owned(),
            status: "pending".to_owned(),
            ended_by: None,
            ended_at: None,
            schedule: plan
                .schedule
                .iter()
                .map(|i| InstalmentView {
                    instalment: i.number,
                    due: i.due,
                    amount: i.amount,
                    status: "due".to_owned(),
                    paid_at: None,
                })
                .collect(),
        })
    }

    pub fn set(&mut self, instalment: u32, status: &str) {
        if let Some(i) = self
            .schedule
            .iter_mut()
            .find(|i| i.instalment == instalment)
        {
            status.clone_into(&mut i.status);
        }
    }
}
