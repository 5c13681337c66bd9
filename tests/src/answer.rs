//! What the ledger answered, as a test reads it: the status, the headers and
//! the JSON body, typed on demand (`answer.json::<PlacedOrder>()`), with the
//! checks every area makes on it: problem documents (RFC 7807), money
//! written with two places, the position of a command and the
//! `Ledger-Position` of a query.

use chrono::{DateTime, Utc};
use reqwest::header::HeaderMap;
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde::de::DeserializeOwned;
use serde_json::Value;
use uuid::Uuid;

/// An answer: status, headers and the JSON body (Null when not JSON).
#[derive(Clone, Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The last segment of a problem's `type`.
    pub fn problem_type(&self) -> &str {
        self.body["type"]
            .as_str()
            .and_then(|t| t.rsplit('/').next())
            .unwrap_or("")
    }

    pub fn uuid(&self, field: &str) -> Uuid {
        self.body[field]
            .as_str()
            .and_then(|s| Uuid::parse_str(s).ok())
            .unwrap_or_else(|| panic!("answer has no uuid `{field}`: {:?}", self.body))
    }

    /// The body read as `T`.
    #[track_caller]
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone()).unwrap_or_else(|e| {
            panic!(
                "the answer is not a {}: {e}: {:?}",
                std::any::type_name::<T>(),
                self.body
            )
        })
    }

    /// Asserts the status, then reads the body as `T`.
    #[track_caller]
    pub fn expect<T: DeserializeOwned>(&self, status: StatusCode) -> T {
        assert_eq!(self.status, status, "{:?}", self.body);
        self.json()
    }

    /// The (positive) `position` of a command's answer.
    #[track_caller]
    pub fn position(&self) -> i64 {
        position(self)
    }
}

/// The (positive) `position` of a command's answer.
#[track_caller]
pub fn position(answer: &Answer) -> i64 {
    let position = answer.body["position"]
        .as_i64()
        .unwrap_or_else(|| panic!("answer without a position: {:?}", answer.body));
    assert!(position > 0, "position must be positive: {:?}", answer.body);
    position
}

/// The `Ledger-Position` header of a query's answer.
#[track_caller]
pub fn ledger_position(answer: &Answer) -> i64 {
    answer
        .header("ledger-position")
        .unwrap_or_else(|| {
            panic!(
                "a query answer without Ledger-Position ({}): {:?}",
                answer.status, answer.body
            )
        })
        .parse()
        .expect("Ledger-Position is an integer")
}

#[track_caller]
pub fn assert_ok(answer: &Answer) {
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
}

/// Asserts an RFC 7807 problem answer with this status and `type` ending.
#[track_caller]
pub fn assert_problem(answer: &Answer, status: StatusCode, type_ending: &str) {
    assert_eq!(answer.status, status, "status of {:?}", answer.body);
    let content_type = answer.header("content-type").unwrap_or("");
    assert!(
        content_type.starts_with("application/problem+json"),
        "content-type `{content_type}` of {:?}",
        answer.body
    );
    assert_eq!(answer.problem_type(), type_ending, "{:?}", answer.body);
    assert!(answer.body["title"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(answer.body["status"], Value::from(status.as_u16()));
    assert!(
        answer.body["detail"]
            .as_str()
            .is_some_and(|d| !d.is_empty()),
        "{:?}",
        answer.body
    );
}

/// Asserts a 422 problem whose `errors` name `field`.
#[track_caller]
pub fn assert_invalid_field(answer: &Answer, field: &str) {
    assert_problem(answer, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    let errors = answer.body["errors"]
        .as_array()
        .unwrap_or_else(|| panic!("422 without errors: {:?}", answer.body));
    assert!(
        errors
            .iter()
            .all(|e| e["field"].is_string() && e["message"].as_str().is_some_and(|m| !m.is_empty())),
        "every error has a field and a message: {:?}",
        answer.body
    );
    assert!(
        errors.iter().any(|e| e["field"] == field),
        "no error names `{field}`: {:?}",
        answer.body
    );
}

/// A decimal literal of a test.
pub fn dec(text: &str) -> Decimal {
    text.parse().expect("a decimal")
}

/// A decimal written as a JSON string (or number).
#[track_caller]
pub fn decimal(value: &Value) -> Decimal {
    match value {
        Value::String(s) => s.parse().unwrap_or_else(|_| panic!("not a decimal: {s}")),
        Value::Number(n) => n.to_string().parse().expect("a decimal number"),
        other => panic!("not a decimal: {other}"),
    }
}

/// A field of an answer that must be money: a decimal string with two places.
#[track_caller]
pub fn money(answer: &Value, field: &str) -> Decimal {
    let text = answer[field]
        .as_str()
        .unwrap_or_else(|| panic!("`{field}` is not a string in {answer}"));
    let (whole, cents) = text
        .split_once('.')
        .unwrap_or_else(|| panic!("`{field}` = `{text}` has no decimal point"));
    assert!(
        !whole.is_empty()
            && whole
                .trim_start_matches('-')
                .bytes()
                .all(|b| b.is_ascii_digit())
            && cents.len() == 2
            && cents.bytes().all(|b| b.is_ascii_digit()),
        "`{field}` = `{text}` is not money with two places"
    );
    dec(text)
}

/// A UUID written as a JSON string.
#[track_caller]
pub fn uuid_of(value: &Value) -> Uuid {
    value
        .as_str()
        .and_then(|s| Uuid::parse_str(s).ok())
        .unwrap_or_else(|| panic!("not a uuid: {value}"))
}

/// An RFC 3339 instant written as a JSON string.
#[track_caller]
pub fn instant(value: &Value) -> DateTime<Utc> {
    value
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("not an instant: {value}"))
}
