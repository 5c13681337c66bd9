//! One aggregate's stream and its state at a point in time (API.md
//! "Queries"):
//!
//! - `GET /v1/aggregates/{type}/{id}/events`: its events in sequence order;
//! - `GET /v1/aggregates/{type}/{id}/state?as_of_sequence=|as_of=`: the
//!   domain aggregate rebuilt from its events up to that point, the way the
//!   command side loads it (upcast, deserialised, applied in order).
//!
//! One aggregate's events commit in sequence order (a sequence is taken
//! only once the one before it is committed), so what is read here is
//! always a whole prefix of its stream; no horizon is needed.

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use domain::{Inventory, Listing, Order, Vendor};
use futures::TryStreamExt;
use ledger_http::extract::ApiQuery;
use ledger_http::{ApiError, Principal};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

use event_log::statements::reads;

use crate::events::{EventView, READERS};
use crate::ReadState;

/// The aggregate types of the log.
fn known_type(aggregate_type: &str) -> Result<(), ApiError> {
    if event_log::Aggregate::of(aggregate_type).is_some() {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!(
            "aggregate type `{aggregate_type}`"
        )))
    }
}

fn path(path: Result<Path<(String, String)>, PathRejection>) -> Result<(String, String), ApiError> {
    let Path((aggregate_type, aggregate_id)) =
        path.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    known_type(&aggregate_type)?;
    // No aggregate id holds a NUL (PostgreSQL cannot store one): unknown.
    if !ledger_http::extract::is_storable_text(&aggregate_id) {
        return Err(ApiError::NotFound(format!("{aggregate_type} with that id")));
    }
    Ok((aggregate_type, aggregate_id))
}

fn not_found(aggregate_type: &str, aggregate_id: &str) -> ApiError {
    ApiError::NotFound(format!("{aggregate_type} `{aggregate_id}`"))
}

/// Another tenant's aggregate is 404, like one without events (API.md
/// "Tenants": no existence leak).
async fn in_tenant(
    app: &ReadState,
    principal: &Principal,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<(), ApiError> {
    match reads::tenant_of(&app.pool, aggregate_type, aggregate_id).await? {
        Some(tenant) if principal.reaches(&tenant) => Ok(()),
        _ => Err(not_found(aggregate_type, aggregate_id)),
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AggregateEvents {
    aggregate_type: String,
    aggregate_id: String,
    events: Vec<EventView>,
}

/// `GET /v1/aggregates/{type}/{id}/events`.
#[utoipa::path(get, path = "/v1/aggregates/{aggregate_type}/{aggregate_id}/events", tag = "events", params(("aggregate_type" = String, Path, description = "`Vendor`, `Listing`, `Inventory` or `Order`"), ("aggregate_id" = String, Path, description = "The aggregate id")), responses((status = 200, description = "The stream of one aggregate", body = AggregateEvents)), security(("bearer" = [])))]
pub async fn events(
    State(app): State<ReadState>,
    principal: Principal,
    raw_path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<AggregateEvents>, ApiError> {
    principal.require(READERS)?;
    let (aggregate_type, aggregate_id) = path(raw_path)?;
    in_tenant(&app, &principal, &aggregate_type, &aggregate_id).await?;
    let linked = reads::of_aggregate(&app.pool, &aggregate_type, &aggregate_id).await?;
    if linked.is_empty() {
        return Err(not_found(&aggregate_type, &aggregate_id));
    }
    let mut events: Vec<EventView> = linked.into_iter().map(EventView::new).collect();
    crate::personal::reveal_views(&app, &mut events).await?;
    Ok(Json(AggregateEvents {
        aggregate_type,
        aggregate_id,
        events,
    }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StateParams {
    as_of_sequence: Option<i64>,
    as_of: Option<DateTime<Utc>>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct AggregateState {
    aggregate_type: String,
    aggregate_id: String,
    /// The sequence of the last event applied.
    sequence: i64,
    /// Its global position and when it was recorded.
    position: i64,
    recorded_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    as_of: Option<DateTime<Utc>>,
    /// The aggregate as JSON, encoded once: a `Value` tree of an inventory
    /// with thousands of bookings would cost many times its text.
    #[schema(value_type = Object)]
    state: Box<serde_json::value::RawValue>,
}

/// `GET /v1/aggregates/{type}/{id}/state`.
#[utoipa::path(get, path = "/v1/aggregates/{aggregate_type}/{aggregate_id}/state", tag = "events", params(("aggregate_type" = String, Path, description = "`Vendor`, `Listing`, `Inventory` or `Order`"), ("aggregate_id" = String, Path, description = "The aggregate id"), StateParams), responses((status = 200, description = "The aggregate's state rebuilt up to that point", body = AggregateState)), security(("bearer" = [])))]
pub async fn state(
    State(app): State<ReadState>,
    principal: Principal,
    raw_path: Result<Path<(String, String)>, PathRejection>,
    ApiQuery(params): ApiQuery<StateParams>,
) -> Result<Json<AggregateState>, ApiError> {
    principal.require(READERS)?;
    let (aggregate_type, aggregate_id) = path(raw_path)?;
    in_tenant(&app, &principal, &aggregate_type, &aggregate_id).await?;
    let upto = match (params.as_of_sequence, params.as_of) {
        (Some(_), Some(_)) => {
            return Err(ledger_http::invalid(
                "as_of",
                "give as_of_sequence or as_of, not both",
            ))
        }
        (Some(sequence), None) if sequence < 0 => {
            return Err(ledger_http::invalid("as_of_sequence", "must be at least 0"))
        }
        (Some(sequence), None) => sequence,
        (None, as_of) => {
            if let Some(as_of) = as_of {
                domain::check_in_range("as_of", as_of)
                    .map_err(|e| ApiError::Validation(vec![e]))?;
            }
            // The last event recorded by then; the stream's prefix up to it.
            let last = reads::last_sequence_as_of(&app.pool, &aggregate_type, &aggregate_id, as_of)
                .await?;
            last.ok_or_else(|| not_found(&aggregate_type, &aggregate_id))?
        }
    };
    let rebuild = match event_log::Aggregate::of(&aggregate_type) {
        Some(event_log::Aggregate::Vendor) => rebuild::<Vendor>,
        Some(event_log::Aggregate::Listing) => rebuild::<Listing>,
        Some(event_log::Aggregate::Inventory) => rebuild::<Inventory>,
        Some(event_log::Aggregate::InvoiceBook) => rebuild::<domain::InvoiceBook>,
        Some(event_log::Aggregate::Plan) => rebuild::<domain::Plan>,
        Some(event_log::Aggregate::Subscription) => rebuild::<domain::Subscription>,
        Some(event_log::Aggregate::Tenant) => rebuild::<domain::Tenant>,
        Some(event_log::Aggregate::Order) | None => rebuild::<Order>,
    };
    let rebuilt = rebuild(
        app.pool.clone(),
        aggregate_type.clone(),
        aggregate_id.clone(),
        upto,
    )
    .await?
    .ok_or_else(|| not_found(&aggregate_type, &aggregate_id))?;
    // Personal fields of the state (a vendor's name, a cancellation's
    // reason) are opened like those of its events.
    let opener = crate::personal::opener_for_texts(&app, [rebuilt.state.get()])
        .await
        .map_err(crate::personal::problem)?;
    let state = opener.reveal_json_text(rebuilt.state.get());
    let state = serde_json::value::RawValue::from_string(state).map_err(ApiError::internal)?;
    Ok(Json(AggregateState {
        aggregate_type,
        aggregate_id,
        sequence: rebuilt.sequence,
        position: rebuilt.position,
        recorded_at: rebuilt.recorded_at,
        as_of: params.as_of,
        state,
    }))
}

struct Rebuilt {
    sequence: i64,
    position: i64,
    recorded_at: DateTime<Utc>,
    state: Box<serde_json::value::RawValue>,
}

type RebuildFuture =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<Option<Rebuilt>, ApiError>> + Send>>;

/// Applies the events with sequence ≤ `upto` to a fresh `A`, one row at a
/// time; `None` when there is none.
fn rebuild<A: Aggregate + 'static>(
    pool: PgPool,
    aggregate_type: String,
    aggregate_id: String,
    upto: i64,
) -> RebuildFuture {
    Box::pin(async move {
        let mut events = reads::of_aggregate_upto(&pool, &aggregate_type, &aggregate_id, upto);
        let mut aggregate = A::default();
        let mut last = None;
        while let Some(stored) = events.try_next().await? {
            let event: A::Event = stored.payload_as().map_err(|e| {
                let version = stored
                    .upcast()
                    .map_or(stored.event_version.clone(), |(v, _)| v);
                ApiError::internal(format!(
                    "event {} ({} {version}) does not decode: {e}",
                    stored.position, stored.event_type
                ))
            })?;
            aggregate.apply(event);
            last = Some((stored.sequence, stored.position, stored.recorded_at));
        }
        let Some((sequence, position, recorded_at)) = last else {
            return Ok(None);
        };
        let state = serde_json::value::to_raw_value(&aggregate).map_err(ApiError::internal)?;
        Ok(Some(Rebuilt {
            sequence,
            position,
            recorded_at,
            state,
        }))
    })
}
