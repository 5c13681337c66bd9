//! Schemas for the OpenAPI document where a query route builds its answer
//! as JSON rather than from a type: these mirror that JSON field by field
//! (the tests check real answers against them). The domain's enums the
//! answers show are mirrored here too, since the domain has no OpenAPI
//! derives.

use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::listings::ListingView;
use crate::money::Posting;
use crate::payouts::Payout;

/// A page of a vendor's payouts.
#[derive(Serialize, ToSchema)]
pub struct PayoutPage {
    pub items: Vec<Payout>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of listings.
#[derive(Serialize, ToSchema)]
pub struct ListingPage {
    pub items: Vec<ListingView>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of postings.
#[derive(Serialize, ToSchema)]
pub struct PostingPage {
    pub items: Vec<Posting>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

/// A page of orders.
#[derive(Serialize, ToSchema)]
pub struct OrderPage {
    pub items: Vec<OrderDocument>,
    /// Null on the last page.
    pub next_cursor: Option<String>,
}

/// An order as its reader may see it. A vendor gets `order_id`, `status`,
/// `currency`, `placed_at`, its own `lines` and its own part in `vendors`
/// only; customers and admins get everything.
#[derive(Serialize, ToSchema)]
pub struct OrderDocument {
    pub order_id: Uuid,
    /// `placed`, `confirmed`, `completed`, `cancelled` or `refunded`.
    pub status: OrderStatus,
    pub currency: String,
    pub placed_at: DateTime<Utc>,
    pub lines: Vec<OrderLineDocument>,
    pub vendors: Vec<OrderPartDocument>,
    #[schema(nullable = false)]
    pub customer_id: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub subtotal: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub tax: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub deposit: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub total: Option<String>,
    pub hold_expires_at: Option<DateTime<Utc>>,
    pub cancel_reason: Option<String>,
    #[schema(nullable = false)]
    pub payments: Option<Vec<PaymentDocument>>,
    #[schema(nullable = false)]
    pub refunds: Option<Vec<RefundDocument>>,
    /// Disputes of the order's payment at the provider.
    #[schema(nullable = false)]
    pub disputes: Option<Vec<DisputeDocument>>,
    /// Extensions and reschedules of its lines.
    #[schema(nullable = false)]
    pub adjustments: Option<Vec<AdjustmentDocument>>,
    /// Late fees the deposits did not cover and nothing has paid yet, and
    /// what payments paid of them since (API.md "Rentals").
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "30.00")]
    pub late_fee_owed: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    pub late_fee_paid: Option<String>,
    /// The line paid by instalments (issue 15), with its standing.
    #[schema(nullable = false)]
    pub payment_plan: Option<PaymentPlanDocument>,
    /// Its instalments.
    #[schema(nullable = false)]
    pub schedule: Option<Vec<InstalmentDocument>>,
    pub updated_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentPlanDocument {
    pub line_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "500.00")]
    pub deposit: String,
    pub instalments: u32,
    /// `week` or `month`.
    pub interval: String,
    /// `pending`, `active`, `past_due`, `suspended` or `terminated`.
    pub status: String,
    /// `customer` or `non_payment`, once terminated.
    pub ended_by: Option<String>,
    pub ended_at: Option<DateTime<Utc>>,
    /// Σ instalments due or overdue.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "250.00")]
    pub amount_due: String,
}

#[derive(Serialize, ToSchema)]
pub struct InstalmentDocument {
    pub instalment: u32,
    pub due: DateTime<Utc>,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "250.00")]
    pub amount: String,
    /// `due`, `paid`, `overdue`, `written_off` or `cancelled`.
    pub status: String,
    pub paid_at: Option<DateTime<Utc>>,
}

#[derive(Serialize, ToSchema)]
pub struct AdjustmentDocument {
    pub adjustment_id: Uuid,
    pub line_id: Uuid,
    /// `extension` or `reschedule`.
    pub kind: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// Negative: refunded by the cancellation policy.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "20.00")]
    pub amount_due: String,
    pub hold_expires_at: DateTime<Utc>,
    /// `awaiting_payment`, `paid`, `confirmed` or `lapsed`.
    pub status: String,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderLineDocument {
    pub line_id: Uuid,
    pub listing_id: Uuid,
    pub vendor_id: Uuid,
    pub kind: ListingKind,
    pub quantity: u32,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub unit_price: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub tax: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub deposit: String,
    /// The line's fulfilment status.
    pub status: String,
    /// Rentals: the period `[start, end)`.
    #[schema(nullable = false)]
    pub start: Option<DateTime<Utc>>,
    #[schema(nullable = false)]
    pub end: Option<DateTime<Utc>>,
    /// Rentals: the listing's IANA time zone.
    #[schema(nullable = false, example = "Europe/Berlin")]
    pub time_zone: Option<String>,
    /// Rentals: `start` in the listing's time zone (RFC 3339 with its offset).
    #[schema(nullable = false, value_type = Option<String>, example = "2030-01-01T10:00:00+01:00")]
    pub local_start: Option<DateTime<chrono::FixedOffset>>,
    /// Rentals: `end` in the listing's time zone.
    #[schema(nullable = false, value_type = Option<String>, example = "2030-01-01T12:00:00+01:00")]
    pub local_end: Option<DateTime<chrono::FixedOffset>>,
    #[schema(nullable = false)]
    pub billable_units: Option<u32>,
    #[schema(nullable = false)]
    pub returned_at: Option<DateTime<Utc>>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub deposit_refunded: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub damage_withheld: Option<String>,
    /// A late return's fee.
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "20.00")]
    pub late_fee: Option<String>,
    /// A paid order cancelled under the line's cancellation policy: what
    /// was refunded (price, tax and deposit); a line returned early: what
    /// its policy refunded of the unused time (price and tax).
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub refund: Option<String>,
    /// A late return: the part of its late fee the deposit did not cover,
    /// still owed (`0.00` once paid).
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "30.00")]
    pub late_fee_owed: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct OrderPartDocument {
    pub vendor_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub platform_fee: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub net: String,
    /// The vendor part's fulfilment status.
    pub status: String,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentDocument {
    pub payment_id: String,
    pub intent_id: String,
    pub outcome: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub amount: Option<String>,
    pub reason: Option<String>,
    /// A payment of another amount than due: the cash still held unapplied
    /// (`outcome` `unapplied`, then `applied` or `refunded` at zero).
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "12.00")]
    pub unapplied: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Serialize, ToSchema)]
pub struct RefundDocument {
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub amount: String,
    pub reason: String,
    pub at: DateTime<Utc>,
    /// Refunds by amount or lines (`POST /v1/orders/{id}/refunds`, or made
    /// at the provider); absent on a cancellation's refund.
    #[schema(nullable = false)]
    pub refund_id: Option<Uuid>,
    pub provider_refund_id: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "1.00")]
    pub fee_reversed: Option<String>,
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    pub tax_reversed: Option<String>,
    #[schema(nullable = false)]
    pub vendor_reversed: Option<Vec<VendorReversedDocument>>,
}

/// What a refund reversed of one vendor's net, and of which lines.
#[derive(Serialize, ToSchema)]
pub struct VendorReversedDocument {
    pub vendor_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "9.00")]
    pub amount: String,
    pub lines: Vec<RefundedLineDocument>,
}

#[derive(Serialize, ToSchema)]
pub struct RefundedLineDocument {
    pub line_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "10.00")]
    pub subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    pub tax: String,
}

#[derive(Serialize, ToSchema)]
pub struct DisputeDocument {
    pub dispute_id: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub amount: String,
    /// `open`, `won` or `lost`.
    pub status: String,
    pub opened_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// `GET /v1/analytics/summary` over `[from, to)`.
#[derive(Serialize, ToSchema)]
pub struct AnalyticsSummary {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub currency: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub gmv: String,
    pub orders: i64,
    pub paid_orders: i64,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub avg_order_value: String,
    /// Decimal string, 0 to 1.
    #[schema(example = "0.25")]
    pub cancellation_rate: String,
    /// Cancellations' refunds and refunds by amount or lines.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub refunds: String,
    pub disputes: DisputeTotals,
    /// Payments of another amount than due, still held unapplied.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    pub unapplied_cash: String,
    /// Decimal string.
    #[schema(example = "3.50")]
    pub rental_days: String,
    /// Decimal string, 0 to 1.
    #[schema(example = "0.4")]
    pub utilization: String,
    /// Rental lines that went overdue (not returned by their end) in the window.
    pub overdue_lines: i64,
    /// Late fees of the returns in the window.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "60.00")]
    pub late_fees: String,
    /// The part of those late fees the deposits did not cover, owed by customers.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "30.00")]
    pub late_fees_owed: String,
    pub top_listings: Vec<TopListing>,
    pub payment_failures: Vec<PaymentFailureCount>,
    /// The same failures by the provider's `code`.
    pub payment_failures_by_code: Vec<PaymentFailureCodeCount>,
    /// The same failures by the issuer's `decline_code`.
    pub payment_failures_by_decline_code: Vec<PaymentFailureDeclineCodeCount>,
    /// Payouts requested in the window by status (count and amount).
    pub payouts: Vec<crate::payouts::PayoutsByStatus>,
    /// The active subscriptions' plans' prices as a month's worth.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "890.00")]
    pub mrr: String,
    /// Subscriptions `active`, or `past_due` after paying at least once, now.
    pub active_subscriptions: i64,
    /// Subscriptions cancelled in the window ÷ those running in it; decimal
    /// string, 0 to 1.
    #[schema(example = "0.05")]
    pub churn_rate: String,
    /// What open subscription invoices with a failed or missing payment
    /// still owe now.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "89.00")]
    pub past_due: String,
    /// What overdue lease instalments still owe now (issue 15).
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "250.00")]
    pub instalments_overdue: String,
    /// How many lease instalments are overdue now.
    pub instalments_overdue_count: i64,
}

/// Disputes of the orders in the window: the amount still open, and lost.
#[derive(Serialize, ToSchema)]
pub struct DisputeTotals {
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    pub open: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    pub lost: String,
}

#[derive(Serialize, ToSchema)]
pub struct TopListing {
    pub listing_id: Uuid,
    pub title: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub gmv: String,
    pub orders: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentFailureCount {
    pub reason: String,
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentFailureCodeCount {
    /// `null`: failures the provider gave no code for.
    #[schema(example = "card_declined")]
    pub code: Option<String>,
    pub count: i64,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentFailureDeclineCodeCount {
    /// `null`: failures the provider gave no decline code for.
    #[schema(example = "insufficient_funds")]
    pub decline_code: Option<String>,
    pub count: i64,
}

/// `GET /v1/analytics/revenue`.
#[derive(Serialize, ToSchema)]
pub struct Revenue {
    pub currency: String,
    pub buckets: Vec<crate::analytics::Bucket>,
}

/// `GET /health/live`.
#[derive(Serialize, ToSchema)]
pub struct Live {
    #[schema(example = "ok")]
    pub status: String,
}

/// `GET /health/ready`: `checks` has `postgres` and (with NATS) `nats`,
/// each `ok` or `failing`.
#[derive(Serialize, ToSchema)]
pub struct Ready {
    /// `ok` or `unavailable`.
    pub status: String,
    pub checks: std::collections::BTreeMap<String, String>,
    /// The failing dependencies (503 only).
    #[schema(nullable = false)]
    pub failing: Option<Vec<String>>,
}

pub use ledger_http::schema::{ListingKind, OrderStatus};
