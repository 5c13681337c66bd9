//! The money checker: what the ledger, the vendor earnings and the
//! analytics answer, compared to the cent with what the raw event log says.
//!
//! The expectations are computed here from the `events` table alone (the
//! externally tagged JSON payloads, parsed by hand into `rust_decimal`s),
//! never from a projector's code or tables, so a one-cent slip in any
//! projector shows up as a [`Discrepancy`]. [`observe`] gathers what the
//! ledger answers (the HTTP routes, plus the `ledger_postings` journal);
//! [`check`] takes those figures and the pool and lists every disagreement.
//! A test may change the observed figures, or the read-model tables behind
//! them, before calling [`check`] to prove a wrong posting is caught.
//!
//! The checks assume a settled log: every projector at the head, no payment
//! left unallocated.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;
use uuid::Uuid;

mod compare;
mod expected;
mod leases;
mod observe;
mod rentals;
mod reversals;
mod subscriptions;

pub use compare::{check, compare};
pub use expected::{cents, Expected};
pub use leases::INSTALMENT_WRITE_OFFS;
pub use observe::observe;
pub use rentals::CUSTOMER_RECEIVABLE;
pub use reversals::{vendor_frozen, vendor_receivable, DISPUTED, UNAPPLIED, VENDOR_REVERSALS};
pub use subscriptions::{
    SUBSCRIPTION_CREDITS, SUBSCRIPTION_RECEIVABLE, SUBSCRIPTION_REVENUE, SUBSCRIPTION_WRITE_OFFS,
};

/// The analytics window of the checks: wide enough for every order placed
/// now and every rental the tests book (in 2030).
pub const WINDOW_FROM: &str = "2000-01-01T00:00:00Z";
pub const WINDOW_TO: &str = "2031-01-01T00:00:00Z";

pub const CASH: &str = "cash";
pub const CUSTOMER_FUNDS: &str = "customer_funds";
pub const TAX_PAYABLE: &str = "tax_payable";
pub const DEPOSITS_HELD: &str = "deposits_held";
pub const PLATFORM_FEES: &str = "platform_fees";
/// Payouts requested and neither paid nor failed yet.
pub const PAYOUTS_IN_TRANSIT: &str = "payouts_in_transit";

pub fn vendor_pending(vendor_id: Uuid) -> String {
    format!("vendor_pending:{vendor_id}")
}

pub fn vendor_available(vendor_id: Uuid) -> String {
    format!("vendor_available:{vendor_id}")
}

/// One disagreement between the log and what the ledger answered.
#[derive(Clone, Debug, PartialEq)]
pub struct Discrepancy {
    /// Which rule (e.g. `entry balanced`, `account balance`, `earnings.available`).
    pub check: String,
    /// What it is about (an account, a vendor, a position, a bucket).
    pub subject: String,
    pub expected: String,
    pub observed: String,
}

impl fmt::Display for Discrepancy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [{}]: expected {}, observed {}",
            self.check, self.subject, self.expected, self.observed
        )
    }
}

/// Debit, credit and balance (debit − credit) of one account.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AccountFigures {
    pub debit: Decimal,
    pub credit: Decimal,
    pub balance: Decimal,
}

/// One line of the journal.
#[derive(Clone, Debug, PartialEq)]
pub struct Posting {
    pub posting_id: i64,
    pub position: i64,
    pub account: String,
    pub vendor_id: Option<Uuid>,
    pub order_id: Option<Uuid>,
    pub kind: String,
    pub debit: Decimal,
    pub credit: Decimal,
}

/// A vendor's `GET /v1/vendors/{id}/earnings`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Earnings {
    pub gross: Decimal,
    pub platform_fees: Decimal,
    pub net: Decimal,
    pub pending: Decimal,
    pub available: Decimal,
    pub paid_out: Decimal,
    pub damage_credits: Decimal,
}

/// `GET /v1/analytics/summary` over [`WINDOW_FROM`, `WINDOW_TO`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Summary {
    pub gmv: Decimal,
    pub orders: i64,
    pub paid_orders: i64,
    pub avg_order_value: Decimal,
    pub cancellation_rate: Decimal,
    pub refunds: Decimal,
    pub rental_days: Decimal,
    pub utilization: Decimal,
    /// Rental lines gone overdue in the window, and the late fees of the
    /// returns in it.
    pub overdue_lines: i64,
    pub late_fees: Decimal,
    /// What those late fees left owed and nothing has paid yet.
    pub late_fees_owed: Decimal,
    /// `(listing_id, gmv, orders)`, best first.
    pub top_listings: Vec<(Uuid, Decimal, i64)>,
    pub payment_failures: BTreeMap<String, i64>,
    /// Payouts requested in the window, by status: (count, amount).
    pub payouts: BTreeMap<String, (i64, Decimal)>,
}

/// One bucket of `GET /v1/analytics/revenue`.
#[derive(Clone, Debug, PartialEq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub key: Option<String>,
    pub gmv: Decimal,
    pub platform_fees: Decimal,
    pub orders: i64,
}

/// The revenue buckets the checks look at.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Revenue {
    pub day: Vec<Bucket>,
    pub week: Vec<Bucket>,
    pub month: Vec<Bucket>,
    pub by_vendor: Vec<Bucket>,
    pub by_category: Vec<Bucket>,
}

/// Everything the ledger answered, as the checker compares it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Observed {
    /// `GET /v1/ledger/trial-balance`.
    pub accounts: BTreeMap<String, AccountFigures>,
    pub total_debit: Decimal,
    pub total_credit: Decimal,
    /// The journal, `ledger_postings`, in posting order.
    pub postings: Vec<Posting>,
    /// `GET /v1/vendors/{id}/earnings` of every registered vendor.
    pub earnings: BTreeMap<Uuid, Earnings>,
    /// Every page of `GET /v1/vendors/{id}/earnings/entries`.
    pub vendor_entries: BTreeMap<Uuid, Vec<Posting>>,
    pub summary: Summary,
    pub revenue: Revenue,
    /// Every page of `GET /v1/vendors/{id}/payouts`: payout → (vendor,
    /// amount, status).
    pub payouts: BTreeMap<Uuid, Payout>,
}

/// A payout as the log or `GET /v1/vendors/{id}/payouts` has it.
#[derive(Clone, Debug, PartialEq)]
pub struct Payout {
    pub vendor_id: Uuid,
    pub amount: Decimal,
    /// `requested`, `paid` or `failed`.
    pub status: String,
}
