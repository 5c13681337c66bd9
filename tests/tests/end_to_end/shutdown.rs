//! Stopping the real `ledger serve` process with signals (issue 20 item 8):
//! with NATS unreachable, SIGTERM used to log "draining" and then wait for
//! ever (the final NATS flush never completes while disconnected), and a
//! second SIGTERM was ignored. The drain is now bounded by
//! `LEDGER_SHUTDOWN_TIMEOUT`, after which the process exits non-zero naming
//! the tasks that did not stop; a second signal exits at once; and the
//! outage is logged at WARN with NATS's address, without its credentials.
//!
//! These tests run the binary (built on first use with the cargo that runs
//! the tests, into the same target directory) and read its JSON log.

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_tests::binary::ledger_binary;
use ledger_tests::{fresh_database, fresh_stream_name, nats_url, JWT_SECRET, WEBHOOK_SECRET};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

/// A port on which nothing listens.
pub(crate) fn unused_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// A running `ledger serve` and what it has logged so far.
pub(crate) struct LedgerProcess {
    child: Child,
    pub(crate) base_url: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<String>>,
}

impl LedgerProcess {
    /// Starts `ledger serve` on `database_url` (a fresh database when
    /// `None`) and `nats`, with `shutdown_timeout`, and waits until it
    /// answers `/health/live`.
    pub(crate) async fn start(
        database_url: Option<String>,
        nats: &str,
        shutdown_timeout: &str,
    ) -> LedgerProcess {
        let database_url = match database_url {
            Some(url) => url,
            None => {
                let (pool, name) = fresh_database().await.expect("a fresh database");
                pool.close().await;
                let admin = ledger_tests::admin_database_url();
                let base = admin.rsplit_once('/').map_or(admin.as_str(), |(b, _)| b);
                format!("{base}/{name}")
            }
        };
        let addr = format!("127.0.0.1:{}", unused_port());
        let mut child = Command::new(ledger_binary().await)
            .arg("serve")
            .env("DATABASE_URL", &database_url)
            .env("LEDGER_DB_POOL_SIZE", "8")
            .env("NATS_URL", nats)
            .env("LEDGER_STREAM", fresh_stream_name().await)
            .env("LEDGER_HTTP_ADDR", &addr)
            .env("LEDGER_JWT_SECRET", JWT_SECRET)
            .env("LEDGER_WEBHOOK_SECRET", WEBHOOK_SECRET)
            .env("LEDGER_SHUTDOWN_TIMEOUT", shutdown_timeout)
            // The default log filter is part of what is tested.
            .env_remove("RUST_LOG")
            .env_remove("LEDGER_LOG_PRETTY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("start ledger serve");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let collected = stdout.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                collected
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(line);
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err_pipe = child.stderr.take().expect("stderr");
        let collected = stderr.clone();
        tokio::spawn(async move {
            let mut text = String::new();
            let mut buf = [0u8; 4096];
            while let Ok(n) = err_pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                text.push_str(&String::from_utf8_lossy(&buf[..n]));
                *collected.lock().unwrap_or_else(|e| e.into_inner()) = text.clone();
            }
        });
        let process = LedgerProcess {
            child,
            base_url: format!("http://{addr}"),
            stdout,
            stderr,
        };
        process.wait_live().await;
        process
    }

    async fn wait_live(&self) {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let live = client
                .get(format!("{}/health/live", self.base_url))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if live {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ledger serve did not answer within 60 s; its log:\n{}\n{}",
                self.log_text(),
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) fn signal(&self, signal: libc::c_int) {
        let pid = self.child.id().expect("the process is running");
        // SAFETY: signalling our own child process by its pid.
        let sent = unsafe { libc::kill(pid as libc::pid_t, signal) };
        assert_eq!(sent, 0, "signal {signal} to ledger serve");
    }

    /// Waits for the process to exit, at most `limit`.
    pub(crate) async fn exit_within(
        &mut self,
        limit: Duration,
    ) -> Option<std::process::ExitStatus> {
        tokio::time::timeout(limit, self.child.wait())
            .await
            .ok()
            .map(|status| status.expect("wait for ledger serve"))
    }

    /// The JSON lines logged so far.
    pub(crate) fn log(&self) -> Vec<Value> {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter_map(|line| serde_json::from_str(line).ok())
            .collect()
    }

    pub(crate) fn log_text(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .join("\n")
    }

    pub(crate) fn stderr(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Waits until a logged line satisfies `matches`, at most `limit`.
    pub(crate) async fn wait_for_line(
        &self,
        limit: Duration,
        what: &str,
        matches: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(line) = self.log().into_iter().find(|l| matches(l)) {
                return line;
            }
            assert!(
                Instant::now() < deadline,
                "no log line {what} within {limit:?}; the log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// With NATS unreachable every pipeline task waits in a JetStream request
/// (10 s each) when the signal comes; the deadline (2 s here) ends the
/// drain: the process exits non-zero, naming them, soon after it. The
/// outage was logged at WARN with the address and no credentials, and
/// async-nats's own line per reconnect attempt is not logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_while_nats_is_unreachable_exits_at_the_deadline_naming_what_did_not_stop() {
    let port = unused_port();
    let nats = format!("nats://ledger:s3cret-pass@127.0.0.1:{port}");
    let mut ledger = LedgerProcess::start(None, &nats, "2s").await;
    let address = format!("nats://127.0.0.1:{port}");
    let warning = ledger
        .wait_for_line(Duration::from_secs(10), "warning that NATS is down", |l| {
            l["level"] == "WARN" && l["message"].as_str().is_some_and(|m| m.contains("NATS"))
        })
        .await;
    assert_eq!(warning["nats"], address.as_str(), "{warning}");

    ledger.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let status = ledger.exit_within(Duration::from_secs(8)).await;
    let elapsed = signalled.elapsed();
    let status = status.unwrap_or_else(|| {
        panic!(
            "still running 8 s after SIGTERM (deadline 2 s); its log:\n{}",
            ledger.log_text()
        )
    });
    assert!(
        !status.success(),
        "a drain cut by its deadline exits non-zero"
    );
    assert!(
        elapsed >= Duration::from_millis(1900),
        "the drain waited for its deadline: {elapsed:?}"
    );
    let stderr = ledger.stderr();
    assert!(
        stderr.contains("shutdown did not finish within 2s; still running:"),
        "{stderr}"
    );
    for task in [
        "relay",
        "consumer availability",
        "consumer ledger",
        "policies",
    ] {
        assert!(stderr.contains(task), "`{task}` is named: {stderr}");
    }
    let log = ledger.log();
    let report = log
        .iter()
        .find(|l| l["level"] == "ERROR" && l["unfinished"].is_string())
        .unwrap_or_else(|| panic!("an ERROR line naming the tasks:\n{}", ledger.log_text()));
    assert!(
        report["unfinished"]
            .as_str()
            .is_some_and(|u| u.contains("relay")),
        "{report}"
    );
    let text = ledger.log_text();
    assert!(!text.contains("s3cret-pass"), "credentials logged:\n{text}");
    assert!(
        !log.iter()
            .any(|l| l["target"] == "async_nats" && l["level"] == "INFO"),
        "async-nats logs each reconnect attempt at INFO:\n{text}"
    );
}

/// A second SIGTERM during the drain ends the process at once (128 + 15),
/// however long the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sigterm_during_the_drain_exits_at_once() {
    let nats = format!("nats://127.0.0.1:{}", unused_port());
    let mut ledger = LedgerProcess::start(None, &nats, "60s").await;
    ledger.signal(libc::SIGTERM);
    ledger
        .wait_for_line(Duration::from_secs(5), "saying it drains", |l| {
            l["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("draining"))
        })
        .await;
    ledger.signal(libc::SIGTERM);
    let signalled = Instant::now();
    let status = ledger
        .exit_within(Duration::from_secs(2))
        .await
        .unwrap_or_else(|| {
            panic!(
                "still running 2 s after a second SIGTERM; its log:\n{}",
                ledger.log_text()
            )
        });
    assert!(signalled.elapsed() < Duration::from_secs(2));
    assert_eq!(status.code(), Some(128 + libc::SIGTERM), "{status:?}");
    assert!(
        ledger.log().iter().any(|l| l["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("second shutdown signal"))),
        "{}",
        ledger.log_text()
    );
}

/// With every dependency up, SIGTERM drains and exits 0 well within the
/// deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_everything_up_stops_cleanly_with_status_zero() {
    let mut ledger = LedgerProcess::start(None, &nats_url(), "20s").await;
    ledger
        .wait_for_line(Duration::from_secs(10), "saying NATS is connected", |l| {
            l["message"] == "connected to NATS"
        })
        .await;
    ledger.signal(libc::SIGTERM);
    let status = ledger
        .exit_within(Duration::from_secs(20))
        .await
        .unwrap_or_else(|| panic!("still running 20 s after SIGTERM:\n{}", ledger.log_text()));
    assert!(
        status.success(),
        "{status:?}: {}\n{}",
        ledger.stderr(),
        ledger.log_text()
    );
    assert!(
        ledger
            .log()
            .iter()
            .any(|l| l["message"] == "ledger stopped"),
        "{}",
        ledger.log_text()
    );
}
