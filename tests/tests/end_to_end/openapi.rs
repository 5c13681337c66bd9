//! The OpenAPI document (`GET /openapi.json`) and the browsable page
//! (`GET /docs`): the document is OpenAPI 3.1, lists every route of API.md
//! with its method, success and problem responses and security, and real
//! answers of a few calls validate against its schemas.

use ledger_tests::{at, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};

/// Every route of API.md, as (method, path).
const ROUTES: &[(&str, &str)] = &[
    ("post", "/v1/vendors"),
    ("post", "/v1/listings"),
    ("post", "/v1/listings/{listing_id}/publish"),
    ("post", "/v1/listings/{listing_id}/archive"),
    ("post", "/v1/listings/{listing_id}/price"),
    ("post", "/v1/listings/{listing_id}/stock"),
    ("post", "/v1/listings/{listing_id}/blackouts"),
    (
        "delete",
        "/v1/listings/{listing_id}/blackouts/{blackout_id}",
    ),
    ("put", "/v1/listings/{listing_id}/schedule"),
    ("put", "/v1/listings/{listing_id}/policies"),
    ("post", "/v1/orders"),
    ("post", "/v1/plans"),
    ("post", "/v1/tenants"),
    ("get", "/v1/tenants/{slug}"),
    ("patch", "/v1/tenants/{slug}"),
    ("post", "/v1/subscriptions"),
    ("post", "/v1/subscriptions/{subscription_id}/cancel"),
    ("post", "/v1/subscriptions/{subscription_id}/change-plan"),
    ("post", "/v1/orders/{order_id}/cancel"),
    ("post", "/v1/orders/{order_id}/refunds"),
    ("post", "/v1/payments/{payment_id}/apply"),
    ("post", "/v1/payments/{payment_id}/refund"),
    ("post", "/v1/subjects/{subject}/erase"),
    ("post", "/v1/orders/{order_id}/vendors/{vendor_id}/ship"),
    ("post", "/v1/orders/{order_id}/vendors/{vendor_id}/deliver"),
    ("post", "/v1/orders/{order_id}/lines/{line_id}/pickup"),
    ("post", "/v1/orders/{order_id}/lines/{line_id}/return"),
    ("post", "/v1/orders/{order_id}/lines/{line_id}/extend"),
    ("post", "/v1/orders/{order_id}/lines/{line_id}/reschedule"),
    ("post", "/v1/orders/{order_id}/lines/{line_id}/terminate"),
    ("post", "/v1/vendors/{vendor_id}/payouts"),
    ("post", "/v1/vendors/{vendor_id}/fee-rate"),
    ("post", "/v1/webhooks/payments"),
    ("get", "/v1/listings"),
    ("get", "/v1/listings/{listing_id}"),
    ("get", "/v1/listings/{listing_id}/availability"),
    ("get", "/v1/orders/{order_id}"),
    ("get", "/v1/orders"),
    ("get", "/v1/orders/stream"),
    ("get", "/v1/vendors/{vendor_id}/earnings"),
    ("get", "/v1/vendors/{vendor_id}/earnings/entries"),
    ("get", "/v1/vendors/{vendor_id}/payouts"),
    ("get", "/v1/orders/{order_id}/invoices"),
    ("get", "/v1/invoices/{invoice_id}.pdf"),
    ("get", "/v1/plans"),
    ("get", "/v1/plans/{plan_id}"),
    ("get", "/v1/subscriptions"),
    ("get", "/v1/subscriptions/{subscription_id}"),
    ("get", "/v1/ledger/trial-balance"),
    ("get", "/v1/analytics/summary"),
    ("get", "/v1/analytics/revenue"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    (
        "get",
        "/v1/aggregates/{aggregate_type}/{aggregate_id}/events",
    ),
    (
        "get",
        "/v1/aggregates/{aggregate_type}/{aggregate_id}/state",
    ),
    ("get", "/v1/audit/verify"),
    ("get", "/v1/audit/seals"),
    ("get", "/v1/audit/proof"),
    ("get", "/v1/projections"),
    ("get", "/health/live"),
    ("get", "/health/ready"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/dashboard"),
    ("post", "/v1/webhook-endpoints"),
    ("get", "/v1/webhook-endpoints"),
    ("delete", "/v1/webhook-endpoints/{endpoint_id}"),
    ("post", "/v1/webhook-endpoints/{endpoint_id}/rotate-secret"),
    ("get", "/v1/webhook-endpoints/{endpoint_id}/deliveries"),
    (
        "post",
        "/v1/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/redeliver",
    ),
];

/// Routes that take no bearer token.
const OPEN: &[&str] = &[
    "/health/live",
    "/health/ready",
    "/metrics",
    "/openapi.json",
    "/docs",
    "/dashboard",
    "/v1/webhooks/payments",
];

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(format!("{}/openapi.json", app.base_url))
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.expect("the document is JSON")
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_lists_every_route() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap_or("").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let methods = ["get", "post", "put", "patch", "delete"];
    let mut documented = 0;
    for (path, item) in paths {
        for method in methods {
            if item.get(method).is_some() {
                documented += 1;
                assert!(
                    ROUTES.contains(&(method, path.as_str())),
                    "{method} {path} is documented but not in API.md"
                );
            }
        }
    }
    assert_eq!(documented, ROUTES.len());
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    for (method, path) in ROUTES {
        let op = &doc["paths"][path][method];
        assert!(op.is_object(), "{method} {path} is missing");
        let responses = op["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|code| code.starts_with('2')),
            "{method} {path} has no 2xx response"
        );
        let problem = |code: &str| {
            let content = &responses
                .get(code)
                .unwrap_or_else(|| panic!("{method} {path} lacks {code}"))["content"];
            assert_eq!(
                content["application/problem+json"]["schema"]["$ref"],
                "#/components/schemas/Problem",
                "{method} {path} {code}"
            );
        };
        let open = OPEN.contains(path);
        if !open {
            for code in ["400", "401", "403", "422", "429", "503"] {
                problem(code);
            }
            assert_eq!(op["security"], json!([{"bearer": []}]), "{method} {path}");
        } else {
            assert_eq!(op["security"], json!([{}]), "{method} {path}");
        }
        if *method == "post" || *method == "delete" {
            for code in ["400", "409", "413", "415", "422"] {
                problem(code);
            }
        }
        if *method == "post" {
            let key = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == "Idempotency-Key" && p["in"] == "header")
            });
            assert!(key, "{method} {path}: Idempotency-Key header");
        }
        if path.contains('{') {
            problem("404");
        }
        // Path parameters are declared.
        for segment in path.split('/').filter(|s| s.starts_with('{')) {
            // `{invoice_id}.pdf`: the name between the braces.
            let name = segment[1..].split('}').next().unwrap_or_default();
            let declared = op["parameters"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|p| p["name"] == name && p["in"] == "path" && p["required"] == true)
            });
            assert!(declared, "{method} {path}: path parameter {name}");
        }
    }
    // POST bodies that API.md gives are described.
    for path in [
        "/v1/vendors",
        "/v1/listings",
        "/v1/orders",
        "/v1/vendors/{vendor_id}/payouts",
        "/v1/webhooks/payments",
    ] {
        assert!(
            doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
                .is_object(),
            "{path} request body"
        );
    }
    // Money is a two-place decimal string; ids are uuids; times date-times.
    let placed = &doc["components"]["schemas"]["OrderPlaced"]["properties"];
    assert_eq!(placed["total"]["type"], "string");
    assert_eq!(placed["total"]["example"], "45.00");
    assert!(placed["total"]["pattern"].is_string());
    assert_eq!(placed["order_id"]["format"], "uuid");
    assert_eq!(placed["hold_expires_at"]["format"], "date-time");
    app.stop().await;
}

#[tokio::test]
async fn docs_answer_html_without_a_token() {
    let app = TestApp::spawn().await;
    let (status, content_type, html) = app.get_text("/docs").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(
        html.contains("<html") || html.contains("<!DOCTYPE html"),
        "{html}"
    );
    assert!(
        !html.contains("cdn."),
        "the page loads nothing from elsewhere"
    );
    // Its configuration points at the document.
    let config = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.base_url))
        .send()
        .await
        .expect("the ledger answers");
    assert_eq!(config.status(), StatusCode::OK);
    let config = config.text().await.expect("a body");
    assert!(config.contains("/openapi.json"), "{config}");
    app.stop().await;
}

/// A small JSON Schema (2020-12 subset as utoipa writes it) checker:
/// `$ref`, `type`, `required`, `properties`, `items`, `additionalProperties`,
/// `enum`, `oneOf`/`anyOf`/`allOf`, the `uuid` and `date-time` formats, and
/// the money pattern. Returns the first mismatch.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.rsplit('/').next().unwrap_or("");
        return check(doc, &doc["components"]["schemas"][name], value, at);
    }
    for (key, any) in [("oneOf", true), ("anyOf", true), ("allOf", false)] {
        if let Some(options) = schema[key].as_array() {
            let results: Vec<_> = options.iter().map(|s| check(doc, s, value, at)).collect();
            let ok = if any {
                results.iter().any(Result::is_ok)
            } else {
                results.iter().all(Result::is_ok)
            };
            if !ok {
                return Err(format!("{at}: no {key} match: {results:?}"));
            }
        }
    }
    if let Some(kind) = schema.get("type") {
        let kinds: Vec<&str> = match kind {
            Value::String(k) => vec![k.as_str()],
            Value::Array(ks) => ks.iter().filter_map(Value::as_str).collect(),
            _ => vec![],
        };
        let fits = kinds.iter().any(|k| match *k {
            "null" => value.is_null(),
            "boolean" => value.is_boolean(),
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            _ => true,
        });
        if !fits {
            return Err(format!("{at}: {value} is not {kinds:?}"));
        }
    }
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            return Err(format!("{at}: {value} not in {allowed:?}"));
        }
    }
    if let Some(text) = value.as_str() {
        match schema["format"].as_str() {
            Some("uuid") if uuid::Uuid::parse_str(text).is_err() => {
                return Err(format!("{at}: {text} is not a uuid"))
            }
            Some("date-time") if chrono::DateTime::parse_from_rfc3339(text).is_err() => {
                return Err(format!("{at}: {text} is not a date-time"))
            }
            _ => {}
        }
        if schema["pattern"].is_string() {
            let (units, cents) = text
                .trim_start_matches('-')
                .split_once('.')
                .unwrap_or(("", ""));
            let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
            if !(digits(units) && digits(cents) && cents.len() == 2) {
                return Err(format!("{at}: {text} is not a money amount"));
            }
        }
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten() {
            let name = name.as_str().unwrap_or("");
            if !object.contains_key(name) {
                return Err(format!("{at}: required `{name}` missing in {value}"));
            }
        }
        for (name, field) in object {
            if let Some(property) = schema["properties"].get(name) {
                check(doc, property, field, &format!("{at}.{name}"))?;
            } else if schema["additionalProperties"].is_object() {
                check(
                    doc,
                    &schema["additionalProperties"],
                    field,
                    &format!("{at}.{name}"),
                )?;
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

/// Checks an answer against the document's schema for that route and status.
fn conforms(doc: &Value, method: &str, path: &str, answer: &ledger_tests::Answer) {
    let response = &doc["paths"][path][method]["responses"][answer.status.as_str()];
    assert!(
        response.is_object(),
        "{method} {path}: status {} is not documented ({:?})",
        answer.status,
        answer.body
    );
    let content_type = answer.header("content-type").unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    let schema = &response["content"][media]["schema"];
    assert!(
        schema.is_object(),
        "{method} {path} {}: {media} is not documented",
        answer.status
    );
    if let Err(mismatch) = check(doc, schema, &answer.body, "$") {
        panic!("{method} {path} {}: {mismatch}", answer.status);
    }
}

#[tokio::test]
async fn real_answers_validate_against_the_document() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let admin = app.admin();
    let get = |path: String, token: Option<String>| {
        let app = &app;
        async move {
            app.send(reqwest::Method::GET, &path, token.as_deref(), None, &[])
                .await
        }
    };

    let vendor = app
        .post("/v1/vendors", &admin, json!({"name": "Kayaks"}))
        .await;
    conforms(&doc, "post", "/v1/vendors", &vendor);
    let vendor_id = vendor.uuid("vendor_id");
    let vendor_token = app.vendor(vendor_id);
    let rental = app
        .rental_listing(vendor_id, "day", "45.00", "100.00", 3)
        .await;
    let sale = app
        .create_listing(
            &vendor_token,
            json!({"title": "Paddle", "description": "", "category": "gear",
                   "kind": "sale", "unit_price": "12.50", "stock": 4}),
        )
        .await;
    conforms(&doc, "post", "/v1/listings", &sale);
    let sale_id = sale.uuid("listing_id");
    app.publish(vendor_id, rental).await;
    let published = app.publish_listing(&vendor_token, sale_id).await;
    conforms(
        &doc,
        "post",
        "/v1/listings/{listing_id}/publish",
        &published,
    );
    let price = app
        .change_price(&vendor_token, sale_id, json!({"unit_price": "13.00"}))
        .await;
    conforms(&doc, "post", "/v1/listings/{listing_id}/price", &price);

    let customer = app.customer("cust-openapi");
    let order = app
        .post(
            "/v1/orders",
            &customer,
            json!({"items": [
                {"listing_id": rental, "quantity": 1, "start": at(3, 0), "end": at(5, 0)},
                {"listing_id": sale_id, "quantity": 2}]}),
        )
        .await;
    conforms(&doc, "post", "/v1/orders", &order);
    let order_id = order.uuid("order_id");
    let paid = app.pay(&order).await;
    conforms(&doc, "post", "/v1/webhooks/payments", &paid);
    // More than there is: 409 unavailable with conflicts.
    let unavailable = app
        .post(
            "/v1/orders",
            &customer,
            json!({"items": [{"listing_id": sale_id, "quantity": 50}]}),
        )
        .await;
    assert_eq!(unavailable.status, StatusCode::CONFLICT);
    conforms(&doc, "post", "/v1/orders", &unavailable);
    // Validation: 422 with errors.
    let invalid = app.post("/v1/vendors", &admin, json!({"name": ""})).await;
    assert_eq!(invalid.status, StatusCode::UNPROCESSABLE_ENTITY);
    conforms(&doc, "post", "/v1/vendors", &invalid);

    // Queries (wait for the read models to catch up with the payment).
    let position = paid.body["position"].as_i64().unwrap_or(0).to_string();
    let wait = [("Ledger-Min-Position", position.as_str())];
    for (template, path, token) in [
        ("/v1/listings", "/v1/listings".to_owned(), admin.clone()),
        (
            "/v1/listings/{listing_id}",
            format!("/v1/listings/{rental}"),
            admin.clone(),
        ),
        (
            "/v1/listings/{listing_id}/availability",
            format!(
                "/v1/listings/{rental}/availability?from={}&to={}",
                at(1, 0),
                at(9, 0)
            ),
            admin.clone(),
        ),
        (
            "/v1/orders/{order_id}",
            format!("/v1/orders/{order_id}"),
            customer.clone(),
        ),
        (
            "/v1/orders/{order_id}",
            format!("/v1/orders/{order_id}"),
            vendor_token.clone(),
        ),
        ("/v1/orders", "/v1/orders".to_owned(), admin.clone()),
        (
            "/v1/vendors/{vendor_id}/earnings",
            format!("/v1/vendors/{vendor_id}/earnings"),
            admin.clone(),
        ),
        (
            "/v1/vendors/{vendor_id}/earnings/entries",
            format!("/v1/vendors/{vendor_id}/earnings/entries"),
            admin.clone(),
        ),
        (
            "/v1/ledger/trial-balance",
            "/v1/ledger/trial-balance".to_owned(),
            admin.clone(),
        ),
        (
            "/v1/analytics/summary",
            "/v1/analytics/summary".to_owned(),
            admin.clone(),
        ),
        (
            "/v1/analytics/revenue",
            "/v1/analytics/revenue?group_by=vendor".to_owned(),
            admin.clone(),
        ),
        (
            "/v1/projections",
            "/v1/projections".to_owned(),
            admin.clone(),
        ),
        (
            "/v1/aggregates/{aggregate_type}/{aggregate_id}/state",
            format!("/v1/aggregates/Order/{order_id}/state"),
            admin.clone(),
        ),
        (
            "/v1/aggregates/{aggregate_type}/{aggregate_id}/events",
            format!("/v1/aggregates/Order/{order_id}/events"),
            admin.clone(),
        ),
        (
            "/v1/audit/verify",
            "/v1/audit/verify".to_owned(),
            admin.clone(),
        ),
        (
            "/v1/audit/seals",
            "/v1/audit/seals?after=0".to_owned(),
            admin.clone(),
        ),
    ] {
        let answer = app
            .send(reqwest::Method::GET, &path, Some(&token), None, &wait)
            .await;
        assert!(answer.status.is_success(), "{path}: {answer:?}");
        conforms(&doc, "get", template, &answer);
    }
    // Problems: 401, 403, 404, 400/422 on queries.
    let no_token = get("/v1/orders".to_owned(), None).await;
    assert_eq!(no_token.status, StatusCode::UNAUTHORIZED);
    conforms(&doc, "get", "/v1/orders", &no_token);
    let forbidden = get(
        "/v1/ledger/trial-balance".to_owned(),
        Some(customer.clone()),
    )
    .await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);
    conforms(&doc, "get", "/v1/ledger/trial-balance", &forbidden);
    let missing = get(
        format!("/v1/listings/{}", uuid::Uuid::new_v4()),
        Some(admin.clone()),
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    conforms(&doc, "get", "/v1/listings/{listing_id}", &missing);
    let bad = get("/v1/orders?status=lost".to_owned(), Some(admin.clone())).await;
    conforms(&doc, "get", "/v1/orders", &bad);
    for path in ["/health/live", "/health/ready"] {
        let answer = get(path.to_owned(), None).await;
        assert_eq!(answer.status, StatusCode::OK);
        conforms(&doc, "get", path, &answer);
    }
    app.stop().await;
}
