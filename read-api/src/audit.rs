//! `GET /v1/audit/verify?from=&to=` (auditor, admin): the `audit` crate's
//! verification [`Report`] over the whole log or a position range.

use audit::{verify_with, Report};
use axum::extract::State;
use axum::Json;
use ledger_http::extract::ApiQuery;
use ledger_http::{ApiError, Principal, Role};
use serde::Deserialize;

use crate::ReadState;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    from: Option<i64>,
    to: Option<i64>,
}

/// `GET /v1/audit/verify?from=&to=`
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", params(VerifyParams), responses((status = 200, description = "The verification report", body = audit::Report)), security(("bearer" = [])))]
pub async fn verify_route(
    State(app): State<ReadState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<VerifyParams>,
) -> Result<Json<Report>, ApiError> {
    principal.require(&[Role::Auditor, Role::Admin])?;
    if params.from.is_some_and(|from| from < 0) {
        return Err(ledger_http::invalid("from", "must not be negative"));
    }
    if let (Some(from), Some(to)) = (params.from, params.to) {
        if to < from {
            return Err(ledger_http::invalid("to", "must not be before from"));
        }
    }
    let report = verify_with(
        &app.pool,
        app.audit_public_key.as_ref(),
        params.from,
        params.to,
    )
    .await?;
    Ok(Json(report))
}
