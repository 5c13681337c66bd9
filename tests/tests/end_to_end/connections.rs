//! Slow and idle clients are bounded (API.md "Conventions", issue 23
//! item 1): a client that never finishes its headers is closed without an
//! answer, an idle keep-alive connection is closed, and past the cap on
//! open connections a new one is answered 503 while those already open,
//! and every client once a slot is free, are served.

use std::time::Duration;

use ledger_tests::raw_http::exchange;
use ledger_tests::TestApp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const HEALTH: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: ledger\r\n\r\n";

fn addr(app: &TestApp) -> String {
    app.base_url.trim_start_matches("http://").to_owned()
}

/// Sends one request on a kept-alive connection and reads its answer's
/// status (the head, then `Content-Length` bytes of body).
async fn ask(stream: &mut TcpStream, request: &[u8]) -> u16 {
    stream.write_all(request).await.expect("send a request");
    let mut raw = Vec::new();
    let mut chunk = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let n = stream.read(&mut chunk).await.expect("read the answer");
            assert!(n > 0, "closed before answering: {raw:?}");
            raw.extend_from_slice(&chunk[..n]);
            let text = String::from_utf8_lossy(&raw).to_string();
            if let Some(at) = text.find("\r\n\r\n") {
                let length = text[..at]
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse::<usize>().ok())?
                    })
                    .unwrap_or(0);
                if raw.len() >= at + 4 + length {
                    return text;
                }
            }
        }
    })
    .await
    .expect("an answer within 5 s");
    read.split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line")
}

/// Reads until the server closes (or `within` passes): what it sent, and
/// when it closed (None if it did not).
async fn until_closed(stream: &mut TcpStream, within: Duration) -> (Vec<u8>, Option<Instant>) {
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .ok();
    (got, closed)
}

#[tokio::test]
async fn a_client_that_drips_its_headers_is_closed_without_an_answer() {
    let app = TestApp::spawn_server(|config| {
        config.connections.header_read_timeout = Duration::from_secs(2);
    })
    .await;
    let stream = TcpStream::connect(addr(&app)).await.expect("connect");
    let (mut reader, mut writer) = stream.into_split();
    let opened = Instant::now();
    // A header line every second, never the blank line that ends the head.
    let drip = tokio::spawn(async move {
        if writer
            .write_all(b"GET /health/live HTTP/1.1\r\nHost: ledger\r\n")
            .await
            .is_err()
        {
            return;
        }
        for n in 0.. {
            tokio::time::sleep(Duration::from_secs(1)).await;
            let line = format!("X-Drip-{n}: still coming\r\n");
            if writer.write_all(line.as_bytes()).await.is_err() {
                return;
            }
        }
    });
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    let closed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match reader.read(&mut chunk).await {
                Ok(0) | Err(_) => return Instant::now(),
                Ok(n) => got.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the server closed the dripping connection within 10 s");
    drip.abort();
    let after = closed - opened;
    assert!(
        after >= Duration::from_millis(1_500) && after < Duration::from_secs(6),
        "closed after {after:?}"
    );
    assert!(
        got.is_empty(),
        "no answer: {:?}",
        String::from_utf8_lossy(&got)
    );
    // The server itself is fine.
    assert_eq!(exchange(&app.base_url, HEALTH).await.0, 200);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let app = TestApp::spawn_server(|config| {
        config.connections.idle_timeout = Duration::from_secs(2);
        config.connections.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
    assert_eq!(ask(&mut stream, HEALTH).await, 200);
    let answered = Instant::now();
    let (got, closed) = until_closed(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("the idle connection was closed within 10 s");
    let after = closed - answered;
    assert!(
        after >= Duration::from_millis(1_500) && after < Duration::from_secs(6),
        "closed after {after:?}"
    );
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

/// The header-read timeout times a head from its first byte, not the wait
/// before it: a keep-alive connection idle for longer than that timeout
/// (but not the idle timeout) still answers, and a later request whose
/// head drips is still closed once its head runs over.
#[tokio::test]
async fn a_keep_alive_connection_waits_past_the_header_read_timeout_but_a_slow_later_head_is_closed(
) {
    let app = TestApp::spawn_server(|config| {
        config.connections.header_read_timeout = Duration::from_secs(1);
        config.connections.idle_timeout = Duration::from_secs(30);
    })
    .await;
    let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
    assert_eq!(ask(&mut stream, HEALTH).await, 200);
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        ask(&mut stream, HEALTH).await,
        200,
        "an idle keep-alive connection is kept past the header-read timeout"
    );
    // The third request's head starts and never ends.
    stream
        .write_all(b"GET /health/live HTTP/1.1\r\n")
        .await
        .expect("start a head");
    let started = Instant::now();
    let (got, closed) = until_closed(&mut stream, Duration::from_secs(10)).await;
    let closed = closed.expect("the unfinished head was closed within 10 s");
    let after = closed - started;
    assert!(
        after >= Duration::from_millis(700) && after < Duration::from_secs(5),
        "closed after {after:?}"
    );
    assert!(got.is_empty(), "{:?}", String::from_utf8_lossy(&got));
}

#[tokio::test]
async fn past_the_connection_cap_a_new_connection_gets_503_and_the_open_ones_keep_working() {
    let mut app = TestApp::spawn_server(|config| {
        config.connections.max_connections = 4;
    })
    .await;
    // The harness's client keeps its connection alive: drop it, so that
    // the test holds every open connection itself.
    app.client = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut open = Vec::new();
    for _ in 0..4 {
        let mut stream = TcpStream::connect(addr(&app)).await.expect("connect");
        assert_eq!(ask(&mut stream, HEALTH).await, 200);
        open.push(stream);
    }

    // The fifth: a problem, and the connection closed.
    let (status, content_type, problem) = exchange(&app.base_url, HEALTH).await;
    assert_eq!(status, 503, "{problem}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(problem["status"], 503);
    assert!(
        problem["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{problem}"
    );

    // Those already open keep working.
    for stream in &mut open {
        assert_eq!(ask(stream, HEALTH).await, 200);
    }

    // One closes: another client is served again.
    drop(open.pop());
    let mut served = false;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if exchange(&app.base_url, HEALTH).await.0 == 200 {
            served = true;
            break;
        }
    }
    assert!(served, "no slot came free after a connection closed");
    let answer = reqwest::Client::new()
        .get(format!("{}/health/live", app.base_url))
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(answer.status(), 200);
    drop(open);
}
