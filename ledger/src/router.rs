//! The HTTP side of a ledger process: the routes of the parts it runs,
//! behind the layers every request passes (request id, trace span,
//! timeout, panic guard, limits).

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::http::HeaderName;
use axum::response::IntoResponse;
use axum::{BoxError, Router};
use ledger_http::ApiError;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::{dashboard, limits, observability, openapi, telemetry};

/// The HTTP routes of the parts this process runs, with the cross-cutting
/// layers: request ids (kept from the client's `x-request-id` or made), a
/// trace span per request, a timeout answered 503, panics answered 500.
pub fn http_router(
    command: Option<command_api::AppState>,
    read: read_api::ReadState,
    jwt_secret: &str,
    request_timeout: Duration,
    metrics: observability::MetricsState,
    rate_limits: limits::RateLimits,
) -> Router {
    let request_id = HeaderName::from_static(ledger_http::request_id::REQUEST_ID_HEADER);
    let limiter = limits::Limiter::new(rate_limits, jwt_secret);
    let mut router = Router::new()
        .merge(read_api::health_router(read.clone()))
        .merge(openapi::router())
        .merge(dashboard::router())
        .merge(
            Router::new()
                .route("/metrics", axum::routing::get(observability::scrape))
                .with_state(metrics),
        );
    if let Some(command) = command {
        router = router.merge(command_api::router(command));
    }
    router
        .merge(read_api::router(read, jwt_secret))
        .fallback(|| async { ApiError::NotFound("route".to_owned()) })
        .layer(
            ServiceBuilder::new()
                .layer(axum::middleware::from_fn(replace_unacceptable_request_id))
                .layer(SetRequestIdLayer::new(request_id.clone(), MakeRequestUuid))
                .layer(telemetry::trace_layer())
                .layer(PropagateRequestIdLayer::new(request_id))
                .layer(axum::middleware::from_fn(observability::record_request))
                .layer(CatchPanicLayer::custom(|_| {
                    ApiError::internal("handler panicked").into_response()
                }))
                .layer(HandleErrorLayer::new(|err: BoxError| async move {
                    if err.is::<tower::timeout::error::Elapsed>() {
                        ApiError::ServiceUnavailable("the request timed out".to_owned())
                            .into_response()
                    } else {
                        ApiError::internal(err).into_response()
                    }
                }))
                .timeout(request_timeout)
                // Inside the timeout: a client trickling its body cannot
                // hold a request past it.
                .layer(axum::middleware::from_fn(limits::limit_headers))
                .layer(axum::middleware::from_fn(limits::limit_body))
                .layer(axum::extract::DefaultBodyLimit::max(limits::MAX_BODY_BYTES))
                .layer(axum::middleware::from_fn_with_state(
                    limiter,
                    limits::rate_limit,
                )),
        )
}

/// A client's `x-request-id` that is not 1 to 128 characters of
/// `[A-Za-z0-9._:-]` is replaced by a fresh UUIDv7, which is then what is
/// echoed and stored as the events' correlation id.
async fn replace_unacceptable_request_id(
    mut request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let header = ledger_http::request_id::REQUEST_ID_HEADER;
    let acceptable = request
        .headers()
        .get(header)
        .map(|v| {
            v.to_str()
                .is_ok_and(ledger_http::request_id::is_acceptable_request_id)
        })
        .unwrap_or(true);
    if !acceptable {
        let fresh = ledger_http::request_id::fresh_request_id();
        match axum::http::HeaderValue::from_str(&fresh) {
            Ok(value) => {
                request.headers_mut().insert(header, value);
            }
            Err(_) => {
                request.headers_mut().remove(header);
            }
        }
    }
    next.run(request).await
}
