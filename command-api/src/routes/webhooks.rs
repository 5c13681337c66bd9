//! `POST /v1/webhooks/payments`: Stripe-compatible payment events.
//!
//! The signature header is `t=<unix>,v1=<hex>`, `v1` being HMAC-SHA256 of
//! `"<t>.<raw body>"` under the webhook secret; a timestamp more than 300 s
//! away from now (exactly: now has sub-second precision) is refused. The
//! provider's event id makes redelivery harmless: the Order aggregate
//! records each payment event once.
//!
//! Only what the provider should not retry is answered 200 without effect:
//! a correctly signed event of a type the ledger does not handle, or a
//! payment intent that names no order of this ledger (no or no valid
//! `metadata.order_id`). A bad signature, a stale timestamp or a body that
//! is not an event at all (malformed JSON, no `id` or `type`, text that
//! cannot be stored) is 400: the provider retries it and shows it failing.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{OrderStatus, PaymentOutcome};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

use crate::application::record_payment::{record_payment_of, Payment};
use crate::auth::Principal;
use crate::context::{CommandContext, IDEMPOTENCY_KEY_HEADER, REQUEST_ID_HEADER};
use crate::error::ApiError;
use crate::extract::RawBody;
use crate::routes::orders::load_order;
use crate::AppState;

/// How far the signed timestamp may be from now.
pub const TOLERANCE_SECS: i64 = 300;
pub const SIGNATURE_HEADER: &str = "stripe-signature";

/// The envelope every provider event has; `data.object` is read by type.
#[derive(Deserialize)]
struct PaymentEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    data: PaymentEventData,
}

#[derive(Deserialize, Default)]
struct PaymentEventData {
    #[serde(default)]
    object: serde_json::Value,
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
    /// Pays an extension or reschedule (`adjustment_payments`).
    adjustment_id: Option<String>,
    /// Pays a subscription invoice (`invoice_payments`).
    invoice_id: Option<String>,
    /// Pays that instalment (from 1) of the order's plan; absent: the
    /// oldest unpaid one (Stripe's metadata values are strings).
    instalment: Option<String>,
}

/// Stripe's `last_payment_error`: `code` (`card_declined`, ...) and, for
/// a declined card, the issuer's `decline_code` (`insufficient_funds`, ...).
#[derive(Deserialize)]
struct PaymentError {
    message: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookReceived {
    received: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::schema::OrderStatus>)]
    status: Option<OrderStatus>,
    /// True when the event id was already processed.
    duplicate: bool,
    /// Why a signed event changed nothing (a type the ledger does not
    /// handle, no order named); absent when it was processed.
    #[serde(skip_serializing_if = "Option::is_none")]
    ignored: Option<String>,
    position: i64,
    /// The payout a `payout.*` event settled (`payout_webhooks`).
    #[serde(skip_serializing_if = "Option::is_none")]
    payout_id: Option<Uuid>,
    /// The subscription whose invoice a payment intent named
    /// (`invoice_payments`), and where it stands now.
    #[serde(skip_serializing_if = "Option::is_none")]
    subscription_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "active")]
    subscription_status: Option<String>,
}

impl WebhookReceived {
    /// An event that named an order and was handled (`duplicate`: it
    /// recorded nothing new).
    pub(crate) fn processed(
        order_id: Uuid,
        status: OrderStatus,
        duplicate: bool,
        position: i64,
    ) -> Self {
        Self {
            received: true,
            order_id: Some(order_id),
            status: Some(status),
            duplicate,
            ignored: None,
            position,
            payout_id: None,
            subscription_id: None,
            subscription_status: None,
        }
    }

    /// An event that named a subscription invoice and was handled.
    pub(crate) fn subscription(
        subscription_id: Uuid,
        status: &str,
        duplicate: bool,
        position: i64,
    ) -> Self {
        Self {
            subscription_id: Some(subscription_id),
            subscription_status: Some(status.to_owned()),
            ..Self::ignored_or_empty(None, duplicate, position)
        }
    }

    fn ignored_or_empty(ignored: Option<String>, duplicate: bool, position: i64) -> Self {
        Self {
            received: true,
            order_id: None,
            status: None,
            duplicate,
            ignored,
            position,
            payout_id: None,
            subscription_id: None,
            subscription_status: None,
        }
    }

    pub(crate) fn ignored(reason: String) -> Self {
        Self::ignored_or_empty(Some(reason), false, 0)
    }

    pub(crate) fn payout(payout_id: Uuid, duplicate: bool, position: i64) -> Self {
        Self {
            payout_id: Some(payout_id),
            ..Self::ignored_or_empty(None, duplicate, position)
        }
    }
}

/// Checks `Stripe-Signature` against the raw body, and its timestamp
/// against `now`: more than [`TOLERANCE_SECS`] away, either way, is refused,
/// compared exactly (a whole-second timestamp 300.5 s old is stale).
pub fn verify_signature(
    header: &str,
    body: &[u8],
    secret: &str,
    now: DateTime<Utc>,
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
    let signed_at = DateTime::from_timestamp(timestamp, 0)
        .ok_or_else(|| ApiError::BadRequest("signature timestamp out of range".to_owned()))?;
    if (now - signed_at).abs() > chrono::Duration::seconds(TOLERANCE_SECS) {
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

#[utoipa::path(post, path = "/v1/webhooks/payments", tag = "webhooks", params(("Stripe-Signature" = String, Header, description = "`t=<unix>,v1=<hex HMAC-SHA256 of \"<t>.<raw body>\">`")), request_body = crate::schema::PaymentWebhook, responses((status = 200, description = "Processed; or a duplicate event id, an event type the ledger does not handle, or a payment intent naming no order (these change nothing; `ignored` says why)", body = WebhookReceived)), security(()))]
pub async fn payments(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawBody(body): RawBody,
) -> Result<Json<WebhookReceived>, ApiError> {
    let signature = headers
        .get(SIGNATURE_HEADER)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::BadRequest("missing Stripe-Signature header".to_owned()))?;
    verify_signature(
        signature,
        &body,
        &app.config.webhook_secret,
        app.clock.now(),
    )?;
    crate::extract::refuse_unstorable_json(&body).map_err(|_| {
        ApiError::BadRequest("malformed payment event: text that cannot be stored".to_owned())
    })?;
    let event: PaymentEvent = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("malformed payment event: {e}")))?;

    if super::provider_events::TYPES.contains(&event.kind.as_str()) {
        let context = provider_context(&headers, &event.id);
        return super::provider_events::handle(
            &app,
            &context,
            &event.id,
            &event.kind,
            event.data.object,
        )
        .await
        .map(Json);
    }
    if event.kind.starts_with("payout.") {
        let received = super::payout_webhooks::handle(
            &app,
            &headers,
            &event.id,
            &event.kind,
            event.data.object,
        );
        return received.await.map(Json);
    }
    let handled = matches!(
        event.kind.as_str(),
        "payment_intent.succeeded" | "payment_intent.payment_failed"
    );
    if !handled {
        // Acknowledged, as providers expect, so they stop redelivering it.
        tracing::info!(event_id = %event.id, event_type = %event.kind, "payment webhook ignored: type not handled");
        return Ok(Json(WebhookReceived::ignored(format!(
            "event type `{}` is not handled",
            event.kind
        ))));
    }
    let intent: PaymentIntent = match serde_json::from_value(event.data.object) {
        Ok(intent) => intent,
        Err(err) => {
            tracing::warn!(event_id = %event.id, event_type = %event.kind, error = %err, "payment webhook ignored: unreadable payment intent");
            return Ok(Json(WebhookReceived::ignored(format!(
                "unreadable payment intent: {err}"
            ))));
        }
    };
    let outcome = match event.kind.as_str() {
        "payment_intent.payment_failed" => {
            let error = intent.last_payment_error.as_ref();
            PaymentOutcome::Failed {
                reason: error
                    .and_then(|e| e.message.clone())
                    .unwrap_or_else(|| "unknown".to_owned()),
                code: error.and_then(|e| e.code.clone()),
                decline_code: error.and_then(|e| e.decline_code.clone()),
            }
        }
        _ => PaymentOutcome::Succeeded,
    };
    let payment = Payment {
        payment_id: event.id.clone(),
        intent_id: intent.id.clone(),
        amount_minor: intent.amount,
        currency: intent.currency.clone(),
        outcome,
    };
    if let Some(invoice_id) = intent.metadata.invoice_id.as_deref() {
        let context = provider_context(&headers, &event.id);
        return super::invoice_payments::received(&app, context, invoice_id, payment)
            .await
            .map(Json);
    }
    if let Some(adjustment_id) = intent.metadata.adjustment_id.as_deref() {
        let context = provider_context(&headers, &event.id);
        let order_id = intent.metadata.order_id.as_deref();
        return super::adjustment_payments::received(
            &app,
            context,
            adjustment_id,
            order_id,
            payment,
        )
        .await
        .map(Json);
    }
    let Some(order_id) = intent
        .metadata
        .order_id
        .as_deref()
        .and_then(|id| Uuid::parse_str(id).ok())
    else {
        // Not a payment for an order of this ledger (another integration on
        // the same provider account, say).
        tracing::info!(event_id = %event.id, event_type = %event.kind, "payment webhook ignored: no valid metadata.order_id");
        return Ok(Json(WebhookReceived::ignored(
            "the payment intent names no order (metadata.order_id)".to_owned(),
        )));
    };
    load_order(&app, &Principal::payment_provider(), order_id).await?;
    let instalment = match intent.metadata.instalment.as_deref() {
        None => None,
        Some(text) => match text.trim().parse::<u32>() {
            Ok(number) if number >= 1 => Some(number),
            _ => {
                return Ok(Json(WebhookReceived::ignored(format!(
                    "metadata.instalment `{text}` is not an instalment number"
                ))))
            }
        },
    };

    let context = provider_context(&headers, &event.id);
    let recorded = record_payment_of(&app, &context, order_id, payment, instalment).await?;
    Ok(Json(WebhookReceived {
        received: true,
        order_id: Some(order_id),
        status: Some(recorded.status),
        duplicate: recorded.duplicate,
        ignored: None,
        position: recorded.position,
        payout_id: None,
        subscription_id: None,
        subscription_status: None,
    }))
}

/// The context of a command the provider's event `event_id` causes.
pub(crate) fn provider_context(headers: &HeaderMap, event_id: &str) -> CommandContext {
    let correlation_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .unwrap_or_else(|| event_id.to_owned());
    CommandContext {
        principal: Principal::payment_provider(),
        correlation_id,
        causation_id: event_id.to_owned(),
        idempotency_key: headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64, millis: u32) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, millis * 1_000_000).expect("valid")
    }

    #[test]
    fn a_signature_made_with_the_secret_verifies() {
        let header = sign(b"{}", "whsec", 1_000);
        assert!(verify_signature(&header, b"{}", "whsec", at(1_100, 0)).is_ok());
    }

    #[test]
    fn a_signature_over_another_body_is_refused() {
        let header = sign(b"{}", "whsec", 1_000);
        assert!(verify_signature(&header, b"{ }", "whsec", at(1_000, 0)).is_err());
    }

    #[test]
    fn a_signature_with_another_secret_is_refused() {
        let header = sign(b"{}", "other", 1_000);
        assert!(verify_signature(&header, b"{}", "whsec", at(1_000, 0)).is_err());
    }

    #[test]
    fn a_timestamp_older_than_the_tolerance_is_refused() {
        let header = sign(b"{}", "whsec", 1_000);
        assert!(
            verify_signature(&header, b"{}", "whsec", at(1_000 + TOLERANCE_SECS + 1, 0)).is_err()
        );
        assert!(
            verify_signature(&header, b"{}", "whsec", at(1_000 - TOLERANCE_SECS - 1, 0)).is_err()
        );
    }

    #[test]
    fn the_tolerance_is_compared_exactly_at_its_boundary() {
        let header = sign(b"{}", "whsec", 1_000);
        let verify = |now| verify_signature(&header, b"{}", "whsec", now).is_ok();
        // Exactly 300 s either way is within; a millisecond more is not.
        assert!(verify(at(1_300, 0)));
        assert!(verify(at(700, 0)));
        assert!(!verify(at(1_300, 1)));
        assert!(!verify(at(699, 999)));
        // 300.5 s old or ahead: refused (whole seconds would round it to 300).
        assert!(!verify(at(1_300, 500)));
        assert!(!verify(at(699, 500)));
        // ±1 s around the boundary.
        assert!(verify(at(1_299, 0)) && verify(at(701, 0)));
        assert!(!verify(at(1_301, 0)) && !verify(at(699, 0)));
    }

    #[test]
    fn a_header_without_timestamp_is_refused() {
        assert!(verify_signature("v1=00", b"{}", "whsec", at(0, 0)).is_err());
    }

    #[test]
    fn a_timestamp_beyond_any_date_is_refused_not_a_panic() {
        let header = format!("t={},v1=00", i64::MAX);
        assert!(verify_signature(&header, b"{}", "whsec", at(0, 0)).is_err());
    }
}
