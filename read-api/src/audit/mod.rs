//! Tamper evidence (DESIGN.md "Event store"): the per-aggregate hash chain
//! kept by the database, signed seals over position ranges, and their
//! verification.
//!
//! - `chain`: the canonical content of an event and its hash, equal to
//!   what the `events_chain_hash` trigger stores;
//! - `seal`: a seal, its digest and signed encoding;
//! - `sealer`: the [`Sealer`] that writes seals up to the relay's position;
//! - `verify`: [`verify`], the first bad position and why ([`Report`]);
//! - `keys`: Ed25519 keys from hex, a development key.
//!
//! `GET /v1/audit/verify?from=&to=` (auditor, admin) answers the [`Report`].
//! Without a configured public key the route still checks every hash, seal
//! digest, seal position list and seal link, and says
//! `signatures_checked: false`: only a verifier holding the key can tell a
//! seal re-made by someone with database access from a genuine one.

pub mod chain;
pub mod keys;
pub mod report;
pub mod seal;
pub mod sealer;
pub mod verify;

pub use keys::{
    dev_signing_key, generate_signing_key, key_id, parse_signing_key, parse_verifying_key,
    signing_key_hex, verifying_key_hex, KeyError, DEV_KEY_ID,
};
pub use report::{Failure, FailureKind, Report};
pub use seal::Seal;
pub use sealer::Sealer;
pub use verify::{verify, verify_with};

use axum::extract::State;
use axum::Json;
use command_api::extract::ApiQuery;
use command_api::{ApiError, Principal, Role};
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
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", params(VerifyParams), responses((status = 200, description = "The verification report", body = report::Report)), security(("bearer" = [])))]
pub async fn verify_route(
    State(app): State<ReadState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<VerifyParams>,
) -> Result<Json<Report>, ApiError> {
    principal.require(&[Role::Auditor, Role::Admin])?;
    if params.from.is_some_and(|from| from < 0) {
        return Err(command_api::error::invalid("from", "must not be negative"));
    }
    if let (Some(from), Some(to)) = (params.from, params.to) {
        if to < from {
            return Err(command_api::error::invalid("to", "must not be before from"));
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
