//! Cursor pagination (API.md "Conventions"): `?limit=` (default 50, max
//! 500) and `?cursor=` from the previous page's `next_cursor`. Cursors are
//! the last id of the previous page, so pages stay stable while rows are
//! added.

use ledger_http::ApiError;
use serde::Serialize;
use uuid::Uuid;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

#[derive(Serialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

pub fn limit(requested: Option<i64>) -> Result<i64, ApiError> {
    match requested {
        None => Ok(DEFAULT_LIMIT),
        Some(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
        Some(_) => Err(ledger_http::invalid(
            "limit",
            format!("must be between 1 and {MAX_LIMIT}"),
        )),
    }
}

pub fn cursor(given: Option<&str>) -> Result<Option<Uuid>, ApiError> {
    given
        .filter(|c| !c.is_empty())
        .map(|c| Uuid::parse_str(c).map_err(|_| ApiError::BadRequest("invalid cursor".to_owned())))
        .transpose()
}

/// Builds a page from `limit + 1` rows: the extra one says there is more.
pub fn page<T>(mut rows: Vec<T>, limit: i64, id_of: impl Fn(&T) -> Uuid) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more {
        rows.last().map(|r| id_of(r).to_string())
    } else {
        None
    };
    Page {
        items: rows,
        next_cursor,
    }
}

/// A cursor that is a number (the last row's sequence number).
pub fn numeric_cursor(given: Option<&str>) -> Result<Option<i64>, ApiError> {
    given
        .filter(|c| !c.is_empty())
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::BadRequest("invalid cursor".to_owned()))
        })
        .transpose()
}
