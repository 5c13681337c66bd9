//! Which tenants exist (API.md "Tenants"): a token naming a tenant that was
//! never created is refused, so that nothing is recorded or read under a
//! slug no platform admin made. A tenant, once created, is never removed,
//! so a tenant found is remembered for the life of the process; one not
//! found is asked again next time (another process may create it).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};

use sqlx::PgPool;

use crate::auth::DEFAULT_TENANT;
use crate::error::ApiError;

/// The aggregate type of a tenant in the log (its id is the slug).
pub const TENANT_AGGREGATE: &str = "Tenant";

pub struct TenantDirectory {
    pool: PgPool,
    known: Mutex<HashSet<String>>,
}

impl TenantDirectory {
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            known: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `slug` names a tenant (the default tenant always exists).
    pub async fn exists(&self, slug: &str) -> Result<bool, ApiError> {
        if slug == DEFAULT_TENANT
            || self
                .known
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(slug)
        {
            return Ok(true);
        }
        let found =
            event_log::statements::reads::aggregate_exists(&self.pool, TENANT_AGGREGATE, slug)
                .await
                .map_err(ApiError::from)?;
        if found {
            self.known
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .insert(slug.to_owned());
        }
        Ok(found)
    }
}
