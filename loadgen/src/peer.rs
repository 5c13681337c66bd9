//! `ledger-bench peer`: drives `ledger-peer` (bench/peer, the standard
//! cqrs-es + postgres-es wiring) so that bench/suite.sh reports its
//! commits per second beside pgbench and the ledger from one run (issue 18,
//! item 4).
//!
//! - `open`: every command opens a fresh account (one new aggregate, one
//!   event, one view row): the analogue of placing an order.
//! - `deposit`: every client deposits round-robin into its own 100 accounts
//!   (the framework loads each aggregate's whole stream first).
//! - `hot`: every client deposits into one shared account; the sequence
//!   check refuses the losers with 409, which the report counts as errors.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;
use uuid::Uuid;

use crate::BenchError;

/// Accounts each client of the `deposit` scenario cycles through.
const ACCOUNTS_PER_CLIENT: usize = 100;

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerScenario {
    Open,
    Deposit,
    Hot,
}

#[derive(clap::Args, Debug, Clone)]
pub struct PeerArgs {
    /// Base URL of the running `ledger-peer`.
    #[arg(long, default_value = "http://127.0.0.1:3030")]
    pub url: String,
    #[arg(long, value_enum, default_value_t = PeerScenario::Open)]
    pub scenario: PeerScenario,
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub duration: Duration,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

/// What the peer sustained.
#[derive(Serialize, Debug)]
pub struct PeerReport {
    pub scenario: PeerScenario,
    pub concurrency: usize,
    pub seconds: f64,
    /// Commands answered 204.
    pub ok: u64,
    pub ok_per_second: f64,
    /// Answers other than 204, by status (or transport error).
    pub errors: BTreeMap<String, u64>,
    /// Errors ÷ all answers.
    pub error_rate: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl PeerReport {
    fn table(&self) -> String {
        format!(
            "peer {:?}: {} clients, {:.1} s: {} ok ({:.0}/s), errors {:?} (rate {:.3}), p50 {:.1} ms, p99 {:.1} ms\n",
            self.scenario,
            self.concurrency,
            self.seconds,
            self.ok,
            self.ok_per_second,
            self.errors,
            self.error_rate,
            self.p50_ms,
            self.p99_ms
        )
    }
}

struct ClientResult {
    ok: u64,
    errors: BTreeMap<String, u64>,
    latency: Histogram<u64>,
}

pub async fn execute(args: PeerArgs) -> Result<(), BenchError> {
    let report = run(&args).await?;
    print!("{}", report.table());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
    }
    if report.ok == 0 {
        return Err(BenchError::Unexpected(
            "the peer accepted no command".into(),
        ));
    }
    Ok(())
}

async fn run(args: &PeerArgs) -> Result<PeerReport, BenchError> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .build()?;
    let base = args.url.trim_end_matches('/').to_owned();

    // Accounts the deposit scenarios need, opened before the clock starts.
    let hot_account = Uuid::new_v4().to_string();
    let mut owned: Vec<Vec<String>> = Vec::new();
    match args.scenario {
        PeerScenario::Open => owned.resize(args.concurrency, Vec::new()),
        PeerScenario::Hot => {
            open(&http, &base, &hot_account).await?;
            owned.resize(args.concurrency, vec![hot_account.clone()]);
        }
        PeerScenario::Deposit => {
            for _ in 0..args.concurrency {
                let mut accounts = Vec::with_capacity(ACCOUNTS_PER_CLIENT);
                for _ in 0..ACCOUNTS_PER_CLIENT {
                    let id = Uuid::new_v4().to_string();
                    open(&http, &base, &id).await?;
                    accounts.push(id);
                }
                owned.push(accounts);
            }
        }
    }

    let started = Instant::now();
    let until = started + args.duration;
    let mut clients = JoinSet::new();
    for accounts in owned {
        let http = http.clone();
        let base = base.clone();
        let scenario = args.scenario;
        clients.spawn(async move {
            let mut result = ClientResult {
                ok: 0,
                errors: BTreeMap::new(),
                latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)
                    .expect("constant bounds that hdrhistogram accepts"),
            };
            let mut next = 0usize;
            while Instant::now() < until {
                let (account, body) = match scenario {
                    PeerScenario::Open => (
                        Uuid::new_v4().to_string(),
                        json!({"Open": {"owner": "bench"}}),
                    ),
                    PeerScenario::Deposit | PeerScenario::Hot => {
                        next = (next + 1) % accounts.len();
                        (accounts[next].clone(), json!({"Deposit": {"amount": 1}}))
                    }
                };
                let sent = Instant::now();
                let answer = http
                    .post(format!("{base}/account/{account}"))
                    .json(&body)
                    .send()
                    .await;
                let us = u64::try_from(sent.elapsed().as_micros()).unwrap_or(u64::MAX);
                result.latency.saturating_record(us.max(1));
                match answer {
                    Ok(response) if response.status().as_u16() == 204 => result.ok += 1,
                    Ok(response) => {
                        *result
                            .errors
                            .entry(response.status().as_u16().to_string())
                            .or_default() += 1
                    }
                    Err(err) => {
                        let label = if err.is_timeout() {
                            "timeout"
                        } else {
                            "transport"
                        };
                        *result.errors.entry(label.to_owned()).or_default() += 1
                    }
                }
            }
            result
        });
    }

    let mut ok = 0;
    let mut errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut latency = Histogram::<u64>::new_with_bounds(1, 3_600_000_000, 3)
        .expect("constant bounds that hdrhistogram accepts");
    while let Some(joined) = clients.join_next().await {
        let result = joined.map_err(|err| BenchError::Unexpected(format!("a client: {err}")))?;
        ok += result.ok;
        for (status, count) in result.errors {
            *errors.entry(status).or_default() += count;
        }
        latency
            .add(&result.latency)
            .map_err(|err| BenchError::Unexpected(format!("histogram: {err}")))?;
    }
    let seconds = started.elapsed().as_secs_f64();
    let failed: u64 = errors.values().sum();
    Ok(PeerReport {
        scenario: args.scenario,
        concurrency: args.concurrency,
        seconds,
        ok,
        ok_per_second: ok as f64 / seconds,
        error_rate: if ok + failed == 0 {
            0.0
        } else {
            failed as f64 / (ok + failed) as f64
        },
        errors,
        p50_ms: latency.value_at_quantile(0.50) as f64 / 1000.0,
        p99_ms: latency.value_at_quantile(0.99) as f64 / 1000.0,
    })
}

async fn open(http: &reqwest::Client, base: &str, account: &str) -> Result<(), BenchError> {
    let answer = http
        .post(format!("{base}/account/{account}"))
        .json(&json!({"Open": {"owner": "bench"}}))
        .send()
        .await?;
    if answer.status().as_u16() != 204 {
        return Err(BenchError::Unexpected(format!(
            "open an account: {}",
            answer.status()
        )));
    }
    Ok(())
}
