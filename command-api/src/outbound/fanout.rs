//! The `webhooks` stream consumer: for each event, a delivery to every
//! endpoint that wants it, inserted in the transaction that moves the
//! consumer's checkpoint (so a crash loses none and repeats none). An
//! admin's endpoint gets every event; a vendor's the events of the orders
//! it takes part in, cut to its share (`ledger_http::order_share`).

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use ledger_clock::Clock;
use ledger_http::order_share;
use ledger_nats::consumer::Consumer;
use ledger_nats::{Error, EventEnvelope};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

/// The consumer's name (its checkpoint and durable consumer).
pub const NAME: &str = "webhooks";

pub struct Fanout {
    clock: Arc<dyn Clock>,
}

impl Fanout {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { clock }
    }
}

struct Endpoint {
    endpoint_id: Uuid,
    vendor_id: Option<Uuid>,
    event_types: Vec<String>,
    created_at: DateTime<Utc>,
    tenant: String,
}

impl Endpoint {
    /// Only its own tenant's events, of the types it asked for, recorded
    /// since it was registered.
    fn wants(&self, event: &EventEnvelope) -> bool {
        event.tenant == self.tenant
            && event.recorded_at >= self.created_at
            && self
                .event_types
                .iter()
                .any(|t| t == "*" || *t == event.event_type)
    }
}

/// An order's parties: its vendors and whose each line is.
struct Parties {
    vendors: Vec<Uuid>,
    lines: HashMap<Uuid, Uuid>,
}

impl Parties {
    fn of_placed(payload: &Value) -> Self {
        let placed = order_share::fields(payload, "OrderPlaced");
        let uuid = |v: &Value| v.as_str().and_then(|s| s.parse::<Uuid>().ok());
        let lines = placed["priced"]["lines"]
            .as_array()
            .map(|lines| {
                lines
                    .iter()
                    .filter_map(|l| Some((uuid(&l["line_id"])?, uuid(&l["vendor_id"])?)))
                    .collect()
            })
            .unwrap_or_default();
        let vendors = placed["priced"]["vendors"]
            .as_array()
            .map(|parts| parts.iter().filter_map(|p| uuid(&p["vendor_id"])).collect())
            .unwrap_or_default();
        Self { vendors, lines }
    }
}

impl Consumer for Fanout {
    fn name(&self) -> &'static str {
        NAME
    }

    fn apply<'a>(
        &'a self,
        tx: &'a mut PgConnection,
        events: &'a [EventEnvelope],
    ) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let endpoints: Vec<Endpoint> =
                sqlx::query_as::<_, (Uuid, Option<Uuid>, Vec<String>, DateTime<Utc>, String)>(
                    "SELECT endpoint_id, vendor_id, event_types, created_at, tenant
                   FROM webhook_endpoints WHERE deleted_at IS NULL",
                )
                .fetch_all(&mut *tx)
                .await?
                .into_iter()
                .map(
                    |(endpoint_id, vendor_id, event_types, created_at, tenant)| Endpoint {
                        endpoint_id,
                        vendor_id,
                        event_types,
                        created_at,
                        tenant,
                    },
                )
                .collect();
            let now = self.clock.now();
            let mut orders: HashMap<String, Option<Arc<Parties>>> = HashMap::new();
            // The parties of the orders placed in this batch, written in
            // one statement after it (issue 18: fewer statements per order).
            let mut placed = PlacedOrders::default();
            for event in events {
                let is_order = event.aggregate_type == "Order";
                if is_order && event.event_type == "OrderPlaced" {
                    let parties = Parties::of_placed(&event.payload);
                    let lines: HashMap<String, String> = parties
                        .lines
                        .iter()
                        .map(|(l, v)| (l.to_string(), v.to_string()))
                        .collect();
                    placed.order_ids.push(event.aggregate_id.clone());
                    placed.vendors.push(json!(parties.vendors));
                    placed.lines.push(json!(lines));
                    orders.insert(event.aggregate_id.clone(), Some(Arc::new(parties)));
                }
                for endpoint in endpoints.iter().filter(|e| e.wants(event)) {
                    let body = match endpoint.vendor_id {
                        None => envelope(event, &event.payload),
                        Some(vendor) => {
                            if !is_order {
                                continue;
                            }
                            let parties = match orders.get(&event.aggregate_id) {
                                Some(known) => known.clone(),
                                None => {
                                    let found = parties_of(tx, &event.aggregate_id).await?;
                                    orders.insert(event.aggregate_id.clone(), found.clone());
                                    found
                                }
                            };
                            let Some(parties) = parties.filter(|p| p.vendors.contains(&vendor))
                            else {
                                continue;
                            };
                            let Some(payload) = order_share::vendor_share(
                                &event.event_type,
                                &event.payload,
                                vendor,
                                |line| parties.lines.get(&line).copied(),
                            ) else {
                                continue;
                            };
                            envelope(event, &payload)
                        }
                    };
                    sqlx::query(
                        "INSERT INTO webhook_deliveries
                            (delivery_id, endpoint_id, event_id, position, event_type, body,
                             status, next_attempt_at, retry_since)
                         VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)
                         ON CONFLICT (endpoint_id, event_id) DO NOTHING",
                    )
                    .bind(Uuid::now_v7())
                    .bind(endpoint.endpoint_id)
                    .bind(event.event_id)
                    .bind(event.position)
                    .bind(&event.event_type)
                    .bind(body)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            placed.write(tx).await
        })
    }
}

/// The parties of orders placed in one batch, by column.
#[derive(Default)]
struct PlacedOrders {
    order_ids: Vec<String>,
    vendors: Vec<Value>,
    lines: Vec<Value>,
}

impl PlacedOrders {
    async fn write(self, tx: &mut PgConnection) -> Result<(), Error> {
        if self.order_ids.is_empty() {
            return Ok(());
        }
        // Each order's vendors travel as a JSON array: PostgreSQL arrays
        // of arrays must be rectangular.
        sqlx::query(
            "INSERT INTO webhook_orders (order_id, vendors, lines)
             SELECT o, ARRAY(SELECT jsonb_array_elements_text(v))::uuid[], l
               FROM unnest($1::text[], $2::jsonb[], $3::jsonb[]) AS t(o, v, l)
             ON CONFLICT (order_id) DO NOTHING",
        )
        .bind(&self.order_ids)
        .bind(&self.vendors)
        .bind(&self.lines)
        .execute(&mut *tx)
        .await?;
        Ok(())
    }
}

async fn parties_of(tx: &mut PgConnection, order_id: &str) -> Result<Option<Arc<Parties>>, Error> {
    let row: Option<(Vec<Uuid>, Value)> =
        sqlx::query_as("SELECT vendors, lines FROM webhook_orders WHERE order_id = $1")
            .bind(order_id)
            .fetch_optional(&mut *tx)
            .await?;
    Ok(row.map(|(vendors, lines)| {
        let lines = lines
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(l, v)| {
                        Some((l.parse::<Uuid>().ok()?, v.as_str()?.parse::<Uuid>().ok()?))
                    })
                    .collect()
            })
            .unwrap_or_default();
        Arc::new(Parties { vendors, lines })
    }))
}

/// The body of a delivery: the event's envelope with `payload`.
fn envelope(event: &EventEnvelope, payload: &Value) -> Value {
    json!({
        "event_id": event.event_id,
        "position": event.position,
        "aggregate_type": event.aggregate_type,
        "aggregate_id": event.aggregate_id,
        "sequence": event.sequence,
        "event_type": event.event_type,
        "event_version": event.event_version,
        "payload": payload,
        "recorded_at": event.recorded_at,
        "tenant": event.tenant,
    })
}
