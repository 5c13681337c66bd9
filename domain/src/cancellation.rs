//! A rental listing's cancellation policy (API.md "Rentals"): tiers of
//! `{notice, refund_percent}`. Cancelled (or shortened) at least `notice`
//! before the booked start, the customer gets `refund_percent` of the
//! line's price back; the tier with the longest notice that was given
//! applies, none given means no refund. No policy at all is the default:
//! a full refund until fulfilment. Deposits are always returned in full.
//! Pure: the caller brings the notice, measured on its clock.

use chrono::Duration;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::FieldError;
use crate::money::round_cents;
use crate::schedule::IsoDuration;

/// Most tiers one policy may have.
pub const MAX_TIERS: usize = 20;

/// One tier: at least `notice` before the start, `refund_percent` back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CancellationTier {
    pub notice: IsoDuration,
    pub refund_percent: u8,
}

/// The problems of a policy, on fields `cancellation_policy[i].…`.
pub fn validate_policy(tiers: &[CancellationTier]) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if tiers.len() > MAX_TIERS {
        errors.push(FieldError::new(
            "cancellation_policy",
            format!("at most {MAX_TIERS} tiers"),
        ));
    }
    for (i, tier) in tiers.iter().enumerate() {
        if tier.refund_percent > 100 {
            errors.push(FieldError::new(
                format!("cancellation_policy[{i}].refund_percent"),
                "must be between 0 and 100",
            ));
        }
        if tier.notice.seconds() < 0 {
            errors.push(FieldError::new(
                format!("cancellation_policy[{i}].notice"),
                "must not be negative",
            ));
        }
        if tiers[..i].iter().any(|t| t.notice == tier.notice) {
            errors.push(FieldError::new(
                format!("cancellation_policy[{i}].notice"),
                "two tiers with the same notice",
            ));
        }
    }
    errors
}

/// The percentage refunded when `notice` was given before the start
/// (negative: after it). No tiers: 100.
pub fn refund_percent(tiers: &[CancellationTier], notice: Duration) -> u8 {
    if tiers.is_empty() {
        return 100;
    }
    tiers
        .iter()
        .filter(|t| t.notice.delta() <= notice)
        .max_by_key(|t| t.notice)
        .map_or(0, |t| t.refund_percent.min(100))
}

/// `amount × percent / 100`, rounded to the cent.
pub fn refund_of(amount: Decimal, percent: u8) -> Decimal {
    round_cents(amount * Decimal::from(percent) / Decimal::from(100))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(notice: &str, refund_percent: u8) -> CancellationTier {
        CancellationTier {
            notice: IsoDuration::parse(notice).expect("duration"),
            refund_percent,
        }
    }

    #[test]
    fn no_policy_refunds_in_full() {
        assert_eq!(refund_percent(&[], Duration::hours(-5)), 100);
    }

    #[test]
    fn the_tier_with_the_longest_notice_given_applies() {
        let policy = [tier("P2D", 100), tier("P1D", 50), tier("PT0S", 10)];
        assert_eq!(refund_percent(&policy, Duration::days(3)), 100);
        assert_eq!(refund_percent(&policy, Duration::days(2)), 100);
        assert_eq!(refund_percent(&policy, Duration::hours(47)), 50);
        assert_eq!(refund_percent(&policy, Duration::hours(1)), 10);
        assert_eq!(refund_percent(&policy, Duration::hours(-1)), 0);
    }

    #[test]
    fn less_notice_than_any_tier_refunds_nothing() {
        assert_eq!(refund_percent(&[tier("P7D", 100)], Duration::days(6)), 0);
    }

    #[test]
    fn refunds_round_to_the_cent() {
        assert_eq!(refund_of(Decimal::new(3333, 2), 50).to_string(), "16.67");
    }

    #[test]
    fn a_percent_over_100_and_a_repeated_notice_are_refused() {
        let errors = validate_policy(&[tier("P1D", 101), tier("P1D", 50)]);
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "cancellation_policy[0].refund_percent",
                "cancellation_policy[1].notice"
            ]
        );
    }
}
