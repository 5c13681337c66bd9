//! The auditors' routes (auditor, admin), over the `audit` crate:
//!
//! - `GET /v1/audit/verify?from=&to=&anchor_seal_id=&anchor_digest=`: the
//!   verification [`Report`] over the whole log or a range, checked also
//!   against the newest seal of the seal stream, the event stream's last
//!   event and, when given, a seal the auditor kept;
//! - `GET /v1/audit/seals?after=&limit=`: the seals, by number;
//! - `GET /v1/audit/proof?position=`: one event's Merkle inclusion proof.
//!
//! Per tenant (issue 15, API.md "Tenants"): an auditor verifies its own
//! tenant's events. The hash chains are per aggregate, so per tenant; the
//! seals are not: each seal's digest, signature and Merkle root cover every
//! event of its range, whichever tenant's. So:
//!
//! - verification walks the whole range (a tenant's events cannot be
//!   vouched for without the seals over them, nor the seals checked without
//!   every event they cover) and fails on any failure, which names a
//!   position and a kind, never another tenant's content; the report counts
//!   (`checked`, `unsealed`) and names (`tenant`) the auditor's tenant's
//!   events only;
//! - the seals are shown whole to every tenant's auditor: they hold
//!   positions, hashes' digests and signatures, no event content, and they
//!   are what a tenant's proofs fold into. What they tell of other tenants
//!   is that events exist at some positions (how busy the deployment is),
//!   which the shared position sequence tells anyway;
//! - an inclusion proof is only given for the auditor's tenant's events:
//!   another tenant's position answers 404, as for any other id. A proof's
//!   sibling hashes are other events' Merkle leaves (hashes, no content).

use audit::seal::{self, SealRecord};
use audit::{Anchors, KeptEvent, KeptSeal, Proof, Report};
use axum::extract::State;
use axum::Json;
use ledger_http::extract::ApiQuery;
use ledger_http::{ApiError, Principal, Role};
use ledger_nats::{seals, StreamSettings};
use serde::{Deserialize, Serialize};

use crate::{page, ReadState};

/// Who may audit.
const AUDITORS: &[Role] = &[Role::Auditor, Role::Admin];

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VerifyParams {
    from: Option<i64>,
    to: Option<i64>,
    /// The number of a seal the auditor kept (with `anchor_digest`).
    anchor_seal_id: Option<i64>,
    /// That seal's digest, hex.
    anchor_digest: Option<String>,
}

/// The copies outside the database a deployment has: the newest seal on
/// the seal stream and the event stream's last event. A stream that cannot
/// be read is an error (the answer would otherwise look better than it is).
pub async fn stream_anchors(
    nats: &async_nats::Client,
    stream: &str,
) -> Result<Anchors, ledger_nats::Error> {
    let js = async_nats::jetstream::new(nats.clone());
    let settings = StreamSettings::new(stream.to_owned());
    let mut anchors = Anchors::default();
    let seal_stream = seals::provision(&js, &settings).await?;
    if let Some(body) = seals::newest(&seal_stream, &settings).await? {
        let seal = SealRecord::decode(&body).map_err(ledger_nats::Error::nats)?;
        anchors.seals.push(KeptSeal::of(&seal, "seal stream"));
    }
    if let Some((position, event_id)) = seals::last_event(&js, &settings).await? {
        anchors.events.push(KeptEvent {
            position,
            event_id,
            source: "event stream",
        });
    }
    Ok(anchors)
}

/// `GET /v1/audit/verify`
#[utoipa::path(get, path = "/v1/audit/verify", tag = "audit", params(VerifyParams), responses((status = 200, description = "The verification report", body = audit::Report)), security(("bearer" = [])))]
pub async fn verify_route(
    State(app): State<ReadState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<VerifyParams>,
) -> Result<Json<Report>, ApiError> {
    principal.require(AUDITORS)?;
    if params.from.is_some_and(|from| from < 0) {
        return Err(ledger_http::invalid("from", "must not be negative"));
    }
    if let (Some(from), Some(to)) = (params.from, params.to) {
        if to < from {
            return Err(ledger_http::invalid("to", "must not be before from"));
        }
    }
    let mut anchors = match &app.nats {
        Some(nats) => stream_anchors(nats, &app.stream)
            .await
            .map_err(|e| ApiError::ServiceUnavailable(format!("the seal stream: {e}")))?,
        None => Anchors::default(),
    };
    match (params.anchor_seal_id, params.anchor_digest.as_deref()) {
        (None, None) => {}
        (Some(seal_id), Some(digest)) => {
            if seal_id < 1 {
                return Err(ledger_http::invalid("anchor_seal_id", "must be at least 1"));
            }
            let digest = hex::decode(digest)
                .ok()
                .filter(|d| d.len() == 32)
                .ok_or_else(|| {
                    ledger_http::invalid("anchor_digest", "must be 64 hex digits (a SHA-256)")
                })?;
            anchors.seals.push(KeptSeal {
                seal_id,
                digest,
                range: None,
                source: "auditor's anchor",
            });
        }
        (Some(_), None) => {
            return Err(ledger_http::invalid(
                "anchor_digest",
                "is required with anchor_seal_id",
            ))
        }
        (None, Some(_)) => {
            return Err(ledger_http::invalid(
                "anchor_seal_id",
                "is required with anchor_digest",
            ))
        }
    }
    let report = audit::verify_anchored_in(
        &app.pool,
        app.audit_public_key.as_ref(),
        params.from,
        params.to,
        &anchors,
        Some(&principal.tenant),
    )
    .await?;
    Ok(Json(report))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SealsParams {
    /// Seals numbered after this one; negative is 422.
    #[param(minimum = 0)]
    after: Option<i64>,
    limit: Option<i64>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct SealPage {
    seals: Vec<SealRecord>,
    /// The last seal's number, or `after` when there was none.
    next_after: i64,
}

/// `GET /v1/audit/seals?after=&limit=`
#[utoipa::path(get, path = "/v1/audit/seals", tag = "audit", params(SealsParams), responses((status = 200, description = "A page of seals by number", body = SealPage)), security(("bearer" = [])))]
pub async fn seals_route(
    State(app): State<ReadState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<SealsParams>,
) -> Result<Json<SealPage>, ApiError> {
    principal.require(AUDITORS)?;
    let after = params.after.unwrap_or(0);
    if after < 0 {
        return Err(ledger_http::invalid("after", "must be at least 0"));
    }
    let limit = page::limit(params.limit)?;
    let seals: Vec<SealRecord> = seal::after(&app.pool, after, limit)
        .await?
        .iter()
        .map(SealRecord::from)
        .collect();
    let next_after = seals.last().map_or(after, |s| s.seal_id);
    Ok(Json(SealPage { seals, next_after }))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ProofParams {
    /// The event's global position. Required; optional in the type so
    /// that its absence is a 422 naming it, as every other rule.
    #[param(minimum = 1, required = true)]
    position: Option<i64>,
}

/// `GET /v1/audit/proof?position=`
#[utoipa::path(get, path = "/v1/audit/proof", tag = "audit", params(ProofParams), responses((status = 200, description = "The Merkle inclusion proof of one event in its seal", body = audit::Proof), (status = 404, description = "No sealed event at that position")), security(("bearer" = [])))]
pub async fn proof_route(
    State(app): State<ReadState>,
    principal: Principal,
    ApiQuery(params): ApiQuery<ProofParams>,
) -> Result<Json<Proof>, ApiError> {
    principal.require(AUDITORS)?;
    let position = match params.position {
        None => return Err(ledger_http::invalid("position", "is required")),
        Some(p) if p < 1 => return Err(ledger_http::invalid("position", "must be at least 1")),
        Some(p) => p,
    };
    // Another tenant's event is not found (see the module documentation).
    let tenant = event_log::statements::audit::tenant_at(&app.pool, position).await?;
    if tenant.is_some_and(|t| !principal.reaches(&t)) {
        return Err(ApiError::NotFound(format!(
            "no event of this tenant at position {position}"
        )));
    }
    match audit::proof(&app.pool, position).await? {
        Ok(proof) => Ok(Json(proof)),
        Err(why) => Err(ApiError::NotFound(why.to_string())),
    }
}
