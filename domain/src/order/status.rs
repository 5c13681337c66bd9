//! Where an order stands: the order's status, its vendor parts' and lines'
//! fulfilment status, and why it was cancelled. DESIGN.md "Domain" gives the
//! lifecycle: placed → confirmed → per part shipped/delivered or picked
//! up/returned → completed; cancelled or refunded on the way.

use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    #[default]
    Placed,
    Confirmed,
    Completed,
    Cancelled,
    Refunded,
}

/// Why an order was cancelled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CancelCause {
    /// The customer (or an admin on their behalf) asked for it.
    Customer,
    /// Its holds lapsed before it was paid.
    Expiry,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartStatus {
    #[default]
    Pending,
    InProgress,
    Fulfilled,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LineStatus {
    #[default]
    Pending,
    Shipped,
    Delivered,
    PickedUp,
    /// Picked up and not returned by its end: it keeps its units.
    Overdue,
    Returned,
}

/// The status as the API writes it, for messages.
pub(super) fn status_name(s: OrderStatus) -> &'static str {
    match s {
        OrderStatus::Placed => "placed",
        OrderStatus::Confirmed => "confirmed",
        OrderStatus::Completed => "completed",
        OrderStatus::Cancelled => "cancelled",
        OrderStatus::Refunded => "refunded",
    }
}
