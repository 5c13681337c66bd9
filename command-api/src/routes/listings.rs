//! `POST /v1/listings` and the commands on one listing: publish, archive,
//! price, stock or units, blackouts. Prices and status live in the Listing
//! aggregate; units, stock and blackouts in the listing's Inventory.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{
    Capacity, FieldError, InventoryCommand, Listing, ListingCommand, ListingKind, ListingStatus,
    ListingTerms, Period, PricingUnit,
};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::application::inventory::{self, capacity_of};
use crate::auth::Role;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::{ApiJson, Ids};
use crate::routes::{deserialize_optional_money, money};
use crate::{AppState, CommandApp};

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateListing {
    vendor_id: Option<Uuid>,
    title: String,
    #[serde(default)]
    description: String,
    category: String,
    #[schema(value_type = crate::schema::ListingKind)]
    kind: ListingKind,
    #[schema(value_type = Option<crate::schema::PricingUnit>)]
    pricing_unit: Option<PricingUnit>,
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "45.00")]
    price_per_unit: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "45.00")]
    deposit: Option<Decimal>,
    #[schema(minimum = 1, maximum = 100_000)]
    units: Option<u32>,
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "45.00")]
    unit_price: Option<Decimal>,
    #[schema(maximum = 10_000_000)]
    stock: Option<u32>,
}

impl CreateListing {
    /// The terms for the listing's kind; fields of the other kind are refused.
    fn terms(&self) -> Result<ListingTerms, ApiError> {
        let mut errors = Vec::new();
        let mut required = |field: &str, present: bool| {
            if !present {
                errors.push(FieldError::new(field, "is required for this kind"));
            }
        };
        let mut refused = Vec::new();
        let terms = match self.kind {
            ListingKind::Rental => {
                required("pricing_unit", self.pricing_unit.is_some());
                required("price_per_unit", self.price_per_unit.is_some());
                required("units", self.units.is_some());
                if self.unit_price.is_some() {
                    refused.push("unit_price");
                }
                if self.stock.is_some() {
                    refused.push("stock");
                }
                ListingTerms::Rental {
                    pricing_unit: self.pricing_unit.unwrap_or(PricingUnit::Day),
                    price_per_unit: self.price_per_unit.unwrap_or_default(),
                    deposit: self.deposit.unwrap_or_default(),
                    units: self.units.unwrap_or_default(),
                }
            }
            ListingKind::Sale => {
                required("unit_price", self.unit_price.is_some());
                required("stock", self.stock.is_some());
                for (field, present) in [
                    ("pricing_unit", self.pricing_unit.is_some()),
                    ("price_per_unit", self.price_per_unit.is_some()),
                    ("deposit", self.deposit.is_some()),
                    ("units", self.units.is_some()),
                ] {
                    if present {
                        refused.push(field);
                    }
                }
                ListingTerms::Sale {
                    unit_price: self.unit_price.unwrap_or_default(),
                    stock: self.stock.unwrap_or_default(),
                }
            }
        };
        errors.extend(
            refused
                .into_iter()
                .map(|field| FieldError::new(field, "does not apply to this kind")),
        );
        if errors.is_empty() {
            Ok(terms)
        } else {
            Err(ApiError::Validation(errors))
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ListingCreated {
    listing_id: Uuid,
    vendor_id: Uuid,
    #[schema(value_type = crate::schema::ListingStatus)]
    status: ListingStatus,
    position: i64,
}

#[utoipa::path(post, path = "/v1/listings", tag = "commands", request_body = CreateListing, responses((status = 201, description = "Listing created as a draft", body = ListingCreated)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    context: CommandContext,
    ApiJson(body): ApiJson<CreateListing>,
) -> Result<(StatusCode, Json<ListingCreated>), ApiError> {
    let principal = &context.principal;
    let vendor_id = match principal.role {
        Role::Vendor => {
            let own = principal
                .vendor_id
                .ok_or_else(|| ApiError::Forbidden("vendor token without vendor_id".to_owned()))?;
            if body.vendor_id.is_some_and(|v| v != own) {
                return Err(ApiError::Forbidden(
                    "a vendor may only create its own listings".to_owned(),
                ));
            }
            own
        }
        Role::Admin => body
            .vendor_id
            .ok_or_else(|| crate::error::invalid("vendor_id", "is required for an admin"))?,
        _ => principal
            .require(&[Role::Vendor, Role::Admin])
            .map(|_| Uuid::nil())?,
    };
    let terms = body.terms()?;
    let vendor = app
        .vendors
        .load(&vendor_id.to_string(), &context.principal)
        .await?;
    if !vendor.is_registered() {
        return Err(crate::error::invalid("vendor_id", "no such vendor"));
    }

    let listing_id = Uuid::now_v7();
    let capacity = capacity_of(&terms);
    let command = ListingCommand::Create {
        listing_id,
        vendor_id,
        title: body.title,
        description: body.description,
        category: body.category,
        terms,
    };
    app.listings
        .execute(&listing_id.to_string(), command, &context, "CreateListing")
        .await?;
    let committed = app
        .inventory
        .execute(
            &listing_id.to_string(),
            InventoryCommand::Initialize {
                listing_id,
                capacity,
            },
            &context,
            "InitializeInventory",
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(ListingCreated {
            listing_id,
            vendor_id,
            status: ListingStatus::Draft,
            position: committed.position,
        }),
    ))
}

/// Loads a listing and checks that the principal may change it.
pub(crate) async fn owned_listing(
    app: &CommandApp,
    context: &CommandContext,
    listing_id: Uuid,
) -> Result<Listing, ApiError> {
    context.principal.require(&[Role::Vendor, Role::Admin])?;
    let listing = app
        .listings
        .load(&listing_id.to_string(), &context.principal)
        .await?;
    let vendor_id = listing
        .vendor_id()
        .ok_or_else(|| ApiError::NotFound("listing".to_owned()))?;
    context.principal.require_vendor_or_admin(vendor_id)?;
    Ok(listing)
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ListingStatusChanged {
    listing_id: Uuid,
    #[schema(value_type = crate::schema::ListingStatus)]
    status: ListingStatus,
    position: i64,
}

async fn change_status(
    app: AppState,
    context: CommandContext,
    listing_id: Uuid,
    command: ListingCommand,
    name: &str,
) -> Result<Json<ListingStatusChanged>, ApiError> {
    owned_listing(&app, &context, listing_id).await?;
    let committed = app
        .listings
        .execute(&listing_id.to_string(), command, &context, name)
        .await?;
    let listing = app
        .listings
        .load(&listing_id.to_string(), &context.principal)
        .await?;
    Ok(Json(ListingStatusChanged {
        listing_id,
        status: listing.status(),
        position: committed.position,
    }))
}

#[utoipa::path(post, path = "/v1/listings/{listing_id}/publish", tag = "commands", params(("listing_id" = Uuid, Path, description = "Listing id")), responses((status = 200, description = "Listing published", body = ListingStatusChanged)), security(("bearer" = [])))]
pub async fn publish(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id]): Ids<1>,
) -> Result<Json<ListingStatusChanged>, ApiError> {
    change_status(
        app,
        context,
        listing_id,
        ListingCommand::Publish,
        "PublishListing",
    )
    .await
}

#[utoipa::path(post, path = "/v1/listings/{listing_id}/archive", tag = "commands", params(("listing_id" = Uuid, Path, description = "Listing id")), responses((status = 200, description = "Listing archived", body = ListingStatusChanged)), security(("bearer" = [])))]
pub async fn archive(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id]): Ids<1>,
) -> Result<Json<ListingStatusChanged>, ApiError> {
    change_status(
        app,
        context,
        listing_id,
        ListingCommand::Archive,
        "ArchiveListing",
    )
    .await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangePrice {
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "45.00")]
    price_per_unit: Option<Decimal>,
    #[serde(default, deserialize_with = "deserialize_optional_money")]
    #[schema(value_type = Option<String>, pattern = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,2})?$", max_length = 13, example = "45.00")]
    unit_price: Option<Decimal>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct PriceChanged {
    listing_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    price_per_unit: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(pattern = r"^-?[0-9]+\.[0-9]{2}$", example = "45.00")]
    unit_price: Option<String>,
    position: i64,
}

#[utoipa::path(post, path = "/v1/listings/{listing_id}/price", tag = "commands", params(("listing_id" = Uuid, Path, description = "Listing id")), request_body = ChangePrice, responses((status = 200, description = "Price changed", body = PriceChanged)), security(("bearer" = [])))]
pub async fn change_price(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id]): Ids<1>,
    ApiJson(body): ApiJson<ChangePrice>,
) -> Result<Json<PriceChanged>, ApiError> {
    let listing = owned_listing(&app, &context, listing_id).await?;
    let kind = listing
        .kind()
        .ok_or_else(|| ApiError::NotFound("listing".to_owned()))?;
    let (field, price) = match (kind, body.price_per_unit, body.unit_price) {
        (ListingKind::Rental, Some(price), None) => ("price_per_unit", price),
        (ListingKind::Sale, None, Some(price)) => ("unit_price", price),
        (ListingKind::Rental, _, _) => {
            return Err(crate::error::invalid(
                "price_per_unit",
                "a rental listing takes exactly `price_per_unit`",
            ))
        }
        (ListingKind::Sale, _, _) => {
            return Err(crate::error::invalid(
                "unit_price",
                "a sale listing takes exactly `unit_price`",
            ))
        }
    };
    let committed = app
        .listings
        .execute(
            &listing_id.to_string(),
            ListingCommand::ChangePrice { price },
            &context,
            "ChangePrice",
        )
        .await
        .map_err(|err| rename_field(err.into(), "price", field))?;
    let shown = Some(money(price));
    Ok(Json(PriceChanged {
        listing_id,
        price_per_unit: (kind == ListingKind::Rental)
            .then(|| shown.clone())
            .flatten(),
        unit_price: (kind == ListingKind::Sale).then_some(shown).flatten(),
        position: committed.position,
    }))
}

/// The domain names a field after its own command; the API after the body.
fn rename_field(err: ApiError, from: &str, to: &str) -> ApiError {
    match err {
        ApiError::Validation(errors) => ApiError::Validation(
            errors
                .into_iter()
                .map(|mut e| {
                    if e.field == from {
                        e.field = to.to_owned();
                    }
                    e
                })
                .collect(),
        ),
        other => other,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeStock {
    delta: Option<i64>,
    units: Option<u32>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct StockChanged {
    listing_id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    units: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    stock: Option<u32>,
    position: i64,
}

#[utoipa::path(post, path = "/v1/listings/{listing_id}/stock", tag = "commands", params(("listing_id" = Uuid, Path, description = "Listing id")), request_body = ChangeStock, responses((status = 200, description = "Stock or units changed (409 when it would undercut held or booked units)", body = StockChanged)), security(("bearer" = [])))]
pub async fn change_stock(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id]): Ids<1>,
    ApiJson(body): ApiJson<ChangeStock>,
) -> Result<Json<StockChanged>, ApiError> {
    let listing = owned_listing(&app, &context, listing_id).await?;
    let kind = listing
        .kind()
        .ok_or_else(|| ApiError::NotFound("listing".to_owned()))?;
    let command = match (kind, body.delta, body.units) {
        (ListingKind::Rental, None, Some(units)) => InventoryCommand::SetUnits {
            units,
            now: app.clock.now(),
        },
        (ListingKind::Sale, Some(delta), None) => InventoryCommand::AdjustStock { delta },
        (ListingKind::Rental, _, _) => {
            return Err(crate::error::invalid(
                "units",
                "a rental listing takes exactly `units`",
            ))
        }
        (ListingKind::Sale, _, _) => {
            return Err(crate::error::invalid(
                "delta",
                "a sale listing takes exactly `delta`",
            ))
        }
    };
    let committed =
        inventory::run(&app, &context, &listing, listing_id, command, "ChangeStock").await?;
    let inventory = app
        .inventory
        .load(&listing_id.to_string(), &context.principal)
        .await?;
    let (units, stock) = match inventory.capacity() {
        Some(Capacity::Rental { units }) => (Some(*units), None),
        Some(Capacity::Sale { .. }) => (None, inventory.free_stock()),
        None => (None, None),
    };
    Ok(Json(StockChanged {
        listing_id,
        units,
        stock,
        position: committed.position,
    }))
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddBlackout {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    units: Option<u32>,
    #[serde(default)]
    reason: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BlackoutAdded {
    blackout_id: Uuid,
    listing_id: Uuid,
    position: i64,
}

#[utoipa::path(post, path = "/v1/listings/{listing_id}/blackouts", tag = "commands", params(("listing_id" = Uuid, Path, description = "Listing id")), request_body = AddBlackout, responses((status = 201, description = "Blackout added (409 when booked units would not fit)", body = BlackoutAdded)), security(("bearer" = [])))]
pub async fn add_blackout(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id]): Ids<1>,
    ApiJson(body): ApiJson<AddBlackout>,
) -> Result<(StatusCode, Json<BlackoutAdded>), ApiError> {
    let listing = owned_listing(&app, &context, listing_id).await?;
    let period = Period::new(body.start, body.end).map_err(ApiError::from)?;
    let blackout_id = Uuid::now_v7();
    // Free text: sealed under the vendor's key (docs/PRIVACY.md).
    let vendor_id = listing
        .vendor_id()
        .ok_or_else(|| ApiError::NotFound("listing".to_owned()))?;
    let reason = match body.reason.as_str() {
        "" => domain::PersonalText::default(),
        text => app
            .personal
            .seal(&vendor_id.to_string(), text)
            .await
            .map_err(crate::bus::CommandError::from)?,
    };
    let command = InventoryCommand::AddBlackout {
        blackout_id,
        period,
        units: body.units,
        reason,
    };
    let committed =
        inventory::run(&app, &context, &listing, listing_id, command, "AddBlackout").await?;
    Ok((
        StatusCode::CREATED,
        Json(BlackoutAdded {
            blackout_id,
            listing_id,
            position: committed.position,
        }),
    ))
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct BlackoutRemoved {
    blackout_id: Uuid,
    listing_id: Uuid,
    position: i64,
}

#[utoipa::path(delete, path = "/v1/listings/{listing_id}/blackouts/{blackout_id}", tag = "commands", params(("listing_id" = Uuid, Path, description = "Listing id"), ("blackout_id" = Uuid, Path, description = "Blackout id")), responses((status = 200, description = "Blackout removed", body = BlackoutRemoved)), security(("bearer" = [])))]
pub async fn remove_blackout(
    State(app): State<AppState>,
    context: CommandContext,
    Ids([listing_id, blackout_id]): Ids<2>,
) -> Result<Json<BlackoutRemoved>, ApiError> {
    let listing = owned_listing(&app, &context, listing_id).await?;
    let command = InventoryCommand::RemoveBlackout { blackout_id };
    let committed = inventory::run(
        &app,
        &context,
        &listing,
        listing_id,
        command,
        "RemoveBlackout",
    )
    .await?;
    Ok(Json(BlackoutRemoved {
        blackout_id,
        listing_id,
        position: committed.position,
    }))
}
