//! One ledger process: which parts it runs, how they are started, and how
//! it stops (with [`crate::shutdown`]).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use command_api::{CommandApiConfig, CommandApp};
use ledger_nats::{Relay, RelayConfig, StreamSettings};
use projectors::{Runner, RunnerConfig};
use sqlx::PgPool;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::shutdown::Shutdown;
use crate::{connections, dependencies, http_router, limits, observability, LedgerError};

/// Which parts of the ledger a process runs (`ledger serve` runs all).
#[derive(Clone, Copy, Debug)]
pub struct Parts {
    /// Command routes, the payment webhook, the hold sweeper and policies.
    pub command_api: bool,
    /// Query routes.
    pub read_api: bool,
    /// The relay from the events table to JetStream.
    pub relay: bool,
    /// The projectors that build the read models.
    pub projectors: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        command_api: true,
        read_api: true,
        relay: true,
        projectors: true,
    };
    pub const NONE: Parts = Parts {
        command_api: false,
        read_api: false,
        relay: false,
        projectors: false,
    };

    fn serves_http(&self) -> bool {
        self.command_api || self.read_api
    }
}

/// What a running ledger needs besides its listener and pool.
#[derive(Clone)]
pub struct ServerConfig {
    pub command_api: CommandApiConfig,
    pub request_timeout: Duration,
    pub nats_url: String,
    pub stream: StreamSettings,
    pub parts: Parts,
    pub audit: AuditKeys,
    /// Token buckets per client IP and per principal (429 past them).
    pub rate_limits: limits::RateLimits,
    /// Header-read and idle timeouts, and the cap on open connections.
    pub connections: connections::ConnectionLimits,
    /// Live feeds open at once, per principal and overall (429 past them).
    pub feeds: read_api::feeds::FeedLimits,
    /// How a failing consumer is retried before it is reported stalled.
    pub consumer_retry: projectors::RetryPolicy,
    /// How long the drain after a shutdown signal may take (requests in
    /// flight, then the background tasks); past it the process exits with
    /// an error naming what did not stop.
    pub shutdown_timeout: Duration,
    /// Origins whose browser pages may call the API (off by default).
    pub cors: crate::cors::CorsOrigins,
    /// Where every part takes "now" from: the command app and its sweeper,
    /// policies and dispatcher, the sealer and the read API. The system's
    /// clock for `ledger serve`; tests move a `ManualClock` instead of
    /// sleeping.
    pub clock: Arc<dyn ledger_clock::Clock>,
}

/// Keys of the tamper-evident log: the signing key seals (the relay's
/// process runs the sealer), the public key checks seals.
#[derive(Clone, Default)]
pub struct AuditKeys {
    pub signing: Option<ed25519_dalek::SigningKey>,
    pub public: Option<ed25519_dalek::VerifyingKey>,
    pub seal_interval: Duration,
}

/// A ledger started with [`spawn`].
pub struct RunningServer {
    pub addr: Option<SocketAddr>,
    shutdown: CancellationToken,
    handle: JoinHandle<Result<(), LedgerError>>,
}

impl RunningServer {
    /// Stops accepting, finishes in-flight requests and background work.
    pub async fn stop(self) -> Result<(), LedgerError> {
        self.shutdown.cancel();
        match self.handle.await {
            Ok(result) => result,
            Err(join) => Err(LedgerError::Config(format!("server task failed: {join}"))),
        }
    }

    /// Ends the ledger abruptly, as a crash would: nothing is drained.
    pub fn abort(self) {
        self.handle.abort();
    }
}

/// Connects to NATS without waiting for it: a ledger starts, and takes
/// commands, while NATS is down; the pipeline catches up once it is back.
/// `url` may list several servers of a cluster, separated by commas. While
/// NATS cannot be reached this is logged at WARN with its address (see
/// [`dependencies::NatsWatch`]).
pub async fn connect_nats(url: &str) -> Result<async_nats::Client, LedgerError> {
    let servers = nats_servers(url)?;
    let address = dependencies::redact_nats_url(url);
    let watch = Arc::new(dependencies::NatsWatch::new(address.clone()));
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(2))
        .event_callback(move |event| {
            watch.observe(&event);
            std::future::ready(())
        })
        .connect(servers)
        .await
        .map_err(|e| LedgerError::Config(format!("NATS at {address}: {e}")))
}

/// The servers of a `NATS_URL` such as `nats://a:4222,nats://b:4222`.
pub fn nats_servers(url: &str) -> Result<Vec<async_nats::ServerAddr>, LedgerError> {
    let servers = url
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            part.parse::<async_nats::ServerAddr>()
                .map_err(|e| LedgerError::Config(format!("NATS_URL `{part}`: {e}")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    if servers.is_empty() {
        return Err(LedgerError::Config("NATS_URL names no server".into()));
    }
    Ok(servers)
}

/// Runs the configured parts until `shutdown` resolves; then stops taking
/// requests, drains those in flight and stops the background work.
pub async fn serve(
    listener: Option<TcpListener>,
    pool: PgPool,
    config: ServerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), LedgerError> {
    let parts = config.parts;
    // Installed before anything records, so nothing is lost.
    observability::handle();
    let nats = connect_nats(&config.nats_url).await?;
    // Its tasks are aborted with the serve task if that is aborted (a
    // crash), drained after the shutdown signal otherwise.
    let mut background = Shutdown::new();
    let clock = config.clock.clone();

    let watched = pool.clone();
    background.spawn("database watch", |stop| {
        dependencies::watch_database(watched, stop)
    });

    let command = parts
        .command_api
        .then(|| CommandApp::with_clock(config.command_api.clone(), pool.clone(), clock.clone()));
    if let Some(app) = &command {
        background.spawn("sweeper", |stop| {
            command_api::sweeper::run(app.clone(), stop)
        });
        let notifier = app.notifier.clone();
        let notified = pool.clone();
        background.spawn("notifier", |stop| notifier.run(notified, stop));
        let fanout = Arc::new(command_api::outbound::fanout::Fanout::new(
            app.clock.clone(),
        ));
        let runner = Runner::new(pool.clone(), nats.clone(), runner_config(&config), fanout);
        background.spawn(command_api::outbound::fanout::NAME, |stop| runner.run(stop));
        if app.config.outbound.dispatch {
            let dispatcher = command_api::outbound::dispatch::Dispatcher::new(
                pool.clone(),
                app.clock.clone(),
                app.config.outbound.clone(),
            )
            .with_keyring(app.personal.clone());
            background.spawn("webhook dispatcher", |stop| dispatcher.run(stop));
        }
        let policies = Arc::new(command_api::policies::Policies::new(app.clone()));
        let runner = Runner::new(pool.clone(), nats.clone(), runner_config(&config), policies);
        background.spawn(command_api::policies::NAME, |stop| runner.run(stop));
    }
    if parts.relay {
        let relay = Relay::new(
            pool.clone(),
            nats.clone(),
            RelayConfig::new(config.stream.clone()),
        );
        background.spawn("relay", |stop| relay.run(stop));
        match &config.audit.signing {
            Some(key) => {
                let key_id = audit::key_id(&key.verifying_key());
                let sealer = audit::Sealer::new(
                    pool.clone(),
                    clock.clone(),
                    key.clone(),
                    key_id,
                    config.stream.name.clone(),
                )
                .with_interval(config.audit.seal_interval.max(Duration::from_millis(100)));
                background.spawn("sealer", |stop| sealer.run(stop));
                let (published, nats, settings) =
                    (pool.clone(), nats.clone(), config.stream.clone());
                let interval = config.audit.seal_interval.max(Duration::from_millis(100));
                background.spawn("seal publisher", move |stop| {
                    crate::seal_publisher::run(published, nats, settings, interval, stop)
                });
            }
            None => tracing::warn!(
                "no LEDGER_AUDIT_SIGNING_KEY: the log is hash-chained but not sealed"
            ),
        }
    }
    if parts.projectors {
        for model in projectors::read_models() {
            let name = format!("consumer {}", model.name());
            let runner = Runner::new(pool.clone(), nats.clone(), runner_config(&config), model);
            background.spawn(name, |stop| runner.run(stop));
        }
    }

    let mut http: Option<JoinHandle<std::io::Result<()>>> = None;
    if let Some(listener) = listener.filter(|_| parts.serves_http()) {
        // Live event streams never finish on their own: they end when
        // shutdown begins, so that the graceful drain can complete.
        let read = Arc::new(read_api::ReadApp {
            pool: pool.clone(),
            nats: Some(nats.clone()),
            currency: config.command_api.currency.clone(),
            stream: config.stream.name.clone(),
            closing: background.draining(),
            clock: clock.clone(),
            feeds: read_api::feeds::Feeds::new(config.feeds),
            live: Default::default(),
            orders_feed: Default::default(),
            audit_public_key: config.audit.public,
            positions: Default::default(),
            consumers: consumer_names(),
            personal: privacy::Keyring::new(pool.clone())
                .with_kek(config.command_api.personal_data_kek.clone()),
        });
        let router = http_router(
            command,
            read,
            &config.command_api.jwt_secret,
            config.request_timeout,
            observability::MetricsState {
                pool: pool.clone(),
                stream: config.stream.name.clone(),
            },
            config.rate_limits,
        );
        let router = crate::cors::apply(router, &config.cors);
        let server =
            connections::serve(listener, router, config.connections, background.draining());
        http = Some(tokio::spawn(server));
    }

    // Until the signal, or until the HTTP server ends on its own (an error).
    let mut served = Ok(());
    let http_ended = async {
        match http.as_mut() {
            Some(server) => server.await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = shutdown => {}
        ended = http_ended => {
            served = ended.unwrap_or_else(|join| Err(std::io::Error::other(join)));
            http = None;
        }
    }
    // The drain is bounded: whatever has not stopped by the deadline is
    // named, aborted, and the process exits with an error.
    let timeout = config.shutdown_timeout;
    let drained = background.drain(http, timeout).await;
    if let Err(err) = drained.served {
        served = Err(err);
    }
    let (deadline, mut unfinished) = (drained.deadline, drained.unfinished);
    // Only a connected client can flush (while NATS is unreachable a flush
    // waits for ever); what the relay published and NATS did not
    // acknowledge is published again at the next start.
    if nats.connection_state() == async_nats::connection::State::Connected {
        if tokio::time::timeout_at(deadline, nats.flush())
            .await
            .is_err()
        {
            unfinished.push("nats flush".to_owned());
        }
    } else {
        tracing::warn!(
            nats = %dependencies::redact_nats_url(&config.nats_url),
            "NATS unreachable at shutdown: nothing flushed (unacknowledged events are relayed again at the next start)"
        );
    }
    if !unfinished.is_empty() {
        tracing::error!(
            timeout = %humantime::format_duration(timeout),
            unfinished = %unfinished.join(", "),
            "shutdown deadline passed; exiting with these still running"
        );
        return Err(LedgerError::ShutdownTimedOut {
            timeout,
            unfinished,
        });
    }
    served?;
    Ok(())
}

/// Every stream consumer a deployment runs: the read models' projectors and
/// the command side's policies. The read side lists them by these names
/// without linking the command side.
pub fn consumer_names() -> Vec<String> {
    projectors::read_models()
        .iter()
        .map(|m| m.name().to_owned())
        .chain([
            command_api::policies::NAME.to_owned(),
            command_api::outbound::fanout::NAME.to_owned(),
        ])
        .collect()
}

fn runner_config(config: &ServerConfig) -> RunnerConfig {
    let mut runner = RunnerConfig::new(config.stream.clone());
    runner.retry = config.consumer_retry;
    runner
}

/// Starts a ledger in the background (tests, embedding).
pub async fn spawn(
    listener: Option<TcpListener>,
    pool: PgPool,
    config: ServerConfig,
) -> Result<RunningServer, LedgerError> {
    let addr = match &listener {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let shutdown = CancellationToken::new();
    let handle = tokio::spawn(serve(
        listener,
        pool,
        config,
        shutdown.clone().cancelled_owned(),
    ));
    Ok(RunningServer {
        addr,
        shutdown,
        handle,
    })
}

#[cfg(test)]
mod nats_url_tests {
    use super::nats_servers;

    #[test]
    fn a_nats_url_may_list_every_server_of_a_cluster() {
        let servers =
            nats_servers("nats://127.0.0.1:4222, nats://127.0.0.1:4223,nats://10.0.0.3:4222")
                .expect("three servers");
        assert_eq!(servers.len(), 3);
        assert_eq!(servers[1].port(), 4223);
        assert!(nats_servers(" , ").is_err());
        assert!(nats_servers("nats://host:notaport").is_err());
    }
}
