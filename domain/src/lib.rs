//! Domain of the marketplace ledger: aggregates, commands, events, money and
//! pricing. Pure: no I/O, no clocks, no id generation — time and ids always
//! come in commands. No HTTP or OpenAPI either: the API's schemas of these
//! types live in the HTTP crates' `schema` modules.

pub mod aggregate;
pub mod cancellation;
pub mod error;
pub mod inventory;
pub mod invoice_book;
pub mod listing;
pub mod money;
pub mod order;
pub mod payouts;
pub mod period;
pub mod personal;
pub mod schedule;
pub mod subscription;
pub mod tenant;
pub mod upcast;
pub mod vendor;

pub use aggregate::Decide;
pub use cancellation::CancellationTier;
pub use chrono_tz::Tz;
pub use error::{Conflict, DomainError, FieldError};
pub use inventory::{
    Blackout, Capacity, Hold, HoldRequest, HoldStatus, Inventory, InventoryCommand, InventoryEvent,
};
pub use invoice_book::{
    Document, DocumentDraft, DocumentKind, DocumentLine, InvoiceBook, InvoiceBookCommand,
    InvoiceBookEvent,
};
pub use listing::{
    Listing, ListingCommand, ListingEvent, ListingKind, ListingStatus, ListingTerms,
};
pub use money::*;
pub use order::late_fees::LateFeePart;
pub use order::placement::{
    check_placement, check_placement_with_fee_rates, MAX_LINES, MAX_QUANTITY,
};
pub use order::pricing::{
    price_order, price_order_with_fee_rates, FeeRates, LineInput, LineTerms, PricedLine,
    PricedOrder, VendorSplit,
};
pub use order::{
    check_refund_reason, Adjustment, AdjustmentKind, AdjustmentRequest, AdjustmentState,
    AdjustmentStatus, CancelCause, DisputeRelease, DisputeState, LineRefund, LineReturn,
    LineStatus, Order, OrderCommand, OrderEvent, OrderStatus, PartStatus, PaymentOutcome,
    RefundLine, RefundPart, RefundRequest, Taken,
};
pub use order::{
    Instalment, InstalmentState, InstalmentStatus, Lease, LeaseEnd, LeaseStatus, PaymentPlan,
    PlanRequest, MAX_INSTALMENTS,
};
pub use payouts::{PayoutOutcome, PayoutStatus};
pub use period::*;
pub use personal::PersonalText;
pub use schedule::{IsoDuration, Schedule};
pub use subscription::{
    BillingPeriod, DunningPolicy, Interval, Plan, PlanCommand, PlanEvent, PlanTerms, Subscription,
    SubscriptionCommand, SubscriptionEvent, SubscriptionStatus,
};
pub use tenant::{Tenant, TenantCommand, TenantEvent, TenantSettings};
pub use vendor::{Vendor, VendorCommand, VendorEvent};

/// Event version written for the events of this crate that kept their
/// first schema (see [`upcast`] for those that did not).
pub const EVENT_VERSION: &str = "1.0";
