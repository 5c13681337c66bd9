//! Event upcasting (DESIGN.md "Event store"): a stored event keeps the
//! schema version it was written with (`event_version`) and is never
//! rewritten; whoever loads it brings it to the current schema here first.
//!
//! Schema changes so far:
//!
//! - `OrderCancelled` 1.0 → 2.0: `{reason, by_expiry: bool, at}` became
//!   `{reason, cause: "customer" | "expiry", at}`. A boolean could only tell
//!   expiry from "anything else"; a cause names why, and leaves room for
//!   more causes (a vendor or fraud cancellation) without a third schema
//!   that still has to read `by_expiry`.
//!
//! Fields that became personal (`crate::personal::PersonalText`: vendor
//! names, cancellation, refund and blackout reasons) needed no step: they
//! stay JSON strings, and a string stored before sealing existed reads as
//! clear text. Such events are never rewritten, so their hashes stand.
//!
//! Payloads are as cqrs-es stores them, externally tagged
//! (`{"OrderCancelled": {...}}`); the inner object alone is accepted too.

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;

/// Current schema version of `OrderCancelled`.
pub const ORDER_CANCELLED_VERSION: &str = "2.0";

/// One schema change: events of `event_type` older than `to` are rewritten
/// (in memory) by `apply`.
struct Step {
    event_type: &'static str,
    to: &'static str,
    apply: fn(Value) -> Value,
}

/// Every schema change, oldest first per event type.
const STEPS: &[Step] = &[Step {
    event_type: "OrderCancelled",
    to: ORDER_CANCELLED_VERSION,
    apply: order_cancelled_v1_to_v2,
}];

/// Brings a stored payload of `event_type` written at `event_version` to
/// the current schema: returns the version it now has and the payload.
/// Events without a newer schema come back unchanged.
pub fn upcast(event_type: &str, event_version: &str, payload: Value) -> (String, Value) {
    let mut version = event_version.to_owned();
    let mut payload = payload;
    for step in STEPS.iter().filter(|s| s.event_type == event_type) {
        if older(&version, step.to) {
            payload = (step.apply)(payload);
            version = step.to.to_owned();
        }
    }
    (version, payload)
}

/// Whether an event needs upcasting at all.
pub fn is_outdated(event_type: &str, event_version: &str) -> bool {
    STEPS
        .iter()
        .any(|s| s.event_type == event_type && older(event_version, s.to))
}

/// The same changes as cqrs-es upcasters, for
/// `PersistedEventStore::with_upcasters` (an older step before a newer one).
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    STEPS
        .iter()
        .map(|step| Box::new(StepUpcaster(step)) as Box<dyn EventUpcaster>)
        .collect()
}

/// A [`Step`] as a cqrs-es upcaster. (cqrs-es's own
/// `SemanticVersionEventUpcaster` would do, but writes the version as
/// `"2.0.0"`; this one agrees with [`upcast`] to the letter.)
struct StepUpcaster(&'static Step);

impl EventUpcaster for StepUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        event_type == self.0.event_type && older(event_version, self.0.to)
    }

    fn upcast(&self, event: SerializedEvent) -> SerializedEvent {
        SerializedEvent {
            event_version: self.0.to.to_owned(),
            payload: (self.0.apply)(event.payload),
            ..event
        }
    }
}

/// `a < b` as semantic versions (`"1.0"` < `"2.0"`); a version that does
/// not parse counts as the oldest.
fn older(a: &str, b: &str) -> bool {
    fn parse(v: &str) -> Option<(u32, u32, u32)> {
        let mut parts = v.trim().split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        Some((major, minor, patch))
    }
    match (parse(a), parse(b)) {
        (Some(a), Some(b)) => a < b,
        (None, Some(_)) => true,
        _ => false,
    }
}

/// Applies `f` to the event's fields, whether tagged or not.
fn on_body(
    event_type: &str,
    payload: Value,
    f: impl FnOnce(&mut serde_json::Map<String, Value>),
) -> Value {
    match payload {
        Value::Object(mut outer) if outer.len() == 1 && outer.contains_key(event_type) => {
            if let Some(Value::Object(inner)) = outer.get_mut(event_type) {
                f(inner);
            }
            Value::Object(outer)
        }
        Value::Object(mut inner) => {
            f(&mut inner);
            Value::Object(inner)
        }
        other => other,
    }
}

/// `OrderCancelled` 1.0 → 2.0: `by_expiry: bool` → `cause`. A payload
/// without a boolean `by_expiry` is left alone, so that decoding it fails
/// loudly instead of guessing a cause.
fn order_cancelled_v1_to_v2(payload: Value) -> Value {
    on_body("OrderCancelled", payload, |body| {
        if let Some(Value::Bool(by_expiry)) = body.get("by_expiry").cloned() {
            body.remove("by_expiry");
            let cause = if by_expiry { "expiry" } else { "customer" };
            body.insert("cause".to_owned(), Value::String(cause.to_owned()));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{CancelCause, OrderEvent};
    use cqrs_es::DomainEvent;
    use serde_json::json;

    fn v1(by_expiry: bool) -> Value {
        json!({"OrderCancelled": {"reason": "hold expired", "by_expiry": by_expiry,
                                  "at": "2030-01-01T00:00:00Z"}})
    }

    #[test]
    fn a_v1_cancellation_gets_a_cause() {
        for (by_expiry, cause) in [(true, "expiry"), (false, "customer")] {
            let (version, payload) = upcast("OrderCancelled", "1.0", v1(by_expiry));
            assert_eq!(version, "2.0");
            assert_eq!(
                payload,
                json!({"OrderCancelled": {"reason": "hold expired", "cause": cause,
                                          "at": "2030-01-01T00:00:00Z"}})
            );
        }
    }

    #[test]
    fn the_upcast_payload_decodes_as_the_current_event() {
        let (_, payload) = upcast("OrderCancelled", "1.0", v1(true));
        let event: OrderEvent = serde_json::from_value(payload).unwrap();
        assert!(matches!(
            event,
            OrderEvent::OrderCancelled {
                cause: CancelCause::Expiry,
                ..
            }
        ));
        // A v1 payload does not decode without the upcast.
        assert!(serde_json::from_value::<OrderEvent>(v1(true)).is_err());
    }

    #[test]
    fn the_inner_object_alone_is_upcast_too() {
        let (_, payload) = upcast(
            "OrderCancelled",
            "1.0",
            json!({"reason": null, "by_expiry": false, "at": "2030-01-01T00:00:00Z"}),
        );
        assert_eq!(payload["cause"], "customer");
        assert!(payload.get("by_expiry").is_none());
    }

    #[test]
    fn current_and_other_events_pass_unchanged() {
        let v2 = json!({"OrderCancelled": {"reason": null, "cause": "customer",
                                           "at": "2030-01-01T00:00:00Z"}});
        assert_eq!(
            upcast("OrderCancelled", "2.0", v2.clone()),
            ("2.0".to_owned(), v2)
        );
        let other = json!({"OrderConfirmed": {"confirmed_at": "2030-01-01T00:00:00Z"}});
        assert_eq!(
            upcast("OrderConfirmed", "1.0", other.clone()),
            ("1.0".to_owned(), other)
        );
        assert!(is_outdated("OrderCancelled", "1.0"));
        assert!(is_outdated("OrderCancelled", "1"));
        assert!(!is_outdated("OrderCancelled", "2.0"));
        assert!(!is_outdated("OrderConfirmed", "1.0"));
    }

    #[test]
    fn a_malformed_v1_payload_is_left_to_fail_decoding() {
        let broken = json!({"OrderCancelled": {"reason": null, "at": "2030-01-01T00:00:00Z"}});
        let (_, payload) = upcast("OrderCancelled", "1.0", broken.clone());
        assert_eq!(payload, broken);
        assert!(serde_json::from_value::<OrderEvent>(payload).is_err());
    }

    #[test]
    fn the_domain_writes_the_current_version() {
        let event = OrderEvent::OrderCancelled {
            reason: None,
            cause: CancelCause::Customer,
            at: chrono::Utc::now(),
        };
        assert_eq!(event.event_version(), ORDER_CANCELLED_VERSION);
        let confirmed = OrderEvent::OrderConfirmed {
            confirmed_at: chrono::Utc::now(),
        };
        assert_eq!(confirmed.event_version(), crate::EVENT_VERSION);
    }

    #[test]
    fn the_cqrs_upcasters_do_the_same() {
        let upcasters = upcasters();
        let stored = SerializedEvent::new(
            "o-1".into(),
            3,
            "Order".into(),
            "OrderCancelled".into(),
            "1.0".into(),
            v1(false),
            json!({}),
        );
        let upcaster = upcasters
            .iter()
            .find(|u| u.can_upcast("OrderCancelled", "1.0"))
            .expect("an upcaster for OrderCancelled 1.0");
        let upcast_event = upcaster.upcast(stored);
        assert_eq!(upcast_event.event_version, "2.0");
        assert_eq!(
            upcast_event.payload,
            upcast("OrderCancelled", "1.0", v1(false)).1
        );
        assert!(!upcasters
            .iter()
            .any(|u| u.can_upcast("OrderCancelled", "2.0")));
        assert!(!upcasters.iter().any(|u| u.can_upcast("OrderPlaced", "1.0")));
    }
}
