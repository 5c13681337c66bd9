//! `POST /v1/tenants`, `GET` and `PATCH /v1/tenants/{slug}` (API.md
//! "Tenants"): the platform admin's. A tenant's settings replace the
//! deployment's defaults for its new orders. The answer is the Tenant
//! aggregate itself, read on the command side: a tenant's settings decide
//! its commands, so they are never served stale.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use domain::{DomainError, IsoDuration, Tenant, TenantCommand, TenantSettings, Tz};
use serde::{Deserialize, Serialize};

use crate::application::terms::TenantTerms;
use crate::auth::{Principal, Role};
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::AppState;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTenant {
    /// 1 to 40 of `a-z`, `0-9`, `-`; the `tenant` claim of its tokens.
    #[schema(pattern = r"^[a-z0-9][a-z0-9-]{0,39}$", example = "garage-north")]
    slug: String,
    #[schema(max_length = 200, example = "Garage North")]
    name: String,
    #[schema(pattern = r"^[A-Z]{3}$", example = "EUR")]
    currency: String,
    /// Sales tax on new orders, a fraction (`"0.21"`).
    #[schema(example = "0.21")]
    tax_rate: Option<String>,
    /// The platform's fee on vendors' sales, a fraction (`"0.08"`).
    #[schema(example = "0.08")]
    platform_fee_rate: Option<String>,
    /// How long an unpaid order's holds last, ISO 8601 (`PT15M`).
    #[schema(value_type = Option<String>, example = "PT15M")]
    hold_ttl: Option<IsoDuration>,
    /// IANA time zone of rental listings without a schedule of their own.
    #[schema(value_type = Option<String>, example = "Europe/Berlin")]
    time_zone: Option<Tz>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeTenant {
    #[schema(max_length = 200)]
    name: Option<String>,
    #[schema(pattern = r"^[A-Z]{3}$", example = "EUR")]
    currency: Option<String>,
    /// Sales tax on new orders, a fraction (`"0.21"`).
    #[schema(example = "0.21")]
    tax_rate: Option<String>,
    /// The platform's fee on vendors' sales, a fraction (`"0.08"`).
    #[schema(example = "0.08")]
    platform_fee_rate: Option<String>,
    /// How long an unpaid order's holds last, ISO 8601 (`PT15M`).
    #[schema(value_type = Option<String>, example = "PT15M")]
    hold_ttl: Option<IsoDuration>,
    /// IANA time zone of rental listings without a schedule of their own.
    #[schema(value_type = Option<String>, example = "Europe/Berlin")]
    time_zone: Option<Tz>,
}

/// The settings a body names; each absent keeps the deployment's default
/// (or, in a change, the tenant's current value).
fn settings(
    currency: Option<String>,
    tax_rate: Option<String>,
    platform_fee_rate: Option<String>,
    hold_ttl: Option<IsoDuration>,
    time_zone: Option<Tz>,
) -> Result<TenantSettings, ApiError> {
    let rate = |field: &str, text: Option<String>| {
        text.map(|t| crate::routes::parse_rate(field, t.trim()))
            .transpose()
    };
    Ok(TenantSettings {
        currency,
        tax_rate: rate("tax_rate", tax_rate)?,
        platform_fee_rate: rate("platform_fee_rate", platform_fee_rate)?,
        hold_ttl,
        time_zone,
    })
}

/// A tenant with the settings its new orders get (its own, else the
/// deployment's).
#[derive(Serialize, utoipa::ToSchema)]
pub struct TenantView {
    slug: String,
    name: String,
    currency: String,
    #[schema(example = "0.21")]
    tax_rate: String,
    #[schema(example = "0.08")]
    platform_fee_rate: String,
    #[schema(example = "PT15M")]
    hold_ttl: String,
    #[schema(example = "Europe/Berlin")]
    time_zone: String,
    created_at: Option<DateTime<Utc>>,
    /// Global position of the tenant's last change, for reads after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    position: Option<i64>,
}

impl TenantView {
    fn of(app: &AppState, slug: &str, tenant: &Tenant, position: Option<i64>) -> Self {
        let terms = TenantTerms::of(&app.config, tenant.settings());
        let ttl = i64::try_from(terms.hold_ttl.as_secs()).unwrap_or(i64::MAX);
        Self {
            slug: slug.to_owned(),
            name: tenant.name().to_owned(),
            currency: terms.currency,
            tax_rate: terms.rates.tax_rate.normalize().to_string(),
            platform_fee_rate: terms.rates.platform_fee_rate.normalize().to_string(),
            hold_ttl: IsoDuration::from_seconds(ttl).to_string(),
            time_zone: terms.time_zone.name().to_owned(),
            created_at: tenant.created_at(),
            position,
        }
    }
}

/// The platform admin's context, acting in the tenant it manages (so the
/// tenant's events are that tenant's, in its exports).
fn managing(context: CommandContext, slug: &str) -> Result<CommandContext, ApiError> {
    context.principal.require(&[Role::PlatformAdmin])?;
    let principal = context.principal.clone().in_tenant(slug);
    Ok(CommandContext {
        principal,
        ..context
    })
}

fn checked_slug(slug: &str) -> Result<(), ApiError> {
    if !ledger_http::is_tenant_slug(slug) {
        return Err(crate::error::invalid(
            "slug",
            "must be 1 to 40 of a-z, 0-9 and '-', not starting with '-'",
        ));
    }
    if slug == ledger_http::DEFAULT_TENANT {
        // The default tenant's settings are the deployment's own.
        return Err(DomainError::AlreadyExists { what: "tenant" }.into());
    }
    Ok(())
}

#[utoipa::path(post, path = "/v1/tenants", tag = "commands", request_body = CreateTenant, responses((status = 201, description = "Tenant created", body = TenantView)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    context: CommandContext,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    let context = managing(context, &body.slug)?;
    checked_slug(&body.slug)?;
    let settings = settings(
        Some(body.currency),
        body.tax_rate,
        body.platform_fee_rate,
        body.hold_ttl,
        body.time_zone,
    )?;
    let command = TenantCommand::Create {
        slug: body.slug.clone(),
        name: body.name,
        settings,
        at: app.clock.now(),
    };
    let committed = app
        .tenants
        .execute(&body.slug, command, &context, "CreateTenant")
        .await?;
    let tenant = app.tenants.load(&body.slug, &context.principal).await?;
    Ok((
        StatusCode::CREATED,
        Json(TenantView::of(
            &app,
            &body.slug,
            &tenant,
            Some(committed.position),
        )),
    ))
}

#[utoipa::path(get, path = "/v1/tenants/{slug}", tag = "commands", params(("slug" = String, Path, description = "Tenant slug")), responses((status = 200, description = "The tenant and its settings", body = TenantView)), security(("bearer" = [])))]
pub async fn get(
    State(app): State<AppState>,
    principal: Principal,
    Path(slug): Path<String>,
) -> Result<Json<TenantView>, ApiError> {
    // Its own admin may read its settings; no one else learns it exists.
    let allowed = principal.role == Role::PlatformAdmin
        || (principal.role == Role::Admin && principal.tenant == slug);
    if !allowed {
        principal.require(&[Role::PlatformAdmin, Role::Admin])?;
        return Err(DomainError::not_found("tenant").into());
    }
    if !ledger_http::is_tenant_slug(&slug) {
        return Err(DomainError::not_found("tenant").into());
    }
    let tenant = app
        .tenants
        .load_any_tenant(&slug)
        .await
        .map_err(ApiError::from)?
        .aggregate;
    if !tenant.exists() {
        return Err(DomainError::not_found("tenant").into());
    }
    Ok(Json(TenantView::of(&app, &slug, &tenant, None)))
}

#[utoipa::path(patch, path = "/v1/tenants/{slug}", tag = "commands", params(("slug" = String, Path, description = "Tenant slug")), request_body = ChangeTenant, responses((status = 200, description = "The tenant with its new settings (for orders placed from now on)", body = TenantView)), security(("bearer" = [])))]
pub async fn change(
    State(app): State<AppState>,
    context: CommandContext,
    Path(slug): Path<String>,
    ApiJson(body): ApiJson<ChangeTenant>,
) -> Result<Json<TenantView>, ApiError> {
    if !ledger_http::is_tenant_slug(&slug) {
        context.principal.require(&[Role::PlatformAdmin])?;
        return Err(DomainError::not_found("tenant").into());
    }
    let context = managing(context, &slug)?;
    let settings = settings(
        body.currency,
        body.tax_rate,
        body.platform_fee_rate,
        body.hold_ttl,
        body.time_zone,
    )?;
    let command = TenantCommand::ChangeSettings {
        name: body.name,
        settings,
        at: app.clock.now(),
    };
    let committed = app
        .tenants
        .execute(&slug, command, &context, "ChangeTenantSettings")
        .await?;
    let tenant = app.tenants.load(&slug, &context.principal).await?;
    Ok(Json(TenantView::of(
        &app,
        &slug,
        &tenant,
        Some(committed.position),
    )))
}
