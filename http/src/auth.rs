//! Bearer-token authentication (HS256 JWT, API.md "Auth") and the roles of
//! the marketplace. The middleware verifies the token once per request and
//! leaves the [`Principal`] in the request's extensions; handlers take it as
//! an extractor and check their own role and ownership rules.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRequestParts, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::ApiError;
use crate::tenancy::TenantDirectory;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Customer,
    Vendor,
    Admin,
    Analyst,
    Auditor,
    /// Manages tenants (API.md "Tenants"); acts in no tenant, so every
    /// other route refuses it.
    PlatformAdmin,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Customer => "customer",
            Role::Vendor => "vendor",
            Role::Admin => "admin",
            Role::Analyst => "analyst",
            Role::Auditor => "auditor",
            Role::PlatformAdmin => "platform_admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        serde_json::from_value(serde_json::Value::String(s.to_owned()))
            .map_err(|_| format!("unknown role `{s}`"))
    }
}

/// Claims of a ledger token.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_id: Option<Uuid>,
    /// The tenant's slug; absent: the default tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    pub exp: u64,
}

/// Who is acting: the verified subject of the request's token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub role: Role,
    /// Set for role `vendor`: the vendor it acts for.
    pub vendor_id: Option<Uuid>,
    /// When the token that proved it expires (its `exp`); `None` for the
    /// system's own principals. Long-lived answers (live feeds) end then.
    pub expires_at: Option<DateTime<Utc>>,
    /// The tenant it acts in: its token's `tenant` claim, or the default
    /// tenant. Everything it reads or changes is this tenant's.
    pub tenant: String,
    /// The system's own principals act on whichever tenant's aggregate their
    /// work is about (a webhook, a sweep, a policy), in that tenant.
    pub any_tenant: bool,
}

impl Principal {
    /// The principal of the payment provider's webhook calls.
    pub fn payment_provider() -> Self {
        Self {
            subject: "payment-provider".to_owned(),
            role: Role::Admin,
            vendor_id: None,
            expires_at: None,
            tenant: DEFAULT_TENANT.to_owned(),
            any_tenant: true,
        }
    }

    /// The principal of background work (sweeper, policies).
    pub fn system(name: &str) -> Self {
        Self {
            subject: format!("system:{name}"),
            role: Role::Admin,
            vendor_id: None,
            expires_at: None,
            tenant: DEFAULT_TENANT.to_owned(),
            any_tenant: true,
        }
    }

    /// The same principal acting in `tenant` (a system principal creating
    /// an aggregate for an event of that tenant).
    pub fn in_tenant(mut self, tenant: &str) -> Self {
        tenant.clone_into(&mut self.tenant);
        self
    }

    /// Whether it may see or act on what belongs to `tenant`.
    pub fn reaches(&self, tenant: &str) -> bool {
        self.any_tenant || self.tenant == tenant
    }

    pub fn require(&self, allowed: &[Role]) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "role `{}` may not do this",
                self.role.as_str()
            )))
        }
    }

    /// Whether the subject names a person (or a person's client): every
    /// principal proven by a token. The system's own principals (the
    /// sweeper, the policies, the payment provider) carry no token. A
    /// person's subject is personal data (docs/PRIVACY.md).
    pub fn identifies_person(&self) -> bool {
        self.expires_at.is_some()
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Admins act for any vendor; a vendor only for itself.
    pub fn require_vendor_or_admin(&self, vendor_id: Uuid) -> Result<(), ApiError> {
        match self.role {
            Role::Admin => Ok(()),
            Role::Vendor if self.vendor_id == Some(vendor_id) => Ok(()),
            Role::Vendor => Err(ApiError::Forbidden(
                "a vendor may only act on its own resources".to_owned(),
            )),
            other => Err(ApiError::Forbidden(format!(
                "role `{}` may not do this",
                other.as_str()
            ))),
        }
    }
}

/// The routes of the platform admin (API.md "Tenants").
const TENANT_ROUTES: &str = "/v1/tenants";

/// The tenant of every token without a `tenant` claim.
pub const DEFAULT_TENANT: &str = "default";

/// A tenant slug: 1 to 40 of `a-z`, `0-9` and `-`, starting with a letter
/// or digit (it names the tenant in URLs, tokens and event metadata).
pub fn is_tenant_slug(slug: &str) -> bool {
    (1..=40).contains(&slug.len())
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !slug.starts_with('-')
}

/// How far apart the issuer's clock and ours may be, for `exp` and `nbf`,
/// unless the process sets another ([`set_leeway_secs`]).
pub const LEEWAY_SECS: u64 = 5;

static LEEWAY: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(LEEWAY_SECS);

/// Sets the leeway of the authenticators made from now on
/// (`LEDGER_JWT_LEEWAY`): one setting per process, set once at start,
/// before the routes are built.
pub fn set_leeway_secs(secs: u64) {
    LEEWAY.store(secs, std::sync::atomic::Ordering::Relaxed);
}

/// The leeway authenticators made now use.
pub fn leeway_secs() -> u64 {
    LEEWAY.load(std::sync::atomic::Ordering::Relaxed)
}

/// Verifies and issues tokens with one HS256 secret.
#[derive(Clone)]
pub struct Authenticator {
    decoding: DecodingKey,
    encoding: EncodingKey,
    validation: Validation,
    /// Which tenants exist (none: every slug is taken on trust, in tests
    /// without a database).
    tenants: Option<Arc<TenantDirectory>>,
}

impl Authenticator {
    /// With the process's leeway ([`leeway_secs`]).
    pub fn new(secret: &str) -> Self {
        Self::with_leeway(secret, leeway_secs())
    }

    /// With `leeway_secs` for `exp` and `nbf`.
    pub fn with_leeway(secret: &str, leeway_secs: u64) -> Self {
        // Only HS256 is accepted: `alg: none` and any other algorithm fail.
        // A token is good from its `nbf` (when it has one) until its `exp`,
        // give or take the leeway for clocks a little apart.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "sub"]);
        validation.validate_nbf = true;
        validation.leeway = leeway_secs;
        Self {
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            validation,
            tenants: None,
        }
    }

    /// Refuses tokens of tenants that `directory` does not know.
    pub fn with_tenants(mut self, directory: Arc<TenantDirectory>) -> Self {
        self.tenants = Some(directory);
        self
    }

    /// [`verify`](Self::verify), and the token's tenant must exist: a
    /// token of an unknown tenant is refused (403: it is well signed, but
    /// for nothing here).
    pub async fn authenticate(&self, token: &str) -> Result<Principal, ApiError> {
        let principal = self.verify(token)?;
        if let Some(tenants) = &self.tenants {
            if principal.role != Role::PlatformAdmin && !tenants.exists(&principal.tenant).await? {
                return Err(ApiError::Forbidden(format!(
                    "tenant `{}` does not exist",
                    principal.tenant
                )));
            }
        }
        Ok(principal)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, ApiError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map_err(|e| ApiError::Unauthorized(format!("invalid token: {e}")))?;
        let claims = data.claims;
        if claims.sub.trim().is_empty() {
            return Err(ApiError::Unauthorized("token has an empty subject".into()));
        }
        // The subject is stored with every event the token records.
        if !crate::extract::is_storable_text(&claims.sub) {
            return Err(ApiError::Unauthorized(
                "token subject holds a NUL character".into(),
            ));
        }
        if claims.role == Role::Vendor && claims.vendor_id.is_none() {
            return Err(ApiError::Unauthorized(
                "a vendor token must carry vendor_id".into(),
            ));
        }
        let tenant = match (claims.role, claims.tenant) {
            (Role::PlatformAdmin, None) => DEFAULT_TENANT.to_owned(),
            (Role::PlatformAdmin, Some(_)) => {
                return Err(ApiError::Unauthorized(
                    "a platform_admin token carries no tenant".into(),
                ))
            }
            (_, None) => DEFAULT_TENANT.to_owned(),
            (_, Some(slug)) if is_tenant_slug(&slug) => slug,
            (_, Some(_)) => {
                return Err(ApiError::Unauthorized(
                    "the token's tenant is not a tenant slug".into(),
                ))
            }
        };
        // An `exp` past what a time can hold is as good as never.
        let expires_at = i64::try_from(claims.exp)
            .ok()
            .and_then(|exp| DateTime::from_timestamp(exp, 0));
        Ok(Principal {
            subject: claims.sub,
            role: claims.role,
            vendor_id: claims.vendor_id,
            expires_at,
            tenant,
            any_tenant: false,
        })
    }

    /// Issues a token of the default tenant (the `ledger token` command
    /// and tests).
    pub fn issue(
        &self,
        subject: &str,
        role: Role,
        vendor_id: Option<Uuid>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        self.issue_in(None, subject, role, vendor_id, ttl)
    }

    /// Issues a token of `tenant` (`None`: no claim, the default tenant).
    pub fn issue_in(
        &self,
        tenant: Option<&str>,
        subject: &str,
        role: Role,
        vendor_id: Option<Uuid>,
        ttl: Duration,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let exp = chrono::Utc::now().timestamp().max(0) as u64 + ttl.as_secs();
        let claims = Claims {
            sub: subject.to_owned(),
            role,
            vendor_id,
            tenant: tenant.map(str::to_owned),
            exp,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }
}

/// Middleware: every request under it must carry a valid bearer token.
pub async fn require_bearer(
    State(auth): State<Arc<Authenticator>>,
    mut request: Request,
    next: Next,
) -> Response {
    let token = request
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let Some(token) = token else {
        return ApiError::Unauthorized("missing bearer token".into()).into_response();
    };
    match auth.authenticate(token).await {
        // A platform admin acts in no tenant: it manages the tenants and
        // is refused everything else.
        Ok(principal)
            if principal.role == Role::PlatformAdmin
                && !request.uri().path().starts_with(TENANT_ROUTES) =>
        {
            ApiError::Forbidden("a platform_admin may only manage tenants".into()).into_response()
        }
        Ok(principal) => {
            let span = tracing::Span::current();
            span.record("principal", principal.subject.as_str());
            span.record("tenant", principal.tenant.as_str());
            request.extensions_mut().insert(principal);
            next.run(request).await
        }
        Err(err) => err.into_response(),
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Principal>()
            .cloned()
            .ok_or_else(|| ApiError::Unauthorized("missing bearer token".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token_with(claims: serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(b"secret"),
        )
        .expect("encode")
    }

    fn now() -> u64 {
        chrono::Utc::now().timestamp().max(0) as u64
    }

    #[test]
    fn a_token_not_yet_valid_is_refused() {
        let auth = Authenticator::new("secret");
        let early = token_with(serde_json::json!({
            "sub": "c1", "role": "customer", "exp": now() + 3600, "nbf": now() + 60,
        }));
        assert!(matches!(
            auth.verify(&early),
            Err(ApiError::Unauthorized(_))
        ));
        let valid = token_with(serde_json::json!({
            "sub": "c1", "role": "customer", "exp": now() + 3600, "nbf": now() - 1,
        }));
        assert!(auth.verify(&valid).is_ok());
        // Within the leeway, a clock a little ahead is forgiven.
        let barely = token_with(serde_json::json!({
            "sub": "c1", "role": "customer", "exp": now() + 3600, "nbf": now() + 1,
        }));
        assert!(auth.verify(&barely).is_ok());
    }

    #[test]
    fn the_leeway_is_what_the_authenticator_was_given() {
        let expired = token_with(serde_json::json!({
            "sub": "c1", "role": "customer", "exp": now() - 20,
        }));
        assert!(Authenticator::with_leeway("secret", 60)
            .verify(&expired)
            .is_ok());
        assert!(Authenticator::with_leeway("secret", 5)
            .verify(&expired)
            .is_err());
        assert_eq!(leeway_secs(), LEEWAY_SECS);
    }

    #[test]
    fn the_principal_carries_its_tokens_expiry() {
        let auth = Authenticator::new("secret");
        let exp = now() + 3600;
        let token = token_with(serde_json::json!({
            "sub": "a1", "role": "analyst", "exp": exp,
        }));
        let principal = auth.verify(&token).expect("a valid token");
        assert_eq!(
            principal.expires_at.map(|at| at.timestamp()),
            Some(exp as i64)
        );
        assert_eq!(Principal::system("sweeper").expires_at, None);
    }

    #[test]
    fn a_subject_with_a_nul_is_refused() {
        let auth = Authenticator::new("secret");
        let token = token_with(serde_json::json!({
            "sub": "c\u{0}1", "role": "customer", "exp": now() + 3600,
        }));
        assert!(matches!(
            auth.verify(&token),
            Err(ApiError::Unauthorized(_))
        ));
    }
}
