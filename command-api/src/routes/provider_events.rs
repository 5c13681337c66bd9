//! The payment webhook's refund and dispute events (API.md "Money"):
//! `charge.refunded`, `charge.dispute.created` and `charge.dispute.closed`.
//! The webhook route (`webhooks.rs`) checks the signature and dispatches
//! here by type; each event names its order in `data.object.metadata`.
//!
//! - `charge.refunded`: each refund in `data.object.refunds.data` is
//!   recorded once by its provider id (`re_…`): matched to our refund when
//!   its `metadata.refund_id` names one, else recorded as a new refund of
//!   its `amount` (minor units) over the whole order;
//! - `charge.dispute.created`: `data.object.id` (`dp_…`) and `amount`;
//! - `charge.dispute.closed`: `data.object.status` `won` (or
//!   `warning_closed`) or `lost`; other statuses are ignored.

use domain::{from_minor_units, OrderCommand};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::webhooks::WebhookReceived;
use crate::application::refunds::order_money_command;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::routes::orders::load_order;
use crate::AppState;

/// The event types handled here.
pub const TYPES: &[&str] = &[
    "charge.refunded",
    "charge.dispute.created",
    "charge.dispute.closed",
];

#[derive(Deserialize, Default)]
struct Metadata {
    order_id: Option<String>,
    refund_id: Option<String>,
}

#[derive(Deserialize)]
struct Charge {
    #[serde(default)]
    metadata: Metadata,
    #[serde(default)]
    refunds: Option<RefundList>,
}

#[derive(Deserialize)]
struct RefundList {
    #[serde(default)]
    data: Vec<ProviderRefund>,
}

#[derive(Deserialize)]
struct ProviderRefund {
    id: String,
    amount: i64,
    #[serde(default)]
    metadata: Metadata,
}

#[derive(Deserialize)]
struct Dispute {
    id: String,
    amount: i64,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    metadata: Metadata,
}

fn order_named(metadata: &Metadata) -> Option<Uuid> {
    metadata
        .order_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
}

fn ignored(event_id: &str, kind: &str, reason: String) -> WebhookReceived {
    tracing::info!(%event_id, event_type = %kind, %reason, "payment webhook ignored");
    WebhookReceived::ignored(reason)
}

/// Handles one event of [`TYPES`]; unreadable objects and events that name
/// no order of this ledger are acknowledged and ignored.
pub async fn handle(
    app: &AppState,
    context: &CommandContext,
    event_id: &str,
    kind: &str,
    object: Value,
) -> Result<WebhookReceived, ApiError> {
    let now = app.clock.now();
    let mut commands: Vec<(OrderCommand, &str)> = Vec::new();
    let order_id = match kind {
        "charge.refunded" => {
            let charge: Charge = match serde_json::from_value(object) {
                Ok(charge) => charge,
                Err(e) => return Ok(ignored(event_id, kind, format!("unreadable charge: {e}"))),
            };
            let Some(order_id) = order_named(&charge.metadata) else {
                return Ok(ignored(
                    event_id,
                    kind,
                    "the charge names no order (metadata.order_id)".into(),
                ));
            };
            let refunds = charge.refunds.map(|r| r.data).unwrap_or_default();
            if refunds.is_empty() {
                return Ok(ignored(
                    event_id,
                    kind,
                    "the charge lists no refunds (refunds.data)".into(),
                ));
            }
            for refund in refunds {
                if refund.amount <= 0 {
                    continue;
                }
                commands.push((
                    OrderCommand::RecordProviderRefund {
                        provider_refund_id: refund.id,
                        matches: refund
                            .metadata
                            .refund_id
                            .as_deref()
                            .and_then(|id| Uuid::parse_str(id).ok()),
                        new_refund_id: Uuid::now_v7(),
                        amount: from_minor_units(refund.amount),
                        at: now,
                    },
                    "RecordProviderRefund",
                ));
            }
            order_id
        }
        _ => {
            let dispute: Dispute = match serde_json::from_value(object) {
                Ok(dispute) => dispute,
                Err(e) => return Ok(ignored(event_id, kind, format!("unreadable dispute: {e}"))),
            };
            let Some(order_id) = order_named(&dispute.metadata) else {
                return Ok(ignored(
                    event_id,
                    kind,
                    "the dispute names no order (metadata.order_id)".into(),
                ));
            };
            if kind == "charge.dispute.created" {
                commands.push((
                    OrderCommand::OpenDispute {
                        dispute_id: dispute.id,
                        dispute_ref: Uuid::now_v7(),
                        amount: from_minor_units(dispute.amount),
                        at: now,
                    },
                    "OpenDispute",
                ));
            } else {
                let won = match dispute.status.as_deref() {
                    Some("won" | "warning_closed") => true,
                    Some("lost") => false,
                    other => {
                        return Ok(ignored(
                            event_id,
                            kind,
                            format!("dispute status {other:?} is neither won nor lost"),
                        ))
                    }
                };
                commands.push((
                    OrderCommand::CloseDispute {
                        dispute_id: dispute.id,
                        won,
                        at: now,
                    },
                    "CloseDispute",
                ));
            }
            order_id
        }
    };
    load_order(app, &context.principal, order_id).await?;
    let (mut recorded, mut position) = (false, 0);
    for (command, name) in commands {
        let (committed, at) = order_money_command(app, context, order_id, command, name).await?;
        recorded |= !committed.events.is_empty();
        position = position.max(at);
    }
    let order = app
        .orders
        .load(&order_id.to_string(), &context.principal)
        .await?;
    Ok(WebhookReceived::processed(
        order_id,
        order.status(),
        !recorded,
        position,
    ))
}
