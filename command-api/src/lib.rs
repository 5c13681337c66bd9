//! The command side of the ledger: HTTP routes that turn requests into
//! commands on the domain aggregates and record their events with
//! postgres-es (DESIGN.md "Shape").
//!
//! Layout: `routes/` has one module per resource of API.md "Commands",
//! each thin: extract, call, answer. `application/` holds the use cases
//! below them: the placement saga, the follow-up commands an outcome needs
//! (confirm, expire or release holds, credit vendors) and the sweep of
//! lapsed holds; `sweeper` and `policies` run them in the background.
//! `bus` runs a command against an aggregate, on storage behind a trait;
//! `deadlines` keeps the saga's hold deadlines; the time comes from the
//! clock the app holds (`ledger-clock`); `idempotency` and `context` are the request plumbing (auth,
//! extractors and the problem type are `ledger-http`'s, shared with the
//! read side), and `error` the one place command errors become responses.

pub mod application;
pub mod bus;
pub mod config;
pub mod context;
pub mod deadlines;
pub mod error;
pub mod idempotency;
pub mod outbound;
pub mod policies;
pub mod routes;
pub mod schema;
pub mod sweeper;

use std::sync::Arc;

use axum::routing::{delete, get, post, put};
use axum::Router;
use domain::{Inventory, InvoiceBook, Listing, Order, Plan, Subscription, Tenant, Vendor};
use ledger_clock::{Clock, SystemClock};
use ledger_nats::CommitNotifier;
use sqlx::PgPool;

/// Auth and extractors are shared with the read side (`ledger-http`);
/// their old paths here stay.
pub use ledger_http::{auth, extract};

pub use auth::{Authenticator, Principal, Role};
pub use bus::{CommandError, StoreError};
pub use config::CommandApiConfig;
pub use error::ApiError;

use bus::{CommandBus, EventStorage, PostgresStorage};
use deadlines::{HoldDeadlines, PostgresDeadlines};
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
    pub plans: CommandBus<Plan>,
    pub subscriptions: CommandBus<Subscription>,
    /// Each vendor's invoice and credit-note numbering (`application::invoicing`).
    pub invoice_books: CommandBus<InvoiceBook>,
    /// The tenants of the deployment and their settings.
    pub tenants: CommandBus<Tenant>,
    /// The saga's hold deadlines, which the sweeper settles.
    pub deadlines: Arc<dyn HoldDeadlines>,
    /// The terms orders are priced with, guarded at the append.
    pub terms: application::terms::TermsCache,
    /// Where every command and job takes "now" from.
    pub clock: Arc<dyn Clock>,
    /// Wakes the relay after appends; `ledger::spawn` runs its task.
    pub notifier: CommitNotifier,
    /// The data subjects' keys: routes seal personal fields with them
    /// before they make a command, the buses the acting person in each
    /// event's metadata; `POST /v1/subjects/{subject}/erase` destroys them.
    pub personal: privacy::Keyring,
}

pub type AppState = Arc<CommandApp>;

/// Where the command side keeps its state: each aggregate type's events
/// and the hold deadlines.
pub struct Stores {
    pub vendors: Arc<dyn EventStorage<Vendor>>,
    pub listings: Arc<dyn EventStorage<Listing>>,
    pub inventory: Arc<dyn EventStorage<Inventory>>,
    pub orders: Arc<dyn EventStorage<Order>>,
    pub plans: Arc<dyn EventStorage<Plan>>,
    pub subscriptions: Arc<dyn EventStorage<Subscription>>,
    pub invoice_books: Arc<dyn EventStorage<InvoiceBook>>,
    pub tenants: Arc<dyn EventStorage<Tenant>>,
    pub deadlines: Arc<dyn HoldDeadlines>,
    /// The data subjects' keys.
    pub personal: privacy::Keyring,
    /// Whether appends check guards (PostgreSQL), so that terms may be
    /// cached ([`application::terms`]).
    pub checks_guards: bool,
}

impl Stores {
    /// The tables of PostgreSQL; Vendor and Inventory aggregates, which
    /// collect many events over their life, are snapshotted.
    pub fn postgres(pool: &PgPool, snapshot_every: usize) -> Self {
        Self {
            vendors: Arc::new(PostgresStorage::with_snapshots(
                pool.clone(),
                snapshot_every,
            )),
            listings: Arc::new(PostgresStorage::new(pool.clone())),
            inventory: Arc::new(PostgresStorage::with_snapshots(
                pool.clone(),
                snapshot_every,
            )),
            orders: Arc::new(PostgresStorage::new(pool.clone())),
            plans: Arc::new(PostgresStorage::new(pool.clone())),
            subscriptions: Arc::new(PostgresStorage::new(pool.clone())),
            invoice_books: Arc::new(PostgresStorage::with_snapshots(
                pool.clone(),
                snapshot_every,
            )),
            tenants: Arc::new(PostgresStorage::new(pool.clone())),
            deadlines: Arc::new(PostgresDeadlines::new(pool.clone())),
            personal: privacy::Keyring::new(pool.clone()),
            checks_guards: true,
        }
    }
}

impl CommandApp {
    /// The terms of `principal`'s tenant (its settings over the
    /// deployment's), for commands that need no guard on them.
    pub async fn tenant_terms(
        &self,
        principal: &Principal,
    ) -> Result<application::terms::TenantTerms, CommandError> {
        Ok(self
            .terms
            .tenant(&self.tenants, &self.config, principal)
            .await?
            .0)
    }

    /// The app on PostgreSQL and the system's clock.
    pub fn new(config: CommandApiConfig, pool: PgPool) -> AppState {
        Self::with_clock(config, pool, Arc::new(SystemClock))
    }

    /// The app on PostgreSQL and the given clock.
    pub fn with_clock(config: CommandApiConfig, pool: PgPool, clock: Arc<dyn Clock>) -> AppState {
        let mut stores = Stores::postgres(&pool, config.snapshot_every);
        stores.personal = stores.personal.with_kek(config.personal_data_kek.clone());
        Self::assemble(config, pool, clock, stores)
    }

    /// The app on any stores (memory, in tests). `pool` serves only the
    /// HTTP plumbing (idempotency keys).
    pub fn assemble(
        config: CommandApiConfig,
        pool: PgPool,
        clock: Arc<dyn Clock>,
        stores: Stores,
    ) -> AppState {
        let notifier = CommitNotifier::new();
        let every = Some(config.snapshot_every.max(1));
        let personal = stores.personal;
        Arc::new(Self {
            vendors: CommandBus::with_storage(stores.vendors, notifier.clone(), every)
                .sealing_principals(personal.clone()),
            listings: CommandBus::with_storage(stores.listings, notifier.clone(), None)
                .sealing_principals(personal.clone()),
            inventory: CommandBus::with_storage(stores.inventory, notifier.clone(), every)
                .sealing_principals(personal.clone()),
            orders: CommandBus::with_storage(stores.orders, notifier.clone(), None)
                .sealing_principals(personal.clone()),
            plans: CommandBus::with_storage(stores.plans, notifier.clone(), None)
                .sealing_principals(personal.clone()),
            subscriptions: CommandBus::with_storage(stores.subscriptions, notifier.clone(), None)
                .sealing_principals(personal.clone()),
            invoice_books: CommandBus::with_storage(stores.invoice_books, notifier.clone(), every)
                .sealing_principals(personal.clone()),
            tenants: CommandBus::with_storage(stores.tenants, notifier.clone(), None)
                .sealing_principals(personal.clone()),
            deadlines: stores.deadlines,
            terms: application::terms::TermsCache::new(stores.checks_guards),
            personal,
            clock,
            notifier,
            config,
            pool,
        })
    }
}

/// The command routes of API.md, authenticated and idempotent. The payment
/// webhook authenticates by signature instead of a bearer token.
pub fn router(app: AppState) -> Router {
    let tenants = Arc::new(ledger_http::TenantDirectory::new(app.pool.clone()));
    let authenticator =
        Arc::new(Authenticator::new(&app.config.jwt_secret).with_tenants(tenants.clone()));
    let idempotency = IdempotencyStore::new(app.pool.clone());

    let authenticated = Router::new()
        .route("/v1/vendors", post(routes::vendors::register))
        .route(
            "/v1/vendors/{vendor_id}/payouts",
            post(routes::vendors::request_payout),
        )
        .route(
            "/v1/vendors/{vendor_id}/fee-rate",
            post(routes::vendors::set_fee_rate),
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
        .route(
            "/v1/listings/{listing_id}/schedule",
            put(routes::rentals::put_schedule),
        )
        .route(
            "/v1/listings/{listing_id}/policies",
            put(routes::rentals::put_policies),
        )
        .route("/v1/plans", post(routes::subscriptions::create_plan))
        .route("/v1/tenants", post(routes::tenants::create))
        .route(
            "/v1/tenants/{slug}",
            get(routes::tenants::get).patch(routes::tenants::change),
        )
        .route("/v1/subscriptions", post(routes::subscriptions::subscribe))
        .route(
            "/v1/subscriptions/{subscription_id}/cancel",
            post(routes::subscriptions::cancel),
        )
        .route(
            "/v1/subscriptions/{subscription_id}/change-plan",
            post(routes::subscriptions::change_plan),
        )
        .route("/v1/orders", post(routes::orders::place))
        .route("/v1/orders/{order_id}/cancel", post(routes::orders::cancel))
        .route(
            "/v1/orders/{order_id}/refunds",
            post(routes::refunds::refund),
        )
        .route(
            "/v1/payments/{payment_id}/apply",
            post(routes::payments::apply),
        )
        .route(
            "/v1/payments/{payment_id}/refund",
            post(routes::payments::refund),
        )
        .route(
            "/v1/subjects/{subject}/erase",
            post(routes::subjects::erase),
        )
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
        .route(
            "/v1/orders/{order_id}/lines/{line_id}/terminate",
            post(routes::leases::terminate),
        )
        .route(
            "/v1/orders/{order_id}/lines/{line_id}/extend",
            post(routes::changes::extend),
        )
        .route(
            "/v1/orders/{order_id}/lines/{line_id}/reschedule",
            post(routes::changes::reschedule),
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

    let outbound = Router::new()
        .route(
            "/v1/webhook-endpoints",
            post(outbound::routes::create).get(outbound::routes::list),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}",
            delete(outbound::routes::delete),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
            post(outbound::routes::rotate_secret),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/deliveries",
            axum::routing::get(outbound::routes::deliveries),
        )
        .route(
            "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
            post(outbound::routes::redeliver),
        )
        .route_layer(axum::middleware::from_fn_with_state(
            IdempotencyStore::new(app.pool.clone()),
            idempotency::idempotency,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::new(Authenticator::new(&app.config.jwt_secret).with_tenants(tenants)),
            auth::require_bearer,
        ));

    authenticated
        .merge(webhooks)
        .merge(outbound)
        .with_state(app)
}
