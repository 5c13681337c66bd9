//! Schemas for the OpenAPI document that no handler type carries: the
//! payment provider's webhook body (parsed leniently by the handler,
//! described here). The problem document and the domain's types as the
//! API shows them are shared with the read side (`ledger_http::schema`).

use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// A Stripe-compatible payment event.
#[derive(Serialize, ToSchema)]
#[schema(example = json!({"id": "evt_1", "type": "payment_intent.succeeded",
    "data": {"object": {"id": "pi_1", "amount": 12345, "currency": "usd",
    "metadata": {"order_id": "0190f6d6-7c1e-7cc3-b1d5-2b8f6a7f6f10"}, "last_payment_error": null}}}))]
pub struct PaymentWebhook {
    /// The provider's event id; one already processed changes nothing.
    #[schema(example = "evt_1")]
    pub id: String,
    /// `payment_intent.succeeded` or `payment_intent.payment_failed`;
    /// also `charge.refunded`, `charge.dispute.created` and
    /// `charge.dispute.closed` (their `data.object`: docs/API.md "Refunds,
    /// disputes, unapplied payments"); any other type is acknowledged (200)
    /// and ignored.
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
    /// Minor units; another amount than due is held as unapplied cash.
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
    /// The provider's error code; failures are counted by it in analytics.
    #[schema(example = "card_declined")]
    pub code: Option<String>,
    /// The issuer's reason for a declined card; counted in analytics too.
    #[schema(example = "insufficient_funds")]
    pub decline_code: Option<String>,
}

pub use ledger_http::schema::{
    Conflict, FieldError, ListingKind, ListingStatus, OrderStatus, PricingUnit, Problem,
};
