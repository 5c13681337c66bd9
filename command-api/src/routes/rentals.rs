//! `PUT /v1/listings/{id}/schedule` and `/policies` (API.md "Rentals"): a rental listing's
//! opening hours and booking rules. The schedule is recorded on the
//! listing's Inventory, the aggregate that places holds, so every hold is
//! judged by the schedule in force when it is placed (new holds only).

use axum::extract::State;
use axum::Json;
use domain::schedule::{DateException, WeeklyHours};
use domain::{
    CancellationTier, DomainError, InventoryCommand, IsoDuration, ListingCommand, ListingTerms,
    Schedule, Tz,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::inventory;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::listings::owned_listing;
use crate::routes::{deserialize_optional_money, money};
use crate::AppState;
use rust_decimal::Decimal;

/// A listing's schedule. `time_zone` defaults to the deployment's
/// (`LEDGER_TIME_ZONE`); `weekly` absent means open all day every day.
/// Durations are ISO 8601 (`PT1H`, `P2D`; no years or months).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"time_zone": "Europe/Berlin",
    "weekly": [{"weekday": "mon", "start": "09:00", "end": "18:00"}],
    "exceptions": [{"date": "2030-12-25", "closed": true}],
    "min_duration": "PT1H", "slot_step": "PT1H", "buffer": "PT30M", "min_notice": "PT2H", "max_advance": "P90D"}))]
pub struct PutSchedule {
    #[schema(value_type = Option<String>, example = "Europe/Berlin")]
    time_zone: Option<Tz>,
    /// `[{weekday: "mon".."sun", start: "09:00", end: "18:00"}]`, local times.
    #[schema(value_type = Option<Vec<Object>>)]
    weekly: Option<Vec<WeeklyHours>>,
    /// `[{date: "2030-12-25", closed: true} | {date, hours: [{start, end}]}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    exceptions: Vec<DateException>,
    #[schema(value_type = Option<String>, example = "PT1H")]
    min_duration: Option<IsoDuration>,
    #[schema(value_type = Option<String>, example = "P14D")]
    max_duration: Option<IsoDuration>,
    /// Bookings start and end on this grid from local midnight.
    #[schema(value_type = Option<String>, example = "PT1H")]
    slot_step: Option<IsoDuration>,
    /// Turnover time kept free after each booking.
    #[schema(value_type = Option<String>, example = "PT30M")]
    buffer: Option<IsoDuration>,
    #[schema(value_type = Option<String>, example = "PT2H")]
    min_notice: Option<IsoDuration>,
    /// How far ahead a booking may end.
    #[schema(value_type = Option<String>, example = "P90D")]
    max_advance: Option<IsoDuration>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ScheduleSet {
    listing_id: Uuid,
    position: i64,
}

#[utoipa::path(put, path = "/v1/listings/{listing_id}/schedule", tag = "commands", params(("listing_id" = Uuid, Path, description = "Rental listing id")), request_body = PutSchedule, responses((status = 200, description = "Schedule set; it applies to new holds only", body = ScheduleSet)), security(("bearer" = [])))]
pub async fn put_schedule(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id]): Ids<1>,
    ApiJson(body): ApiJson<PutSchedule>,
) -> Result<Json<ScheduleSet>, ApiError> {
    let listing = owned_listing(&app, &context, listing_id).await?;
    let Some(ListingTerms::Rental { pricing_unit, .. }) = listing.terms() else {
        return Err(DomainError::invalid_state("schedules apply to rental listings only").into());
    };
    let schedule = Schedule {
        time_zone: match body.time_zone {
            Some(zone) => zone,
            None => app.tenant_terms(&context.principal).await?.time_zone,
        },
        weekly: body.weekly,
        exceptions: body.exceptions,
        min_duration: body.min_duration,
        max_duration: body.max_duration,
        slot_step: body.slot_step,
        buffer: body.buffer,
        min_notice: body.min_notice,
        max_advance: body.max_advance,
    };
    let command = InventoryCommand::SetSchedule {
        schedule,
        pricing_unit: *pricing_unit,
    };
    let committed =
        inventory::run(&app, &context, &listing, listing_id, command, "SetSchedule").await?;
    Ok(Json(ScheduleSet {
        listing_id,
        position: committed.position,
    }))
}

/// A rental listing's policies (API.md "Rentals"); they apply to orders
/// placed from now on, and replace the listing's earlier ones (a field left
/// out is none). `late_fee_per_unit` is charged per started pricing unit
/// late, per unit of quantity, from the deposit first.
/// `cancellation_policy` tiers refund `refund_percent` of a line's price
/// when cancelled (or shortened) at least `notice` before its start; the
/// longest notice given applies, none given refunds nothing; no tiers: a
/// full refund until fulfilment.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"late_fee_per_unit": "20.00",
    "cancellation_policy": [{"notice": "P2D", "refund_percent": 100}, {"notice": "P1D", "refund_percent": 50}]}))]
pub struct PutPolicies {
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "20.00")]
    late_fee_per_unit: Option<Decimal>,
    /// `[{notice: "P2D", refund_percent: 100}, …]` (notice ISO 8601).
    #[serde(default)]
    #[schema(value_type = Option<Vec<CancellationTierSchema>>)]
    cancellation_policy: Option<Vec<CancellationTier>>,
}

/// One refund tier of a cancellation policy.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CancellationTierSchema {
    /// ISO 8601 duration before the start, e.g. `P2D`.
    #[schema(example = "P2D")]
    notice: String,
    #[schema(minimum = 0, maximum = 100, example = 100)]
    refund_percent: u8,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PoliciesSet {
    listing_id: Uuid,
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "20.00")]
    late_fee_per_unit: String,
    #[schema(value_type = Vec<CancellationTierSchema>)]
    cancellation_policy: Vec<CancellationTier>,
    position: i64,
}

#[utoipa::path(put, path = "/v1/listings/{listing_id}/policies", tag = "commands", params(("listing_id" = Uuid, Path, description = "Rental listing id")), request_body = PutPolicies, responses((status = 200, description = "Policies set; they apply to new orders only", body = PoliciesSet)), security(("bearer" = [])))]
pub async fn put_policies(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id]): Ids<1>,
    ApiJson(body): ApiJson<PutPolicies>,
) -> Result<Json<PoliciesSet>, ApiError> {
    owned_listing(&app, &context, listing_id).await?;
    let late_fee_per_unit = body.late_fee_per_unit.unwrap_or(Decimal::ZERO);
    let cancellation_policy = body.cancellation_policy.unwrap_or_default();
    let committed = app
        .listings
        .execute(
            &listing_id.to_string(),
            ListingCommand::SetPolicies {
                late_fee_per_unit,
                cancellation_policy: cancellation_policy.clone(),
            },
            &context,
            "SetPolicies",
        )
        .await?;
    Ok(Json(PoliciesSet {
        listing_id,
        late_fee_per_unit: money(late_fee_per_unit),
        cancellation_policy,
        position: committed.position,
    }))
}
