//! The arithmetic of a billing schedule: where each period starts and ends,
//! what a plan change mid-period costs, and when dunning takes each step.
//! Pure functions, so the schedule's properties are tested on their own
//! (domain/tests/billing_props.rs).

use chrono::{DateTime, Months, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::money::round_cents;
use crate::schedule::IsoDuration;

/// How often a plan bills.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Interval {
    Week,
    Month,
    Year,
}

impl Interval {
    pub fn parse(text: &str) -> Option<Interval> {
        match text {
            "week" => Some(Interval::Week),
            "month" => Some(Interval::Month),
            "year" => Some(Interval::Year),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Interval::Week => "week",
            Interval::Month => "month",
            Interval::Year => "year",
        }
    }
}

/// The most periods a subscription may run (a weekly pass for ~190 years):
/// keeps every boundary far inside chrono's range.
pub const MAX_PERIODS: u32 = 10_000;

/// The start of period `index` of a schedule anchored at `anchor`.
///
/// Each boundary is computed from the anchor, never from the previous
/// boundary, so a schedule anchored on the 31st bills on the 31st in every
/// month that has one and on the month's last day otherwise (Jan 31, Feb 28,
/// Mar 31), instead of drifting to the 28th for ever.
pub fn period_start(anchor: DateTime<Utc>, interval: Interval, index: u32) -> DateTime<Utc> {
    let index = index.min(MAX_PERIODS);
    let shifted = match interval {
        Interval::Week => anchor.checked_add_signed(chrono::Duration::weeks(i64::from(index))),
        Interval::Month => anchor.checked_add_months(Months::new(index)),
        Interval::Year => anchor.checked_add_months(Months::new(index.saturating_mul(12))),
    };
    // Unreachable for anchors of this era and MAX_PERIODS; saturate rather
    // than panic.
    shifted.unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Period `index` as `[start, end)`.
pub fn period(anchor: DateTime<Utc>, interval: Interval, index: u32) -> BillingPeriod {
    BillingPeriod {
        index,
        start: period_start(anchor, interval, index),
        end: period_start(anchor, interval, index + 1),
    }
}

/// The index of the period that contains `at` (0 before the anchor).
pub fn period_index_at(anchor: DateTime<Utc>, interval: Interval, at: DateTime<Utc>) -> u32 {
    if at < anchor {
        return 0;
    }
    // A first guess from the average length, then walk to the exact one.
    let average_seconds: i64 = match interval {
        Interval::Week => 7 * 86_400,
        Interval::Month => 2_629_746,
        Interval::Year => 31_556_952,
    };
    let guess = ((at - anchor).num_seconds() / average_seconds).clamp(0, i64::from(MAX_PERIODS));
    let mut index = u32::try_from(guess).unwrap_or(MAX_PERIODS);
    while index > 0 && period_start(anchor, interval, index) > at {
        index -= 1;
    }
    while index < MAX_PERIODS && period_start(anchor, interval, index + 1) <= at {
        index += 1;
    }
    index
}

/// One billing period: `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BillingPeriod {
    pub index: u32,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// What changing from `old_price` to `new_price` at `at` costs for the rest
/// of `period`: the difference times the share of the period left, to the
/// cent (half away from zero). Positive: the customer owes it now;
/// negative: a credit against the next invoice. Nothing outside the period.
pub fn proration(
    old_price: Decimal,
    new_price: Decimal,
    period: &BillingPeriod,
    at: DateTime<Utc>,
) -> Decimal {
    let total = (period.end - period.start).num_seconds();
    let left = (period.end - at).num_seconds().clamp(0, total.max(0));
    if total <= 0 || left == 0 {
        return round_cents(Decimal::ZERO);
    }
    round_cents((new_price - old_price) * Decimal::from(left) / Decimal::from(total))
}

/// How an unpaid invoice is chased (configurable per deployment).
///
/// An invoice unpaid `payment_window` after it fell due counts as failed.
/// After the first failure the payment is retried at each offset of
/// `retries` (from that failure); `suspend_after` the first failure the
/// subscription is suspended, and `cancel_after` the suspension, cancelled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DunningPolicy {
    pub payment_window: IsoDuration,
    pub retries: Vec<IsoDuration>,
    pub suspend_after: IsoDuration,
    pub cancel_after: IsoDuration,
}

impl Default for DunningPolicy {
    /// Retries 1, 3 and 5 days after the first failure, suspended after 7
    /// days, cancelled 14 days after that: the shape of Stripe's smart
    /// retries, in days rather than weeks, as a parking pass runs monthly.
    fn default() -> Self {
        let days = |d: i64| IsoDuration::from_seconds(d * 86_400);
        DunningPolicy {
            payment_window: days(1),
            retries: vec![days(1), days(3), days(5)],
            suspend_after: days(7),
            cancel_after: days(14),
        }
    }
}

impl DunningPolicy {
    /// Why this policy is unusable, if it is: retries must be increasing
    /// and all before the suspension.
    pub fn problem(&self) -> Option<&'static str> {
        if self.payment_window.seconds() < 0
            || self.suspend_after.seconds() <= 0
            || self.cancel_after.seconds() <= 0
        {
            return Some("durations must be positive");
        }
        if self.retries.len() > 10 {
            return Some("at most 10 retries");
        }
        let mut last = 0;
        for retry in &self.retries {
            if retry.seconds() <= last {
                return Some("retries must be positive and increasing");
            }
            last = retry.seconds();
        }
        if last >= self.suspend_after.seconds() {
            return Some("every retry must come before the suspension");
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use rust_decimal_macros::dec;

    use super::*;

    fn utc(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 10, 0, 0).unwrap()
    }

    #[test]
    fn months_anchored_on_the_31st_come_back_to_the_31st() {
        let anchor = utc(2031, 1, 31);
        let starts: Vec<_> = (0..4)
            .map(|i| period_start(anchor, Interval::Month, i))
            .collect();
        assert_eq!(
            starts,
            [
                utc(2031, 1, 31),
                utc(2031, 2, 28),
                utc(2031, 3, 31),
                utc(2031, 4, 30)
            ]
        );
    }

    #[test]
    fn a_leap_day_anchor_bills_on_feb_28_in_other_years() {
        let anchor = utc(2032, 2, 29);
        assert_eq!(period_start(anchor, Interval::Year, 1), utc(2033, 2, 28));
        assert_eq!(period_start(anchor, Interval::Year, 4), utc(2036, 2, 29));
    }

    #[test]
    fn the_period_containing_an_instant() {
        let anchor = utc(2031, 1, 31);
        assert_eq!(
            period_index_at(anchor, Interval::Month, utc(2031, 1, 30)),
            0
        );
        assert_eq!(
            period_index_at(anchor, Interval::Month, utc(2031, 2, 27)),
            0
        );
        assert_eq!(
            period_index_at(anchor, Interval::Month, utc(2031, 2, 28)),
            1
        );
        assert_eq!(period_index_at(anchor, Interval::Week, utc(2031, 2, 14)), 2);
    }

    #[test]
    fn an_upgrade_half_way_costs_half_the_difference_to_the_cent() {
        let p = BillingPeriod {
            index: 0,
            start: utc(2031, 4, 1),
            end: utc(2031, 5, 1),
        };
        // 15 of 30 days left.
        assert_eq!(
            proration(dec!(30.00), dec!(45.00), &p, utc(2031, 4, 16)),
            dec!(7.50)
        );
        // A third of 10.00 is 3.333…: 3.33; a downgrade is a credit.
        let third = p.start + (p.end - p.start) * 2 / 3;
        assert_eq!(proration(dec!(30.00), dec!(40.00), &p, third), dec!(3.33));
        assert_eq!(
            proration(dec!(45.00), dec!(30.00), &p, utc(2031, 4, 16)),
            dec!(-7.50)
        );
        // At the end nothing is left to prorate.
        assert_eq!(proration(dec!(30.00), dec!(45.00), &p, p.end), dec!(0.00));
    }

    #[test]
    fn a_policy_needs_increasing_retries_before_the_suspension() {
        assert_eq!(DunningPolicy::default().problem(), None);
        let days = |d: i64| IsoDuration::from_seconds(d * 86_400);
        let mut policy = DunningPolicy {
            retries: vec![days(3), days(1)],
            ..DunningPolicy::default()
        };
        assert!(policy.problem().is_some());
        policy.retries = vec![days(1), days(8)];
        assert!(policy.problem().is_some());
    }
}
