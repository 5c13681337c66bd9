//! `POST /v1/orders/{id}/lines/{line_id}/extend` and `/reschedule` (API.md
//! "Rentals"): the owning customer or an admin changes a rental line's
//! period. The saga is `application::adjust_line`; the answer names the
//! adjustment, what is due (negative: refunded by the cancellation policy)
//! and until when it is held unpaid.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{AdjustmentKind, FieldError, Period};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::adjust_line::{adjust_line, Adjusted};
use crate::auth::Role;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::money;
use crate::routes::orders::load_order;
use crate::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtendLine {
    /// The new end, after the booked end.
    end: DateTime<Utc>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RescheduleLine {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AdjustmentCreated {
    adjustment_id: Uuid,
    /// To pay with a payment naming `metadata.adjustment_id`; negative: refunded.
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "20.00")]
    amount_due: String,
    /// Until when the new period is held unpaid; null when nothing is due
    /// (the change is confirmed already).
    hold_expires_at: Option<DateTime<Utc>>,
    position: i64,
}

impl From<Adjusted> for AdjustmentCreated {
    fn from(a: Adjusted) -> Self {
        Self {
            adjustment_id: a.adjustment_id,
            amount_due: money(a.amount_due),
            hold_expires_at: a.hold_expires_at,
            position: a.position,
        }
    }
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/lines/{line_id}/extend", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id"), ("line_id" = Uuid, Path, description = "Rental line id")), request_body = ExtendLine, responses((status = 201, description = "The longer period is held until `hold_expires_at` awaiting payment of `amount_due` (409 `unavailable` with `conflicts`; 422 with the schedule's rule codes)", body = AdjustmentCreated)), security(("bearer" = [])))]
pub async fn extend(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id, line_id]): Ids<2>,
    ApiJson(body): ApiJson<ExtendLine>,
) -> Result<(StatusCode, Json<AdjustmentCreated>), ApiError> {
    check_times(&[("end", body.end)])?;
    let start = line_start(&app, &context, order_id, line_id).await?;
    let period = Period {
        start,
        end: body.end,
    };
    change(
        app,
        context,
        order_id,
        line_id,
        AdjustmentKind::Extension,
        period,
    )
    .await
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/lines/{line_id}/reschedule", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id"), ("line_id" = Uuid, Path, description = "Rental line id")), request_body = RescheduleLine, responses((status = 201, description = "The new period is held; `amount_due` is the repriced difference, negative when refunded by the cancellation policy (409 `unavailable` with `conflicts`; 422 with the schedule's rule codes)", body = AdjustmentCreated)), security(("bearer" = [])))]
pub async fn reschedule(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id, line_id]): Ids<2>,
    ApiJson(body): ApiJson<RescheduleLine>,
) -> Result<(StatusCode, Json<AdjustmentCreated>), ApiError> {
    check_times(&[("start", body.start), ("end", body.end)])?;
    line_start(&app, &context, order_id, line_id).await?;
    let period = Period {
        start: body.start,
        end: body.end,
    };
    change(
        app,
        context,
        order_id,
        line_id,
        AdjustmentKind::Reschedule,
        period,
    )
    .await
}

fn check_times(times: &[(&str, DateTime<Utc>)]) -> Result<(), ApiError> {
    let errors: Vec<FieldError> = times
        .iter()
        .filter_map(|(field, t)| domain::check_in_range(field, *t).err())
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// The line's booked start, if the principal owns the order (or is an admin).
async fn line_start(
    app: &AppState,
    context: &CommandContext,
    order_id: Uuid,
    line_id: Uuid,
) -> Result<DateTime<Utc>, ApiError> {
    context.principal.require(&[Role::Customer, Role::Admin])?;
    let order = load_order(app, &context.principal, order_id).await?;
    if context.principal.role == Role::Customer && order.customer_id() != context.principal.subject
    {
        return Err(ApiError::Forbidden(
            "a customer may only change its own orders".to_owned(),
        ));
    }
    let line = order
        .line(line_id)
        .ok_or_else(|| ApiError::NotFound("line".to_owned()))?;
    line.start.ok_or_else(|| {
        domain::DomainError::invalid_state("only rental lines can be extended or rescheduled")
            .into()
    })
}

async fn change(
    app: AppState,
    context: CommandContext,
    order_id: Uuid,
    line_id: Uuid,
    kind: AdjustmentKind,
    period: Period,
) -> Result<(StatusCode, Json<AdjustmentCreated>), ApiError> {
    let adjusted = adjust_line(&app, &context, order_id, line_id, kind, period).await?;
    Ok((StatusCode::CREATED, Json(adjusted.into())))
}
