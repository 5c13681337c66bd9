//! Production hardening: `/metrics`, the body limit, rate limits, a
//! database outage answered 503 (and recovered from without a restart),
//! and graceful shutdown.

use std::path::Path;
use std::time::{Duration, Instant};

use ledger::limits::{Rate, RateLimits};
use ledger_tests::assert_problem;
use ledger_tests::raw_http::read_answer;
use ledger_tests::services::{PrivatePostgres, PG_BIN};
use ledger_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::Connection;
use tokio::io::AsyncWriteExt;

/// Sends a request whose head declares `declared` body bytes, writes only
/// a part of them, and reads the answer: (status, content type, body).
async fn send_declared_body(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    declared: usize,
) -> (u16, String, serde_json::Value) {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {declared}\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let _ = stream.write_all(&vec![b' '; 16 * 1024]).await;
    read_answer(stream).await
}

/// Sends a chunked body of 1 MiB + 64 KiB (no `Content-Length`).
async fn send_chunked_body(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
) -> (u16, String, serde_json::Value) {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("write head");
    let chunk = vec![b' '; 64 * 1024];
    for _ in 0..17 {
        let mut framed = format!("{:x}\r\n", chunk.len()).into_bytes();
        framed.extend_from_slice(&chunk);
        framed.extend_from_slice(b"\r\n");
        if stream.write_all(&framed).await.is_err() {
            break;
        }
    }
    let _ = stream.write_all(b"0\r\n\r\n").await;
    read_answer(stream).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_answer_without_a_token_with_the_named_series() {
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Metrics Vendor").await;
    let listing = app.sale_listing(vendor, "10.00", 5).await;
    let admin = app.admin();
    // The listing is in the read model once the projectors reach the head.
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("the head");
    let detail = app
        .send(
            Method::GET,
            &format!("/v1/listings/{listing}"),
            Some(&admin),
            None,
            &[("Ledger-Min-Position", &head.to_string())],
        )
        .await;
    assert!(detail.status.is_success(), "{:?}", detail.body);
    // A rejected command: a second vendor registration with no name.
    let rejected = app.post("/v1/vendors", &admin, json!({"name": ""})).await;
    assert!(rejected.status.is_client_error());

    // Consumers catch up, then the scrape shows their positions.
    let mut text = String::new();
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        text = app.metrics().await;
        if text.contains("ledger_consumer_position{") && text.contains("ledger_relay_position ") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for series in [
        "ledger_http_request_duration_seconds_bucket{",
        "route=\"/v1/listings/{listing_id}\"",
        "route=\"/v1/vendors\"",
        "ledger_commands_total{",
        "outcome=\"accepted\"",
        "ledger_consumer_position{consumer=",
        "ledger_consumer_lag_events{consumer=",
        "ledger_relay_lag_events ",
        "ledger_relay_lag_seconds ",
        "ledger_relay_backlog_events ",
        "ledger_relay_position ",
        "ledger_db_pool_connections ",
        "ledger_db_pool_idle_connections ",
    ] {
        assert!(text.contains(series), "`{series}` missing from:\n{text}");
    }
    assert!(
        !text.contains(&listing.to_string()),
        "raw paths never become labels"
    );
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bodies_over_one_mib_are_refused_413_on_every_route() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let over = ledger::limits::MAX_BODY_BYTES + 1;
    for (method, path) in [
        ("POST", "/v1/vendors"),
        ("GET", "/v1/listings"),
        ("GET", "/health/live"),
    ] {
        let (status, content_type, body) =
            send_declared_body(&app, method, path, &admin, over).await;
        assert_eq!(status, 413, "{method} {path}: {body}");
        assert!(
            content_type.starts_with("application/problem+json"),
            "{method} {path}: {content_type}"
        );
        assert!(
            body["type"]
                .as_str()
                .is_some_and(|t| t.ends_with("payload-too-large")),
            "{body}"
        );
    }
    // A streamed (chunked) body past the limit is refused too.
    for (method, path) in [("POST", "/v1/vendors"), ("GET", "/v1/listings")] {
        let (status, content_type, body) = send_chunked_body(&app, method, path, &admin).await;
        assert_eq!(status, 413, "{method} {path} (chunked): {body}");
        assert!(content_type.starts_with("application/problem+json"));
    }
    // A body under the limit still works.
    let ok = app
        .post("/v1/vendors", &admin, json!({"name": "Small"}))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    app.stop().await;
}

/// Writes the whole request (head and `body_bytes` of body, framed as
/// declared) before reading anything, as Python's urllib and most HTTP
/// libraries do; the write must not be cut by the server closing the
/// connection. The body's last part is written once the server's answer
/// has arrived (seen, not read), as a client slower than the server is:
/// the case in which an unread body made the server reset the connection.
async fn send_whole_then_read(
    app: &TestApp,
    token: &str,
    body_bytes: usize,
    chunked: bool,
) -> (u16, String, serde_json::Value) {
    let addr = app.base_url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let framing = if chunked {
        "Transfer-Encoding: chunked".to_owned()
    } else {
        format!("Content-Length: {body_bytes}")
    };
    let head = format!(
        "POST /v1/vendors HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\n{framing}\r\n\r\n"
    );
    // What the server needs to answer (the head; for a chunked body, more
    // than the limit), and the rest.
    let (mut first, mut rest) = (head.into_bytes(), Vec::new());
    if chunked {
        let chunk = vec![b' '; 64 * 1024];
        let chunks = body_bytes / chunk.len();
        let over_the_limit = ledger::limits::MAX_BODY_BYTES / chunk.len() + 1;
        for at in 0..chunks {
            let part = if at < over_the_limit {
                &mut first
            } else {
                &mut rest
            };
            part.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
            part.extend_from_slice(&chunk);
            part.extend_from_slice(b"\r\n");
        }
        rest.extend_from_slice(b"0\r\n\r\n");
    } else {
        rest.resize(body_bytes, b' ');
    }
    let what = format!("{body_bytes} body bytes (chunked: {chunked})");
    let written = tokio::time::timeout(Duration::from_secs(10), async {
        stream.write_all(&first).await?;
        stream.readable().await?;
        stream.write_all(&rest).await
    })
    .await
    .unwrap_or_else(|_| panic!("{what}: the whole request is written within 10 s"));
    if let Err(err) = written {
        panic!("writing {what} failed: {err}");
    }
    read_answer(stream).await
}

/// Issue 20 item 7: a client that writes its whole body (over the limit)
/// before reading got a broken pipe or a reset in most runs: the server
/// answered 413 and closed with the body unread. Now the rest is read and
/// discarded, and every attempt reads its 413 problem.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_client_writing_its_whole_oversized_body_before_reading_gets_the_413() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    for attempt in 0..6 {
        for (body_bytes, chunked) in [
            (2 * 1024 * 1024, false),
            (1536 * 1024, false),
            (2 * 1024 * 1024, true),
        ] {
            let (status, content_type, body) =
                send_whole_then_read(&app, &admin, body_bytes, chunked).await;
            let what = format!("attempt {attempt}, {body_bytes} bytes, chunked: {chunked}");
            assert_eq!(status, 413, "{what}: {body}");
            assert!(
                content_type.starts_with("application/problem+json"),
                "{what}: {content_type}"
            );
            assert!(
                body["type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("payload-too-large")),
                "{what}: {body}"
            );
        }
    }
    // The server still takes ordinary requests.
    let ok = app
        .post("/v1/vendors", &admin, json!({"name": "After the big ones"}))
        .await;
    assert_eq!(ok.status, StatusCode::CREATED, "{:?}", ok.body);
    app.stop().await;
}

/// Python's urllib (the client of the attack run) writes the whole body
/// before it reads the answer; it must read the 413 every time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_urllib_posting_two_mib_reads_the_413() {
    let Some(python) = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
    else {
        eprintln!("skipped: no python3");
        return;
    };
    let app = TestApp::spawn().await;
    let script = r#"
import sys, urllib.request, urllib.error
url, token = sys.argv[1], sys.argv[2]
for size in [2 * 1024 * 1024, 1536 * 1024] * 4:
    request = urllib.request.Request(url, data=b" " * size, method="POST", headers={
        "Content-Type": "application/json", "Authorization": "Bearer " + token})
    try:
        urllib.request.urlopen(request, timeout=10)
        print("unexpected success")
    except urllib.error.HTTPError as e:
        print(e.code, e.headers.get("content-type"))
    except Exception as e:
        print("error", repr(e))
"#;
    let url = format!("{}/v1/vendors", app.base_url);
    let admin = app.admin();
    let output = tokio::process::Command::new(python)
        .args(["-c", script, &url, &admin])
        .output()
        .await
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines.len(),
        8,
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    for line in lines {
        assert_eq!(line, "413 application/problem+json", "{stdout}");
    }
    app.stop().await;
}

/// Issue 20 item 5: a 64 KB bearer token was decoded (and a valid one, padded
/// with a large claim, was accepted). An `Authorization` header over 8 KiB is
/// 401 before any decoding; a head over 32 KiB is 431; both problem+json.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversized_token_is_401_and_an_oversized_head_431() {
    let app = TestApp::spawn().await;
    let exp = chrono::Utc::now().timestamp() + 3600;
    let padded = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &json!({"sub": "big-token", "role": "admin", "exp": exp, "pad": "x".repeat(48 * 1024)}),
        &jsonwebtoken::EncodingKey::from_secret(ledger_tests::JWT_SECRET.as_bytes()),
    )
    .expect("sign a padded token");
    assert!(padded.len() > 64 * 1024, "{}", padded.len());
    for path in ["/v1/listings", "/v1/events"] {
        let answer = app.send(Method::GET, path, Some(&padded), None, &[]).await;
        assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
        assert!(
            answer.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains("longer than 8192 bytes")),
            "{:?}",
            answer.body
        );
    }
    let answer = app
        .send(
            Method::POST,
            "/v1/vendors",
            Some(&padded),
            Some(&json!({"name": "Padded"})),
            &[],
        )
        .await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");

    // A head too large in other headers: 431, even on unauthenticated routes.
    let big = "y".repeat(40 * 1024);
    let answer = app
        .send(
            Method::GET,
            "/health/live",
            None,
            None,
            &[("x-padding", &big)],
        )
        .await;
    assert_problem(
        &answer,
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
        "header-fields-too-large",
    );
    // A token of ordinary size still works.
    let ok = app
        .send(Method::GET, "/v1/listings", Some(&app.admin()), None, &[])
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{:?}", ok.body);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_past_the_principal_limit_get_429_others_are_unaffected() {
    let app = TestApp::spawn_server(|config| {
        config.rate_limits = RateLimits {
            per_ip: Rate::OFF,
            per_principal: Rate::new(0.5, 3),
        };
    })
    .await;
    let alice = app.customer("alice");
    let mut limited = None;
    for _ in 0..8 {
        let answer = app
            .send(Method::GET, "/v1/listings", Some(&alice), None, &[])
            .await;
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(answer);
            break;
        }
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    }
    let limited = limited.expect("a burst past 3 is limited");
    assert_problem(&limited, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
    let retry_after: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("a Retry-After in seconds");
    assert!((1..=2).contains(&retry_after), "{retry_after}");
    // Another principal, from the same address, is not limited.
    let bob = app.customer("bob");
    let answer = app
        .send(Method::GET, "/v1/listings", Some(&bob), None, &[])
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    // A bad token is no principal: it is answered 401, not counted.
    let bad = app
        .send(Method::GET, "/v1/listings", Some("not-a-token"), None, &[])
        .await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bursts_past_the_ip_limit_get_429() {
    let app = TestApp::spawn_server(|config| {
        config.rate_limits = RateLimits {
            per_ip: Rate::new(0.5, 3),
            per_principal: Rate::OFF,
        };
    })
    .await;
    // Health probes are never limited (the harness already polled one).
    for _ in 0..6 {
        let probe = app.send(Method::GET, "/health/live", None, None, &[]).await;
        assert_eq!(probe.status, StatusCode::OK);
    }
    let mut statuses = Vec::new();
    for _ in 0..6 {
        let answer = app
            .send(Method::GET, "/openapi.json", None, None, &[])
            .await;
        statuses.push(answer.status.as_u16());
        if answer.status == StatusCode::TOO_MANY_REQUESTS {
            assert_problem(&answer, StatusCode::TOO_MANY_REQUESTS, "rate-limited");
            assert!(answer.header("retry-after").is_some());
        }
    }
    assert_eq!(&statuses[..3], &[200, 200, 200], "{statuses:?}");
    assert!(statuses[3..].iter().all(|s| *s == 429), "{statuses:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_down_is_503_within_the_timeout_and_recovers_without_a_restart() {
    if !Path::new(PG_BIN).join("initdb").exists() {
        eprintln!("skipped: no {PG_BIN}/initdb");
        return;
    }
    let pg = PrivatePostgres::init();
    {
        let mut admin = sqlx::PgConnection::connect(&pg.url("postgres"))
            .await
            .expect("connect to the private server");
        sqlx::Executor::execute(&mut admin, "CREATE DATABASE ledger")
            .await
            .expect("create the database");
    }
    let pool = ledger::connect_with_statement_timeout(&pg.url("ledger"), 8, Duration::from_secs(3))
        .await
        .expect("a pool");
    ledger::migrate(&pool).await.expect("migrations");
    let timeout = Duration::from_secs(5);
    let app =
        TestApp::spawn_on_pool(pool, "ledger", |config| config.request_timeout = timeout).await;
    let admin = app.admin();
    let created = app
        .post("/v1/vendors", &admin, json!({"name": "Before"}))
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);

    pg.stop();

    let started = Instant::now();
    let command = app
        .post("/v1/vendors", &admin, json!({"name": "During"}))
        .await;
    let elapsed = started.elapsed();
    assert_problem(
        &command,
        StatusCode::SERVICE_UNAVAILABLE,
        "service-unavailable",
    );
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");

    let started = Instant::now();
    let query = app
        .send(Method::GET, "/v1/listings", Some(&admin), None, &[])
        .await;
    let elapsed = started.elapsed();
    assert_problem(
        &query,
        StatusCode::SERVICE_UNAVAILABLE,
        "service-unavailable",
    );
    assert!(elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");

    let started = Instant::now();
    let ready = app
        .send(Method::GET, "/health/ready", None, None, &[])
        .await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        ready.body
    );
    assert!(
        ready.body["failing"]
            .as_array()
            .is_some_and(|f| f.iter().any(|n| n == "postgres")),
        "{:?}",
        ready.body
    );
    assert!(started.elapsed() < timeout + Duration::from_secs(1));

    pg.start();

    // The same requests succeed, without restarting the ledger.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = None;
    while Instant::now() < deadline {
        let ready = app
            .send(Method::GET, "/health/ready", None, None, &[])
            .await;
        if ready.status == StatusCode::OK {
            last = None;
            break;
        }
        last = Some(ready.body);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(last.is_none(), "not ready again: {last:?}");
    let command = app
        .post("/v1/vendors", &admin, json!({"name": "After"}))
        .await;
    assert_eq!(command.status, StatusCode::CREATED, "{:?}", command.body);
    let query = app
        .send(Method::GET, "/v1/listings", Some(&admin), None, &[])
        .await;
    assert_eq!(query.status, StatusCode::OK, "{:?}", query.body);
    app.stop().await;
    drop(pg);
}

/// Issue 20 item 8: while the database is down, the process says so at
/// WARN, naming the database's address (once, then every 30 s; not at
/// INFO with no address), and says when it is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_is_logged_at_warn_with_its_address() {
    if !Path::new(PG_BIN).join("initdb").exists() {
        eprintln!("skipped: no {PG_BIN}/initdb");
        return;
    }
    let pg = PrivatePostgres::init();
    let ledger = crate::shutdown::LedgerProcess::start(
        Some(pg.url("postgres")),
        &ledger_tests::nats_url(),
        "5s",
    )
    .await;
    pg.stop();
    let address = format!("127.0.0.1:{}/postgres", pg.port);
    let warning = ledger
        .wait_for_line(
            Duration::from_secs(20),
            "warning that PostgreSQL is down",
            |l| {
                l["level"] == "WARN"
                    && l["message"]
                        .as_str()
                        .is_some_and(|m| m.contains("PostgreSQL unreachable"))
            },
        )
        .await;
    assert_eq!(warning["database"], address.as_str(), "{warning}");
    // The relay and the consumers say so too, each naming the same address.
    for line in ledger.log() {
        if line["level"] == "WARN" && line["database"].is_string() {
            assert_eq!(line["database"], address.as_str(), "{line}");
        }
    }
    pg.start();
    let back = ledger
        .wait_for_line(Duration::from_secs(20), "saying PostgreSQL is back", |l| {
            l["message"] == "PostgreSQL reachable again"
        })
        .await;
    assert_eq!(back["database"], address.as_str(), "{back}");
    let warnings = ledger
        .log()
        .into_iter()
        .filter(|l| l["message"] == warning["message"])
        .count();
    assert_eq!(warnings, 1, "one warning for an outage of seconds");
    drop(ledger);
    drop(pg);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn graceful_shutdown_finishes_in_flight_requests_and_refuses_new_ones() {
    let mut app = TestApp::spawn().await;
    let admin = app.admin();
    let client = app.client.clone();
    let url = format!("{}/v1/listings", app.base_url);
    // Far ahead of the log: the query waits its 2 s for the read model.
    let slow = tokio::spawn(async move {
        let started = Instant::now();
        let response = client
            .get(url)
            .bearer_auth(admin)
            .header("Ledger-Min-Position", "999999999")
            .send()
            .await
            .expect("the in-flight request is answered");
        (response.status(), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(400)).await;

    let server = app.take_server();
    let stopping = Instant::now();
    let stop = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(400)).await;

    let addr = app.base_url.trim_start_matches("http://").to_owned();
    let refused = tokio::time::timeout(
        Duration::from_secs(2),
        tokio::net::TcpStream::connect(&addr),
    )
    .await;
    assert!(
        matches!(refused, Ok(Err(_))),
        "a new connection is refused while draining"
    );

    let (status, elapsed) = slow.await.expect("the slow request task");
    assert_eq!(status, StatusCode::OK);
    assert!(elapsed >= Duration::from_millis(1500), "{elapsed:?}");

    let stopped = tokio::time::timeout(Duration::from_secs(15), stop)
        .await
        .expect("the stop returns")
        .expect("the stop task");
    stopped.expect("a clean stop");
    assert!(stopping.elapsed() < Duration::from_secs(15));
}

/// Collects what the log subscriber writes.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn each_request_ends_with_a_json_line_carrying_its_outcome() {
    if std::env::var_os("RUST_LOG").is_some() {
        eprintln!("skipped: RUST_LOG chooses what is logged");
        return;
    }
    let captured = Captured::default();
    let writer = captured.clone();
    ledger::telemetry::init_with_writer(false, move || writer.clone());
    let app = TestApp::spawn().await;
    let request_id = format!("log-check-{}", uuid::Uuid::new_v4().simple());
    let path = format!("/v1/listings/{}", uuid::Uuid::new_v4());
    let answer = app
        .send(
            Method::GET,
            &path,
            Some(&app.customer("log-alice")),
            None,
            &[("x-request-id", &request_id)],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);

    let mut line = None;
    let deadline = Instant::now() + Duration::from_secs(5);
    while line.is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
        line = text
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .find(|l| {
                l["span"]["request_id"] == request_id.as_str()
                    && l["message"] == "finished processing request"
            });
    }
    let line = line.expect("a JSON completion line for the request");
    let span = &line["span"];
    assert_eq!(span["principal"], "log-alice", "{line}");
    assert_eq!(span["method"], "GET", "{line}");
    assert_eq!(span["route"], "/v1/listings/{listing_id}", "{line}");
    assert_eq!(span["path"], path.as_str(), "{line}");
    assert_eq!(line["status"], 404, "{line}");
    assert!(line["latency_ms"].is_f64(), "a number: {line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(line.get("spans").is_none(), "one context object: {line}");

    // Probes and scrapes log at DEBUG: no completion line at INFO.
    let probe_id = format!("log-probe-{}", uuid::Uuid::new_v4().simple());
    for path in ["/health/live", "/metrics"] {
        let probe = app
            .send(
                Method::GET,
                path,
                None,
                None,
                &[("x-request-id", &probe_id)],
            )
            .await;
        assert_eq!(probe.status, StatusCode::OK);
    }
    // A request after them: once its line is there, theirs would be too.
    let marker_id = format!("log-marker-{}", uuid::Uuid::new_v4().simple());
    app.send(
        Method::GET,
        &path,
        Some(&app.customer("log-alice")),
        None,
        &[("x-request-id", &marker_id)],
    )
    .await;
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let text = String::from_utf8_lossy(&captured.0.lock().unwrap()).to_string();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        let about = |id: &str| {
            lines
                .iter()
                .filter(|l| l["span"]["request_id"] == id)
                .count()
        };
        if about(&marker_id) > 0 {
            assert_eq!(about(&probe_id), 0, "probes logged at INFO:\n{text}");
            break;
        }
        assert!(Instant::now() < deadline, "no line for the marker request");
    }
    app.stop().await;
}

/// The pool's sessions never JIT-compile (it took 360 ms of a 1 ms search)
/// and keep the statement timeout; they keep PostgreSQL's plan cache (only
/// the queries with optional filters run unnamed, planned per call).
#[tokio::test]
async fn pool_sessions_use_no_jit_the_plan_cache_and_the_statement_timeout() {
    let pool = ledger::connect_with_statement_timeout(
        &ledger_tests::admin_database_url(),
        1,
        Duration::from_secs(7),
    )
    .await
    .expect("a pool");
    for (setting, expected) in [
        ("jit", "off"),
        ("plan_cache_mode", "auto"),
        ("statement_timeout", "7s"),
    ] {
        let value: String = sqlx::query_scalar(&format!("SHOW {setting}"))
            .fetch_one(&pool)
            .await
            .expect("show the setting");
        assert_eq!(value, expected, "{setting}");
    }
}
