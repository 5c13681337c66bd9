//! What every recorded event says about how it came to be (DESIGN.md "Event
//! store"): the acting principal, the correlation id (the HTTP request id),
//! the causation id (the command or the triggering event) and the
//! idempotency key, when the request carried one.

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use crate::auth::Principal;
use crate::error::ApiError;

pub use ledger_http::request_id::{is_acceptable_request_id, request_id, REQUEST_ID_HEADER};

pub const IDEMPOTENCY_KEY_HEADER: &str = "idempotency-key";

/// The metadata key of an event's tenant (the events table derives its
/// `tenant` column from it).
pub const TENANT_KEY: &str = "tenant";

/// The data subject whose key seals a person's personal data: the person's
/// subject within its tenant (the same `sub` in two tenants is two people;
/// the default tenant's subjects are named as before tenants).
pub fn data_subject(tenant: &str, subject: &str) -> String {
    if tenant == ledger_http::DEFAULT_TENANT {
        subject.to_owned()
    } else {
        format!("{tenant}/{subject}")
    }
}

#[derive(Clone, Debug)]
pub struct CommandContext {
    pub principal: Principal,
    pub correlation_id: String,
    pub causation_id: String,
    pub idempotency_key: Option<String>,
}

impl CommandContext {
    /// Context of work that no HTTP request started (sweeper, policies).
    pub fn background(principal: Principal, causation_id: impl Into<String>) -> Self {
        let causation_id = causation_id.into();
        Self {
            principal,
            correlation_id: causation_id.clone(),
            causation_id,
            idempotency_key: None,
        }
    }

    /// The metadata stored with each event of `command`.
    pub fn metadata(&self, command: &str) -> HashMap<String, String> {
        let mut metadata = HashMap::with_capacity(8);
        // The bus replaces it with the aggregate's own tenant when the
        // aggregate has events (a system principal acting on it).
        metadata.insert(TENANT_KEY.to_owned(), self.principal.tenant.clone());
        metadata.insert("principal".to_owned(), self.principal.subject.clone());
        metadata.insert(
            "principal_role".to_owned(),
            self.principal.role.as_str().to_owned(),
        );
        metadata.insert("correlation_id".to_owned(), self.correlation_id.clone());
        metadata.insert("causation_id".to_owned(), self.causation_id.clone());
        metadata.insert("command".to_owned(), command.to_owned());
        if let Some(key) = &self.idempotency_key {
            metadata.insert("idempotency_key".to_owned(), key.clone());
        }
        metadata
    }
}

impl<S: Send + Sync> FromRequestParts<S> for CommandContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let principal = Principal::from_request_parts(parts, state).await?;
        let correlation_id = request_id(parts);
        let idempotency_key = parts
            .headers
            .get(IDEMPOTENCY_KEY_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        Ok(Self {
            principal,
            causation_id: correlation_id.clone(),
            correlation_id,
            idempotency_key,
        })
    }
}
