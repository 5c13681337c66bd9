//! The request id both APIs answer with and log (API.md "Conventions"): the
//! client's own when it is safe to keep, else a fresh one. On the command
//! side it becomes the correlation id of every event the request records.

use axum::http::request::Parts;
use uuid::Uuid;

pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// Whether a client-sent request id is kept: short and printable, so it is
/// safe in logs and event metadata. Others are replaced by a fresh one.
pub fn is_acceptable_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// The request id set by the request-id layer (or sent by the client).
pub fn request_id(parts: &Parts) -> String {
    parts
        .headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|id| is_acceptable_request_id(id))
        .map(str::to_owned)
        .unwrap_or_else(|| Uuid::now_v7().to_string())
}
