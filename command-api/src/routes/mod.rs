//! One module per resource of API.md "Commands".

pub mod fulfilment;
pub mod listings;
pub mod orders;
pub mod vendors;
pub mod webhooks;

use chrono::{DateTime, Utc};
// Money serde is shared with the read side (`ledger-http`).
pub use ledger_http::money::{
    deserialize_money, deserialize_optional_money, money, serialize_money, AMOUNT_PATTERN,
};

/// Current time, truncated to microseconds so that it survives a round trip
/// through PostgreSQL and JSON unchanged.
pub fn now() -> DateTime<Utc> {
    let now = Utc::now();
    DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
}
