//! Domain of the marketplace ledger: aggregates, commands, events, money and
//! pricing. Pure: no I/O, no clocks, no id generation — time and ids always
//! come in commands. No HTTP or OpenAPI either: the API's schemas of these
//! types live in the HTTP crates' `schema` modules.

pub mod aggregate;
pub mod error;
pub mod inventory;
pub mod listing;
pub mod money;
pub mod order;
pub mod period;
pub mod personal;
pub mod schedule;
pub mod upcast;
pub mod vendor;

pub use aggregate::Decide;
pub use chrono_tz::Tz;
pub use error::{Conflict, DomainError, FieldError};
pub use inventory::{
    Blackout, Capacity, Hold, HoldRequest, HoldStatus, Inventory, InventoryCommand, InventoryEvent,
};
pub use listing::{
    Listing, ListingCommand, ListingEvent, ListingKind, ListingStatus, ListingTerms,
};
pub use money::*;
pub use order::placement::{check_placement, MAX_LINES, MAX_QUANTITY};
pub use order::pricing::{price_order, LineInput, LineTerms, PricedLine, PricedOrder, VendorSplit};
pub use order::{
    CancelCause, LineReturn, LineStatus, Order, OrderCommand, OrderEvent, OrderStatus, PartStatus,
    PaymentOutcome,
};
pub use period::*;
pub use personal::PersonalText;
pub use schedule::{IsoDuration, Schedule};
pub use vendor::{Vendor, VendorCommand, VendorEvent};

/// Event version written for the events of this crate that kept their
/// first schema (see [`upcast`] for those that did not).
pub const EVENT_VERSION: &str = "1.0";
