//! The events table read behind the API's back: what a command recorded,
//! with which metadata, and the holds of an Inventory as its events tell.
//! Tests use it to prove that a refused command records nothing and that
//! the log, not a read model, holds what they expect. Personal fields are
//! opened as a reader's answer opens them (docs/PRIVACY.md): tests that
//! must see the sealed text read the table themselves.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use uuid::Uuid;

use crate::answer::{instant, uuid_of};
use crate::tokens::{JWT_SECRET, WEBHOOK_SECRET};
use crate::TestApp;

/// Global position of the newest event (0 on an empty log).
pub async fn head(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT coalesce(max(global_position), 0) FROM events")
        .fetch_one(pool)
        .await
        .expect("read the head")
}

/// `values` with their sealed personal fields opened (`"[erased]"` once
/// erased).
pub async fn opened(pool: &PgPool, mut values: Vec<&mut Value>) {
    let keyring = privacy::Keyring::new(pool.clone());
    let opener = keyring
        .opener_for(values.iter().map(|v| &**v))
        .await
        .expect("read the personal data keys");
    for value in values.iter_mut() {
        opener.reveal(value);
    }
}

impl TestApp {
    /// `(event_type, metadata)` of one aggregate's events, in sequence order.
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        aggregate_id: Uuid,
    ) -> Vec<(String, Value)> {
        let mut rows = sqlx::query_as::<_, (String, Value)>(
            "SELECT event_type, metadata::jsonb FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id.to_string())
        .fetch_all(&self.pool)
        .await
        .expect("read events");
        opened(&self.pool, rows.iter_mut().map(|(_, m)| m).collect()).await;
        rows
    }

    /// Event types of one aggregate, in sequence order.
    pub async fn event_types(&self, aggregate_type: &str, aggregate_id: Uuid) -> Vec<String> {
        self.events_of(aggregate_type, aggregate_id)
            .await
            .into_iter()
            .map(|(kind, _)| kind)
            .collect()
    }

    pub async fn event_count(&self) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events")
            .fetch_one(&self.pool)
            .await
            .expect("count events")
    }

    /// Asserts that a rejected request changed nothing: the log still holds
    /// `before` events.
    pub async fn assert_nothing_recorded(&self, before: i64, what: &str) {
        assert_eq!(
            self.event_count().await,
            before,
            "{what} must record no event"
        );
    }

    /// Global position of the newest event (0 on an empty log).
    pub async fn head(&self) -> i64 {
        head(&self.pool).await
    }

    /// Events recorded after `position`, in log order:
    /// (aggregate_type, aggregate_id, event_type, metadata).
    pub async fn events_after(&self, position: i64) -> Vec<(String, String, String, Value)> {
        let mut rows = sqlx::query_as::<_, (String, String, String, Value)>(
            "SELECT aggregate_type, aggregate_id, event_type, metadata::jsonb FROM events
              WHERE global_position > $1 ORDER BY global_position",
        )
        .bind(position)
        .fetch_all(&self.pool)
        .await
        .expect("read events");
        opened(&self.pool, rows.iter_mut().map(|(.., m)| m).collect()).await;
        rows
    }

    /// Every event of one aggregate, in sequence order, with its payload
    /// taken out of the outer `{"<EventType>": …}` tag that cqrs-es writes.
    pub async fn recorded(&self, aggregate_type: &str, aggregate_id: Uuid) -> Vec<Recorded> {
        let mut rows = sqlx::query_as::<_, (String, String, Value, Value)>(
            "SELECT event_id::text, event_type, payload::jsonb, metadata::jsonb FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
        )
        .bind(aggregate_type)
        .bind(aggregate_id.to_string())
        .fetch_all(&self.pool)
        .await
        .expect("read events");
        opened(
            &self.pool,
            rows.iter_mut()
                .flat_map(|(_, _, payload, metadata)| [payload, metadata])
                .collect(),
        )
        .await;
        rows.into_iter()
            .map(|(event_id, event_type, payload, metadata)| Recorded {
                payload: payload.get(&event_type).cloned().unwrap_or(payload),
                event_id,
                event_type,
                metadata,
            })
            .collect()
    }

    /// `(event_type, payload)` of one aggregate's events, in sequence order
    /// (the payload without its outer tag).
    pub async fn event_payloads(
        &self,
        aggregate_type: &str,
        aggregate_id: Uuid,
    ) -> Vec<(String, Value)> {
        self.recorded(aggregate_type, aggregate_id)
            .await
            .into_iter()
            .map(|e| (e.event_type, e.payload))
            .collect()
    }

    /// Polls until the aggregate has an event of `event_type`; false on timeout.
    pub async fn wait_for_event(
        &self,
        aggregate_type: &str,
        aggregate_id: Uuid,
        event_type: &str,
        timeout: Duration,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let types = self.event_types(aggregate_type, aggregate_id).await;
            if types.iter().any(|t| t == event_type) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A command side of its own on the test's database (like a second
    /// replica): reads aggregates and issues commands behind the HTTP API.
    pub fn command_app(&self) -> command_api::AppState {
        command_api::CommandApp::new(
            command_api::CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET),
            self.pool.clone(),
        )
    }

    /// The order's status as its aggregate says (`"placed"`, `"confirmed"`, …).
    pub async fn order_status(&self, order_id: Uuid) -> String {
        let order = self
            .command_app()
            .orders
            .load_any_tenant(&order_id.to_string())
            .await
            .expect("load the order")
            .aggregate;
        serde_json::to_value(order.status())
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .expect("a status name")
    }

    /// Every hold of a listing's Inventory, in the order they were placed.
    pub async fn holds_of(&self, listing_id: Uuid) -> Vec<HoldRecord> {
        let mut holds: Vec<HoldRecord> = Vec::new();
        for (kind, payload) in self.event_payloads("Inventory", listing_id).await {
            if kind == "HoldPlaced" {
                let request = &payload["request"];
                let period = request
                    .get("period")
                    .filter(|p| !p.is_null())
                    .map(|p| (instant(&p["start"]), instant(&p["end"])));
                holds.push(HoldRecord {
                    hold_id: uuid_of(&payload["hold_id"]),
                    order_id: uuid_of(&payload["order_id"]),
                    quantity: request["quantity"].as_u64().expect("a quantity") as u32,
                    period,
                    last: kind,
                });
            } else if let Some(hold_id) = payload.get("hold_id") {
                let hold_id = uuid_of(hold_id);
                if let Some(hold) = holds.iter_mut().find(|h| h.hold_id == hold_id) {
                    match kind.as_str() {
                        // An extension or reschedule moved the hold.
                        "ChangeApplied" => {
                            let p = &payload["period"];
                            hold.period = Some((instant(&p["start"]), instant(&p["end"])));
                        }
                        "ChangeHeld" | "ChangeLapsed" => {}
                        _ => hold.last = kind,
                    }
                }
            }
        }
        holds
    }

    /// The hold `order_id` placed on a listing.
    pub async fn hold_of(&self, listing_id: Uuid, order_id: Uuid) -> HoldRecord {
        self.holds_of(listing_id)
            .await
            .into_iter()
            .find(|h| h.order_id == order_id)
            .unwrap_or_else(|| panic!("order {order_id} has no hold on {listing_id}"))
    }

    /// The event types that touched one hold, in order.
    pub async fn hold_history(&self, listing_id: Uuid, hold_id: Uuid) -> Vec<String> {
        self.event_payloads("Inventory", listing_id)
            .await
            .into_iter()
            .filter(|(_, p)| {
                p.get("hold_id")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id == hold_id.to_string())
            })
            .map(|(kind, _)| kind)
            .collect()
    }
}

/// One event as the events table holds it.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub event_id: String,
    pub event_type: String,
    pub payload: Value,
    pub metadata: Value,
}

/// A hold of an Inventory, as its events tell.
#[derive(Clone, Debug, PartialEq)]
pub struct HoldRecord {
    pub hold_id: Uuid,
    pub order_id: Uuid,
    pub quantity: u32,
    /// `None` for sale holds.
    pub period: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Last status event after HoldPlaced (`HoldConfirmed`, `HoldReleased`, …).
    pub last: String,
}

impl HoldRecord {
    /// Counts against capacity: not released, expired or returned.
    pub fn is_live(&self) -> bool {
        !matches!(
            self.last.as_str(),
            "HoldReleased" | "HoldExpired" | "ReturnRecorded"
        )
    }
}

/// Peak units used at any instant by these rental holds (half-open periods).
pub fn peak_use(holds: &[&HoldRecord]) -> u32 {
    let mut changes: Vec<(DateTime<Utc>, i64)> = Vec::new();
    for h in holds {
        let (start, end) = h.period.expect("a rental hold");
        changes.push((start, i64::from(h.quantity)));
        changes.push((end, -i64::from(h.quantity)));
    }
    // At equal instants ends (negative) sort before starts.
    changes.sort();
    let (mut current, mut peak) = (0i64, 0i64);
    for (_, delta) in changes {
        current += delta;
        peak = peak.max(current);
    }
    peak as u32
}
