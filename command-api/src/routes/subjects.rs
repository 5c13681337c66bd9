//! `POST /v1/subjects/{subject}/erase` (admin): erasure of a data subject
//! (DESIGN.md invariant 11, docs/PRIVACY.md).
//!
//! The subject's keys are destroyed; its personal fields, sealed under
//! them in the log, read `"[erased]"` everywhere from then on. Nothing in
//! the log changes, so the hash chain and the seals still verify.
//!
//! Subjects are named as the API names them: a customer by its id (its
//! token's `sub`, the orders' `customer_id`), a vendor by its `vendor_id`,
//! any person acting with a token by that token's `sub`.
//!
//! Answers: 200 when the subject's keys are destroyed, now or by an
//! earlier erasure (a repeat destroys nothing more: `keys_destroyed: 0`,
//! `erased_at` of the last erasure); 404 when nothing was ever sealed for
//! that subject (a mistyped id must not look like a done erasure).

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::auth::Role;
use crate::bus::CommandError;
use crate::context::CommandContext;
use crate::error::ApiError;
use crate::AppState;

/// Longest subject accepted (token subjects are far shorter).
const MAX_SUBJECT: usize = 1024;

#[derive(Serialize, utoipa::ToSchema)]
pub struct SubjectErased {
    subject: String,
    /// Always true in a 200 answer.
    erased: bool,
    /// Keys destroyed by this request: 0 when it repeats an erasure.
    keys_destroyed: u64,
    /// When the subject was (last) erased.
    erased_at: DateTime<Utc>,
}

#[utoipa::path(post, path = "/v1/subjects/{subject}/erase", tag = "commands", params(("subject" = String, Path, description = "The data subject: a customer id (token `sub`), a vendor id, or a token `sub`")), responses((status = 200, description = "The subject's keys are destroyed (now or before): its personal fields read \"[erased]\"", body = SubjectErased)), security(("bearer" = [])))]
pub async fn erase(
    State(app): State<AppState>,
    context: CommandContext,
    subject: Result<Path<String>, PathRejection>,
) -> Result<Json<SubjectErased>, ApiError> {
    context.principal.require(&[Role::Admin])?;
    let Path(subject) = subject.map_err(|e| ApiError::BadRequest(e.body_text()))?;
    if subject.is_empty()
        || subject.chars().count() > MAX_SUBJECT
        || !ledger_http::extract::is_storable_text(&subject)
    {
        // No key is ever made for such a subject.
        return Err(ApiError::NotFound("data subject".to_owned()));
    }
    // A person is a subject of the admin's tenant; a vendor is named by its
    // id, and another tenant's vendor is not found (API.md "Tenants").
    let person = crate::context::data_subject(&context.principal.tenant, &subject);
    let vendor = match subject.parse::<uuid::Uuid>() {
        Ok(id) => app
            .vendors
            .load_stored(&id.to_string(), &context.principal)
            .await
            .ok()
            .filter(|stored| stored.sequence > 0)
            .map(|_| id.to_string()),
        Err(_) => None,
    };
    let now = app.clock.now();
    let mut erasure = app
        .personal
        .erase(&person, now)
        .await
        .map_err(CommandError::from)?;
    if let Some(vendor) = vendor.filter(|v| *v != person) {
        let erased = app
            .personal
            .erase(&vendor, now)
            .await
            .map_err(CommandError::from)?;
        erasure = match (erasure, erased) {
            (Some(mut a), Some(b)) => {
                a.keys_destroyed += b.keys_destroyed;
                a.subject = b.subject;
                Some(a)
            }
            (a, b) => a.or(b),
        };
    }
    let mut erasure = erasure.ok_or_else(|| ApiError::NotFound("data subject".to_owned()))?;
    // Answered as the admin named it.
    erasure.subject = subject;
    tracing::info!(
        keys_destroyed = erasure.keys_destroyed,
        "data subject erased"
    );
    Ok(Json(SubjectErased {
        subject: erasure.subject,
        erased: true,
        keys_destroyed: erasure.keys_destroyed,
        erased_at: erasure.erased_at,
    }))
}
