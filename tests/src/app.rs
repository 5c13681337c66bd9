//! The real ledger, spawned in the test process on a random port against a
//! fresh database and a stream of its own, and driven over HTTP like any
//! client would (zero2prod's `spawn_app`). Variants run it with a tweaked
//! configuration, with only some of its parts, on a pool the test made, or
//! as a second replica on the same database.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use command_api::CommandApiConfig;
use ledger_clock::ManualClock;
use reqwest::StatusCode;
use sqlx::PgPool;

use crate::database::fresh_database;
use crate::stream::{fresh_stream_name, nats_url};
use crate::tokens::{JWT_SECRET, WEBHOOK_SECRET};

/// A running ledger and what a test needs to talk to it and look behind it.
pub struct TestApp {
    pub base_url: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub database: String,
    /// This test's own JetStream stream.
    pub stream: String,
    pub config: ledger::ServerConfig,
    server: Option<ledger::RunningServer>,
}

/// The configuration every test starts from: the test secrets, NATS at
/// `nats_url`, every part, no rate limits (load tests come from one
/// address: limits are tested on their own).
fn test_config(nats_url: String, stream: &str) -> ledger::ServerConfig {
    ledger::ServerConfig {
        command_api: CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET),
        request_timeout: Duration::from_secs(10),
        nats_url,
        stream: ledger_nats::StreamSettings::new(stream.to_owned()),
        parts: ledger::Parts::ALL,
        audit: ledger::AuditKeys::default(),
        rate_limits: ledger::limits::RateLimits::OFF,
        connections: Default::default(),
        feeds: Default::default(),
        consumer_retry: Default::default(),
        shutdown_timeout: Duration::from_secs(30),
        cors: Default::default(),
        clock: Arc::new(ledger_clock::SystemClock),
    }
}

/// Starts the ledger on a random port.
async fn start(pool: &PgPool, config: &ledger::ServerConfig) -> (String, ledger::RunningServer) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a port");
    let server = ledger::spawn(Some(listener), pool.clone(), config.clone())
        .await
        .expect("start the ledger");
    let addr = server.addr.expect("an HTTP address");
    (format!("http://{addr}"), server)
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Self::spawn_with(|_| {}).await
    }

    /// Spawns on `clock`: every part of the server (commands, sweeper,
    /// policies, read API) takes "now" from it, so a test moves time with
    /// `clock.advance(…)` instead of sleeping. The webhooks the harness
    /// signs are signed at the clock's time too ([`TestApp::now`]). The
    /// sweeper looks at the clock every 100 ms, so a move is acted on
    /// within a poll or two.
    pub async fn spawn_with_clock(clock: Arc<ManualClock>) -> TestApp {
        Self::spawn_server(|server| {
            server.clock = clock;
            server.command_api.sweep_interval = Duration::from_millis(100);
        })
        .await
    }

    /// Spawns with a tweaked command configuration (e.g. a short hold TTL).
    pub async fn spawn_with(configure: impl FnOnce(&mut CommandApiConfig)) -> TestApp {
        Self::spawn_server(|server| configure(&mut server.command_api)).await
    }

    /// Spawns with a tweaked server configuration (e.g. audit keys).
    pub async fn spawn_server(configure: impl FnOnce(&mut ledger::ServerConfig)) -> TestApp {
        let (pool, database) = fresh_database().await.expect("create a test database");
        let stream = fresh_stream_name().await;
        let mut config = test_config(nats_url(), &stream);
        configure(&mut config);
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()
            .expect("http client");
        let app = Self::launch(pool, database, stream, config, client).await;
        app.wait_until_ready().await;
        app
    }

    /// A ledger on a fresh database and stream that runs only `parts` and
    /// talks to the NATS server at `nats_url`. The other parts (relay,
    /// projectors) are for the test to run, crash and restart itself.
    pub async fn spawn_parts(nats_url: &str, parts: ledger::Parts) -> TestApp {
        let (pool, database) = fresh_database().await.expect("create a test database");
        let stream = fresh_stream_name().await;
        let mut config = test_config(nats_url.to_owned(), &stream);
        config.parts = parts;
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self::launch(pool, database, stream, config, client).await
    }

    /// Spawns the ledger on `pool` (already migrated, e.g. on a private
    /// PostgreSQL), with the usual test configuration tweaked by
    /// `configure`.
    pub async fn spawn_on_pool(
        pool: PgPool,
        database: &str,
        configure: impl FnOnce(&mut ledger::ServerConfig),
    ) -> TestApp {
        let stream = fresh_stream_name().await;
        let mut config = test_config(nats_url(), &stream);
        configure(&mut config);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("http client");
        Self::launch(pool, database.to_owned(), stream, config, client).await
    }

    async fn launch(
        pool: PgPool,
        database: String,
        stream: String,
        config: ledger::ServerConfig,
        client: reqwest::Client,
    ) -> TestApp {
        let (base_url, server) = start(&pool, &config).await;
        TestApp {
            base_url,
            client,
            pool,
            database,
            stream,
            config,
            server: Some(server),
        }
    }

    /// A second ledger server on the same database (as a second replica
    /// behind a load balancer would be): its base URL and the server, to
    /// keep alive while used.
    pub async fn spawn_replica(&self) -> (String, ledger::RunningServer) {
        let mut config = self.config.clone();
        config.command_api = CommandApiConfig::for_tests(JWT_SECRET, WEBHOOK_SECRET);
        config.request_timeout = Duration::from_secs(10);
        start(&self.pool, &config).await
    }

    /// Waits until `/health/ready` answers 200: the ledger connects to NATS
    /// in the background, so a test must not race that connection.
    pub async fn wait_until_ready(&self) {
        for _ in 0..200 {
            let ready = self
                .client
                .get(format!("{}/health/ready", self.base_url))
                .send()
                .await
                .map(|r| r.status() == StatusCode::OK)
                .unwrap_or(false);
            if ready {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the ledger did not become ready within 10 s");
    }

    /// "Now" for the server: its clock's time (a `ManualClock`'s in tests
    /// spawned with one).
    pub fn now(&self) -> DateTime<Utc> {
        self.config.clock.now()
    }

    /// Stops the server gracefully.
    pub async fn stop(mut self) {
        if let Some(server) = self.server.take() {
            server.stop().await.expect("server stops cleanly");
        }
    }

    /// Takes the running server out of the app, to stop it while requests
    /// are in flight.
    pub fn take_server(&mut self) -> ledger::RunningServer {
        self.server.take().expect("a running server")
    }
}
