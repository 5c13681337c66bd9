//! Configuration shared by the subcommands: flags that default to the
//! environment variables of API.md "Conventions".

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use rust_decimal::Decimal;

use crate as ledger_parts;

#[derive(Args, Clone, Debug)]
pub struct DatabaseArgs {
    /// PostgreSQL holding the event store and read models.
    #[arg(long, env = "DATABASE_URL")]
    pub database_url: String,
    /// Most connections in the pool.
    #[arg(long, env = "LEDGER_DB_POOL_SIZE", default_value_t = 32)]
    pub db_pool_size: u32,
}

#[derive(Args, Clone, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// NATS with JetStream (used by the event pipeline).
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Address the HTTP API listens on.
    #[arg(long, env = "LEDGER_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,
    /// HS256 secret of bearer tokens (needed by the HTTP parts).
    #[arg(long, env = "LEDGER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Secret of the payment provider's webhook signatures (command API).
    #[arg(long, env = "LEDGER_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// JetStream stream replicas: 1 locally, 3 in a cluster.
    #[arg(long, env = "LEDGER_STREAM_REPLICAS", default_value_t = 1)]
    pub stream_replicas: usize,
    /// JetStream's duplicate window: must cover a relay restart, so that
    /// republished events are dropped as copies.
    #[arg(long, env = "LEDGER_STREAM_DUPLICATE_WINDOW", default_value = "2m", value_parser = humantime::parse_duration)]
    pub stream_duplicate_window: Duration,
    /// JetStream stream name; subjects follow it.
    #[arg(long, env = "LEDGER_STREAM", default_value = "LEDGER")]
    pub stream: String,
    /// The deployment's one currency.
    #[arg(long, env = "LEDGER_CURRENCY", default_value = "USD")]
    pub currency: String,
    /// Tax rate on each line's subtotal, 0 to 1 (`0.2` = 20 %).
    #[arg(long, env = "LEDGER_TAX_RATE", default_value = "0")]
    pub tax_rate: Decimal,
    /// The platform's fee on each vendor's subtotal, 0 to 1 (`0.10` = 10 %).
    #[arg(long, env = "LEDGER_PLATFORM_FEE_RATE", default_value = "0.10")]
    pub platform_fee_rate: Decimal,
    /// How far a token's `exp` and `nbf` may be off the server's clock
    /// (clocks a little apart), e.g. `5s`; `0s` for none.
    #[arg(long, env = "LEDGER_JWT_LEEWAY", default_value = "5s", value_parser = humantime::parse_duration)]
    pub jwt_leeway: Duration,
    /// The IANA time zone of rental listings without one of their own
    /// (`Europe/Berlin`): day listings bill its calendar days.
    #[arg(long, env = "LEDGER_TIME_ZONE", default_value = "UTC")]
    pub time_zone: chrono_tz::Tz,
    /// How long an unpaid order holds its units (`15m`, `1h`).
    #[arg(long, env = "LEDGER_HOLD_TTL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub hold_ttl: Duration,
    /// How often lapsed holds are swept.
    #[arg(long, env = "LEDGER_SWEEP_INTERVAL", default_value = "5s", value_parser = humantime::parse_duration)]
    pub sweep_interval: Duration,
    /// Dunning: how long after an invoice falls due an unpaid one counts
    /// as failed.
    #[arg(long, env = "LEDGER_DUNNING_PAYMENT_WINDOW", default_value = "1d", value_parser = humantime::parse_duration)]
    pub dunning_payment_window: Duration,
    /// Dunning: when a failed invoice's payment is retried, after its first
    /// failure (comma-separated, increasing).
    #[arg(long, env = "LEDGER_DUNNING_RETRIES", default_value = "1d,3d,5d", value_delimiter = ',', value_parser = humantime::parse_duration)]
    pub dunning_retries: Vec<Duration>,
    /// Dunning: a subscription still unpaid this long after the first
    /// failure is suspended.
    #[arg(long, env = "LEDGER_DUNNING_SUSPEND_AFTER", default_value = "7d", value_parser = humantime::parse_duration)]
    pub dunning_suspend_after: Duration,
    /// Dunning: a suspended subscription is cancelled this long after.
    #[arg(long, env = "LEDGER_DUNNING_CANCEL_AFTER", default_value = "14d", value_parser = humantime::parse_duration)]
    pub dunning_cancel_after: Duration,
    /// Outgoing webhooks may go to loopback addresses (local development).
    #[arg(long, env = "LEDGER_WEBHOOKS_ALLOW_LOOPBACK", default_value_t = false)]
    pub webhooks_allow_loopback: bool,
    /// Internal hosts outgoing webhooks may go to, comma-separated.
    #[arg(long, env = "LEDGER_WEBHOOKS_ALLOWED_HOSTS", value_delimiter = ',')]
    pub webhooks_allowed_hosts: Vec<String>,
    /// A request that takes longer is answered 503.
    #[arg(long, env = "LEDGER_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,
    /// A request's head must arrive within it, or the connection is closed
    /// without an answer (slow clients).
    #[arg(long, env = "LEDGER_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub header_read_timeout: Duration,
    /// A connection on which nothing moves for this long is closed.
    #[arg(long, env = "LEDGER_IDLE_TIMEOUT", default_value = "60s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Connections open at once; past it a new one is answered 503.
    #[arg(long, env = "LEDGER_MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Live feeds one principal may hold open; past it 429.
    #[arg(long, env = "LEDGER_MAX_FEEDS_PER_PRINCIPAL", default_value_t = 10)]
    pub max_feeds_per_principal: usize,
    /// Live feeds open at once on this process; past it 429.
    #[arg(long, env = "LEDGER_MAX_FEEDS", default_value_t = 1_000)]
    pub max_feeds: usize,
    /// Ed25519 key (64 hex digits, the 32-byte seed) that signs the audit
    /// seals. Without it no seals are made (the hash chain still is).
    #[arg(long, env = "LEDGER_AUDIT_SIGNING_KEY", hide_env_values = true)]
    pub audit_signing_key: Option<String>,
    /// Ed25519 public key (64 hex digits) that verifies the seals; derived
    /// from the signing key when that is given.
    #[arg(long, env = "LEDGER_AUDIT_PUBLIC_KEY")]
    pub audit_public_key: Option<String>,
    /// How often new events are sealed.
    #[arg(long, env = "LEDGER_AUDIT_SEAL_INTERVAL", default_value = "10s", value_parser = humantime::parse_duration)]
    pub audit_seal_interval: Duration,
    /// Human-readable logs instead of JSON.
    #[arg(long, env = "LEDGER_LOG_PRETTY", default_value_t = false)]
    pub log_pretty: bool,
    /// Requests per second each principal (token subject) may make; 0: no limit.
    #[arg(long, env = "LEDGER_RATE_LIMIT_PER_PRINCIPAL", default_value_t = 200.0)]
    pub rate_limit_per_principal: f64,
    /// Requests a principal may make at once above its rate.
    #[arg(
        long,
        env = "LEDGER_RATE_LIMIT_PER_PRINCIPAL_BURST",
        default_value_t = 400
    )]
    pub rate_limit_per_principal_burst: u32,
    /// Requests per second each client IP may make; 0: no limit.
    #[arg(long, env = "LEDGER_RATE_LIMIT_PER_IP", default_value_t = 500.0)]
    pub rate_limit_per_ip: f64,
    /// Requests an IP may make at once above its rate.
    #[arg(long, env = "LEDGER_RATE_LIMIT_PER_IP_BURST", default_value_t = 1000)]
    pub rate_limit_per_ip_burst: u32,
    /// PostgreSQL cuts any statement of the server's pool that runs longer
    /// (0: no limit), so a stuck query cannot outlive its request.
    #[arg(long, env = "LEDGER_DB_STATEMENT_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub db_statement_timeout: Duration,
    /// After SIGTERM or Ctrl-C, how long the drain may take (requests in
    /// flight, then the relay, the consumers and the other background
    /// tasks); past it the process exits non-zero naming what did not stop.
    /// A second signal exits at once.
    #[arg(long, env = "LEDGER_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,
    /// Origins whose browser pages may call the API, comma-separated
    /// (`https://shop.example.com,http://localhost:3000`), or `*`; empty:
    /// no cross-origin calls. Preflights are answered without a token.
    #[arg(long, env = "LEDGER_CORS_ORIGINS", default_value = "")]
    pub cors_origins: String,
    /// Key-encryption key (64 hex digits) that wraps the data subjects'
    /// keys in the database (docs/PRIVACY.md); without it they are stored
    /// as they are. Keys made before it was set stay readable.
    #[arg(long, env = "LEDGER_PERSONAL_DATA_KEK", hide_env_values = true)]
    pub personal_data_kek: Option<String>,
}

/// The key-encryption key of `LEDGER_PERSONAL_DATA_KEK`, if set.
pub fn personal_data_kek(hex: Option<&str>) -> Result<Option<privacy::KeyEncryptionKey>, String> {
    hex.filter(|h| !h.is_empty())
        .map(privacy::KeyEncryptionKey::from_hex)
        .transpose()
        .map_err(|e| format!("LEDGER_PERSONAL_DATA_KEK: {e}"))
}

/// The rule `serve` applies to the token secret; `ledger token` applies it
/// too, so that it never signs tokens with a secret no server would take.
pub fn check_jwt_secret(secret: &str) -> Result<(), String> {
    if secret.len() < 8 {
        return Err("LEDGER_JWT_SECRET must be set, at least 8 characters".into());
    }
    Ok(())
}

/// The flags of [`ServeArgs`] each long-running subcommand uses; the help
/// of `relay`, `project`, `read-api` and `command-api` shows only theirs
/// (the others are still accepted, so one environment serves every part).
pub fn flags_of(subcommand: &str) -> Option<&'static [&'static str]> {
    const COMMON: &[&str] = &[
        "database_url",
        "db_pool_size",
        "db_statement_timeout",
        "nats_url",
        "stream",
        "log_pretty",
        "shutdown_timeout",
    ];
    const HTTP: &[&str] = &[
        "http_addr",
        "jwt_secret",
        "jwt_leeway",
        "request_timeout",
        "header_read_timeout",
        "idle_timeout",
        "max_connections",
        "rate_limit_per_principal",
        "rate_limit_per_principal_burst",
        "rate_limit_per_ip",
        "rate_limit_per_ip_burst",
        "cors_origins",
    ];
    const COMMANDS: &[&str] = &[
        "webhook_secret",
        "currency",
        "tax_rate",
        "platform_fee_rate",
        "hold_ttl",
        "sweep_interval",
        "personal_data_kek",
    ];
    const QUERIES: &[&str] = &[
        "max_feeds_per_principal",
        "max_feeds",
        "audit_public_key",
        "personal_data_kek",
    ];
    const RELAY: &[&str] = &[
        "stream_replicas",
        "stream_duplicate_window",
        "audit_signing_key",
        "audit_public_key",
        "audit_seal_interval",
    ];
    static COMMAND_API: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    static READ_API: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    static RELAY_ONLY: std::sync::OnceLock<Vec<&'static str>> = std::sync::OnceLock::new();
    let joined = |parts: &[&[&'static str]]| parts.concat();
    match subcommand {
        "command-api" => Some(COMMAND_API.get_or_init(|| joined(&[COMMON, HTTP, COMMANDS]))),
        "read-api" => Some(READ_API.get_or_init(|| joined(&[COMMON, HTTP, QUERIES]))),
        "relay" => Some(RELAY_ONLY.get_or_init(|| joined(&[COMMON, RELAY]))),
        "project" => Some(COMMON),
        _ => None,
    }
}

impl ServeArgs {
    /// Checks what clap cannot: rates in range, a currency code, the
    /// secrets the chosen parts need.
    pub fn validate(&self, parts: ledger_parts::Parts) -> Result<(), String> {
        if !(Decimal::ZERO..=Decimal::ONE).contains(&self.tax_rate) {
            return Err("LEDGER_TAX_RATE must be between 0 and 1".into());
        }
        if !(Decimal::ZERO..=Decimal::ONE).contains(&self.platform_fee_rate) {
            return Err("LEDGER_PLATFORM_FEE_RATE must be between 0 and 1".into());
        }
        if self.currency.len() != 3 || !self.currency.chars().all(|c| c.is_ascii_alphabetic()) {
            return Err("LEDGER_CURRENCY must be a three-letter code".into());
        }
        let serves_http = parts.command_api || parts.read_api;
        if serves_http {
            check_jwt_secret(self.jwt_secret.as_deref().unwrap_or_default())?;
        }
        if parts.command_api
            && self
                .webhook_secret
                .as_deref()
                .unwrap_or_default()
                .is_empty()
        {
            return Err("LEDGER_WEBHOOK_SECRET must be set".into());
        }
        if !(1..=5).contains(&self.stream_replicas) {
            return Err("LEDGER_STREAM_REPLICAS must be between 1 and 5".into());
        }
        if self.stream.is_empty()
            || !self
                .stream
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err("LEDGER_STREAM must be letters, digits, `_` or `-`".into());
        }
        self.audit_keys()?;
        personal_data_kek(self.personal_data_kek.as_deref())?;
        crate::cors::CorsOrigins::parse(&self.cors_origins)?;
        let rates = [self.rate_limit_per_principal, self.rate_limit_per_ip];
        if rates.iter().any(|r| r.is_nan() || *r < 0.0) {
            return Err("LEDGER_RATE_LIMIT_PER_* must be 0 (off) or positive".into());
        }
        if self.header_read_timeout.is_zero() || self.idle_timeout.is_zero() {
            return Err(
                "LEDGER_HEADER_READ_TIMEOUT and LEDGER_IDLE_TIMEOUT must be positive".into(),
            );
        }
        if self.max_connections == 0 {
            return Err("LEDGER_MAX_CONNECTIONS must be at least 1".into());
        }
        if self.max_feeds == 0 || self.max_feeds_per_principal == 0 {
            return Err(
                "LEDGER_MAX_FEEDS and LEDGER_MAX_FEEDS_PER_PRINCIPAL must be at least 1".into(),
            );
        }
        if self.shutdown_timeout.is_zero() {
            return Err("LEDGER_SHUTDOWN_TIMEOUT must be positive".into());
        }
        if self.hold_ttl.is_zero() || self.sweep_interval.is_zero() {
            return Err("LEDGER_HOLD_TTL and LEDGER_SWEEP_INTERVAL must be positive".into());
        }
        if let Some(problem) = self.dunning_policy().problem() {
            return Err(format!("LEDGER_DUNNING_*: {problem}"));
        }
        Ok(())
    }

    /// The audit signing key and the public key that checks seals.
    pub fn audit_keys(&self) -> Result<crate::AuditKeys, String> {
        let signing = self
            .audit_signing_key
            .as_deref()
            .map(audit::parse_signing_key)
            .transpose()
            .map_err(|e| format!("LEDGER_AUDIT_SIGNING_KEY: {e}"))?;
        let public = match (&self.audit_public_key, &signing) {
            (Some(hex), _) => Some(
                audit::parse_verifying_key(hex)
                    .map_err(|e| format!("LEDGER_AUDIT_PUBLIC_KEY: {e}"))?,
            ),
            (None, Some(signing)) => Some(signing.verifying_key()),
            (None, None) => None,
        };
        if let (Some(signing), Some(public)) = (&signing, &public) {
            if signing.verifying_key() != *public {
                return Err(
                    "LEDGER_AUDIT_PUBLIC_KEY does not match LEDGER_AUDIT_SIGNING_KEY".into(),
                );
            }
        }
        Ok(crate::AuditKeys {
            signing,
            public,
            seal_interval: self.audit_seal_interval,
        })
    }

    pub fn server_config(&self, parts: ledger_parts::Parts) -> crate::ServerConfig {
        let mut stream = ledger_nats::StreamSettings::new(self.stream.clone());
        stream.replicas = self.stream_replicas;
        stream.duplicate_window = self.stream_duplicate_window;
        crate::ServerConfig {
            command_api: self.command_api_config(),
            request_timeout: self.request_timeout,
            nats_url: self.nats_url.clone(),
            stream,
            parts,
            audit: self.audit_keys().unwrap_or_default(),
            rate_limits: crate::limits::RateLimits {
                per_ip: crate::limits::Rate::new(
                    self.rate_limit_per_ip,
                    self.rate_limit_per_ip_burst,
                ),
                per_principal: crate::limits::Rate::new(
                    self.rate_limit_per_principal,
                    self.rate_limit_per_principal_burst,
                ),
            },
            connections: crate::connections::ConnectionLimits {
                header_read_timeout: self.header_read_timeout,
                idle_timeout: self.idle_timeout,
                max_connections: self.max_connections,
            },
            feeds: read_api::feeds::FeedLimits {
                per_principal: self.max_feeds_per_principal,
                overall: self.max_feeds,
            },
            consumer_retry: projectors::RetryPolicy::default(),
            shutdown_timeout: self.shutdown_timeout,
            cors: crate::cors::CorsOrigins::parse(&self.cors_origins).unwrap_or_default(),
            // The binary's wiring: the one place the system's clock is made.
            clock: std::sync::Arc::new(ledger_clock::SystemClock),
        }
    }

    pub fn command_api_config(&self) -> command_api::CommandApiConfig {
        command_api::CommandApiConfig {
            jwt_secret: self.jwt_secret.clone().unwrap_or_default(),
            webhook_secret: self.webhook_secret.clone().unwrap_or_default(),
            currency: self.currency.to_ascii_uppercase(),
            tax_rate: self.tax_rate,
            platform_fee_rate: self.platform_fee_rate,
            hold_ttl: self.hold_ttl,
            sweep_interval: self.sweep_interval,
            snapshot_every: 50,
            outbound: command_api::outbound::OutboundConfig {
                allow_loopback: self.webhooks_allow_loopback,
                allowed_hosts: self.webhooks_allowed_hosts.clone(),
                ..Default::default()
            },
            time_zone: self.time_zone,
            // Checked by `validate`.
            personal_data_kek: personal_data_kek(self.personal_data_kek.as_deref())
                .unwrap_or_default(),
            dunning: self.dunning_policy(),
        }
    }

    /// The dunning settings as the Subscription aggregate takes them.
    pub fn dunning_policy(&self) -> domain::DunningPolicy {
        let iso = |d: &Duration| {
            domain::IsoDuration::from_seconds(i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        };
        domain::DunningPolicy {
            payment_window: iso(&self.dunning_payment_window),
            retries: self.dunning_retries.iter().map(iso).collect(),
            suspend_after: iso(&self.dunning_suspend_after),
            cancel_after: iso(&self.dunning_cancel_after),
        }
    }
}
