//! `/v1/webhook-endpoints`: a vendor registers endpoints for its own
//! orders' events, an admin for every event; the owner or an admin lists,
//! deletes, rotates the secret, reads the delivery log and redelivers.

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use chrono::{DateTime, Utc};
use ledger_http::extract::{ApiJson, ApiQuery, Ids};
use ledger_http::{ApiError, Principal, Role};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::AppState;

const MAX_LIMIT: i64 = 500;
const DEFAULT_LIMIT: i64 = 50;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// `http(s)` URL; internal addresses are refused.
    url: String,
    /// Event types to receive (`OrderPlaced`, …); `*` for all.
    event_types: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointCreated {
    endpoint_id: Uuid,
    /// Signs every delivery (`Ledger-Signature`); shown only here and on rotation.
    secret: String,
    url: String,
    event_types: Vec<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointView {
    endpoint_id: Uuid,
    /// The vendor whose order events it receives; absent: every event.
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor_id: Option<Uuid>,
    url: String,
    event_types: Vec<String>,
    created_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointPage {
    items: Vec<EndpointView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SecretRotated {
    endpoint_id: Uuid,
    secret: String,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct EndpointDeleted {
    endpoint_id: Uuid,
    deleted: bool,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryView {
    delivery_id: Uuid,
    event_id: Uuid,
    event_type: String,
    position: i64,
    /// `pending`, `delivered` or `failed`.
    status: String,
    attempts: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_status_code: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_error: Option<String>,
    next_attempt_at: DateTime<Utc>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    items: Vec<DeliveryView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Redelivery {
    delivery_id: Uuid,
    status: String,
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    limit: Option<i64>,
    cursor: Option<String>,
}

fn page_of(params: &PageParams) -> Result<(i64, Option<Uuid>), ApiError> {
    let limit = match params.limit {
        None => DEFAULT_LIMIT,
        Some(n) if (1..=MAX_LIMIT).contains(&n) => n,
        Some(_) => {
            return Err(ledger_http::invalid(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ))
        }
    };
    let cursor = match params.cursor.as_deref() {
        None => None,
        Some(c) => Some(
            c.parse::<Uuid>()
                .map_err(|_| ledger_http::invalid("cursor", "must be a cursor from a page"))?,
        ),
    };
    Ok((limit, cursor))
}

fn new_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("whsec_{}", hex::encode(bytes))
}

/// The endpoint's owner (`None`: an admin's), when `principal` may manage it.
async fn managed(app: &AppState, principal: &Principal, endpoint_id: Uuid) -> Result<(), ApiError> {
    principal.require(&[Role::Vendor, Role::Admin])?;
    // Another tenant's endpoint is as unknown as a missing one.
    let owner: Option<Option<Uuid>> = sqlx::query_scalar(
        "SELECT vendor_id FROM webhook_endpoints
          WHERE endpoint_id = $1 AND deleted_at IS NULL AND tenant = $2",
    )
    .bind(endpoint_id)
    .bind(&principal.tenant)
    .fetch_optional(&app.pool)
    .await?;
    let Some(owner) = owner else {
        return Err(ApiError::NotFound("webhook endpoint".to_owned()));
    };
    match principal.role {
        Role::Admin => Ok(()),
        _ if owner.is_some() && owner == principal.vendor_id => Ok(()),
        _ => Err(ApiError::Forbidden(
            "this webhook endpoint belongs to someone else".to_owned(),
        )),
    }
}

#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks-out", request_body = NewEndpoint, responses((status = 201, description = "Registered; the secret is shown once", body = EndpointCreated)), security(("bearer" = [])))]
pub async fn create(
    State(app): State<AppState>,
    principal: Principal,
    ApiJson(body): ApiJson<NewEndpoint>,
) -> Result<(StatusCode, Json<EndpointCreated>), ApiError> {
    principal.require(&[Role::Vendor, Role::Admin])?;
    let vendor_id = match principal.role {
        Role::Vendor => Some(principal.vendor_id.ok_or_else(|| {
            ApiError::Forbidden("a vendor token must name its vendor_id".to_owned())
        })?),
        _ => None,
    };
    let url = super::urls::check(&body.url, &app.config.outbound)
        .map_err(|reason| ledger_http::invalid("url", reason))?;
    let event_types: Vec<String> = body
        .event_types
        .iter()
        .map(|t| t.trim().to_owned())
        .collect();
    if event_types.is_empty()
        || event_types.iter().any(|t| {
            t.is_empty()
                || t.len() > 100
                || !(t == "*" || t.chars().all(|c| c.is_ascii_alphanumeric()))
        })
    {
        return Err(ledger_http::invalid(
            "event_types",
            "must list event types (letters and digits) or `*`",
        ));
    }
    let endpoint_id = Uuid::now_v7();
    let secret = new_secret();
    sqlx::query(
        "INSERT INTO webhook_endpoints
            (endpoint_id, vendor_id, url, event_types, secret, created_at, tenant)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(endpoint_id)
    .bind(vendor_id)
    .bind(url.as_str())
    .bind(&event_types)
    .bind(&secret)
    .bind(app.clock.now())
    .bind(&principal.tenant)
    .execute(&app.pool)
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(EndpointCreated {
            endpoint_id,
            secret,
            url: url.to_string(),
            event_types,
        }),
    ))
}

#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks-out", params(PageParams), responses((status = 200, description = "The caller's endpoints (an admin's: all)", body = EndpointPage)), security(("bearer" = [])))]
pub async fn list(
    State(app): State<AppState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<EndpointPage>, ApiError> {
    principal.require(&[Role::Vendor, Role::Admin])?;
    let (limit, cursor) = page_of(&params)?;
    let all = principal.role == Role::Admin;
    let rows: Vec<EndpointRow> = sqlx::query_as(
        "SELECT endpoint_id, vendor_id, url, event_types, created_at FROM webhook_endpoints
          WHERE deleted_at IS NULL AND ($1 OR vendor_id = $2)
            AND ($3::uuid IS NULL OR endpoint_id > $3)
            AND tenant = $5
          ORDER BY endpoint_id LIMIT $4",
    )
    .bind(all)
    .bind(principal.vendor_id)
    .bind(cursor)
    .bind(limit + 1)
    .bind(&principal.tenant)
    .fetch_all(&app.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<EndpointView> = rows
        .into_iter()
        .take(limit as usize)
        .map(
            |(endpoint_id, vendor_id, url, event_types, created_at)| EndpointView {
                endpoint_id,
                vendor_id,
                url,
                event_types,
                created_at,
            },
        )
        .collect();
    let next_cursor = more
        .then(|| items.last().map(|e| e.endpoint_id.to_string()))
        .flatten();
    Ok(Json(EndpointPage { items, next_cursor }))
}

#[utoipa::path(delete, path = "/v1/webhook-endpoints/{endpoint_id}", tag = "webhooks-out", params(("endpoint_id" = Uuid, Path, description = "Endpoint id")), responses((status = 200, description = "Deleted: nothing more is delivered to it", body = EndpointDeleted)), security(("bearer" = [])))]
pub async fn delete(
    State(app): State<AppState>,
    principal: Principal,
    Ids([endpoint_id]): Ids<1>,
) -> Result<Json<EndpointDeleted>, ApiError> {
    managed(&app, &principal, endpoint_id).await?;
    sqlx::query("UPDATE webhook_endpoints SET deleted_at = $2 WHERE endpoint_id = $1")
        .bind(endpoint_id)
        .bind(app.clock.now())
        .execute(&app.pool)
        .await?;
    Ok(Json(EndpointDeleted {
        endpoint_id,
        deleted: true,
    }))
}

#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/rotate-secret", tag = "webhooks-out", params(("endpoint_id" = Uuid, Path, description = "Endpoint id")), responses((status = 200, description = "A new secret signs every delivery from now on", body = SecretRotated)), security(("bearer" = [])))]
pub async fn rotate_secret(
    State(app): State<AppState>,
    principal: Principal,
    Ids([endpoint_id]): Ids<1>,
) -> Result<Json<SecretRotated>, ApiError> {
    managed(&app, &principal, endpoint_id).await?;
    let secret = new_secret();
    sqlx::query("UPDATE webhook_endpoints SET secret = $2 WHERE endpoint_id = $1")
        .bind(endpoint_id)
        .bind(&secret)
        .execute(&app.pool)
        .await?;
    Ok(Json(SecretRotated {
        endpoint_id,
        secret,
    }))
}

/// Id, vendor, URL, event types and creation of an endpoint.
type EndpointRow = (Uuid, Option<Uuid>, String, Vec<String>, DateTime<Utc>);

type DeliveryRow = (
    Uuid,
    Uuid,
    String,
    i64,
    String,
    i32,
    Option<i32>,
    Option<String>,
    DateTime<Utc>,
);

#[utoipa::path(get, path = "/v1/webhook-endpoints/{endpoint_id}/deliveries", tag = "webhooks-out", params(("endpoint_id" = Uuid, Path, description = "Endpoint id"), PageParams), responses((status = 200, description = "The endpoint's deliveries, oldest first", body = DeliveryPage)), security(("bearer" = [])))]
pub async fn deliveries(
    State(app): State<AppState>,
    principal: Principal,
    Ids([endpoint_id]): Ids<1>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> Result<Json<DeliveryPage>, ApiError> {
    managed(&app, &principal, endpoint_id).await?;
    let (limit, cursor) = page_of(&params)?;
    let rows: Vec<DeliveryRow> = sqlx::query_as(
        "SELECT delivery_id, event_id, event_type, position, status, attempts,
                last_status_code, last_error, next_attempt_at
           FROM webhook_deliveries
          WHERE endpoint_id = $1 AND ($2::uuid IS NULL OR delivery_id > $2)
          ORDER BY delivery_id LIMIT $3",
    )
    .bind(endpoint_id)
    .bind(cursor)
    .bind(limit + 1)
    .fetch_all(&app.pool)
    .await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<DeliveryView> = rows
        .into_iter()
        .take(limit as usize)
        .map(
            |(delivery_id, event_id, event_type, position, status, attempts, code, error, next)| {
                DeliveryView {
                    delivery_id,
                    event_id,
                    event_type,
                    position,
                    status,
                    attempts,
                    last_status_code: code,
                    last_error: error,
                    next_attempt_at: next,
                }
            },
        )
        .collect();
    let next_cursor = more
        .then(|| items.last().map(|d| d.delivery_id.to_string()))
        .flatten();
    Ok(Json(DeliveryPage { items, next_cursor }))
}

#[utoipa::path(post, path = "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver", tag = "webhooks-out", params(("endpoint_id" = Uuid, Path, description = "Endpoint id"), ("delivery_id" = Uuid, Path, description = "Delivery id")), responses((status = 202, description = "Due again now, retried for another 24 h", body = Redelivery)), security(("bearer" = [])))]
pub async fn redeliver(
    State(app): State<AppState>,
    principal: Principal,
    Ids([endpoint_id, delivery_id]): Ids<2>,
) -> Result<(StatusCode, Json<Redelivery>), ApiError> {
    managed(&app, &principal, endpoint_id).await?;
    let now = app.clock.now();
    let updated = sqlx::query(
        "UPDATE webhook_deliveries
            SET status = 'pending', next_attempt_at = $3, retry_since = $3
          WHERE endpoint_id = $1 AND delivery_id = $2",
    )
    .bind(endpoint_id)
    .bind(delivery_id)
    .bind(now)
    .execute(&app.pool)
    .await?;
    if updated.rows_affected() == 0 {
        return Err(ApiError::NotFound("delivery".to_owned()));
    }
    Ok((
        StatusCode::ACCEPTED,
        Json(Redelivery {
            delivery_id,
            status: "pending".to_owned(),
        }),
    ))
}
