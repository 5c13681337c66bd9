//! Request-body and path extractors whose rejections are problem responses:
//! malformed JSON is 400, a well-formed body with a wrong or missing field is
//! 422 naming the field, a bad id in the path is 404 (no such resource can
//! exist), a body over 1 MiB is 413, a body not declared JSON is 415.
//!
//! Text PostgreSQL cannot store is refused here, before any handler runs:
//! a NUL (`\u0000`) in any string of a body is 422 naming the field, in a
//! query parameter 400 naming the parameter. NUL is the only such
//! character: serde hands out only valid UTF-8, and serde_json refuses a
//! lone surrogate escape (`"\ud800"`) as malformed JSON.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::CONTENT_TYPE;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use uuid::Uuid;

use crate::error::{invalid, ApiError};

/// Request bodies above this are refused with 413 (API.md).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// A JSON body.
pub struct ApiJson<T>(pub T);

/// A body as raw bytes (the payment webhook, whose signature covers them):
/// over 1 MiB is 413, a body that cannot be read (a broken chunked
/// encoding, a client gone) 400, both as problems.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        read_body(req).await.map(RawBody)
    }
}

/// Reads a body up to the limit.
async fn read_body(req: Request) -> Result<Bytes, ApiError> {
    let limit_exceeded = |err: &axum::Error| {
        std::error::Error::source(err)
            .is_some_and(|source| source.is::<http_body_util::LengthLimitError>())
    };
    axum::body::to_bytes(req.into_body(), BODY_LIMIT)
        .await
        .map_err(|err| {
            if limit_exceeded(&err) {
                ApiError::PayloadTooLarge
            } else {
                ApiError::BadRequest(format!("the body could not be read: {err}"))
            }
        })
}

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        let declared = match req.headers().get(CONTENT_TYPE) {
            Some(content_type) => {
                let content_type = content_type
                    .to_str()
                    .unwrap_or_default()
                    .to_ascii_lowercase();
                let mime = content_type.split(';').next().unwrap_or_default().trim();
                if !(mime == "application/json" || mime.ends_with("+json")) {
                    return Err(ApiError::UnsupportedMediaType);
                }
                true
            }
            None => false,
        };
        let body = read_body(req).await?;
        // No body at all needs no type; a body does (API.md: JSON bodies).
        if !declared && !is_blank(&body) {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&body).map(ApiJson)
    }
}

fn is_blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// The message of text PostgreSQL cannot store.
const NUL_MESSAGE: &str = "must not contain the NUL character (\\u0000)";

/// Whether PostgreSQL can store `text` in a `text` or `jsonb` column: it
/// refuses NUL, and nothing else a Rust string can hold.
pub fn is_storable_text(text: &str) -> bool {
    !text.contains('\0')
}

/// The path (as serde_path_to_error writes it: `items[0].title`) of the
/// first string in `value` that PostgreSQL cannot store; a key that cannot
/// be stored names the object holding it (`body` at the top).
pub fn unstorable_text_at(value: &serde_json::Value) -> Option<String> {
    fn walk(value: &serde_json::Value, path: &mut String) -> Option<String> {
        let here = |path: &str| {
            if path.is_empty() {
                "body".to_owned()
            } else {
                path.to_owned()
            }
        };
        match value {
            serde_json::Value::String(text) if !is_storable_text(text) => Some(here(path)),
            serde_json::Value::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                let found = walk(item, path);
                path.truncate(len);
                found
            }),
            serde_json::Value::Object(fields) => fields.iter().find_map(|(key, item)| {
                if !is_storable_text(key) {
                    return Some(here(path));
                }
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(key);
                let found = walk(item, path);
                path.truncate(len);
                found
            }),
            _ => None,
        }
    }
    walk(value, &mut String::new())
}

/// Refuses a JSON body with a NUL in any string (422 naming the field).
/// Raw NUL bytes are malformed JSON already; only the escape can carry one,
/// so bodies without `\u0000` in them skip the walk.
pub fn refuse_unstorable_json(body: &[u8]) -> Result<(), ApiError> {
    if !body.windows(6).any(|w| w == b"\\u0000") {
        return Ok(());
    }
    // Malformed JSON is left to the caller's parse, which says why.
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(value) => match unstorable_text_at(&value) {
            Some(field) => Err(invalid(&field, NUL_MESSAGE)),
            None => Ok(()),
        },
        Err(_) => Ok(()),
    }
}

/// Parses a JSON body; an empty body reads as `{}` so that commands without
/// fields (and with optional ones) accept no body at all.
pub fn parse_json<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if is_blank(body) { b"{}" } else { body };
    refuse_unstorable_json(body)?;
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(&mut deserializer) {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|e| ApiError::BadRequest(format!("malformed JSON: {e}")))?;
            Ok(value)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            match inner.classify() {
                serde_json::error::Category::Data => {
                    let field = if path == "." { "body".to_owned() } else { path };
                    Err(invalid(&field, clean_serde_message(&inner.to_string())))
                }
                _ => Err(ApiError::BadRequest(format!("malformed JSON: {inner}"))),
            }
        }
    }
}

/// serde's messages end with " at line 1 column 17"; drop that.
fn clean_serde_message(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_owned(),
        None => message.to_owned(),
    }
}

/// Path segments that must be UUIDs; anything else is an unknown resource.
pub struct Ids<const N: usize>(pub [Uuid; N]);

impl<S: Send + Sync, const N: usize> FromRequestParts<S> for Ids<N> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let params = axum::extract::RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let mut ids = [Uuid::nil(); N];
        let mut count = 0;
        for (name, value) in params.iter() {
            if count == N {
                break;
            }
            ids[count] = Uuid::parse_str(value).map_err(|_| {
                ApiError::NotFound(format!("{} `{value}`", name.trim_end_matches("_id")))
            })?;
            count += 1;
        }
        if count != N {
            return Err(ApiError::internal(
                "route declares fewer ids than its handler",
            ));
        }
        Ok(Ids(ids))
    }
}

/// Query parameters; a malformed one is a 400 problem naming it.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        refuse_unstorable_query(query)?;
        serde_urlencoded::from_str::<T>(query)
            .map(ApiQuery)
            .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {e}")))
    }
}

/// Refuses a query string whose decoded names or values hold text
/// PostgreSQL cannot store (`?q=%00`): 400 naming the parameter.
pub fn refuse_unstorable_query(query: &str) -> Result<(), ApiError> {
    if !query.contains("%00") && !query.contains('\0') {
        return Ok(());
    }
    let pairs = serde_urlencoded::from_str::<Vec<(String, String)>>(query)
        .map_err(|e| ApiError::BadRequest(format!("invalid query parameters: {e}")))?;
    match pairs
        .iter()
        .find(|(name, value)| !is_storable_text(name) || !is_storable_text(value))
    {
        Some((name, _)) if is_storable_text(name) => Err(ApiError::BadRequest(format!(
            "query parameter `{name}` {NUL_MESSAGE}"
        ))),
        Some(_) => Err(ApiError::BadRequest(format!(
            "a query parameter's name {NUL_MESSAGE}"
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_nul_in_any_string_is_found_by_its_path() {
        let value = json!({"items": [{"title": "ok"}, {"title": "bad\u{0}"}]});
        assert_eq!(
            unstorable_text_at(&value).as_deref(),
            Some("items[1].title")
        );
        assert_eq!(unstorable_text_at(&json!("\u{0}")).as_deref(), Some("body"));
        assert_eq!(
            unstorable_text_at(&json!({"a\u{0}": 1})).as_deref(),
            Some("body")
        );
        assert_eq!(
            unstorable_text_at(&json!({"a": {"b\u{0}": 1}})).as_deref(),
            Some("a")
        );
        assert_eq!(unstorable_text_at(&json!({"title": "fine", "n": 1})), None);
    }

    #[test]
    fn a_body_with_an_escaped_nul_is_refused_naming_the_field() {
        let body = br#"{"name": "Acme\u0000"}"#;
        let Err(ApiError::Validation(errors)) = refuse_unstorable_json(body) else {
            panic!("refused");
        };
        assert_eq!(errors[0].field, "name");
        // An escaped backslash before `u0000` is no NUL.
        assert!(refuse_unstorable_json(br#"{"name": "Acme\\u0000"}"#).is_ok());
    }

    #[test]
    fn a_query_with_a_nul_is_refused_naming_the_parameter() {
        let Err(ApiError::BadRequest(message)) = refuse_unstorable_query("q=a%00b&limit=5") else {
            panic!("refused");
        };
        assert!(message.contains("`q`"), "{message}");
        assert!(refuse_unstorable_query("q=%2500").is_ok());
        assert!(refuse_unstorable_query("q=kayak").is_ok());
    }

    #[test]
    fn a_lone_surrogate_is_malformed_json_not_text() {
        let parsed = parse_json::<serde_json::Value>(&Bytes::from_static(br#"{"a": "\ud800"}"#));
        assert!(matches!(parsed, Err(ApiError::BadRequest(_))), "{parsed:?}");
    }
}
