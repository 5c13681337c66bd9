//! Pure order pricing: lines, taxes, deposits and the per-vendor split.

use chrono::{DateTime, FixedOffset, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::cancellation::CancellationTier;
use crate::listing::ListingKind;
use crate::money::{round_cents, Rates};
use crate::period::{Period, PricingUnit};
use crate::schedule::{billable_units_in, local};

/// Events recorded before listings had time zones priced in UTC.
pub fn utc() -> Tz {
    Tz::UTC
}

/// The terms a line is priced with, read from the listing at placement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LineTerms {
    Rental {
        period: Period,
        pricing_unit: PricingUnit,
        price_per_unit: Decimal,
        deposit_per_unit: Decimal,
        /// The listing's time zone: day listings bill its calendar days.
        #[serde(default = "utc")]
        time_zone: Tz,
        /// The listing's late fee when the order was placed.
        #[serde(default)]
        late_fee_per_unit: Decimal,
        /// The listing's cancellation policy when the order was placed
        /// (none: a full refund until fulfilment).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        cancellation_policy: Vec<CancellationTier>,
    },
    Sale {
        unit_price: Decimal,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LineInput {
    pub line_id: Uuid,
    pub hold_id: Uuid,
    pub listing_id: Uuid,
    pub vendor_id: Uuid,
    pub terms: LineTerms,
    pub quantity: u32,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PricedLine {
    pub line_id: Uuid,
    pub hold_id: Uuid,
    pub listing_id: Uuid,
    pub vendor_id: Uuid,
    pub kind: ListingKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<DateTime<Utc>>,
    /// The listing's time zone and the period in it (rental lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<Tz>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_start: Option<DateTime<FixedOffset>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local_end: Option<DateTime<FixedOffset>>,
    /// Rental lines: how they are billed, and the late fee they agreed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pricing_unit: Option<PricingUnit>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub late_fee_per_unit: Option<Decimal>,
    /// Rental lines: the cancellation policy they agreed to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cancellation_policy: Vec<CancellationTier>,
    pub quantity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billable_units: Option<u32>,
    pub unit_price: Decimal,
    pub subtotal: Decimal,
    pub tax: Decimal,
    /// Zero for sale lines.
    pub deposit: Decimal,
    /// Rental lines paid by instalments (issue 15): the plan's schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_plan: Option<super::instalments::PaymentPlan>,
}

impl PricedLine {
    pub fn period(&self) -> Option<Period> {
        match (self.start, self.end) {
            (Some(start), Some(end)) => Some(Period { start, end }),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VendorSplit {
    pub vendor_id: Uuid,
    pub subtotal: Decimal,
    pub platform_fee: Decimal,
    pub net: Decimal,
    /// The vendor's own fee rate the fee was computed with; absent when
    /// the order's rate (`Rates::platform_fee_rate`) was used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee_rate: Option<Decimal>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PricedOrder {
    pub lines: Vec<PricedLine>,
    /// In order of first appearance in the lines.
    pub vendors: Vec<VendorSplit>,
    pub subtotal: Decimal,
    pub tax: Decimal,
    pub deposit: Decimal,
    pub total: Decimal,
}

impl PricedOrder {
    pub fn vendor(&self, vendor_id: Uuid) -> Option<&VendorSplit> {
        self.vendors.iter().find(|v| v.vendor_id == vendor_id)
    }
}

/// Prices an order. Every amount is rounded to the cent (half away from
/// zero) and carries scale 2:
/// - line subtotal = unit price × billable units × quantity (sale: ×
///   quantity), a day listing's units being calendar days in its zone;
/// - line tax = round(line subtotal × tax rate);
/// - line deposit = deposit per unit × quantity (rentals only);
/// - order subtotal, tax, deposit = sums; total = subtotal + tax + deposit;
/// - per vendor: fee = round(vendor subtotal × fee rate), net = subtotal − fee.
pub fn price_order(lines: &[LineInput], rates: Rates) -> PricedOrder {
    price_order_with_fee_rates(lines, rates, &FeeRates::new())
}

/// Vendors' own platform fee rates, by vendor (the others pay the order's).
pub type FeeRates = std::collections::BTreeMap<Uuid, Decimal>;

/// [`price_order`] where a vendor in `fee_rates` pays its own fee rate
/// instead of `rates.platform_fee_rate` (recorded in its split).
pub fn price_order_with_fee_rates(
    lines: &[LineInput],
    rates: Rates,
    fee_rates: &FeeRates,
) -> PricedOrder {
    let zero = round_cents(Decimal::ZERO);
    let mut priced = Vec::with_capacity(lines.len());
    let mut vendors: Vec<VendorSplit> = Vec::new();
    for l in lines {
        let qty = Decimal::from(l.quantity);
        let mut zone = None;
        let mut late = None;
        let mut policy = Vec::new();
        let (kind, start, end, billable, unit_price, subtotal, deposit) = match &l.terms {
            LineTerms::Rental {
                period,
                pricing_unit,
                price_per_unit,
                deposit_per_unit,
                time_zone,
                late_fee_per_unit,
                cancellation_policy,
            } => {
                policy.clone_from(cancellation_policy);
                let units = billable_units_in(period, *pricing_unit, *time_zone);
                zone = Some(*time_zone);
                late = Some((*pricing_unit, round_cents(*late_fee_per_unit)));
                (
                    ListingKind::Rental,
                    Some(period.start),
                    Some(period.end),
                    Some(units),
                    *price_per_unit,
                    round_cents(*price_per_unit * Decimal::from(units) * qty),
                    round_cents(*deposit_per_unit * qty),
                )
            }
            LineTerms::Sale { unit_price } => (
                ListingKind::Sale,
                None,
                None,
                None,
                *unit_price,
                round_cents(*unit_price * qty),
                zero,
            ),
        };
        let tax = round_cents(subtotal * rates.tax_rate);
        match vendors.iter_mut().find(|v| v.vendor_id == l.vendor_id) {
            Some(v) => v.subtotal += subtotal,
            None => vendors.push(VendorSplit {
                vendor_id: l.vendor_id,
                subtotal,
                platform_fee: zero,
                net: zero,
                fee_rate: fee_rates.get(&l.vendor_id).copied(),
            }),
        }
        priced.push(PricedLine {
            line_id: l.line_id,
            hold_id: l.hold_id,
            listing_id: l.listing_id,
            vendor_id: l.vendor_id,
            kind,
            start,
            end,
            time_zone: zone,
            local_start: zone.zip(start).map(|(tz, t)| local(t, tz)),
            local_end: zone.zip(end).map(|(tz, t)| local(t, tz)),
            pricing_unit: late.map(|(unit, _)| unit),
            late_fee_per_unit: late.map(|(_, fee)| fee),
            cancellation_policy: policy,
            quantity: l.quantity,
            billable_units: billable,
            unit_price: round_cents(unit_price),
            subtotal,
            tax,
            deposit,
            payment_plan: None,
        });
    }
    for v in &mut vendors {
        v.subtotal = round_cents(v.subtotal);
        let rate = v.fee_rate.unwrap_or(rates.platform_fee_rate);
        v.platform_fee = round_cents(v.subtotal * rate);
        v.net = round_cents(v.subtotal - v.platform_fee);
    }
    let subtotal = round_cents(priced.iter().map(|l| l.subtotal).sum());
    let tax = round_cents(priced.iter().map(|l| l.tax).sum());
    let deposit = round_cents(priced.iter().map(|l| l.deposit).sum());
    PricedOrder {
        lines: priced,
        vendors,
        subtotal,
        tax,
        deposit,
        total: round_cents(subtotal + tax + deposit),
    }
}
