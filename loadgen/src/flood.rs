//! `ledger-bench flood`: one client opens many connections at once (by
//! default 50,000) and holds them, each having sent half a request head,
//! while a few established keep-alive clients go on with their requests
//! and a prober opens a fresh connection every 100 ms. It shows that the
//! connection cap (`LEDGER_MAX_CONNECTIONS`) and the header-read timeout
//! keep the server alive and answering (issue 23, item 5): the process
//! survives, its memory stays bounded, the established clients see no
//! errors, new clients get a quick 503 while the cap is full, and a normal
//! request succeeds once the flood is gone.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::raw::{raise_open_files, Target};
use crate::run::RssSampler;
use crate::BenchError;

/// Connections being opened at once.
const CONNECTING_IN_FLIGHT: usize = 1_024;
/// How long one connect or one probe may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the prober opens a fresh connection.
const PROBE_EVERY: Duration = Duration::from_millis(100);

#[derive(clap::Args, Debug, Clone)]
pub struct FloodArgs {
    /// Base URL of the running ledger.
    #[arg(
        long,
        env = "LEDGER_BENCH_URL",
        default_value = "http://127.0.0.1:8080"
    )]
    pub url: String,
    /// Connections the flood opens.
    #[arg(long, default_value_t = 50_000)]
    pub connections: usize,
    /// How long the flood's connections are held.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub hold: Duration,
    /// Established keep-alive clients requesting `/health/live` throughout.
    #[arg(long, default_value_t = 8)]
    pub steady_clients: usize,
    /// Sample this process's VmRSS every 200 ms, check it is alive at the end.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What the flood did and what the server did under it.
#[derive(Serialize, Debug, Default)]
pub struct FloodReport {
    pub requested: usize,
    /// This process's open-file limit (it bounds the connections it can hold).
    pub client_open_files_limit: u64,
    /// Connections established.
    pub connected: u64,
    /// Connections that could not be made, by cause.
    pub connect_failed: BTreeMap<String, u64>,
    /// Established connections answered 503 (over the cap).
    pub answered_503: u64,
    /// Established connections the server closed without an answer (the
    /// header-read timeout).
    pub closed_by_server: u64,
    /// Established connections still open when the hold ended.
    pub open_at_end: u64,
    /// The established keep-alive clients' requests.
    pub steady_ok: u64,
    pub steady_failed: u64,
    pub steady_p99_us: u64,
    /// Fresh connections opened during the flood, by answer.
    pub fresh_probes: BTreeMap<String, u64>,
    pub fresh_probe_p99_us: u64,
    pub peak_rss_bytes: Option<u64>,
    /// The server process still ran at the end.
    pub server_alive: Option<bool>,
    /// A fresh `GET /health/ready` after the flood answered 200.
    pub answered_after: bool,
}

impl FloodReport {
    fn passed(&self) -> bool {
        self.server_alive != Some(false) && self.answered_after && self.steady_failed == 0
    }

    fn table(&self) -> String {
        let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
        let mut out = format!(
            "flood: {} connections asked (client open-file limit {}), {} made, failed {:?}\n\
             of those made: {} answered 503 (over the cap), {} closed by the server unanswered \
             (header-read timeout), {} still open at the end of the hold\n\
             established clients: {} ok, {} failed, p99 {:.1} ms\n\
             fresh connections during the flood: {:?}, p99 {:.1} ms\n",
            self.requested,
            self.client_open_files_limit,
            self.connected,
            self.connect_failed,
            self.answered_503,
            self.closed_by_server,
            self.open_at_end,
            self.steady_ok,
            self.steady_failed,
            self.steady_p99_us as f64 / 1000.0,
            self.fresh_probes,
            self.fresh_probe_p99_us as f64 / 1000.0,
        );
        if let Some(rss) = self.peak_rss_bytes {
            out.push_str(&format!("server peak RSS: {:.1} MiB\n", mib(rss)));
        }
        out.push_str(&format!(
            "server alive at the end: {}; a fresh request after the flood: {}\n",
            self.server_alive
                .map_or("not checked (no --server-pid)", |a| if a {
                    "yes"
                } else {
                    "NO"
                }),
            if self.answered_after { "200" } else { "FAILED" }
        ));
        out
    }
}

/// Runs the flood, prints the report; an error when the server died, did
/// not answer afterwards, or failed an established client.
pub async fn execute(args: FloodArgs) -> Result<(), BenchError> {
    let json = args.json.clone();
    let report = flood(args).await?;
    print!("{}", report.table());
    if let Some(path) = json {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)?;
        eprintln!("report written to {}", path.display());
    }
    if report.passed() {
        Ok(())
    } else {
        Err(BenchError::Check(
            "the server did not stay alive and answering under the flood".into(),
        ))
    }
}

pub async fn flood(args: FloodArgs) -> Result<FloodReport, BenchError> {
    let target = Target::of(&args.url)?;
    let mut report = FloodReport {
        requested: args.connections,
        client_open_files_limit: raise_open_files(args.connections as u64 + 4_096),
        ..FloodReport::default()
    };
    let rss = args.server_pid.map(RssSampler::start);
    let stop = CancellationToken::new();

    // Established before the flood: their connections are already in.
    let steady = Steady::default();
    let mut steady_tasks = JoinSet::new();
    for _ in 0..args.steady_clients {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .timeout(STEP_TIMEOUT)
            .build()?;
        let url = format!("{}/health/live", args.url.trim_end_matches('/'));
        client.get(&url).send().await?.error_for_status()?;
        steady_tasks.spawn(steady.clone().run(client, url, stop.clone()));
    }
    let prober = tokio::spawn(probe_fresh(target.clone(), stop.clone()));

    eprintln!("flood: opening {} connections", args.connections);
    let outcomes = Outcomes::default();
    let held = CancellationToken::new();
    let started = Instant::now();
    let holders: Vec<_> = stream::iter(0..args.connections)
        .map(|i| {
            let (target, outcomes, held) = (target.clone(), outcomes.clone(), held.clone());
            async move { open_and_hold(&target, i, &outcomes, held).await }
        })
        .buffer_unordered(CONNECTING_IN_FLIGHT)
        .filter_map(|holder| async move { holder })
        .collect()
        .await;
    eprintln!(
        "flood: {} connections made in {:.1} s; holding",
        outcomes.connected.load(Ordering::Relaxed),
        started.elapsed().as_secs_f64()
    );
    tokio::time::sleep(args.hold.saturating_sub(started.elapsed())).await;
    held.cancel();
    for holder in holders {
        let _ = holder.await;
    }
    stop.cancel();
    while steady_tasks.join_next().await.is_some() {}
    let (fresh, fresh_latency) = prober.await.unwrap_or_default();

    report.connected = outcomes.connected.load(Ordering::Relaxed);
    report.connect_failed = outcomes
        .connect_failed
        .lock()
        .map(|m| m.clone())
        .unwrap_or_default();
    report.answered_503 = outcomes.answered_503.load(Ordering::Relaxed);
    report.closed_by_server = outcomes.closed_by_server.load(Ordering::Relaxed);
    report.open_at_end = outcomes.open_at_end.load(Ordering::Relaxed);
    report.steady_ok = steady.ok.load(Ordering::Relaxed);
    report.steady_failed = steady.failed.load(Ordering::Relaxed);
    report.steady_p99_us = steady
        .latency
        .lock()
        .map(|h| h.value_at_quantile(0.99))
        .unwrap_or(0);
    report.fresh_probes = fresh;
    report.fresh_probe_p99_us = fresh_latency;

    // The flood is gone: the server must answer a newcomer.
    report.answered_after = answers_ready(&args.url).await;
    if let Some(sampler) = rss {
        report.peak_rss_bytes = sampler.stop().await;
    }
    report.server_alive = args.server_pid.map(alive);
    Ok(report)
}

/// What the flood's connections came to.
#[derive(Clone, Default)]
struct Outcomes {
    connected: Arc<AtomicU64>,
    connect_failed: Arc<Mutex<BTreeMap<String, u64>>>,
    answered_503: Arc<AtomicU64>,
    closed_by_server: Arc<AtomicU64>,
    open_at_end: Arc<AtomicU64>,
}

/// Connects, sends half a request head and holds the connection (in a
/// task of its own, returned) until `held` is cancelled or the server
/// answers or closes it.
async fn open_and_hold(
    target: &Target,
    index: usize,
    outcomes: &Outcomes,
    held: CancellationToken,
) -> Option<tokio::task::JoinHandle<()>> {
    let connected = tokio::time::timeout(STEP_TIMEOUT, target.connect(index)).await;
    let mut stream = match connected {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => {
            count(&outcomes.connect_failed, err.kind().to_string());
            return None;
        }
        Err(_) => {
            count(&outcomes.connect_failed, "timed out".to_owned());
            return None;
        }
    };
    outcomes.connected.fetch_add(1, Ordering::Relaxed);
    let head = format!("GET /health/live HTTP/1.1\r\nHost: {}\r\n", target.host);
    let _ = stream.write_all(head.as_bytes()).await;
    let outcomes = outcomes.clone();
    Some(tokio::spawn(async move {
        let mut answer = [0u8; 12];
        tokio::select! {
            read = stream.read(&mut answer) => match read {
                Ok(n) if n >= 12 && &answer[9..12] == b"503" => {
                    outcomes.answered_503.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    outcomes.closed_by_server.fetch_add(1, Ordering::Relaxed);
                }
            },
            _ = held.cancelled() => {
                outcomes.open_at_end.fetch_add(1, Ordering::Relaxed);
            }
        }
    }))
}

fn count(counts: &Mutex<BTreeMap<String, u64>>, label: String) {
    if let Ok(mut counts) = counts.lock() {
        *counts.entry(label).or_default() += 1;
    }
}

/// The established clients' tallies.
#[derive(Clone)]
struct Steady {
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    latency: Arc<Mutex<Histogram<u64>>>,
}

impl Default for Steady {
    fn default() -> Self {
        Self {
            ok: Arc::default(),
            failed: Arc::default(),
            latency: Arc::new(Mutex::new(
                Histogram::new(3)
                    .unwrap_or_else(|_| unreachable!("3 significant figures is valid")),
            )),
        }
    }
}

impl Steady {
    async fn run(self, client: reqwest::Client, url: String, stop: CancellationToken) {
        while !stop.is_cancelled() {
            let began = Instant::now();
            let answer = client.get(&url).send().await;
            let micros = began.elapsed().as_micros() as u64;
            match answer {
                Ok(answer) if answer.status().is_success() => {
                    self.ok.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    self.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Ok(mut latency) = self.latency.lock() {
                let _ = latency.record(micros);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// A fresh connection and a whole request every [`PROBE_EVERY`]: the
/// answers by status (or cause) and their p99 in µs.
async fn probe_fresh(target: Target, stop: CancellationToken) -> (BTreeMap<String, u64>, u64) {
    let mut answers = BTreeMap::new();
    let mut latency = Histogram::<u64>::new(3).unwrap_or_else(|_| unreachable!("valid"));
    // Its own source address group, apart from the flood's.
    let index = usize::MAX / 2;
    while !stop.is_cancelled() {
        let began = Instant::now();
        let label = match tokio::time::timeout(STEP_TIMEOUT, probe_once(&target, index)).await {
            Ok(Ok(status)) => status,
            Ok(Err(err)) => err.kind().to_string(),
            Err(_) => "timed out".to_owned(),
        };
        let _ = latency.record(began.elapsed().as_micros() as u64);
        *answers.entry(label).or_default() += 1;
        tokio::time::sleep(PROBE_EVERY).await;
    }
    (answers, latency.value_at_quantile(0.99))
}

async fn probe_once(target: &Target, index: usize) -> std::io::Result<String> {
    let mut stream = target.connect(index).await?;
    let request = format!(
        "GET /health/live HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
        target.host
    );
    stream.write_all(request.as_bytes()).await?;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await?;
    Ok(String::from_utf8_lossy(&head[9..12]).into_owned())
}

async fn answers_ready(url: &str) -> bool {
    let Ok(client) = reqwest::Client::builder().timeout(STEP_TIMEOUT).build() else {
        return false;
    };
    let url = format!("{}/health/ready", url.trim_end_matches('/'));
    for _ in 0..10 {
        if let Ok(answer) = client.get(&url).send().await {
            if answer.status().is_success() {
                return true;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    false
}

/// Whether the process runs (not gone, not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
