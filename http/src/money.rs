//! Money at the HTTP edge (DESIGN.md "Domain": decimal strings in JSON):
//! answers always show two decimal places, request bodies are read by the
//! domain's one parser of amounts, never through a float.

use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serializer};

/// Money in answers: always two decimal places (`"45.00"`).
pub fn money(amount: Decimal) -> String {
    let mut amount = domain::round_cents(amount);
    amount.rescale(2);
    amount.to_string()
}

/// Serde helper for money fields of answers.
pub fn serialize_money<S: Serializer>(amount: &Decimal, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&money(*amount))
}

/// Money in request bodies: a decimal string (`"12.50"`) read by the one
/// parser of amounts, [`domain::parse_amount`] (no exponent, sign, spaces or
/// third place; at most `domain::MAX_AMOUNT`). Numbers are refused so that
/// no binary floating point ever touches an amount.
pub fn deserialize_money<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Decimal, D::Error> {
    let text = String::deserialize(deserializer)?;
    domain::parse_amount(&text).map_err(serde::de::Error::custom)
}

pub fn deserialize_optional_money<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Decimal>, D::Error> {
    match Option::<String>::deserialize(deserializer)? {
        None => Ok(None),
        Some(text) => domain::parse_amount(&text)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

/// The OpenAPI pattern of an amount in a request: what
/// [`domain::parse_amount`] accepts, bar the bound.
pub const AMOUNT_PATTERN: &str = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$";
