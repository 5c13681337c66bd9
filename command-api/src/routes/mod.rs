//! One module per resource of API.md "Commands".

pub mod adjustment_payments;
pub mod changes;
pub mod fulfilment;
pub mod invoice_payments;
pub mod leases;
pub mod listings;
pub mod orders;
pub mod payments;
pub mod payout_webhooks;
pub mod provider_events;
pub mod refunds;
pub mod rentals;
pub mod subjects;
pub mod subscriptions;
pub mod tenants;
pub mod vendors;
pub mod webhooks;

// Money serde is shared with the read side (`ledger-http`).
pub use ledger_http::money::{
    deserialize_money, deserialize_optional_money, money, serialize_money, AMOUNT_PATTERN,
};

/// `"0.08"` as a rate: digits with at most one point, at most 4 places
/// (the range is the aggregate's rule).
pub fn parse_rate(
    field: &str,
    text: &str,
) -> Result<rust_decimal::Decimal, crate::error::ApiError> {
    let shaped = !text.is_empty()
        && text.len() <= 6
        && text.chars().all(|c| c.is_ascii_digit() || c == '.')
        && text.matches('.').count() <= 1
        && !text.starts_with('.')
        && !text.ends_with('.');
    shaped
        .then(|| text.parse::<rust_decimal::Decimal>().ok())
        .flatten()
        .ok_or_else(|| {
            crate::error::invalid(
                field,
                "must be a decimal string between 0 and 1, such as \"0.08\"",
            )
        })
}
