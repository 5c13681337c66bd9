//! Money: `rust_decimal::Decimal`, two decimal places, rounded half away from
//! zero. Serialized as JSON strings (workspace feature `serde-str`).
//!
//! Amounts enter through one door, [`parse_amount`], and every amount an
//! order can reach is bounded ([`MAX_AMOUNT`], [`MAX_ORDER_TOTAL`]) so that
//! no later sum or product of two of them leaves `Decimal`'s range.

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

/// The largest total (subtotal + tax + deposit) an order may reach; every
/// line, fee, net and refund of it is at most this. A product of two such
/// amounts (the analytics' fee share, `fee × line subtotal`) is at most
/// 10^24, and even with both at scale 2 its mantissa (10^28) fits
/// `Decimal`'s 96 bits, so it is exact.
pub const MAX_ORDER_TOTAL: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0);

/// Places an amount may have: the currency's minor units.
pub const PLACES: u32 = 2;

/// A valid amount is non-negative, at most [`MAX_AMOUNT`], and has at most
/// two decimal places.
pub fn is_valid_amount(x: Decimal) -> bool {
    x >= Decimal::ZERO && x <= MAX_AMOUNT && x.normalize().scale() <= PLACES
}

/// An amount an order produced (a vendor's net, a refund): non-negative,
/// at most [`MAX_ORDER_TOTAL`], at most two places.
pub fn is_valid_order_amount(x: Decimal) -> bool {
    x >= Decimal::ZERO && x <= MAX_ORDER_TOTAL && x.normalize().scale() <= PLACES
}

/// Why a text is not an amount (messages for people, naming the form).
pub const NOT_AN_AMOUNT: &str = "must be a decimal string of digits with at most 2 places, \
     such as \"12.50\" (no sign, exponent, spaces or leading zeros)";
/// Why an amount is refused for its size.
pub const AMOUNT_TOO_LARGE: &str = "must be at most 1000000000.00";

/// The one parser of amounts arriving from outside (API.md: "a decimal
/// string with two places"). Accepts exactly `0|[1-9][0-9]*` optionally
/// followed by `.` and one or two digits, at most [`MAX_AMOUNT`]: no sign,
/// exponent, whitespace, leading zeros or third place. The scale written is
/// kept (`"12.5"` is 12.5), as `Decimal`'s own parser would.
pub fn parse_amount(text: &str) -> Result<Money, &'static str> {
    let (whole, places) = match text.split_once('.') {
        Some((whole, places)) => (whole, Some(places)),
        None => (text, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || (whole.len() > 1 && whole.starts_with('0')) {
        return Err(NOT_AN_AMOUNT);
    }
    if let Some(places) = places {
        if !digits(places) || places.len() > PLACES as usize {
            return Err(NOT_AN_AMOUNT);
        }
    }
    // More whole digits than MAX_AMOUNT has cannot be in bounds (and could
    // not be held in an i64 below).
    if whole.len() > 10 {
        return Err(AMOUNT_TOO_LARGE);
    }
    let places = places.unwrap_or("");
    let mantissa: i64 = format!("{whole}{places}")
        .parse()
        .map_err(|_| NOT_AN_AMOUNT)?;
    let amount = Decimal::new(mantissa, places.len() as u32);
    if amount > MAX_AMOUNT {
        return Err(AMOUNT_TOO_LARGE);
    }
    Ok(amount)
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

    #[test]
    fn the_order_total_bound_is_ten_to_the_twelfth() {
        assert_eq!(MAX_ORDER_TOTAL, Decimal::from(1_000_000_000_000u64));
        assert!(is_valid_order_amount(MAX_ORDER_TOTAL));
        assert!(!is_valid_order_amount(MAX_ORDER_TOTAL + Decimal::new(1, 2)));
    }
}

#[cfg(test)]
mod parsing {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn plain_decimal_strings_are_amounts() {
        assert_eq!(parse_amount("0"), Ok(dec!(0)));
        assert_eq!(parse_amount("0.00"), Ok(dec!(0.00)));
        assert_eq!(parse_amount("12.5"), Ok(dec!(12.5)));
        assert_eq!(
            parse_amount("45.00").map(|a| a.to_string()),
            Ok("45.00".into())
        );
        assert_eq!(parse_amount("1000000000.00"), Ok(MAX_AMOUNT));
    }

    #[test]
    fn exponents_signs_spaces_and_third_places_are_refused() {
        for text in [
            "1e1", "1e2", "1e3", "1E3", "1.5e1", " 1.00", "1.00 ", "\t1", "+1.00", "-1.00",
            "1.005", "1.", ".5", "01", "00.10", "", "1,00", "1_000", "NaN", "inf", "１", "0x10",
            "1.0.0",
        ] {
            assert_eq!(parse_amount(text), Err(NOT_AN_AMOUNT), "{text:?}");
        }
    }

    #[test]
    fn amounts_over_the_bound_are_refused_as_too_large() {
        for text in [
            "1000000000.01",
            "1000000001",
            "9999999999.99",
            "99999999999999999999999999999999",
        ] {
            assert_eq!(parse_amount(text), Err(AMOUNT_TOO_LARGE), "{text:?}");
        }
    }
}
