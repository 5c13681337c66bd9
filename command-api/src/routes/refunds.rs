//! `POST /v1/orders/{id}/refunds` (API.md "Money"): an admin refunds any
//! part of a paid order, a vendor its own lines; by amount, by lines, or
//! both (an amount spread over those lines). The Order aggregate decides
//! (`domain::order::refund`); `application::refunds` records it and takes
//! back what it reverses of vendors' available balances.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::RefundRequest;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::refunds::refund_order;
use crate::auth::Role;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::orders::load_order;
use crate::routes::{deserialize_optional_money, money};
use crate::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    /// At most what was captured less what was refunded; absent: all the
    /// chosen lines have left (subtotal and tax; deposits are settled on
    /// return).
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "10.00")]
    amount: Option<Decimal>,
    /// The lines refunded; absent: every line (a vendor: its own).
    #[serde(default)]
    lines: Option<Vec<Uuid>>,
    #[schema(max_length = 500, example = "damaged in transit")]
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VendorReversed {
    vendor_id: Uuid,
    /// The vendor's net reversed.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "9.00")]
    amount: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct RefundRecorded {
    refund_id: Uuid,
    order_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "10.00")]
    amount: String,
    /// The platform fee reversed.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "1.00")]
    fee_reversed: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    tax_reversed: String,
    vendor_reversed: Vec<VendorReversed>,
    position: i64,
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/refunds", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id")), request_body = RefundOrder, responses((status = 201, description = "Refund recorded: the fee and each vendor's net reversed pro rata (409 above captured − refunded, or above what the lines have left)", body = RefundRecorded)), security(("bearer" = [])))]
pub async fn refund(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id]): Ids<1>,
    ApiJson(body): ApiJson<RefundOrder>,
) -> Result<(StatusCode, Json<RefundRecorded>), ApiError> {
    context.principal.require(&[Role::Vendor, Role::Admin])?;
    let order = load_order(&app, &context.principal, order_id).await?;
    // A vendor refunds its own lines only.
    let vendor_id = match context.principal.role {
        Role::Vendor => {
            let own = context
                .principal
                .vendor_id
                .filter(|v| order.vendor_ids().contains(v))
                .ok_or_else(|| {
                    ApiError::Forbidden("a vendor refunds only orders it takes part in".to_owned())
                })?;
            let foreign = body
                .lines
                .iter()
                .flatten()
                .any(|line| order.line_vendor(*line).is_some_and(|vendor| vendor != own));
            if foreign {
                return Err(ApiError::Forbidden(
                    "a vendor refunds only its own lines".to_owned(),
                ));
            }
            Some(own)
        }
        _ => None,
    };
    // Checked in clear, then sealed: the reason is about the order's
    // customer, whoever writes it (docs/PRIVACY.md). A bad reason goes on
    // in clear: the Order refuses it with the request's other errors, so it
    // is never stored.
    let reason = match domain::check_refund_reason(&body.reason) {
        Ok(clear) => app
            .personal
            .seal(
                &crate::context::data_subject(&context.principal.tenant, order.customer_id()),
                &clear,
            )
            .await
            .map_err(crate::bus::CommandError::from)?,
        Err(_) => domain::PersonalText::from(body.reason),
    };
    let request = RefundRequest {
        refund_id: Uuid::now_v7(),
        amount: body.amount,
        lines: body.lines,
        vendor_id,
        reason,
        provider_refund_id: None,
        at: app.clock.now(),
    };
    let refunded = refund_order(&app, &context, order_id, request).await?;
    let fee: Decimal = refunded.parts.iter().map(|p| p.fee_reversed).sum();
    let tax: Decimal = refunded.parts.iter().map(|p| p.tax).sum();
    Ok((
        StatusCode::CREATED,
        Json(RefundRecorded {
            refund_id: refunded.refund_id,
            order_id,
            amount: money(refunded.amount),
            fee_reversed: money(fee),
            tax_reversed: money(tax),
            vendor_reversed: refunded
                .parts
                .iter()
                .map(|p| VendorReversed {
                    vendor_id: p.vendor_id,
                    amount: money(p.net_reversed),
                })
                .collect(),
            position: refunded.position,
        }),
    ))
}
