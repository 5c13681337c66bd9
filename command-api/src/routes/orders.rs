//! `POST /v1/orders` (the placement saga is `application::place_order`) and
//! `POST /v1/orders/{id}/cancel`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{ListingKind, Order, OrderStatus};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::cancel_order::cancel_order;
use crate::application::place_order::{self, PlaceOrder};
use crate::auth::{Principal, Role};
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::money;
use crate::{AppState, CommandApp};

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderPlacedLine {
    line_id: Uuid,
    listing_id: Uuid,
    vendor_id: Uuid,
    #[schema(value_type = crate::schema::ListingKind)]
    kind: ListingKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    start: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end: Option<DateTime<Utc>>,
    /// Rental lines: the listing's IANA time zone and the period in it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Europe/Berlin")]
    time_zone: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2030-03-30T10:00:00+01:00")]
    local_start: Option<DateTime<chrono::FixedOffset>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>, example = "2030-03-31T10:00:00+02:00")]
    local_end: Option<DateTime<chrono::FixedOffset>>,
    quantity: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    billable_units: Option<u32>,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    unit_price: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    tax: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    deposit: String,
    /// The line is paid by instalments.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_plan: Option<super::leases::PlanTerms>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderPlacedVendor {
    vendor_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    platform_fee: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    net: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderPlaced {
    order_id: Uuid,
    #[schema(value_type = crate::schema::OrderStatus)]
    status: OrderStatus,
    currency: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    subtotal: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    tax: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    deposit: String,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    total: String,
    hold_expires_at: DateTime<Utc>,
    lines: Vec<OrderPlacedLine>,
    vendors: Vec<OrderPlacedVendor>,
    /// With a line paid by instalments: what confirms the order (its total
    /// less the instalments) and the instalments' schedule.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "545.00")]
    due_now: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    schedule: Option<Vec<super::leases::ScheduleEntry>>,
    position: i64,
}

#[utoipa::path(post, path = "/v1/orders", tag = "commands", request_body = crate::application::place_order::PlaceOrder, responses((status = 201, description = "Order placed; its units are held until `hold_expires_at` (409 `unavailable` with `conflicts`)", body = OrderPlaced)), security(("bearer" = [])))]
pub async fn place(
    State(app): State<AppState>,
    context: CommandContext,
    ApiJson(body): ApiJson<PlaceOrder>,
) -> Result<(StatusCode, Json<OrderPlaced>), ApiError> {
    context.principal.require(&[Role::Customer])?;
    let placed = place_order::place_order(&app, &context, body).await?;
    let priced = placed.priced;
    let answer = OrderPlaced {
        order_id: placed.order_id,
        status: OrderStatus::Placed,
        currency: placed.currency,
        subtotal: money(priced.subtotal),
        tax: money(priced.tax),
        deposit: money(priced.deposit),
        total: money(priced.total),
        hold_expires_at: placed.hold_expires_at,
        lines: priced
            .lines
            .iter()
            .map(|l| OrderPlacedLine {
                line_id: l.line_id,
                listing_id: l.listing_id,
                vendor_id: l.vendor_id,
                kind: l.kind,
                start: l.start,
                end: l.end,
                time_zone: l.time_zone.map(|tz| tz.name().to_owned()),
                local_start: l.local_start,
                local_end: l.local_end,
                quantity: l.quantity,
                billable_units: l.billable_units,
                unit_price: money(l.unit_price),
                subtotal: money(l.subtotal),
                tax: money(l.tax),
                deposit: money(l.deposit),
                payment_plan: l.payment_plan.as_ref().map(super::leases::PlanTerms::of),
            })
            .collect(),
        vendors: priced
            .vendors
            .iter()
            .map(|v| OrderPlacedVendor {
                vendor_id: v.vendor_id,
                subtotal: money(v.subtotal),
                platform_fee: money(v.platform_fee),
                net: money(v.net),
            })
            .collect(),
        due_now: priced.plan_line().map(|_| money(priced.upfront())),
        schedule: priced
            .plan_line()
            .and_then(|l| l.payment_plan.as_ref())
            .map(super::leases::ScheduleEntry::planned),
        position: placed.position,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// Loads an order; 404 if it was never placed.
pub async fn load_order(
    app: &CommandApp,
    principal: &Principal,
    order_id: Uuid,
) -> Result<Order, ApiError> {
    let order = app.orders.load(&order_id.to_string(), principal).await?;
    if !order.is_placed() {
        return Err(ApiError::NotFound("order".to_owned()));
    }
    Ok(order)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    reason: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct OrderStatusChanged {
    order_id: Uuid,
    #[schema(value_type = crate::schema::OrderStatus)]
    status: OrderStatus,
    position: i64,
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/cancel", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id")), request_body(content = Option<CancelOrder>, description = "Optional reason"), responses((status = 200, description = "Order cancelled or refunded (409 once fulfilment started)", body = OrderStatusChanged)), security(("bearer" = [])))]
pub async fn cancel(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id]): Ids<1>,
    ApiJson(body): ApiJson<CancelOrder>,
) -> Result<Json<OrderStatusChanged>, ApiError> {
    context.principal.require(&[Role::Customer, Role::Admin])?;
    let order = load_order(&app, &context.principal, order_id).await?;
    if context.principal.role == Role::Customer && order.customer_id() != context.principal.subject
    {
        return Err(ApiError::Forbidden(
            "a customer may only cancel its own orders".to_owned(),
        ));
    }
    if let Some(reason) = &body.reason {
        if reason.chars().count() > 500 {
            return Err(crate::error::invalid("reason", "at most 500 characters"));
        }
    }
    // The order's customer is the data subject of why it was cancelled,
    // whoever wrote it (docs/PRIVACY.md).
    let reason = app
        .personal
        .seal_optional(order.customer_id(), body.reason.as_deref())
        .await
        .map_err(crate::bus::CommandError::from)?;
    let (status, position) = cancel_order(&app, &context, order_id, reason).await?;
    Ok(Json(OrderStatusChanged {
        order_id,
        status,
        position,
    }))
}
