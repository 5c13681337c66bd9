//! `POST /v1/webhooks/payments`: Stripe-compatible payment events.
//!
//! The signature header is `t=<unix>,v1=<hex>`, `v1` being HMAC-SHA256 of
//! `"<t>.<raw body>"` under the webhook secret; a timestamp more than 300 s
//! away is refused. The provider's event id makes redelivery harmless: the
//! Order aggregate records each payment event once.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use domain::{OrderCommand, OrderStatus, PaymentOutcome};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::auth::Principal;
use crate::context::{CommandContext, IDEMPOTENCY_KEY_HEADER, REQUEST_ID_HEADER};
use crate::error::ApiError;
use crate::routes::now;
use crate::routes::orders::load_order;
use crate::{reactions, AppState};

/// How far the signed timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;
pub const SIGNATURE_HEADER: &str = "stripe-signature";

#[derive(Deserialize)]
struct PaymentEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: PaymentEventData,
}

#[derive(Deserialize)]
struct PaymentEventData {
    object: PaymentIntent,
}

#[derive(Deserialize)]
struct PaymentIntent {
    id: String,
    amount: i64,
    currency: String,
    #[serde(default)]
    metadata: IntentMetadata,
    last_payment_error: Option<PaymentError>,
}

#[derive(Deserialize, Default)]
struct IntentMetadata {
    order_id: Option<String>,
}

#[derive(Deserialize)]
struct PaymentError {
    message: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookReceived {
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    status: Option<OrderStatus>,
    /// True when the event id was already processed.
    duplicate: bool,
    position: i64,
}

/// Checks `Stripe-Signature` against the raw body.
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secret: &str,
    now_unix: i64,
) -> Result<(), ApiError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let timestamp = timestamp
        .ok_or_else(|| ApiError::BadRequest("signature header without timestamp".to_owned()))?;
    if (now_unix - timestamp).abs() > TOLERANCE_SECS {
        return Err(ApiError::BadRequest(
            "signature timestamp outside the tolerance".to_owned(),
        ));
    }
    let verified = signatures.iter().any(|sig| {
        let Ok(expected) = hex::decode(sig) else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
            return false;
        };
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac.verify_slice(&expected).is_ok()
    });
    if verified {
        Ok(())
    } else {
        Err(ApiError::BadRequest("signature does not match".to_owned()))
    }
}

/// Signs a body as the provider would (tests, the load generator).
pub fn sign(body: &[u8], secret: &str, timestamp: i64) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

#[utoipa::path(post, path = "/v1/webhooks/payments", tag = "webhooks", params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">`")), request_body = crate::schema::PaymentWebhook, responses((status = 200, description = "Processed, or a duplicate event id (changes nothing)", body = WebhookReceived)), security(()))]
pub async fn payments(
    State(app): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<WebhookReceived>, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("missing Stripe-Signature header".to_owned()))?;
    verify_signature(
        signature,
        &body,
        &app.config.webhook_secret,
        now().timestamp(),
    )?;
    let event: PaymentEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed payment event: {e}")))?;

    let outcome = match event.kind.as_str() {
        "payment_intent.succeeded" => PaymentOutcome::Succeeded,
        "payment_intent.payment_failed" => PaymentOutcome::Failed {
            reason: event
                .data
                .object
                .last_payment_error
                .as_ref()
                .and_then(|e| e.message.clone())
                .unwrap_or_else(|| "unknown".to_owned()),
        },
        // Other event types are acknowledged and ignored, as providers expect.
        _ => {
            return Ok(Json(WebhookReceived {
                received: true,
                order_id: None,
                status: None,
                duplicate: false,
                position: 0,
            }))
        }
    };
    let order_id = event
        .data
        .object
        .metadata
        .order_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
        .ok_or_else(|| {
            ApiError::BadRequest("payment event without a valid metadata.order_id".to_owned())
        })?;
    load_order(&app, order_id).await?;

    let correlation_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| event.id.clone());
    let context = CommandContext {
        principal: Principal::payment_provider(),
        correlation_id,
        causation_id: event.id.clone(),
        idempotency_key: headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    };
    let command = OrderCommand::RecordPayment {
        payment_id: event.id.clone(),
        intent_id: event.data.object.id.clone(),
        amount_minor: event.data.object.amount,
        currency: event.data.object.currency.clone(),
        outcome,
        received_at: now(),
    };
    let committed = app
        .orders
        .execute(&order_id.to_string(), command, &context, "RecordPayment")
        .await?;
    let duplicate = committed.events.is_empty();
    // Settling runs on duplicates too, so a redelivery repairs holds that a
    // crash after the payment was recorded left unconfirmed.
    let settled = reactions::settle_payment(&app, &context, order_id).await?;
    let order = app.orders.load(&order_id.to_string()).await?;
    if order.status() != OrderStatus::Placed {
        crate::saga::settle_deadline(&app, order_id).await;
    }
    Ok(Json(WebhookReceived {
        received: true,
        order_id: Some(order_id),
        status: Some(order.status()),
        duplicate,
        position: committed.position.max(settled),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(b"{}", "whsec", 1_000);
        assert!(verify_signature(&header, b"{}", "whsec", 1_100).is_ok());
    }

    #[test]
    fn a_signature_over_another_body_is_refused() {
        let header = sign(b"{}", "whsec", 1_000);
        assert!(verify_signature(&header, b"{ }", "whsec", 1_000).is_err());
    }

    #[test]
    fn a_signature_with_another_secret_is_refused() {
        let header = sign(b"{}", "other", 1_000);
        assert!(verify_signature(&header, b"{}", "whsec", 1_000).is_err());
    }

    #[test]
    fn a_timestamp_older_than_the_tolerance_is_refused() {
        let header = sign(b"{}", "whsec", 1_000);
        assert!(verify_signature(&header, b"{}", "whsec", 1_000 + TOLERANCE_SECS + 1).is_err());
        assert!(verify_signature(&header, b"{}", "whsec", 1_000 - TOLERANCE_SECS - 1).is_err());
    }

    #[test]
    fn a_header_without_timestamp_is_refused() {
        assert!(verify_signature("v1=00", b"{}", "whsec", 0).is_err());
    }
}
