//! One module per resource of API.md "Commands".

pub mod fulfilment;
pub mod listings;
pub mod orders;
pub mod rentals;
pub mod subjects;
pub mod vendors;
pub mod webhooks;

// Money serde is shared with the read side (`ledger-http`).
pub use ledger_http::money::{
    deserialize_money, deserialize_optional_money, money, serialize_money, AMOUNT_PATTERN,
};
