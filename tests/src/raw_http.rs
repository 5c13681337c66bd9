//! HTTP/1.1 written by hand, for framing an ordinary client never sends
//! (bodies cut short, `Content-Length` with `Transfer-Encoding`, oversized
//! heads), and the answer read back from the socket.

use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Writes `request` on a new connection to `base_url` and reads the
/// answer: (status, content type, JSON body or Null). A server that answers
/// early may close before the whole request is written; what it answered is
/// still read.
pub async fn exchange(base_url: &str, request: &[u8]) -> (u16, String, Value) {
    let addr = base_url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    let _ = stream.write_all(request).await;
    read_answer(stream).await
}

/// Reads one answer: until the body its head announces is complete (by
/// `Content-Length` or the last chunk) or the server closes, within 10 s.
pub async fn read_answer(mut stream: TcpStream) -> (u16, String, Value) {
    let mut raw = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        let mut chunk = [0u8; 8192];
        loop {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => raw.extend_from_slice(&chunk[..n]),
            }
            if let Some(at) = find(&raw, b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..at]).to_ascii_lowercase();
                let complete = match header(&head, "content-length") {
                    Some(length) => length
                        .parse::<usize>()
                        .is_ok_and(|len| raw.len() >= at + 4 + len),
                    None => raw.ends_with(b"0\r\n\r\n"),
                };
                if complete {
                    break;
                }
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the answer came within 10 s");
    let at = find(&raw, b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no complete head in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..at]).to_string();
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let lower = head.to_ascii_lowercase();
    let content_type = header(&lower, "content-type").unwrap_or_default();
    let body = &raw[at + 4..];
    let body = if header(&lower, "transfer-encoding").is_some_and(|te| te.contains("chunked")) {
        dechunk(body)
    } else {
        body.to_vec()
    };
    (
        status,
        content_type,
        serde_json::from_slice(&body).unwrap_or(Value::Null),
    )
}

/// A header's value in a lower-cased head.
fn header(lower_head: &str, name: &str) -> Option<String> {
    lower_head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == name).then(|| value.trim().to_owned())
    })
}

/// The data of a chunked body (what arrived of it).
fn dechunk(mut body: &[u8]) -> Vec<u8> {
    let mut data = Vec::new();
    while let Some(line_end) = find(body, b"\r\n") {
        let size = std::str::from_utf8(&body[..line_end])
            .ok()
            .and_then(|s| usize::from_str_radix(s.split(';').next().unwrap_or("").trim(), 16).ok());
        let Some(size) = size.filter(|&s| s > 0) else {
            break;
        };
        let start = line_end + 2;
        let end = (start + size).min(body.len());
        data.extend_from_slice(&body[start..end]);
        body = body.get(end + 2..).unwrap_or(&[]);
    }
    data
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}
