//! Cross-origin calls from browser pages: off by default; with
//! `LEDGER_CORS_ORIGINS` the listed origins get their preflights answered
//! without a token and the CORS headers on every answer; other origins get
//! none.

use ledger::cors::CorsOrigins;
use ledger_tests::TestApp;
use reqwest::{Method, StatusCode};

const SHOP: &str = "https://shop.example.com";

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    app.client
        .request(Method::OPTIONS, format!("{}/v1/orders", app.base_url))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,idempotency-key",
        )
        .send()
        .await
        .expect("the ledger answers")
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn listed_origins_get_preflights_without_a_token_and_cors_headers() {
    let app = TestApp::spawn_server(|config| {
        config.cors =
            CorsOrigins::parse(&format!("{SHOP}, http://localhost:3000")).expect("valid origins");
    })
    .await;

    let answer = preflight(&app, SHOP).await;
    assert!(answer.status().is_success(), "{}", answer.status());
    assert_eq!(header(&answer, "access-control-allow-origin"), Some(SHOP));
    let methods = header(&answer, "access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("POST"), "{methods}");
    let headers = header(&answer, "access-control-allow-headers")
        .unwrap_or_default()
        .to_ascii_lowercase();
    for name in ["authorization", "content-type", "idempotency-key"] {
        assert!(headers.contains(name), "{headers}");
    }

    // A real call from that origin carries the headers (and still needs
    // its token).
    let listed = app
        .client
        .get(format!("{}/v1/orders", app.base_url))
        .header("origin", SHOP)
        .bearer_auth(app.admin())
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(listed.status(), StatusCode::OK);
    assert_eq!(header(&listed, "access-control-allow-origin"), Some(SHOP));
    let exposed = header(&listed, "access-control-expose-headers").unwrap_or_default();
    assert!(exposed.contains("ledger-position"), "{exposed}");
    let anonymous = app
        .client
        .get(format!("{}/v1/orders", app.base_url))
        .header("origin", SHOP)
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // Another origin: no permission.
    let other = preflight(&app, "https://evil.example").await;
    assert_eq!(header(&other, "access-control-allow-origin"), None);
    app.stop().await;
}

#[tokio::test]
async fn without_origins_there_are_no_cors_headers() {
    let app = TestApp::spawn().await;
    let answer = preflight(&app, SHOP).await;
    assert_eq!(header(&answer, "access-control-allow-origin"), None);
    let plain = app
        .client
        .get(format!("{}/health/live", app.base_url))
        .header("origin", SHOP)
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(header(&plain, "access-control-allow-origin"), None);
    app.stop().await;
}
