//! The query side of the ledger (API.md "Queries"): routes over the read
//! models that the projectors build. Nothing here writes.
//!
//! - `listings`: search, detail and availability (availability read model);
//! - `orders`: one order or a page of them, scoped to who asks;
//! - `projections`: how far each read model has come;
//! - `money`: trial balance and vendor earnings (ledger read model);
//! - `payouts`: a vendor's payouts and their status (ledger read model);
//! - `invoices`: an order's invoices and credit notes, and each as a PDF;
//! - `subscriptions`: plans, and subscriptions with their invoices, scoped
//!   to who asks (subscriptions read model);
//! - `analytics`: summary and revenue buckets (analytics read model);
//! - `events`: the log by position, a page at a time or live (SSE);
//! - `feeds`: the caps on open live feeds;
//! - `live`: the newest events, read once per process for every live feed;
//! - `order_feed`: order events live, scoped to who asks (one watcher);
//! - `aggregates`: one aggregate's events, and its state at a point;
//! - `freshness`: `Ledger-Min-Position` waiting and the `Ledger-Position`
//!   header;
//! - `health`: liveness and readiness;
//! - `audit`: verification, the seals and inclusion proofs (`/v1/audit/…`);
//! - `personal`: every answer opens the personal fields it shows, last
//!   (sealed in the log and the read models; `"[erased]"` once erased).

pub mod aggregates;
pub mod analytics;
pub mod audit;
pub mod events;
pub mod feeds;
pub mod freshness;
pub mod health;
pub mod invoices;
pub mod listings;
pub mod live;
pub mod money;
pub mod order_feed;
pub mod orders;
pub mod page;
pub mod payouts;
pub mod personal;
pub mod projections;
pub mod schema;
pub mod subscription_metrics;
pub mod subscriptions;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use ledger_http::Authenticator;
use sqlx::PgPool;

/// What the query routes share.
pub struct ReadApp {
    pub pool: PgPool,
    pub nats: Option<async_nats::Client>,
    /// The deployment's currency, for money answers.
    pub currency: String,
    /// The JetStream stream the relay publishes to: its published position
    /// is the event API's horizon.
    pub stream: String,
    /// Turns true when the server shuts down: live event streams end.
    pub closing: tokio_util::sync::CancellationToken,
    /// Where "now" comes from (a live feed ends at its token's expiry).
    pub clock: Arc<dyn ledger_clock::Clock>,
    /// The live feeds open now, capped per principal and overall.
    pub feeds: feeds::Feeds,
    /// The newest events, read once for every live feed of the log.
    pub live: live::LiveLog,
    /// The one watcher of order events that `/v1/orders/stream` feeds share.
    pub orders_feed: order_feed::OrderHub,
    /// The seals' public key; without it `GET /v1/audit/verify` checks
    /// hashes and seal digests but not seal signatures.
    pub audit_public_key: Option<ed25519_dalek::VerifyingKey>,
    /// The read models' positions as last read (`Ledger-Position`).
    pub positions: freshness::KnownPositions,
    /// Every stream consumer the deployment runs (read models and the
    /// command side's policies), listed by `GET /v1/projections` even
    /// before it applied anything. The composition passes the names, so
    /// that the read side links no command-side code.
    pub consumers: Vec<String>,
    /// The data subjects' keys, to open personal fields in answers.
    pub personal: privacy::Keyring,
}

pub type ReadState = Arc<ReadApp>;

/// Health routes: no token.
pub fn health_router(app: ReadState) -> Router {
    Router::new()
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .with_state(app)
}

/// The authenticated query routes.
pub fn router(app: ReadState, jwt_secret: &str) -> Router {
    let tenants = Arc::new(ledger_http::TenantDirectory::new(app.pool.clone()));
    let authenticator = Arc::new(Authenticator::new(jwt_secret).with_tenants(tenants));
    Router::new()
        .route("/v1/listings", get(listings::search))
        .route("/v1/listings/{listing_id}", get(listings::detail))
        .route(
            "/v1/listings/{listing_id}/availability",
            get(listings::availability),
        )
        .route("/v1/orders", get(orders::list))
        .route("/v1/orders/stream", get(order_feed::stream))
        .route("/v1/orders/{order_id}", get(orders::detail))
        .route("/v1/orders/{order_id}/invoices", get(invoices::of_order))
        .route("/v1/invoices/{file}", get(invoices::pdf))
        .route("/v1/plans", get(subscriptions::plans))
        .route("/v1/plans/{plan_id}", get(subscriptions::plan))
        .route("/v1/subscriptions", get(subscriptions::list))
        .route(
            "/v1/subscriptions/{subscription_id}",
            get(subscriptions::detail),
        )
        .route("/v1/projections", get(projections::list))
        .route("/v1/ledger/trial-balance", get(money::trial_balance))
        .route("/v1/vendors/{vendor_id}/earnings", get(money::earnings))
        .route(
            "/v1/vendors/{vendor_id}/earnings/entries",
            get(money::entries),
        )
        .route("/v1/vendors/{vendor_id}/payouts", get(payouts::list))
        .route("/v1/analytics/summary", get(analytics::summary))
        .route("/v1/analytics/revenue", get(analytics::revenue))
        .route("/v1/events", get(events::list))
        .route("/v1/events/stream", get(events::stream))
        .route(
            "/v1/aggregates/{aggregate_type}/{aggregate_id}/events",
            get(aggregates::events),
        )
        .route(
            "/v1/aggregates/{aggregate_type}/{aggregate_id}/state",
            get(aggregates::state),
        )
        .route("/v1/audit/verify", get(audit::verify_route))
        .route("/v1/audit/seals", get(audit::seals_route))
        .route("/v1/audit/proof", get(audit::proof_route))
        .route_layer(axum::middleware::from_fn_with_state(
            authenticator,
            ledger_http::auth::require_bearer,
        ))
        .with_state(app)
}

/// Refuses the platform admin on the routes every other role may read: it
/// acts in no tenant (API.md "Tenants"), so it reads no tenant's catalogue
/// or plans (403, as the command side refuses it).
pub(crate) fn in_a_tenant(principal: &ledger_http::Principal) -> Result<(), ledger_http::ApiError> {
    if principal.role == ledger_http::Role::PlatformAdmin {
        return Err(ledger_http::ApiError::Forbidden(
            "a platform_admin acts in no tenant".to_owned(),
        ));
    }
    Ok(())
}
