//! `POST /v1/vendors` and `POST /v1/vendors/{id}/payouts`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use domain::{VendorCommand, VendorEvent};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Role;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::deserialize_money;
use crate::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterVendor {
    name: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct VendorRegistered {
    vendor_id: Uuid,
    position: i64,
}

#[utoipa::path(post, path = "/v1/vendors", tag = "commands", request_body = RegisterVendor, responses((status = 201, description = "Vendor registered", body = VendorRegistered)), security(("bearer" = [])))]
pub async fn register(
    State(app): State<AppState>,
    context: CommandContext,
    ApiJson(body): ApiJson<RegisterVendor>,
) -> Result<(StatusCode, Json<VendorRegistered>), ApiError> {
    context.principal.require(&[Role::Admin])?;
    let vendor_id = Uuid::now_v7();
    // Checked in clear, then sealed: the vendor is the data subject of
    // its name (docs/PRIVACY.md).
    let name = domain::vendor::check_name(&body.name).map_err(ApiError::from)?;
    let name = app
        .personal
        .seal(&vendor_id.to_string(), &name)
        .await
        .map_err(CommandError::from)?;
    let command = VendorCommand::Register {
        vendor_id,
        name,
        at: app.clock.now(),
    };
    let committed = app
        .vendors
        .execute(&vendor_id.to_string(), command, &context, "RegisterVendor")
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(VendorRegistered {
            vendor_id,
            position: committed.position,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestPayout {
    #[serde(deserialize_with = "deserialize_money")]
    #[schema(value_type = String, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "45.00")]
    amount: Decimal,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PayoutRecorded {
    payout_id: Uuid,
    vendor_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    amount: String,
    position: i64,
}

#[utoipa::path(post, path = "/v1/vendors/{vendor_id}/payouts", tag = "commands", params(("vendor_id" = Uuid, Path, description = "Vendor id")), request_body = RequestPayout, responses((status = 201, description = "Payout recorded", body = PayoutRecorded)), security(("bearer" = [])))]
pub async fn request_payout(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([vendor_id]): Ids<1>,
    ApiJson(body): ApiJson<RequestPayout>,
) -> Result<(StatusCode, Json<PayoutRecorded>), ApiError> {
    context.principal.require(&[Role::Admin])?;
    let payout_id = Uuid::now_v7();
    let command = VendorCommand::RequestPayout {
        payout_id,
        amount: body.amount,
        at: app.clock.now(),
    };
    let committed = app
        .vendors
        .execute(&vendor_id.to_string(), command, &context, "RequestPayout")
        .await?;
    let amount = committed
        .events
        .iter()
        .find_map(|e| match &e.payload {
            VendorEvent::PayoutRecorded { amount, .. } => Some(*amount),
            _ => None,
        })
        .unwrap_or(body.amount);
    Ok((
        StatusCode::CREATED,
        Json(PayoutRecorded {
            payout_id,
            vendor_id,
            amount: crate::routes::money(amount),
            position: committed.position,
        }),
    ))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetFeeRate {
    /// The platform fee rate of the vendor's new orders, a fraction.
    #[schema(
        pattern = r"^(0(\.[0-9]{1,4})?|1(\.0{1,4})?)$",
        max_length = 6,
        example = "0.08"
    )]
    rate: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct FeeRateSet {
    vendor_id: Uuid,
    #[schema(example = "0.08")]
    fee_rate: String,
    position: i64,
}

#[utoipa::path(post, path = "/v1/vendors/{vendor_id}/fee-rate", tag = "commands", params(("vendor_id" = Uuid, Path, description = "Vendor id")), request_body = SetFeeRate, responses((status = 200, description = "The vendor's fee rate, for orders placed from now on", body = FeeRateSet)), security(("bearer" = [])))]
pub async fn set_fee_rate(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([vendor_id]): Ids<1>,
    ApiJson(body): ApiJson<SetFeeRate>,
) -> Result<Json<FeeRateSet>, ApiError> {
    context.principal.require(&[Role::Admin])?;
    let rate = crate::routes::parse_rate("rate", body.rate.trim())?;
    let command = VendorCommand::SetFeeRate {
        rate,
        at: app.clock.now(),
    };
    let committed = app
        .vendors
        .execute(&vendor_id.to_string(), command, &context, "SetFeeRate")
        .await?;
    Ok(Json(FeeRateSet {
        vendor_id,
        fee_rate: rate.normalize().to_string(),
        position: committed.position,
    }))
}
