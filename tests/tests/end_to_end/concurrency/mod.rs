//! Invariant 1 (DESIGN.md "Invariants"): no overbooking, no negative stock,
//! under any concurrency. Many clients race over HTTP; the answers are
//! checked, and independently of them the Inventory's events are replayed
//! to prove that the recorded holds never use more units than exist.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ledger_tests::answer::decimal;
use ledger_tests::client::read;
use ledger_tests::events::{peak_use, HoldRecord};
use ledger_tests::rental_item;
use ledger_tests::{at, Answer, TestApp};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use tokio::sync::Barrier;
use uuid::Uuid;

mod atomic_orders;
mod extensions;
mod races;
mod refunds;
mod replicas;
mod snapshots;

/// Deterministic pseudo-random numbers (xorshift64*), so a failure replays.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }
}

/// One HTTP client for every racing task, with room for all of them.
fn racing_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

async fn post(
    client: &reqwest::Client,
    base: &str,
    path: &str,
    token: &str,
    body: Value,
) -> Answer {
    let response = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("the ledger answers");
    read(response).await
}

/// Sends every `(token, path, body)` at once (released together by a
/// barrier) and returns the answers in the same order.
async fn race(app: &TestApp, requests: Vec<(String, String, Value)>) -> Vec<Answer> {
    race_on(std::slice::from_ref(&app.base_url), requests).await
}

/// Like [`race`], spreading the requests over several replicas in turn.
async fn race_on(bases: &[String], requests: Vec<(String, String, Value)>) -> Vec<Answer> {
    let client = racing_client();
    let barrier = Arc::new(Barrier::new(requests.len()));
    let tasks: Vec<_> = requests
        .into_iter()
        .enumerate()
        .map(|(i, (token, path, body))| {
            let (client, barrier) = (client.clone(), barrier.clone());
            let base = bases[i % bases.len()].clone();
            tokio::spawn(async move {
                barrier.wait().await;
                post(&client, &base, &path, &token, body).await
            })
        })
        .collect();
    let all = futures::future::join_all(tasks);
    let answers = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("every racing request is answered within 60 s (no deadlock)");
    answers
        .into_iter()
        .map(|a| a.expect("racing task"))
        .collect()
}

fn order_body(items: Vec<Value>) -> Value {
    json!({ "items": items })
}

#[track_caller]
fn assert_no_server_errors(answers: &[Answer]) {
    for a in answers {
        assert!(
            a.status == StatusCode::CREATED || a.status == StatusCode::CONFLICT,
            "only 201 or 409 are acceptable answers to a race, got {}: {:?}",
            a.status,
            a.body
        );
    }
}

/// The conflicts of a 409 `unavailable` answer.
#[track_caller]
fn unavailable_conflicts(answer: &Answer) -> &Vec<Value> {
    assert_eq!(answer.status, StatusCode::CONFLICT, "{:?}", answer.body);
    assert!(
        answer.body["type"]
            .as_str()
            .is_some_and(|t| t.ends_with("unavailable")),
        "409 of type unavailable: {:?}",
        answer.body
    );
    let conflicts = answer.body["conflicts"]
        .as_array()
        .unwrap_or_else(|| panic!("unavailable without conflicts: {:?}", answer.body));
    assert!(!conflicts.is_empty(), "{:?}", answer.body);
    conflicts
}

fn order_ids_of(answers: &[Answer]) -> BTreeSet<Uuid> {
    answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .map(|a| a.uuid("order_id"))
        .collect()
}

fn live(holds: &[HoldRecord]) -> Vec<&HoldRecord> {
    holds.iter().filter(|h| h.is_live()).collect()
}
