//! Money: `rust_decimal::Decimal`, two decimal places, rounded half away from
//! zero. Serialized as JSON strings (workspace feature `serde-str`).

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// An amount of money in the deployment's single currency.
pub type Money = Decimal;

/// Rounds to the cent, half away from zero. The result always has scale 2
/// (so it serializes as e.g. `"12.50"`).
pub fn round_cents(x: Decimal) -> Decimal {
    let mut r = x.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
    r.rescale(2);
    r
}

/// The largest amount a price, deposit, payout or damage may state. Bounding
/// inputs keeps every sum and product of an order far inside `Decimal`'s
/// range (≈ 7.9 × 10^28), so pricing never overflows.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 0);

/// A valid amount is non-negative, at most [`MAX_AMOUNT`], and has at most
/// two decimal places.
pub fn is_valid_amount(x: Decimal) -> bool {
    x >= Decimal::ZERO && x <= MAX_AMOUNT && x.normalize().scale() <= 2
}

/// Converts an amount (≤ 2 dp) to minor units (cents). `None` on overflow.
pub fn to_minor_units(x: Decimal) -> Option<i64> {
    use rust_decimal::prelude::ToPrimitive;
    let cents = x.checked_mul(Decimal::ONE_HUNDRED)?;
    if cents.fract() != Decimal::ZERO {
        return None;
    }
    cents.to_i64()
}

/// Converts minor units (cents) to an amount with scale 2.
pub fn from_minor_units(minor: i64) -> Decimal {
    Decimal::new(minor, 2)
}

/// The rates in force when an order is placed (from configuration).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Rates {
    pub tax_rate: Decimal,
    pub platform_fee_rate: Decimal,
}

impl Default for Rates {
    fn default() -> Self {
        Rates {
            tax_rate: Decimal::ZERO,
            platform_fee_rate: Decimal::new(10, 2),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn round_cents_rounds_half_away_from_zero() {
        assert_eq!(round_cents(dec!(1.005)), dec!(1.01));
        assert_eq!(round_cents(dec!(1.004)), dec!(1.00));
        assert_eq!(round_cents(dec!(-1.005)), dec!(-1.01));
        assert_eq!(round_cents(dec!(2.5)).to_string(), "2.50");
        assert_eq!(round_cents(dec!(0.125)), dec!(0.13));
    }

    #[test]
    fn valid_amounts_are_non_negative_with_at_most_two_places() {
        assert!(is_valid_amount(dec!(0)));
        assert!(is_valid_amount(dec!(12.50)));
        assert!(is_valid_amount(dec!(12.500)));
        assert!(!is_valid_amount(dec!(12.505)));
        assert!(!is_valid_amount(dec!(-0.01)));
    }

    #[test]
    fn minor_units_round_trip() {
        assert_eq!(to_minor_units(dec!(123.45)), Some(12345));
        assert_eq!(to_minor_units(dec!(1.001)), None);
        assert_eq!(from_minor_units(12345), dec!(123.45));
        assert_eq!(from_minor_units(100).to_string(), "1.00");
    }

    #[test]
    fn rates_serialize_as_strings() {
        let r = Rates {
            tax_rate: dec!(0.0825),
            platform_fee_rate: dec!(0.10),
        };
        let v = serde_json::to_value(r).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"tax_rate": "0.0825", "platform_fee_rate": "0.10"})
        );
        assert_eq!(serde_json::from_value::<Rates>(v).unwrap(), r);
    }
}

#[cfg(test)]
mod bounds {
    use super::*;

    #[test]
    fn amounts_above_the_maximum_are_invalid() {
        assert!(is_valid_amount(MAX_AMOUNT));
        assert!(!is_valid_amount(MAX_AMOUNT + Decimal::new(1, 2)));
        assert_eq!(MAX_AMOUNT, Decimal::from(1_000_000_000u64));
    }
}
