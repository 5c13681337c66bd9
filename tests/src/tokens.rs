//! Bearer tokens for every principal of API.md "Auth", and the one place
//! that forges bad ones (another secret, `alg: none`, odd claims): the
//! authorization tests and the strict-input tests draw from here.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use command_api::{Authenticator, Role};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::TestApp;

/// The secret the spawned ledger checks tokens with.
pub const JWT_SECRET: &str = "test-jwt-secret";
/// The secret the spawned ledger checks payment webhooks with.
pub const WEBHOOK_SECRET: &str = "whsec_test";

impl TestApp {
    /// A valid token for one hour, issued as the ledger issues them.
    pub fn token(&self, role: Role, subject: &str, vendor_id: Option<Uuid>) -> String {
        Authenticator::new(JWT_SECRET)
            .issue(subject, role, vendor_id, Duration::from_secs(3600))
            .expect("issue a token")
    }

    pub fn admin(&self) -> String {
        self.token(Role::Admin, "admin-1", None)
    }

    pub fn customer(&self, subject: &str) -> String {
        self.token(Role::Customer, subject, None)
    }

    pub fn vendor(&self, vendor_id: Uuid) -> String {
        self.token(
            Role::Vendor,
            &format!("vendor-user-{vendor_id}"),
            Some(vendor_id),
        )
    }

    pub fn analyst(&self) -> String {
        self.token(Role::Analyst, "analyst-1", None)
    }

    pub fn auditor(&self) -> String {
        self.token(Role::Auditor, "auditor-1", None)
    }

    /// A valid token of `tenant` for one hour.
    pub fn token_in(
        &self,
        tenant: &str,
        role: Role,
        subject: &str,
        vendor_id: Option<Uuid>,
    ) -> String {
        Authenticator::new(JWT_SECRET)
            .issue_in(
                Some(tenant),
                subject,
                role,
                vendor_id,
                Duration::from_secs(3600),
            )
            .expect("issue a token")
    }

    /// The platform admin, who creates tenants (it has no tenant).
    pub fn platform_admin(&self) -> String {
        self.token(Role::PlatformAdmin, "platform-admin-1", None)
    }

    /// Creates tenant `slug` (currency USD, the deployment's other
    /// settings) and answers its admin's token.
    pub async fn create_tenant(&self, slug: &str) -> String {
        let created = self
            .post(
                "/v1/tenants",
                &self.platform_admin(),
                json!({"slug": slug, "name": format!("Tenant {slug}"), "currency": "USD"}),
            )
            .await;
        assert_eq!(
            created.status, 201,
            "create tenant {slug}: {}",
            created.body
        );
        self.token_in(slug, Role::Admin, &format!("admin-of-{slug}"), None)
    }
}

/// Seconds since the epoch, for `exp`, `nbf` and `iat` claims.
pub fn unix_now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// The claims of the admin's token, expiring at `exp`.
pub fn admin_claims(exp: i64) -> Value {
    json!({"sub": "admin-1", "role": "admin", "exp": exp})
}

/// `claims` signed with `secret` by `algorithm` (an HMAC one).
pub fn signed_with(claims: &Value, secret: &str, algorithm: Algorithm) -> String {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("encode a token")
}

/// `claims` signed with `secret` (HS256).
pub fn signed(claims: &Value, secret: &str) -> String {
    signed_with(claims, secret, Algorithm::HS256)
}

/// Any claims, signed as the ledger would accept them (HS256 with the test
/// secret): for claims the ledger must still refuse.
pub fn token_with(claims: Value) -> String {
    signed(&claims, JWT_SECRET)
}

/// A token with `alg: none` and no signature, built by hand.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{claims}.")
}
