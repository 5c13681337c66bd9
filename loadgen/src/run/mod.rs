//! The HTTP load generator (`ledger-bench run`).
//!
//! It drives a running ledger with one of several scenarios (see
//! [`Scenario`]), each client its own customer, and reports per operation
//! throughput, latency percentiles and errors by status, the successful
//! commands per second, the projection lag (commit → visible in every read
//! model), the server's peak RSS, and a consistency check run afterwards (no
//! overbooking, no negative availability, a balanced trial balance).
//!
//! [`run`] is the programmatic entry (tests call it and inspect the
//! [`Report`]); [`execute`] is the CLI's, which prints the report.

mod check;
mod client;
mod feeds;
mod probe;
mod report;
mod scenarios;
mod setup;
mod stats;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::BenchError;
pub use check::CheckReport;
use client::Api;
pub use feeds::FeedsReport;
pub use probe::RssSampler;
pub use report::{CommandsReport, DeepListingReport, HotListingReport, LagReport, Report};
pub use stats::{OpReport, Percentiles};

/// What the clients do.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// A marketplace mix: searches, availability, listings, orders of 1–3
    /// lines, payment webhooks, cancellations, order lookups.
    Mixed,
    /// Only `POST /v1/orders` with one line, on many listings.
    PlaceOrder,
    /// Every client books its own slots on one rental listing of one unit.
    HotListing,
    /// Place-order latency on a listing with many bookings vs a fresh one.
    DeepListing,
    /// Only queries: search, get listing, availability.
    Reads,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Mixed => "mixed",
            Scenario::PlaceOrder => "place-order",
            Scenario::HotListing => "hot-listing",
            Scenario::DeepListing => "deep-listing",
            Scenario::Reads => "reads",
        }
    }
}

#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// Base URL of the running ledger.
    #[arg(
        long,
        env = "LEDGER_BENCH_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Send commands and webhooks here instead, in turn (repeat the flag
    /// for several `ledger command-api` processes); queries stay on `--url`.
    #[arg(long = "command-url")]
    pub command_urls: Vec<String>,
    /// The ledger's JWT secret (tokens are minted here).
    #[arg(long, env = "LEDGER_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: String,
    /// The ledger's webhook secret (payment events are signed here).
    #[arg(long, env = "LEDGER_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: String,
    #[arg(long, value_enum, default_value = "mixed")]
    pub scenario: Scenario,
    /// Concurrent clients (each its own customer).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Measured time.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Load before the measured time, excluded from every figure.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub warmup: Duration,
    /// Vendors to create in setup.
    #[arg(long, default_value_t = 20)]
    pub vendors: usize,
    /// Listings to create in setup (or to use, with `--existing`).
    #[arg(long, default_value_t = 200)]
    pub listings: usize,
    /// Target requests per second across all clients (open loop); unset: as
    /// fast as the ledger answers.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Use published listings already in the ledger instead of creating them.
    #[arg(long)]
    pub existing: bool,
    /// Bookings placed on the deep listing first (`deep-listing`).
    #[arg(long, default_value_t = 10_000)]
    pub bookings: usize,
    /// Sample this process's VmRSS every 200 ms and report the peak.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Live feeds (`GET /v1/events/stream`) to hold open during the run,
    /// each on a connection of its own, counting the events they receive.
    #[arg(long, default_value_t = 0)]
    pub feeds: usize,
    /// Feeds per analyst token subject (the server caps feeds per subject:
    /// `LEDGER_MAX_FEEDS_PER_PRINCIPAL`).
    #[arg(long, default_value_t = 10)]
    pub feeds_per_subject: usize,
    /// A filter the feeds ask for (`aggregate_type=Vendor`, …); unset: the
    /// whole log.
    #[arg(long)]
    pub feeds_query: Option<String>,
    /// Of the feeds, how many follow the whole log despite `--feeds-query`.
    #[arg(long, default_value_t = 0)]
    pub feeds_whole: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<std::path::PathBuf>,
}

/// Everything a run needs; [`RunConfig::new`] gives the CLI's defaults.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub url: String,
    /// Command processes to use in turn (empty: `url`).
    pub command_urls: Vec<String>,
    pub jwt_secret: String,
    pub webhook_secret: String,
    pub scenario: Scenario,
    pub concurrency: usize,
    pub duration: Duration,
    pub warmup: Duration,
    pub vendors: usize,
    pub listings: usize,
    pub rate: Option<f64>,
    pub existing: bool,
    pub bookings: usize,
    pub server_pid: Option<u32>,
    pub feeds: usize,
    pub feeds_per_subject: usize,
    pub feeds_query: Option<String>,
    pub feeds_whole: usize,
    /// Progress bars on stderr.
    pub progress: bool,
}

impl RunConfig {
    pub fn new(url: &str, jwt_secret: &str, webhook_secret: &str) -> Self {
        Self {
            url: url.to_owned(),
            command_urls: Vec::new(),
            jwt_secret: jwt_secret.to_owned(),
            webhook_secret: webhook_secret.to_owned(),
            scenario: Scenario::Mixed,
            concurrency: 32,
            duration: Duration::from_secs(30),
            warmup: Duration::from_secs(2),
            vendors: 20,
            listings: 200,
            rate: None,
            existing: false,
            bookings: 10_000,
            server_pid: None,
            feeds: 0,
            feeds_per_subject: 10,
            feeds_query: None,
            feeds_whole: 0,
            progress: true,
        }
    }

    fn validate(&self) -> Result<(), BenchError> {
        if self.concurrency == 0 {
            return Err(BenchError::Config(
                "--concurrency must be at least 1".into(),
            ));
        }
        if self.duration.is_zero() {
            return Err(BenchError::Config("--duration must be positive".into()));
        }
        if !self.existing && (self.vendors == 0 || self.listings == 0) {
            return Err(BenchError::Config(
                "--vendors and --listings must be at least 1".into(),
            ));
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(BenchError::Config("--rate must be positive".into()));
            }
        }
        Ok(())
    }
}

impl From<RunArgs> for RunConfig {
    fn from(a: RunArgs) -> Self {
        Self {
            url: a.url,
            command_urls: a.command_urls,
            jwt_secret: a.jwt_secret,
            webhook_secret: a.webhook_secret,
            scenario: a.scenario,
            concurrency: a.concurrency,
            duration: a.duration,
            warmup: a.warmup,
            vendors: a.vendors,
            listings: a.listings,
            rate: a.rate,
            existing: a.existing,
            bookings: a.bookings,
            server_pid: a.server_pid,
            feeds: a.feeds,
            feeds_per_subject: a.feeds_per_subject,
            feeds_query: a.feeds_query,
            feeds_whole: a.feeds_whole,
            progress: true,
        }
    }
}

/// `ledger-bench run`: runs, prints the report, writes it as JSON if asked;
/// a failed consistency check is an error (non-zero exit).
pub async fn execute(args: RunArgs) -> Result<(), BenchError> {
    let json = args.json.clone();
    let report = run(args.into()).await?;
    print!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("report written to {}", path.display());
    }
    if report.check.passed {
        Ok(())
    } else {
        Err(BenchError::Check(report.check.problems.join("; ")))
    }
}

/// How long the read models get to show what setup made.
const SETUP_CATCH_UP: Duration = Duration::from_secs(60);

/// A listing the clients order from.
#[derive(Clone, Debug)]
pub(crate) struct ListingInfo {
    pub listing_id: Uuid,
    pub vendor_id: Uuid,
    pub category: String,
    pub kind: Kind,
}

#[derive(Clone, Copy, Debug)]
pub(crate) enum Kind {
    Rental { units: u32, hourly: bool },
    Sale,
}

impl ListingInfo {
    pub fn is_rental(&self) -> bool {
        matches!(self.kind, Kind::Rental { .. })
    }
}

/// A span of time `[start, end)`.
pub(crate) type Span = (DateTime<Utc>, DateTime<Utc>);

/// What the clients share during a run.
pub(crate) struct Shared {
    pub api: Api,
    pub admin: String,
    pub config: RunConfig,
    pub run_id: String,
    /// Every rental period starts at or after this (a whole day).
    pub base: DateTime<Utc>,
    pub measure_from: Instant,
    pub deadline: Instant,
    /// The latest successful command answer: its position and when it came.
    pub latest: Mutex<Option<(i64, Instant)>>,
    pub max_position: AtomicI64,
    /// Payments of the exact total answered 200 without confirming the order.
    pub unconfirmed_payments: AtomicU64,
    /// Rental listings ordered from, with the span of the periods asked.
    pub touched: Mutex<HashMap<Uuid, Span>>,
}

impl Shared {
    /// Notes a successful command's position.
    pub fn committed(&self, position: Option<i64>, at: Instant) {
        let Some(position) = position else { return };
        self.max_position.fetch_max(position, Ordering::Relaxed);
        if let Ok(mut latest) = self.latest.lock() {
            if latest.is_none_or(|(p, _)| position > p) {
                *latest = Some((position, at));
            }
        }
    }

    /// Notes that a rental period was asked on a listing.
    pub fn touch(&self, listing_id: Uuid, start: DateTime<Utc>, end: DateTime<Utc>) {
        if let Ok(mut touched) = self.touched.lock() {
            let span = touched.entry(listing_id).or_insert((start, end));
            span.0 = span.0.min(start);
            span.1 = span.1.max(end);
        }
    }
}

/// Runs one benchmark against a running ledger and returns its report.
pub async fn run(config: RunConfig) -> Result<Report, BenchError> {
    config.validate()?;
    let api = Api::split(
        &config.url,
        &config.command_urls,
        &config.jwt_secret,
        &config.webhook_secret,
        config.concurrency * 2,
    )?;
    let admin = api.token("admin", "loadgen-admin", None)?;
    // Fail early and clearly when the ledger is not there.
    api.must(
        "the ledger's projections",
        reqwest::Method::GET,
        "/v1/projections",
        &admin,
        None,
    )
    .await?;

    let rss = config.server_pid.map(probe::RssSampler::start);
    let run_id = Uuid::now_v7().simple().to_string();
    let base = setup::base_instant();

    let mut prepared = setup::prepare(&api, &admin, &config, &run_id, base).await?;
    // Clients should find what setup made in the read models.
    if !probe::wait_for(&api, &admin, prepared.position, SETUP_CATCH_UP).await {
        prepared.notes.push(format!(
            "the read models had not caught up with setup after {SETUP_CATCH_UP:?}"
        ));
    }

    // Held from the head on, so that they receive what the load writes.
    let held_feeds = if config.feeds > 0 {
        let from = probe::head(&api, &admin).await.unwrap_or(prepared.position);
        Some(
            feeds::open(
                &api,
                &config.url,
                feeds::FeedsPlan {
                    count: config.feeds,
                    per_subject: config.feeds_per_subject,
                    query: config.feeds_query.clone(),
                    whole: config.feeds_whole,
                },
                from,
                config.progress,
            )
            .await?,
        )
    } else {
        None
    };

    let started = Instant::now();
    let measure_from = started + config.warmup;
    let deadline = measure_from + config.duration;
    let shared = Arc::new(Shared {
        api: api.clone(),
        admin: admin.clone(),
        config: config.clone(),
        run_id,
        base,
        measure_from,
        deadline,
        latest: Mutex::new(None),
        max_position: AtomicI64::new(prepared.position),
        unconfirmed_payments: AtomicU64::new(0),
        touched: Mutex::new(HashMap::new()),
    });
    for (id, span) in &prepared.touched {
        shared.touch(*id, span.0, span.1);
    }

    if config.progress {
        eprintln!(
            "running `{}` with {} clients: {:?} warm-up, {:?} measured",
            config.scenario.name(),
            config.concurrency,
            config.warmup,
            config.duration
        );
    }
    let head_start = tokio::spawn(probe::head_at(api.clone(), admin.clone(), measure_from));
    let lag = tokio::spawn(probe::lag_probe(shared.clone()));
    let recorder = scenarios::drive(shared.clone(), &prepared).await?;
    let head_end = probe::head(&api, &admin).await;
    let feeds = match held_feeds {
        Some(held) => Some(held.finish().await),
        None => None,
    };
    let window = config.duration;
    let lag = lag
        .await
        .map_err(|e| BenchError::Unexpected(format!("the lag probe failed: {e}")))?;
    let head_start = head_start.await.ok().flatten();

    if config.progress {
        eprintln!("load done; checking consistency");
    }
    let check = check::check(&shared).await;
    let peak_rss_bytes = match rss {
        Some(sampler) => sampler.stop().await,
        None => None,
    };

    let operations = stats::op_reports(&recorder, window);
    let mut errors_by_status: BTreeMap<String, u64> = BTreeMap::new();
    for op in &operations {
        for (label, n) in &op.errors {
            *errors_by_status.entry(label.clone()).or_default() += n;
        }
    }
    let successful_commands: u64 = operations
        .iter()
        .filter(|op| scenarios::is_command(&op.operation))
        .map(|op| op.successes)
        .sum();
    let events = match (head_start, head_end) {
        (Some(a), Some(b)) if b >= a => Some(b - a),
        _ => None,
    };
    let secs = window.as_secs_f64();
    let commands = CommandsReport {
        successful: successful_commands,
        per_second: successful_commands as f64 / secs,
        events_recorded: events,
        events_per_second: events.map(|e| e as f64 / secs),
    };
    let mut notes = prepared.notes.clone();
    let rate_limited = errors_by_status.get("429").copied().unwrap_or(0);
    if rate_limited > 0 {
        notes.push(format!(
            "{rate_limited} requests were rate limited (429): raise \
             LEDGER_RATE_LIMIT_PER_PRINCIPAL / LEDGER_RATE_LIMIT_PER_IP (and their _BURST)"
        ));
    }
    let server_errors: u64 = errors_by_status
        .iter()
        .filter(|(label, _)| label.starts_with('5'))
        .map(|(_, n)| n)
        .sum();
    if server_errors > 0 {
        notes.push(format!("{server_errors} server errors (5xx)"));
    }
    if let Some(n) = errors_by_status.get("transport") {
        notes.push(format!(
            "{n} transport errors (no answer within {:?} or connection failed)",
            client::REQUEST_TIMEOUT
        ));
    }
    let unconfirmed = shared.unconfirmed_payments.load(Ordering::Relaxed);
    if unconfirmed > 0 {
        notes.push(format!(
            "{unconfirmed} payments of the exact total answered 200 without the order being confirmed"
        ));
    }
    if let Some(feeds) = &feeds {
        let refused: u64 = feeds.refused.values().sum();
        if refused > 0 {
            notes.push(format!(
                "{refused} of {} live feeds were refused ({:?}): raise LEDGER_MAX_FEEDS, \
                 LEDGER_MAX_CONNECTIONS or the open-file limit",
                feeds.requested, feeds.refused
            ));
        }
        if feeds.open_at_end < feeds.opened {
            notes.push(format!(
                "{} live feeds ended before the load did",
                feeds.opened - feeds.open_at_end
            ));
        }
    }
    if lag.timeouts > 0 {
        notes.push(format!(
            "{} projection-lag probes gave up after {:?}",
            lag.timeouts,
            probe::LAG_TIMEOUT
        ));
    }

    let hot_listing = (config.scenario == Scenario::HotListing).then(|| {
        let holds = recorder
            .ops
            .get(scenarios::PLACE_ORDER)
            .map_or(0, |s| s.successes);
        HotListingReport {
            holds,
            holds_per_second: holds as f64 / secs,
        }
    });
    let deep_listing = (config.scenario == Scenario::DeepListing).then(|| {
        let a = recorder
            .ops
            .get(scenarios::PLACE_ORDER_DEEP)
            .map(|s| Percentiles::of(&s.latency))
            .unwrap_or_default();
        let b = recorder
            .ops
            .get(scenarios::PLACE_ORDER_FRESH)
            .map(|s| Percentiles::of(&s.latency))
            .unwrap_or_default();
        let ratio = |x: u64, y: u64| if y == 0 { 0.0 } else { x as f64 / y as f64 };
        DeepListingReport {
            bookings: prepared.deep_bookings,
            ratio_p50: ratio(a.p50_us, b.p50_us),
            ratio_p99: ratio(a.p99_us, b.p99_us),
            deep: a,
            fresh: b,
        }
    });

    Ok(Report {
        scenario: config.scenario,
        url: config.url.clone(),
        concurrency: config.concurrency,
        warmup_seconds: config.warmup.as_secs_f64(),
        measured_seconds: secs,
        target_rate: config.rate,
        vendors: prepared.vendors,
        listings: prepared.listings.len()
            + usize::from(prepared.hot.is_some())
            + 2 * usize::from(prepared.deep.is_some()),
        operations,
        errors_by_status,
        commands,
        projection_lag: lag,
        peak_rss_bytes,
        feeds,
        rate_limited,
        hot_listing,
        deep_listing,
        check,
        notes,
    })
}
