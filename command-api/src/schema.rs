//! Schemas for the OpenAPI document that no handler type carries: the
//! problem document every error answers with, and the payment provider's
//! webhook body (parsed leniently by the handler, described here).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An RFC 7807 problem (`application/problem+json`), as `ApiError::problem`
/// writes it.
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `https://ledger.example/problems/<kind>`; the last segment names the problem.
    #[schema(example = "https://ledger.example/problems/validation")]
    pub r#type: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// 422 validation problems: one entry per offending field.
    #[schema(nullable = false)]
    pub errors: Option<Vec<domain::FieldError>>,
    /// 409 `unavailable`: the lines that could not be held.
    #[schema(nullable = false)]
    pub conflicts: Option<Vec<domain::Conflict>>,
    /// 409 `insufficient-balance`: the vendor's available balance.
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub available: Option<String>,
    /// 409 `insufficient-balance`: the payout asked for.
    #[schema(nullable = false, pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    pub requested: Option<String>,
}

/// A Stripe-compatible payment event.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "evt_1", "type": "payment_intent.succeeded",
    "data": {"object": {"id": "pi_1", "amount": 12345, "currency": "usd",
    "metadata": {"order_id": "0190f6d6-7c1e-7cc3-b1d5-2b8f6a7f6f10"}, "last_payment_error": null}}}))]
pub struct PaymentWebhook {
    /// The provider's event id; one already processed changes nothing.
    #[schema(example = "evt_1")]
    pub id: String,
    /// `payment_intent.succeeded` or `payment_intent.payment_failed`; any
    /// other type is acknowledged (200) and ignored.
    #[schema(example = "payment_intent.succeeded")]
    pub r#type: String,
    pub data: PaymentWebhookData,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentWebhookData {
    pub object: PaymentIntentObject,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentIntentObject {
    #[schema(example = "pi_1")]
    pub id: String,
    /// Minor units; anything other than the order's total is recorded as a mismatch.
    pub amount: i64,
    #[schema(example = "usd")]
    pub currency: String,
    pub metadata: PaymentIntentMetadata,
    pub last_payment_error: Option<PaymentErrorObject>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentIntentMetadata {
    pub order_id: Option<Uuid>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentErrorObject {
    pub message: Option<String>,
}
