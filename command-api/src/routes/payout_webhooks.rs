//! The payment webhook's payout events (API.md "Money"): `payout.paid` and
//! `payout.failed`, naming the payout in `data.object.metadata.payout_id`.
//! The dispatcher in `webhooks` hands every `payout.*` type here, after the
//! signature check.
//!
//! The payout's Vendor aggregate is found in the log by the payout's own
//! `PayoutRecorded` event; the aggregate records each outcome once, so a
//! redelivered event changes nothing (answered 200, `duplicate: true`).
//! A payout this ledger does not know, or another `payout.*` type, is
//! answered 200 and ignored, as the provider expects; a contrary outcome
//! after one was recorded (failed after paid) is 409.

use axum::http::HeaderMap;
use domain::{PayoutOutcome, VendorCommand, VendorEvent};
use serde::Deserialize;
use uuid::Uuid;

use super::webhooks::WebhookReceived;
use crate::auth::Principal;
use crate::bus::CommandError;
use crate::context::{CommandContext, IDEMPOTENCY_KEY_HEADER, REQUEST_ID_HEADER};
use crate::error::ApiError;
use crate::AppState;

#[derive(Deserialize)]
struct Payout {
    #[serde(default)]
    metadata: PayoutMetadata,
    #[serde(default)]
    failure_message: Option<String>,
    #[serde(default)]
    failure_code: Option<String>,
}

#[derive(Deserialize, Default)]
struct PayoutMetadata {
    payout_id: Option<String>,
}

/// What a `payout.*` event type reports; `None`: a type not handled.
fn outcome(kind: &str, payout: &Payout) -> Option<PayoutOutcome> {
    match kind {
        "payout.paid" => Some(PayoutOutcome::Paid),
        "payout.failed" => Some(PayoutOutcome::Failed {
            reason: payout
                .failure_message
                .clone()
                .or_else(|| payout.failure_code.clone())
                .unwrap_or_else(|| "unknown".to_owned()),
        }),
        _ => None,
    }
}

/// Records the outcome of the payout a `payout.*` event names.
pub(crate) async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    event_id: &str,
    kind: &str,
    object: serde_json::Value,
) -> Result<WebhookReceived, ApiError> {
    let payout: Payout = match serde_json::from_value(object) {
        Ok(payout) => payout,
        Err(err) => {
            tracing::warn!(event_id, event_type = kind, error = %err, "payment webhook ignored: unreadable payout");
            return Ok(WebhookReceived::ignored(format!(
                "unreadable payout: {err}"
            )));
        }
    };
    let Some(outcome) = outcome(kind, &payout) else {
        tracing::info!(
            event_id,
            event_type = kind,
            "payment webhook ignored: type not handled"
        );
        return Ok(WebhookReceived::ignored(format!(
            "event type `{kind}` is not handled"
        )));
    };
    let Some(payout_id) = payout
        .metadata
        .payout_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        tracing::info!(
            event_id,
            event_type = kind,
            "payment webhook ignored: no valid metadata.payout_id"
        );
        return Ok(WebhookReceived::ignored(
            "the payout names no payout of this ledger (metadata.payout_id)".to_owned(),
        ));
    };
    let vendor = event_log::statements::reads::vendor_of_payout(&app.pool, &payout_id.to_string())
        .await
        .map_err(|e| ApiError::from(CommandError::from(e)))?;
    let Some(vendor_id) = vendor else {
        tracing::info!(event_id, event_type = kind, %payout_id, "payment webhook ignored: unknown payout");
        return Ok(WebhookReceived::ignored(format!(
            "payout {payout_id} is not a payout of this ledger"
        )));
    };

    let context = CommandContext {
        principal: Principal::payment_provider(),
        correlation_id: headers
            .get(REQUEST_ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
            .unwrap_or_else(|| event_id.to_owned()),
        causation_id: event_id.to_owned(),
        idempotency_key: headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let command = VendorCommand::SettlePayout {
        payout_id,
        outcome,
        at: app.clock.now(),
    };
    let committed = app
        .vendors
        .execute(&vendor_id, command, &context, "SettlePayout")
        .await?;
    let status = committed.events.iter().find_map(|e| match &e.payload {
        VendorEvent::PayoutPaid { .. } => Some("paid"),
        VendorEvent::PayoutFailed { .. } => Some("failed"),
        _ => None,
    });
    Ok(WebhookReceived::payout(
        payout_id,
        status.is_none(),
        committed.position,
    ))
}
