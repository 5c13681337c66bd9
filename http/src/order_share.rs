//! What a vendor may see of an order event (API.md "Webhooks out, live
//! feeds, dashboard"): the live order feed and outgoing webhooks show a
//! vendor the same share, as `GET /v1/orders` does: its own lines and part,
//! no customer, no payments.

use serde_json::{json, Value};
use uuid::Uuid;

/// Order event types a vendor in the order sees whatever part they concern.
const ORDER_LIFE: &[&str] = &[
    "OrderConfirmed",
    "OrderReconfirmed",
    "OrderCancelled",
    "OrderCompleted",
];

/// The fields of an externally tagged payload (`{"OrderPlaced": {...}}`),
/// or the payload itself.
pub fn fields<'a>(payload: &'a Value, event_type: &str) -> &'a Value {
    payload.get(event_type).unwrap_or(payload)
}

/// The payload `vendor` (which takes part in the order) is shown of an
/// order event, if any: `OrderPlaced` cut to its own lines and part, with
/// no customer and no order totals; the order's life; the events of its
/// own part (`vendor_of_line` tells whose a line is). Payments, refunds and
/// event types not known here are not shown.
pub fn vendor_share(
    event_type: &str,
    payload: &Value,
    vendor: Uuid,
    vendor_of_line: impl Fn(Uuid) -> Option<Uuid>,
) -> Option<Value> {
    let fields = fields(payload, event_type);
    let uuid_at = |key: &str| fields[key].as_str().and_then(|s| s.parse::<Uuid>().ok());
    let shown = match event_type {
        t if ORDER_LIFE.contains(&t) => true,
        "PartShipped" | "PartDelivered" | "LineReturned" | "VendorPartFulfilled" => {
            uuid_at("vendor_id") == Some(vendor)
        }
        "LinePickedUp" => uuid_at("line_id").and_then(vendor_of_line) == Some(vendor),
        "OrderPlaced" => {
            let own = vendor.to_string();
            let mine = |items: &Value| -> Value {
                items
                    .as_array()
                    .map(|items| {
                        items
                            .iter()
                            .filter(|i| i["vendor_id"].as_str() == Some(own.as_str()))
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let mut placed = fields.clone();
            if let Some(placed) = placed.as_object_mut() {
                placed.remove("customer_id");
                placed.insert(
                    "priced".to_owned(),
                    json!({
                        "lines": mine(&fields["priced"]["lines"]),
                        "vendors": mine(&fields["priced"]["vendors"]),
                    }),
                );
            }
            return Some(json!({ "OrderPlaced": placed }));
        }
        _ => false,
    };
    shown.then(|| payload.clone())
}
