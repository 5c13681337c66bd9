//! An early return refunded by the cancellation policy (API.md "Rentals",
//! issue 13 item 5). The whole pricing units between the return, rounded up
//! to the next unit boundary (hours from the line's start; calendar days in
//! the listing's zone, at the start's wall-clock time, for day listings),
//! and the line's end are treated as cancelled: each with notice = from the
//! return to that unit's start, refunded by the tier of the policy the line
//! was ordered under. No tiers is the default "a full refund until
//! fulfilment": nothing once picked up.
//!
//! A unit's price is the line's subtotal (and tax) ÷ its billable units (an
//! average when an extension added units at another price). The refund is
//! a `RefundRecorded` (refund id = the line id: a line comes back once)
//! over that line, so fee and net are reversed pro rata, from the part's
//! pending net, with a credit note, as any refund.

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use rust_decimal::Decimal;

use super::pricing::PricedLine;
use super::{Order, OrderEvent as E};
use crate::cancellation::refund_percent;
use crate::money::round_cents;
use crate::period::{Period, PricingUnit};
use crate::schedule::{billable_units_in, resolve};

/// The reason an early return's refund carries.
pub const EARLY_RETURN_REASON: &str =
    "early return: unused time refunded by the cancellation policy";

/// The start of the line's `k`-th pricing unit (0 = its start).
fn unit_start(line: &PricedLine, start: DateTime<Utc>, k: u32) -> Option<DateTime<Utc>> {
    match line.pricing_unit? {
        PricingUnit::Hour => Some(start + Duration::hours(i64::from(k))),
        PricingUnit::Day => {
            let tz = line.time_zone.unwrap_or(Tz::UTC);
            let local = start.with_timezone(&tz).naive_local();
            resolve(tz, local + Duration::days(i64::from(k)))
        }
    }
}

/// Σ over the unused whole units of the refund percent each earns, and the
/// line's billable units: the refund is that sum ÷ (100 × units) of the
/// line's price. `(0, units)` when nothing is refunded.
pub fn unused_percent(line: &PricedLine, returned_at: DateTime<Utc>) -> (u64, u32) {
    let (Some(start), Some(end), Some(unit), Some(units)) =
        (line.start, line.end, line.pricing_unit, line.billable_units)
    else {
        return (0, 0);
    };
    // No tiers: a full refund until fulfilment, so nothing once picked up.
    if returned_at >= end || line.cancellation_policy.is_empty() {
        return (0, units);
    }
    let used = if returned_at <= start {
        0
    } else {
        let zone = line.time_zone.unwrap_or(Tz::UTC);
        billable_units_in(
            &Period {
                start,
                end: returned_at,
            },
            unit,
            zone,
        )
    };
    let total: u64 = (used..units)
        .filter_map(|k| unit_start(line, start, k))
        .filter(|from| *from >= returned_at && *from < end)
        .map(|from| {
            u64::from(refund_percent(
                &line.cancellation_policy,
                from - returned_at,
            ))
        })
        .sum();
    (total, units)
}

impl Order {
    /// The `RefundRecorded` of a line returned early at `returned_at`, if
    /// its policy gives anything back (recorded at `now`): at most what the
    /// line has left and what the order may still refund. None for a lease.
    pub(super) fn early_return_refund(
        &self,
        line: &PricedLine,
        returned_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Option<E> {
        // A lease ends early by its termination, whose rest is due by the
        // policy; its instalments were never all paid, so nothing is given
        // back from what was.
        if self.leases.contains_key(&line.line_id) {
            return None;
        }
        let (percent, units) = unused_percent(line, returned_at);
        if percent == 0 || units == 0 {
            return None;
        }
        let share = |amount: Decimal| {
            round_cents(amount * Decimal::from(percent) / Decimal::from(100u64 * u64::from(units)))
        };
        let left = self.line_left(line);
        let wanted = share(line.subtotal).min(left.subtotal) + share(line.tax).min(left.tax);
        let amount = round_cents(wanted.min(self.refundable()));
        if amount <= Decimal::ZERO {
            return None;
        }
        let parts = self.allocate(amount, &[line]);
        Some(E::RefundRecorded {
            refund_id: line.line_id,
            order_id: self.order_id.unwrap_or_default(),
            amount,
            reason: EARLY_RETURN_REASON.into(),
            provider_refund_id: None,
            parts,
            at: now,
        })
    }
}
