//! The domain event a stored event carries, decoded once by the aggregate
//! it belongs to.
//!
//! Every consumer (read models, policies, the aggregate-state view) reads
//! events through [`StoredEvent::event`] or [`StoredEvent::event_among`]
//! instead of matching `aggregate_type` strings and picking a type itself.
//! An event stored with an older schema is upcast first
//! (`domain::upcast`); the stored row is never changed.

use domain::{
    InventoryEvent, InvoiceBookEvent, ListingEvent, OrderEvent, PlanEvent, SubscriptionEvent,
    TenantEvent, VendorEvent,
};
use serde::de::DeserializeOwned;

use crate::{Error, StoredEvent};

/// The aggregates whose events the log holds, by their `aggregate_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Aggregate {
    Vendor,
    Listing,
    Inventory,
    Order,
    InvoiceBook,
    Plan,
    Subscription,
    Tenant,
}

impl Aggregate {
    pub const ALL: [Aggregate; 8] = [
        Aggregate::Vendor,
        Aggregate::Listing,
        Aggregate::Inventory,
        Aggregate::Order,
        Aggregate::InvoiceBook,
        Aggregate::Plan,
        Aggregate::Subscription,
        Aggregate::Tenant,
    ];

    /// The `aggregate_type` column's value (cqrs-es's `Aggregate::TYPE`).
    pub fn name(self) -> &'static str {
        match self {
            Aggregate::Vendor => "Vendor",
            Aggregate::Listing => "Listing",
            Aggregate::Inventory => "Inventory",
            Aggregate::Order => "Order",
            Aggregate::InvoiceBook => "InvoiceBook",
            Aggregate::Plan => "Plan",
            Aggregate::Subscription => "Subscription",
            Aggregate::Tenant => "Tenant",
        }
    }

    /// The aggregate of an `aggregate_type`; `None` for one this build does
    /// not know (consumers skip those).
    pub fn of(aggregate_type: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == aggregate_type)
    }
}

/// A decoded domain event.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Vendor(VendorEvent),
    Listing(ListingEvent),
    Inventory(InventoryEvent),
    Order(OrderEvent),
    InvoiceBook(InvoiceBookEvent),
    Plan(PlanEvent),
    Subscription(SubscriptionEvent),
    Tenant(TenantEvent),
}

impl StoredEvent {
    /// The aggregate this event belongs to, when this build knows it.
    pub fn aggregate(&self) -> Option<Aggregate> {
        Aggregate::of(&self.aggregate_type)
    }

    /// The domain event; `None` for an aggregate this build does not know.
    pub fn event(&self) -> Result<Option<Event>, Error> {
        self.event_among(&Aggregate::ALL)
    }

    /// The domain event when it belongs to one of `wanted` (others are not
    /// decoded at all: a consumer pays only for what it reads); `None`
    /// otherwise.
    pub fn event_among(&self, wanted: &[Aggregate]) -> Result<Option<Event>, Error> {
        let Some(aggregate) = self.aggregate().filter(|a| wanted.contains(a)) else {
            return Ok(None);
        };
        Ok(Some(match aggregate {
            Aggregate::Vendor => Event::Vendor(self.payload_as()?),
            Aggregate::Listing => Event::Listing(self.payload_as()?),
            Aggregate::Inventory => Event::Inventory(self.payload_as()?),
            Aggregate::Order => Event::Order(self.payload_as()?),
            Aggregate::InvoiceBook => Event::InvoiceBook(self.payload_as()?),
            Aggregate::Plan => Event::Plan(self.payload_as()?),
            Aggregate::Subscription => Event::Subscription(self.payload_as()?),
            Aggregate::Tenant => Event::Tenant(self.payload_as()?),
        }))
    }

    /// The payload as `E`, upcast first when it was stored with an older
    /// schema: for a reader that already knows the aggregate's type (the
    /// aggregate-state view replays one aggregate into its own type).
    pub fn payload_as<E: DeserializeOwned>(&self) -> Result<E, Error> {
        Ok(match self.upcast() {
            Some((_, current)) => E::deserialize(current)?,
            // Read in place: no copy of the payload.
            None => E::deserialize(&self.payload)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::Aggregate as _;

    fn stored(
        aggregate_type: &str,
        event_type: &str,
        version: &str,
        payload: serde_json::Value,
    ) -> StoredEvent {
        StoredEvent {
            position: 1,
            event_id: uuid::Uuid::nil(),
            aggregate_type: aggregate_type.into(),
            aggregate_id: uuid::Uuid::nil().to_string(),
            sequence: 1,
            event_type: event_type.into(),
            event_version: version.into(),
            payload,
            metadata: serde_json::json!({}),
            recorded_at: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            tenant: crate::DEFAULT_TENANT.into(),
        }
    }

    #[test]
    fn aggregate_names_are_the_domain_types() {
        assert_eq!(Aggregate::Vendor.name(), domain::Vendor::TYPE);
        assert_eq!(Aggregate::Listing.name(), domain::Listing::TYPE);
        assert_eq!(Aggregate::Inventory.name(), domain::Inventory::TYPE);
        assert_eq!(Aggregate::Order.name(), domain::Order::TYPE);
        assert_eq!(Aggregate::InvoiceBook.name(), domain::InvoiceBook::TYPE);
        assert_eq!(Aggregate::Plan.name(), domain::Plan::TYPE);
        assert_eq!(Aggregate::Subscription.name(), domain::Subscription::TYPE);
        assert_eq!(Aggregate::of("Probe"), None);
    }

    #[test]
    fn an_unwanted_or_unknown_aggregate_is_not_decoded() {
        let garbage = serde_json::json!({"Nonsense": 1});
        let order = stored("Order", "Nonsense", "1.0", garbage.clone());
        assert!(order
            .event_among(&[Aggregate::Listing])
            .expect("skipped")
            .is_none());
        assert!(order.event().is_err());
        let probe = stored("Probe", "Probed", "1.0", garbage);
        assert!(probe.event().expect("skipped").is_none());
    }

    #[test]
    fn an_outdated_event_is_upcast_before_it_is_decoded() {
        // OrderCancelled 1.0 said `by_expiry`; 2.0 names the cause.
        let event = stored(
            "Order",
            "OrderCancelled",
            "1.0",
            serde_json::json!({"OrderCancelled": {
                "reason": "changed my mind", "by_expiry": false, "at": "2026-01-01T00:00:00Z"
            }}),
        );
        assert!(event.upcast().is_some());
        let decoded = event.event().expect("decodes");
        assert!(
            matches!(
                decoded,
                Some(Event::Order(OrderEvent::OrderCancelled { .. }))
            ),
            "{decoded:?}"
        );
    }
}
