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
pub mod vendors;
pub mod webhooks;

// Money serde is shared with the read side (`ledger-http`).
pub use ledger_http::money::{
    deserialize_money, deserialize_optional_money, money, serialize_money, AMOUNT_PATTERN,
};
