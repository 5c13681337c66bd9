//! Leases (issue 15): a rental line paid by instalments. The plan's terms
//! and schedule as the placing answer shows them, and
//! `POST /v1/orders/{id}/lines/{line_id}/terminate` (API.md decisions,
//! "Instalment plans (issue 15)").

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{InstalmentState, OrderStatus, PaymentPlan};
use serde::Serialize;
use uuid::Uuid;

use crate::application::leases;
use crate::auth::Role;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::Ids;
use crate::routes::money;
use crate::routes::orders::load_order;
use crate::AppState;

/// A line's plan: `deposit` with the order, then `instalments` every
/// `interval` from the line's start.
#[derive(Serialize, utoipa::ToSchema)]
pub struct PlanTerms {
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "500.00")]
    deposit: String,
    instalments: u32,
    #[schema(example = "month")]
    interval: String,
}

impl PlanTerms {
    pub fn of(plan: &PaymentPlan) -> PlanTerms {
        PlanTerms {
            deposit: money(plan.deposit),
            instalments: u32::try_from(plan.schedule.len()).unwrap_or(u32::MAX),
            interval: plan.interval.as_str().to_owned(),
        }
    }
}

/// One instalment: `status` `due`, `paid`, `overdue`, `written_off` or
/// `cancelled` (not yet due when the lease was terminated).
#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleEntry {
    instalment: u32,
    due: DateTime<Utc>,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "250.00")]
    amount: String,
    #[schema(example = "due")]
    status: String,
}

impl ScheduleEntry {
    /// The schedule as placed: every instalment due.
    pub fn planned(plan: &PaymentPlan) -> Vec<ScheduleEntry> {
        plan.schedule
            .iter()
            .map(|i| ScheduleEntry {
                instalment: i.number,
                due: i.due,
                amount: money(i.amount),
                status: "due".to_owned(),
            })
            .collect()
    }

    fn of(i: &InstalmentState) -> ScheduleEntry {
        ScheduleEntry {
            instalment: i.number,
            due: i.due,
            amount: money(i.amount),
            status: i.status.as_str().to_owned(),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LeaseTerminated {
    order_id: Uuid,
    line_id: Uuid,
    #[schema(value_type = crate::schema::OrderStatus)]
    order_status: OrderStatus,
    #[schema(example = "terminated")]
    lease_status: String,
    /// What is still owed: instalments due or overdue (with the charge the
    /// termination made due now).
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "300.00")]
    amount_due: String,
    schedule: Vec<ScheduleEntry>,
    position: i64,
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/lines/{line_id}/terminate", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id"), ("line_id" = Uuid, Path, description = "The line paid by instalments")), responses((status = 200, description = "Lease terminated: instalments not yet due are cancelled, what the line's cancellation policy does not waive of them is due now, and a line not picked up is released (409 for a line not paid by instalments, an unpaid order or a returned line)", body = LeaseTerminated)), security(("bearer" = [])))]
pub async fn terminate(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id, line_id]): Ids<2>,
) -> Result<Json<LeaseTerminated>, ApiError> {
    context.principal.require(&[Role::Customer, Role::Admin])?;
    let order = load_order(&app, &context.principal, order_id).await?;
    if context.principal.role == Role::Customer && order.customer_id() != context.principal.subject
    {
        return Err(ApiError::Forbidden(
            "a customer may only terminate its own leases".to_owned(),
        ));
    }
    if order.line(line_id).is_none() {
        return Err(ApiError::NotFound("line".to_owned()));
    }
    let (order, position) = leases::terminate(&app, &context, order_id, line_id).await?;
    let lease = order
        .lease()
        .map(|(_, lease)| lease)
        .ok_or_else(|| ApiError::internal("a terminated lease is not in its order"))?;
    Ok(Json(LeaseTerminated {
        order_id,
        line_id,
        order_status: order.status(),
        lease_status: lease.status.as_str().to_owned(),
        amount_due: money(lease.unpaid()),
        schedule: lease.instalments.iter().map(ScheduleEntry::of).collect(),
        position,
    }))
}
