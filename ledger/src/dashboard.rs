//! `GET /dashboard` (issue 17 item 1): the operator and vendor dashboard, a
//! static page whose assets are compiled into the binary (nothing is
//! fetched from elsewhere at run time). The page asks for a token and
//! calls the public read API with it; it has no routes of its own.
//!
//! Chart.js 4.6.1 (MIT, `dashboard/vendor/chart.js-LICENSE.md`) is the
//! `dist/chart.umd.min.js` of its npm package, committed as it was built.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use ledger_http::ApiError;

const INDEX: &str = include_str!("../dashboard/index.html");
const APP_JS: &str = include_str!("../dashboard/app.js");
const APP_CSS: &str = include_str!("../dashboard/app.css");
const CHART_JS: &str = include_str!("../dashboard/vendor/chart-4.6.1.umd.min.js");

/// Same-origin only: the page loads its own assets and calls this API.
const POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; \
                      script-src 'self'; connect-src 'self'; frame-ancestors 'none'";

/// The dashboard's routes (no token: the page asks for one).
pub fn router() -> Router {
    Router::new()
        .route("/dashboard", get(index))
        .route("/dashboard/", get(index))
        .route("/dashboard/{*asset}", get(asset))
}

/// The page.
#[utoipa::path(get, path = "/dashboard", tag = "health", responses((status = 200, description = "The operator and vendor dashboard (the page asks for a token)", content_type = "text/html", body = String)), security(()))]
pub async fn index() -> Response {
    serve("text/html; charset=utf-8", INDEX)
}

async fn asset(Path(asset): Path<String>) -> Response {
    match asset.as_str() {
        "app.js" => serve("text/javascript; charset=utf-8", APP_JS),
        "app.css" => serve("text/css; charset=utf-8", APP_CSS),
        "vendor/chart.umd.min.js" => serve("text/javascript; charset=utf-8", CHART_JS),
        _ => ApiError::NotFound("dashboard asset".to_owned()).into_response(),
    }
}

fn serve(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, content_type),
            (CACHE_CONTROL, "no-cache"),
            (CONTENT_SECURITY_POLICY, POLICY),
        ],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use axum::http::{Request, StatusCode};
    use tower::ServiceExt;

    async fn get(path: &str) -> (StatusCode, String, String) {
        let response = router()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("answer");
        let status = response.status();
        let kind = response
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, kind, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn the_page_and_its_assets_are_served_from_the_binary() {
        let (status, kind, page) = get("/dashboard").await;
        assert_eq!(status, StatusCode::OK);
        assert!(kind.starts_with("text/html"));
        // Every asset the page names is served here, none from elsewhere.
        for asset in [
            "/dashboard/app.css",
            "/dashboard/app.js",
            "/dashboard/vendor/chart.umd.min.js",
        ] {
            assert!(page.contains(asset), "{asset}");
            let (status, _, body) = get(asset).await;
            assert_eq!(status, StatusCode::OK, "{asset}");
            assert!(!body.is_empty());
        }
        assert!(!page.contains("http://") && !page.contains("https://"));
        let (_, _, chart) = get("/dashboard/vendor/chart.umd.min.js").await;
        assert!(chart.contains("Chart.js v4.6.1"));
        assert_eq!(
            get("/dashboard/../Cargo.toml").await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(get("/dashboard/nothing.js").await.0, StatusCode::NOT_FOUND);
    }
}
