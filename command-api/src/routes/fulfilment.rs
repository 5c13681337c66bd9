//! Per-vendor fulfilment of a confirmed order: sale parts are shipped then
//! delivered; rental lines are picked up then returned, settling the
//! deposit. When a vendor's whole part is done its net becomes available
//! for payout; damage withheld from a deposit is credited to the vendor.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{
    InventoryCommand, Order, OrderCommand, OrderEvent, OrderStatus, PartStatus, VendorCommand,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::earnings::credit_fulfilled_part;
use crate::application::pickup::pick_up_line;
use crate::auth::Role;
use crate::bus::Committed;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::orders::load_order;
use crate::routes::{deserialize_optional_money, money};
use crate::{AppState, CommandApp};

#[derive(Serialize, utoipa::ToSchema)]
pub struct PartChanged {
    order_id: Uuid,
    vendor_id: Uuid,
    #[schema(value_type = crate::schema::OrderStatus)]
    order_status: OrderStatus,
    position: i64,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct LineChanged {
    order_id: Uuid,
    line_id: Uuid,
    vendor_id: Uuid,
    #[schema(value_type = crate::schema::OrderStatus)]
    order_status: OrderStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    deposit_refunded: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    damage_withheld: Option<String>,
    /// A late return: the late fee, and the part of it the deposit did not
    /// cover, owed by the customer.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "20.00")]
    late_fee: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "0.00")]
    late_fee_owed: Option<String>,
    /// A return: what the line's cancellation policy refunded of the unused
    /// time of an early return (`0.00` otherwise), and that refund's id
    /// (the line's id) when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "12.00")]
    refund: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refund_id: Option<Uuid>,
    /// A pickup before the booked start: the extension back to the pickup
    /// time, what it costs, and until when it awaits payment.
    #[serde(skip_serializing_if = "Option::is_none")]
    adjustment_id: Option<Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "20.00")]
    amount_due: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    hold_expires_at: Option<DateTime<Utc>>,
    position: i64,
}

/// The order, if the principal may act for `vendor_id` on it.
async fn order_for_vendor(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    vendor_id: Uuid,
) -> Result<Order, ApiError> {
    context.principal.require(&[Role::Vendor, Role::Admin])?;
    context.principal.require_vendor_or_admin(vendor_id)?;
    load_order(app, &context.principal, order_id).await
}

/// Credits the vendor once its part of the order is fulfilled. Runs after
/// every fulfilment command, not only the one that finished the part, so a
/// retried request repairs a credit that a crash left out.
async fn credit_if_fulfilled(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    vendor_id: Uuid,
    committed: &Committed<Order>,
) -> Result<(i64, OrderStatus), ApiError> {
    let order = app
        .orders
        .load(&order_id.to_string(), &context.principal)
        .await?;
    let mut position = committed.position;
    let fulfilled_now = committed.events.iter().any(
        |e| matches!(&e.payload, OrderEvent::VendorPartFulfilled { vendor_id: v, .. } if *v == vendor_id),
    );
    if fulfilled_now || order.part_status(vendor_id) == Some(PartStatus::Fulfilled) {
        if let Some(split) = order.priced().and_then(|p| p.vendor(vendor_id)) {
            // What the part made available: its net less what refunds took.
            let net = order.fulfilled_net(vendor_id).unwrap_or(split.net);
            let credited = credit_fulfilled_part(app, context, order_id, vendor_id, net).await?;
            position = position.max(credited);
        }
    }
    Ok((position, order.status()))
}

async fn part_command(
    app: AppState,
    context: CommandContext,
    order_id: Uuid,
    vendor_id: Uuid,
    command: OrderCommand,
    name: &str,
) -> Result<Json<PartChanged>, ApiError> {
    order_for_vendor(&app, &context, order_id, vendor_id).await?;
    let committed = app
        .orders
        .execute(&order_id.to_string(), command, &context, name)
        .await?;
    let (position, order_status) =
        credit_if_fulfilled(&app, &context, order_id, vendor_id, &committed).await?;
    Ok(Json(PartChanged {
        order_id,
        vendor_id,
        order_status,
        position,
    }))
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/vendors/{vendor_id}/ship", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id"), ("vendor_id" = Uuid, Path, description = "Vendor id")), responses((status = 200, description = "The vendor's sale lines shipped", body = PartChanged)), security(("bearer" = [])))]
pub async fn ship(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id, vendor_id]): Ids<2>,
) -> Result<Json<PartChanged>, ApiError> {
    let command = OrderCommand::ShipPart {
        vendor_id,
        at: app.clock.now(),
    };
    part_command(app, context, order_id, vendor_id, command, "ShipPart").await
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/vendors/{vendor_id}/deliver", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id"), ("vendor_id" = Uuid, Path, description = "Vendor id")), responses((status = 200, description = "The vendor's sale lines delivered", body = PartChanged)), security(("bearer" = [])))]
pub async fn deliver(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id, vendor_id]): Ids<2>,
) -> Result<Json<PartChanged>, ApiError> {
    let command = OrderCommand::DeliverPart {
        vendor_id,
        at: app.clock.now(),
    };
    part_command(app, context, order_id, vendor_id, command, "DeliverPart").await
}

/// The order and the vendor of one of its lines, if the principal may act on it.
async fn order_for_line(
    app: &CommandApp,
    context: &CommandContext,
    order_id: Uuid,
    line_id: Uuid,
) -> Result<(Order, Uuid), ApiError> {
    context.principal.require(&[Role::Vendor, Role::Admin])?;
    let order = load_order(app, &context.principal, order_id).await?;
    let vendor_id = order
        .line_vendor(line_id)
        .ok_or_else(|| ApiError::NotFound("line".to_owned()))?;
    context.principal.require_vendor_or_admin(vendor_id)?;
    Ok((order, vendor_id))
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/lines/{line_id}/pickup", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id"), ("line_id" = Uuid, Path, description = "Rental line id")), responses((status = 200, description = "Rental line picked up; before its booked start the line is extended back to the pickup (`adjustment_id`, `amount_due`), or 409 `unavailable` when those hours are taken", body = LineChanged)), security(("bearer" = [])))]
pub async fn pick_up(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id, line_id]): Ids<2>,
) -> Result<Json<LineChanged>, ApiError> {
    let (_, vendor_id) = order_for_line(&app, &context, order_id, line_id).await?;
    let picked = pick_up_line(&app, &context, order_id, line_id).await?;
    let order = app
        .orders
        .load(&order_id.to_string(), &context.principal)
        .await?;
    let early = picked.early.as_ref();
    Ok(Json(LineChanged {
        order_id,
        line_id,
        vendor_id,
        order_status: order.status(),
        deposit_refunded: None,
        damage_withheld: None,
        late_fee: None,
        late_fee_owed: None,
        refund: None,
        refund_id: None,
        adjustment_id: early.map(|e| e.adjustment_id),
        amount_due: early.map(|e| money(e.amount_due)),
        hold_expires_at: early.and_then(|e| e.hold_expires_at),
        position: picked.position,
    }))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReturnLine {
    returned_at: Option<DateTime<Utc>>,
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "45.00")]
    damage_withheld: Option<Decimal>,
}

#[utoipa::path(post, path = "/v1/orders/{order_id}/lines/{line_id}/return", tag = "commands", params(("order_id" = Uuid, Path, description = "Order id"), ("line_id" = Uuid, Path, description = "Rental line id")), request_body(content = Option<ReturnLine>, description = "Optional return time and damage withheld"), responses((status = 200, description = "Rental line returned; the deposit minus `damage_withheld` is refunded", body = LineChanged)), security(("bearer" = [])))]
pub async fn return_line(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([order_id, line_id]): Ids<2>,
    ApiJson(body): ApiJson<ReturnLine>,
) -> Result<Json<LineChanged>, ApiError> {
    if let Some(returned_at) = body.returned_at {
        domain::check_in_range("returned_at", returned_at)
            .map_err(|e| ApiError::Validation(vec![e]))?;
    }
    let (order, vendor_id) = order_for_line(&app, &context, order_id, line_id).await?;
    let now = app.clock.now();
    let returned_at = body.returned_at.unwrap_or(now);
    let command = OrderCommand::ReturnLine {
        line_id,
        returned_at,
        damage_withheld: body.damage_withheld.unwrap_or(Decimal::ZERO),
        now,
    };
    let committed = app
        .orders
        .execute(&order_id.to_string(), command, &context, "ReturnLine")
        .await?;
    let mut position = committed.position;

    // The line as recorded: on a repeated request the first return stands.
    let after = app
        .orders
        .load(&order_id.to_string(), &context.principal)
        .await?;
    let line = order
        .line(line_id)
        .ok_or_else(|| ApiError::NotFound("line".to_owned()))?;
    let (hold_id, listing_id) = (line.hold_id, line.listing_id);
    let recorded = after
        .line_return(line_id)
        .ok_or_else(|| ApiError::internal("return recorded no LineReturned"))?;
    let (recorded_at, refunded, withheld) = (
        recorded.returned_at,
        recorded.deposit_refunded,
        recorded.damage_withheld,
    );
    let (late_fee, late_fee_owed) = (recorded.late_fee, recorded.late_fee_owed);
    let early_refund = recorded.refund;
    let returned = app
        .inventory
        .execute(
            &listing_id.to_string(),
            InventoryCommand::RecordReturn {
                hold_id,
                returned_at: recorded_at,
            },
            &context,
            "RecordReturn",
        )
        .await?;
    position = position.max(returned.position);
    if withheld > Decimal::ZERO {
        let credited = app
            .vendors
            .execute(
                &vendor_id.to_string(),
                VendorCommand::CreditDamage {
                    order_id,
                    line_id,
                    amount: withheld,
                },
                &context,
                "CreditDamage",
            )
            .await?;
        position = position.max(credited.position);
    }
    // The late fee's part taken from the deposit is the vendor's now; the
    // rest stays owed (a receivable in the ledger).
    let from_deposit = late_fee - late_fee_owed;
    if from_deposit > Decimal::ZERO {
        let credited = app
            .vendors
            .execute(
                &vendor_id.to_string(),
                VendorCommand::CreditLateFee {
                    order_id,
                    line_id,
                    amount: from_deposit,
                },
                &context,
                "CreditLateFee",
            )
            .await?;
        position = position.max(credited.position);
    }
    let (credited, order_status) =
        credit_if_fulfilled(&app, &context, order_id, vendor_id, &committed).await?;
    Ok(Json(LineChanged {
        order_id,
        line_id,
        vendor_id,
        order_status,
        deposit_refunded: Some(money(refunded)),
        damage_withheld: Some(money(withheld)),
        late_fee: Some(money(late_fee)),
        late_fee_owed: Some(money(late_fee_owed)),
        refund: Some(money(early_refund)),
        refund_id: (early_refund > Decimal::ZERO).then_some(line_id),
        adjustment_id: None,
        amount_due: None,
        hold_expires_at: None,
        position: position.max(credited),
    }))
}
