//! Cross-origin requests from browser pages (`LEDGER_CORS_ORIGINS`): off
//! unless origins are listed. Preflights (`OPTIONS` with
//! `Access-Control-Request-Method`) are answered by this outermost layer,
//! before authentication and the rate limits, since a browser never sends
//! the token with them.

use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Which origins may call the API from a browser.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum CorsOrigins {
    /// No CORS headers: browsers refuse cross-origin calls (the default).
    #[default]
    Off,
    /// Any origin (`*`); tokens still decide what a call may do.
    Any,
    /// These origins exactly (`https://shop.example.com`).
    List(Vec<HeaderValue>),
}

impl CorsOrigins {
    /// `LEDGER_CORS_ORIGINS`: empty (off), `*`, or comma-separated origins
    /// (`scheme://host[:port]`, no path).
    pub fn parse(text: &str) -> Result<CorsOrigins, String> {
        let origins: Vec<&str> = text
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .collect();
        if origins.is_empty() {
            return Ok(CorsOrigins::Off);
        }
        if origins == ["*"] {
            return Ok(CorsOrigins::Any);
        }
        let mut list = Vec::new();
        for origin in origins {
            let (scheme, rest) = origin.split_once("://").unwrap_or(("", ""));
            let valid = matches!(scheme, "http" | "https")
                && !rest.is_empty()
                && !rest.contains('/')
                && origin != "*";
            let value = HeaderValue::from_str(origin).ok().filter(|_| valid);
            match value {
                Some(value) => list.push(value),
                None => {
                    return Err(format!(
                        "LEDGER_CORS_ORIGINS: `{origin}` is not an origin \
                         (scheme://host[:port], or `*` alone)"
                    ))
                }
            }
        }
        Ok(CorsOrigins::List(list))
    }
}

/// `router` answering cross-origin requests from `origins`.
pub fn apply(router: Router, origins: &CorsOrigins) -> Router {
    let allow = match origins {
        CorsOrigins::Off => return router,
        CorsOrigins::Any => AllowOrigin::any(),
        CorsOrigins::List(list) => AllowOrigin::list(list.clone()),
    };
    let layer = CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ledger-min-position"),
            HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([
            HeaderName::from_static("x-request-id"),
            HeaderName::from_static("ledger-position"),
            HeaderName::from_static("idempotent-replayed"),
            header::RETRY_AFTER,
            header::LOCATION,
        ])
        .max_age(Duration::from_secs(3600));
    router.layer(layer)
}

#[cfg(test)]
mod tests {
    use super::CorsOrigins;

    #[test]
    fn origins_parse_off_any_or_a_list() {
        assert_eq!(CorsOrigins::parse(""), Ok(CorsOrigins::Off));
        assert_eq!(CorsOrigins::parse(" * "), Ok(CorsOrigins::Any));
        let Ok(CorsOrigins::List(list)) =
            CorsOrigins::parse("https://shop.example.com, http://localhost:3000")
        else {
            panic!("a list");
        };
        assert_eq!(list.len(), 2);
        for bad in [
            "shop.example.com",
            "https://a.example/path",
            "*, https://a.example",
            "ftp://x",
        ] {
            assert!(CorsOrigins::parse(bad).is_err(), "{bad}");
        }
    }
}
