//! The command side of the ledger: HTTP routes that turn requests into
//! commands on the domain aggregates and record their events with
//! postgres-es (DESIGN.md "Shape").
//!
//! Layout: `routes/` has one module per resource of API.md "Commands";
//! `saga` places orders across inventories; `reactions` are the follow-up
//! commands an outcome needs (confirm or release holds, credit vendors);
//! `sweeper` expires unpaid holds. `bus` runs a command against an
//! aggregate; `idempotency` and `context` are the request plumbing (auth,
//! extractors and the problem type are `ledger-http`'s, shared with the
//! read side), and `error` the one place command errors become responses.

pub mod bus;
pub mod config;
pub mod context;
pub mod error;
pub mod idempotency;
pub mod policies;
pub mod reactions;
pub mod routes;
pub mod saga;
pub mod schema;
pub mod sweeper;

use std::sync::Arc;

use axum::routing::{delete, post};
use axum::Router;
use domain::{Inventory, Listing, Order, Vendor};
use ledger_nats::CommitNotifier;
use sqlx::PgPool;

/// Auth and extractors are shared with the read side (`ledger-http`);
/// their old paths here stay.
pub use ledger_http::{auth, extract};

pub use auth::{Authenticator, Principal, Role};
pub use bus::{CommandError, StoreError};
pub use config::CommandApiConfig;
pub use error::ApiError;

use bus::CommandBus;
use idempotency::IdempotencyStore;

/// Everything a command handler needs (Vendor and Inventory aggregates, which
/// collect many events over their life, are snapshotted), shared by all requests.
pub struct CommandApp {
    pub config: CommandApiConfig,
    pub pool: PgPool,
    pub vendors: CommandBus<Vendor>,
    pub listings: CommandBus<Listing>,
    pub inventory: CommandBus<Inventory>,
    pub orders: CommandBus<Order>,
    /// Wakes the relay after appends; `ledger::spawn` runs its task.
    pub notifier: CommitNotifier,
}

pub type AppState = Arc<CommandApp>;

impl CommandApp {
    pub fn new(config: CommandApiConfig, pool: PgPool) -> AppState {
        let notifier = CommitNotifier::new();
        Arc::new(Self {
            vendors: CommandBus::with_snapshots(
                pool.clone(),
                notifier.clone(),
                config.snapshot_every,
            ),
            listings: CommandBus::new(pool.clone(), notifier.clone()),
            inventory: CommandBus::with_snapshots(
                pool.clone(),
                notifier.clone(),
                config.snapshot_every,
            ),
            orders: CommandBus::new(pool.clone(), notifier.clone()),
            notifier,
            config,
            pool,
        })
    }
}

/// The command routes of API.md, authenticated and idempotent. The payment
/// webhook authenticates by signature instead of a bearer token.
pub fn router(app: AppState) -> Router {
    let authenticator = Arc::new(Authenticator::new(&app.config.jwt_secret));
    let idempotency = IdempotencyStore::new(app.pool.clone());

    let authenticated = Router::new()
        .route("/v1/vendors", post(routes::vendors::register))
        .route(
            "/v1/vendors/{vendor_id}/payouts",
            post(routes::vendors::request_payout),
        )
        .route("/v1/listings", post(routes::listings::create))
        .route(
            "/v1/listings/{listing_id}/publish",
            post(routes::listings::publish),
        )
        .route(
            "/v1/listings/{listing_id}/archive",
            post(routes::listings::archive),
        )
        .route(
            "/v1/listings/{listing_id}/price",
            post(routes::listings::change_price),
        )
        .route(
            "/v1/listings/{listing_id}/stock",
            post(routes::listings::change_stock),
        )
        .route(
            "/v1/listings/{listing_id}/blackouts",
            post(routes::listings::add_blackout),
        )
        .route(
            "/v1/listings/{listing_id}/blackouts/{blackout_id}",
            delete(routes::listings::remove_blackout),
        )
        .route("/v1/orders", post(routes::orders::place))
        .route("/v1/orders/{order_id}/cancel", post(routes::orders::cancel))
        .route(
            "/v1/orders/{order_id}/vendors/{vendor_id}/ship",
            post(routes::fulfilment::ship),
        )
        .route(
            "/v1/orders/{order_id}/vendors/{vendor_id}/deliver",
            post(routes::fulfilment::deliver),
        )
        .route(
            "/v1/orders/{order_id}/lines/{line_id}/pickup",
            post(routes::fulfilment::pick_up),
        )
        .route(
            "/v1/orders/{order_id}/lines/{line_id}/return",
            post(routes::fulfilment::return_line),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            idempotency.clone(),
            idempotency::idempotency,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            authenticator,
            auth::require_bearer,
        ));

    let webhooks = Router::new()
        .route("/v1/webhooks/payments", post(routes::webhooks::payments))
        .route_layer(axum::middleware::from_fn_with_state(
            idempotency,
            idempotency::idempotency,
        ));

    authenticated.merge(webhooks).with_state(app)
}
