//! The outside attack run (issue 20), bounded and seeded, as part of the
//! suite: the cases that once broke the ledger, the ones that held, and a
//! seeded set of invalid values in every typed field of the command bodies,
//! sent to a spawned ledger. Every case must be refused (or, for webhooks
//! the ledger does not handle, ignored): never a 5xx, every 4xx a
//! problem+json whose `status` matches, and the log exactly as long as
//! before the case.
//!
//! Request ids the ledger must not keep (issue 23: markup, over 128
//! characters, spaces, non-ASCII…) ride along on accepted and refused
//! requests; each must be answered with a replacement, and no event in the
//! log may carry anything but a plain id as correlation or causation.
//!
//! The seed is fixed so that a failure reproduces; `LEDGER_ATTACK_SEED`
//! runs another one.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ledger_tests::tokens::unix_now;
use ledger_tests::webhooks::signed;
use ledger_tests::{at, Answer, TestApp, JWT_SECRET, WEBHOOK_SECRET};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

/// What a case may answer.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// Exactly this status.
    Status(u16),
    /// One of these statuses.
    OneOf(&'static [u16]),
    /// Any 4xx.
    Refused,
}

impl Expect {
    fn admits(self, status: u16) -> bool {
        match self {
            Self::Status(s) => s == status,
            Self::OneOf(list) => list.contains(&status),
            Self::Refused => (400..500).contains(&status),
        }
    }
}

/// How a case's request is sent.
enum Wire {
    /// Through the HTTP client: optional JSON body, extra headers.
    Http {
        method: Method,
        path: String,
        token: Option<String>,
        body: Option<Vec<u8>>,
        content_type: Option<&'static str>,
        headers: Vec<(&'static str, String)>,
    },
    /// Raw bytes on a fresh TCP connection (framing the client would not
    /// produce).
    Raw(Vec<u8>),
    /// A payment webhook signed when it is sent, with a timestamp this many
    /// seconds from then (a timestamp taken earlier would drift toward the
    /// tolerance while the cases before it run).
    SignedAtSend { body: Vec<u8>, offset: i64 },
}

struct Case {
    name: String,
    wire: Wire,
    expect: Expect,
}

impl Case {
    fn json(
        name: impl Into<String>,
        method: Method,
        path: impl Into<String>,
        token: Option<&str>,
        body: Option<Value>,
        expect: Expect,
    ) -> Case {
        Case {
            name: name.into(),
            wire: Wire::Http {
                method,
                path: path.into(),
                token: token.map(str::to_owned),
                content_type: body.as_ref().map(|_| "application/json"),
                body: body.map(|b| serde_json::to_vec(&b).expect("encode")),
                headers: Vec::new(),
            },
            expect,
        }
    }

    fn with_headers(mut self, extra: Vec<(&'static str, String)>) -> Case {
        if let Wire::Http { headers, .. } = &mut self.wire {
            headers.extend(extra);
        }
        self
    }
}

/// The world the cases attack: two vendors with a listing each, a paid
/// order and an unpaid one of two customers.
struct World {
    app: TestApp,
    vendor_a: Uuid,
    vendor_b: Uuid,
    rental_a: Uuid,
    sale_b: Uuid,
    carol_order: Uuid,
    dave_order: Uuid,
    carol_line: Uuid,
    paid_webhook: (Vec<u8>, String),
}

impl World {
    async fn new() -> World {
        let app = TestApp::spawn().await;
        let vendor_a = app.register_vendor("Kayaks Ltd").await;
        let vendor_b = app.register_vendor("Paddles Ltd").await;
        let rental_a = app
            .rental_listing(vendor_a, "day", "45.00", "100.00", 3)
            .await;
        let sale_b = app.sale_listing(vendor_b, "10.00", 5).await;
        let carol = app.customer("carol");
        let order = app
            .post(
                "/v1/orders",
                &carol,
                json!({"items": [{"listing_id": rental_a, "quantity": 1,
                                  "start": at(10, 9), "end": at(12, 9)}]}),
            )
            .await;
        assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
        let carol_order = order.uuid("order_id");
        let carol_line = order.body["lines"][0]["line_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .expect("a line id");
        let total_minor = ledger_tests::webhooks::total_minor(&order);
        let body = json!({
            "id": "evt_attack_paid", "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_attack_paid", "amount": total_minor, "currency": "usd",
                                "metadata": {"order_id": carol_order.to_string()},
                                "last_payment_error": null}}
        });
        let raw = serde_json::to_vec(&body).expect("encode");
        let signature =
            command_api::routes::webhooks::sign(&raw, WEBHOOK_SECRET, Utc::now().timestamp());
        let paid = app.send_raw_webhook(raw.clone(), &signature).await;
        assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
        let dave = app.customer("dave");
        let other = app
            .post(
                "/v1/orders",
                &dave,
                json!({"items": [{"listing_id": sale_b, "quantity": 1}]}),
            )
            .await;
        assert_eq!(other.status, StatusCode::CREATED, "{:?}", other.body);
        let world = World {
            vendor_a,
            vendor_b,
            rental_a,
            sale_b,
            carol_order,
            dave_order: other.uuid("order_id"),
            carol_line,
            paid_webhook: (raw, signature),
            app,
        };
        world.wait_until_quiet().await;
        world
    }

    /// Waits until the policies have reacted to the set-up (the payment
    /// confirms holds): the log has not grown for a second.
    async fn wait_until_quiet(&self) {
        let mut last = self.app.event_count().await;
        let mut still = 0;
        for _ in 0..120 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = self.app.event_count().await;
            if now == last {
                still += 1;
                if still >= 4 {
                    return;
                }
            } else {
                still = 0;
                last = now;
            }
        }
        panic!("the log kept growing after the set-up");
    }

    fn token(&self, claims: Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
        )
        .expect("sign")
    }

    /// Sends a case; (status, content type, body).
    async fn send(&self, case: &Case) -> (u16, String, Value) {
        let signed;
        let wire = match &case.wire {
            Wire::SignedAtSend { body, offset } => {
                let signature =
                    command_api::routes::webhooks::sign(body, WEBHOOK_SECRET, unix_now() + offset);
                signed = webhook_wire(body.clone(), signature);
                &signed
            }
            other => other,
        };
        match wire {
            Wire::Http {
                method,
                path,
                token,
                body,
                content_type,
                headers,
            } => {
                let mut request = self
                    .app
                    .client
                    .request(method.clone(), format!("{}{path}", self.app.base_url));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                if let Some(content_type) = content_type {
                    request = request.header("content-type", *content_type);
                }
                for (name, value) in headers {
                    request = request.header(*name, value);
                }
                if let Some(body) = body {
                    request = request.body(body.clone());
                }
                let response = request.send().await.unwrap_or_else(|err| {
                    panic!("case `{}`: the ledger did not answer: {err}", case.name)
                });
                let status = response.status().as_u16();
                let content_type = response
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let bytes = response.bytes().await.unwrap_or_default();
                (
                    status,
                    content_type,
                    serde_json::from_slice(&bytes).unwrap_or(Value::Null),
                )
            }
            Wire::Raw(bytes) => ledger_tests::raw_http::exchange(&self.app.base_url, bytes).await,
            Wire::SignedAtSend { .. } => unreachable!("signed above"),
        }
    }

    /// Runs a case and returns what it broke of what every case must hold.
    async fn attack(&self, case: &Case) -> Vec<String> {
        let before = self.app.event_count().await;
        let (status, content_type, body) = self.send(case).await;
        let mut broken = Vec::new();
        if status >= 500 {
            broken.push(format!("answered {status}: {body}"));
        }
        if !case.expect.admits(status) {
            broken.push(format!(
                "answered {status}, expected {:?}: {body}",
                case.expect
            ));
        }
        if (400..500).contains(&status) {
            if !content_type.starts_with("application/problem+json") {
                broken.push(format!("answered {status} as `{content_type}`: {body}"));
            } else if body["status"].as_u64() != Some(u64::from(status))
                || body["title"].as_str().is_none_or(str::is_empty)
            {
                broken.push(format!("a problem without its status or title: {body}"));
            }
        }
        // Anything a refused or ignored request recorded would be here by
        // now: commands append before they answer.
        let after = self.app.event_count().await;
        if after != before {
            broken.push(format!("({status}) recorded {} events", after - before));
        }
        broken
            .into_iter()
            .map(|b| format!("case `{}` {b}", case.name))
            .collect()
    }
}

fn webhook_wire(raw: Vec<u8>, signature: String) -> Wire {
    Wire::Http {
        method: Method::POST,
        path: "/v1/webhooks/payments".to_owned(),
        token: None,
        body: Some(raw),
        content_type: Some("application/json"),
        headers: vec![("stripe-signature", signature)],
    }
}

fn webhook_case(name: &str, raw: Vec<u8>, signature: String, expect: Expect) -> Case {
    Case {
        name: name.to_owned(),
        wire: webhook_wire(raw, signature),
        expect,
    }
}

/// Request ids that must never be echoed or stored (API.md "Conventions":
/// only 1 to 128 characters of `[A-Za-z0-9._:-]` are kept).
fn bad_request_ids() -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("markup", b"<script>alert(1)</script>".to_vec()),
        ("129 characters", "a".repeat(129).into_bytes()),
        (
            "200 characters of the set",
            "Ab0._:-".repeat(29).into_bytes(),
        ),
        ("a space", b"two words".to_vec()),
        ("a tab", b"a\tb".to_vec()),
        ("empty", Vec::new()),
        ("non-ASCII", "caf\u{e9}-\u{2603}".as_bytes().to_vec()),
        (
            "quotes and a semicolon",
            br#"x";drop table events;--"#.to_vec(),
        ),
        ("a path and a percent escape", b"../..%2f%00".to_vec()),
        ("JSON", br#"{"correlation_id":"x"}"#.to_vec()),
    ]
}

/// Whether `id` is a plain request id, by the API's words.
fn is_plain_id(id: &str) -> bool {
    (1..=128).contains(&id.chars().count())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || ".-_:".contains(c))
}

impl World {
    /// Sends a JSON request with `request_id` as raw header bytes; the
    /// answer and what broke of the request-id rule.
    async fn send_with_request_id(
        &self,
        what: &str,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
        request_id: &[u8],
    ) -> (Answer, Vec<String>) {
        let mut request = self
            .app
            .client
            .request(method, format!("{}{path}", self.app.base_url))
            .header(
                "x-request-id",
                reqwest::header::HeaderValue::from_bytes(request_id).expect("a header value"),
            )
            .json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .unwrap_or_else(|err| panic!("request id `{what}`: the ledger did not answer: {err}"));
        let answer = ledger_tests::client::read(response).await;
        let mut broken = Vec::new();
        match answer.header("x-request-id") {
            Some(echoed) if is_plain_id(echoed) && echoed.as_bytes() != request_id => {}
            other => broken.push(format!(
                "request id `{what}` on {path} ({}): echoed {other:?}",
                answer.status
            )),
        }
        if answer.status.is_server_error() {
            broken.push(format!(
                "request id `{what}` on {path} answered {}",
                answer.status
            ));
        }
        (answer, broken)
    }

    /// Every event whose correlation or causation id is not a plain id.
    async fn events_with_bad_ids(&self) -> Vec<String> {
        let rows: Vec<(i64, Value)> = sqlx::query_as(
            "SELECT global_position, metadata::jsonb FROM events ORDER BY global_position",
        )
        .fetch_all(&self.app.pool)
        .await
        .expect("read the log");
        rows.into_iter()
            .filter(|(_, metadata)| {
                ["correlation_id", "causation_id"]
                    .iter()
                    .any(|field| !metadata[field].as_str().is_some_and(is_plain_id))
            })
            .map(|(position, metadata)| format!("event {position} carries a bad id: {metadata}"))
            .collect()
    }
}

/// The cases found by the attack run and the ones that held, by name.
fn known_cases(w: &World) -> Vec<Case> {
    let admin = w.app.admin();
    let vendor_a = w.app.vendor(w.vendor_a);
    let vendor_b = w.app.vendor(w.vendor_b);
    let dave = w.app.customer("dave");
    let analyst = w.app.token(command_api::Role::Analyst, "ann", None);
    let now = unix_now() as u64;
    let rental = w.rental_a;
    let sale = w.sale_b;
    let listing = |title: Value, price: Value| {
        json!({"title": title, "description": "d", "category": "boats", "kind": "rental",
               "pricing_unit": "day", "price_per_unit": price, "deposit": "1.00", "units": 1})
    };
    let mut cases = vec![
        // Authentication.
        Case::json("no token", Method::POST, "/v1/vendors", None, Some(json!({"name": "x"})), Expect::Status(401)),
        Case::json("alg none", Method::POST, "/v1/vendors", Some(&format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
            URL_SAFE_NO_PAD.encode(json!({"sub": "eve", "role": "admin", "exp": now + 600}).to_string()),
        )), Some(json!({"name": "x"})), Expect::Status(401)),
        Case::json("forged signature", Method::POST, "/v1/vendors", Some(&jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &json!({"sub": "eve", "role": "admin", "exp": now + 600}),
            &EncodingKey::from_secret(b"not-the-secret"),
        ).expect("sign")), Some(json!({"name": "x"})), Expect::Status(401)),
        Case::json("expired token", Method::POST, "/v1/vendors",
            Some(&w.token(json!({"sub": "eve", "role": "admin", "exp": now - 120}))),
            Some(json!({"name": "x"})), Expect::Status(401)),
        Case::json("token not yet valid (nbf)", Method::POST, "/v1/vendors",
            Some(&w.token(json!({"sub": "eve", "role": "admin", "exp": now + 3600, "nbf": now + 1800}))),
            Some(json!({"name": "x"})), Expect::Status(401)),
        Case::json("64 KB bearer token", Method::POST, "/v1/vendors",
            Some(&"a".repeat(64 * 1024)), Some(json!({"name": "x"})), Expect::OneOf(&[401, 431])),
        Case::json("unknown role", Method::POST, "/v1/vendors",
            Some(&w.token(json!({"sub": "eve", "role": "root", "exp": now + 600}))),
            Some(json!({"name": "x"})), Expect::Status(401)),
        // Authorization.
        Case::json("customer registers a vendor", Method::POST, "/v1/vendors", Some(&dave), Some(json!({"name": "x"})), Expect::Status(403)),
        Case::json("analyst writes", Method::POST, "/v1/vendors", Some(&analyst), Some(json!({"name": "x"})), Expect::Status(403)),
        Case::json("vendor publishes another vendor's listing", Method::POST, format!("/v1/listings/{sale}/publish"), Some(&vendor_a), None, Expect::OneOf(&[403, 404])),
        Case::json("vendor reprices another vendor's listing", Method::POST, format!("/v1/listings/{rental}/price"), Some(&vendor_b), Some(json!({"price_per_unit": "1.00"})), Expect::OneOf(&[403, 404])),
        Case::json("customer cancels another customer's order", Method::POST, format!("/v1/orders/{}/cancel", w.carol_order), Some(&dave), Some(json!({})), Expect::OneOf(&[403, 404])),
        Case::json("vendor picks up another vendor's line", Method::POST, format!("/v1/orders/{}/lines/{}/pickup", w.carol_order, w.carol_line), Some(&vendor_b), None, Expect::OneOf(&[403, 404])),
        Case::json("vendor requests a payout", Method::POST, format!("/v1/vendors/{}/payouts", w.vendor_a), Some(&vendor_a), Some(json!({"amount": "1.00"})), Expect::Status(403)),
        Case::json("customer reads another customer's order", Method::GET, format!("/v1/orders/{}", w.carol_order), Some(&dave), None, Expect::OneOf(&[403, 404])),
        Case::json("vendor reads another vendor's earnings", Method::GET, format!("/v1/vendors/{}/earnings", w.vendor_a), Some(&vendor_b), None, Expect::Status(403)),
        // Money, parsed strictly.
        Case::json("price 1e1", Method::POST, "/v1/listings", Some(&vendor_a), Some(listing(json!("Kayak"), json!("1e1"))), Expect::Status(422)),
        Case::json("price 1e3", Method::POST, "/v1/listings", Some(&vendor_a), Some(listing(json!("Kayak"), json!("1e3"))), Expect::Status(422)),
        Case::json("price with a leading space", Method::POST, "/v1/listings", Some(&vendor_a), Some(listing(json!("Kayak"), json!(" 1.00"))), Expect::Status(422)),
        Case::json("price with three places", Method::POST, "/v1/listings", Some(&vendor_a), Some(listing(json!("Kayak"), json!("1.001"))), Expect::Status(422)),
        Case::json("price beyond the bounds", Method::POST, "/v1/listings", Some(&vendor_a), Some(listing(json!("Kayak"), json!("79228162514264337593543950335"))), Expect::Status(422)),
        Case::json("price as a number", Method::POST, "/v1/listings", Some(&vendor_a), Some(listing(json!("Kayak"), json!(45))), Expect::OneOf(&[400, 422])),
        Case::json("payout 1e2", Method::POST, format!("/v1/vendors/{}/payouts", w.vendor_a), Some(&admin), Some(json!({"amount": "1e2"})), Expect::Status(422)),
        Case::json("payout above the balance", Method::POST, format!("/v1/vendors/{}/payouts", w.vendor_a), Some(&admin), Some(json!({"amount": "1000000.00"})), Expect::Status(409)),
        Case::json("negative payout", Method::POST, format!("/v1/vendors/{}/payouts", w.vendor_a), Some(&admin), Some(json!({"amount": "-5.00"})), Expect::Status(422)),
        Case::json("a quantity that would overflow the totals", Method::POST, "/v1/orders", Some(&dave), Some(json!({"items": [{"listing_id": sale, "quantity": 4294967295u64}]})), Expect::OneOf(&[409, 422])),
        // Text PostgreSQL cannot store.
        Case::json("NUL in a title", Method::POST, "/v1/listings", Some(&vendor_a), Some(listing(json!("Kay\u{0}ak"), json!("1.00"))), Expect::Status(422)),
        Case::json("NUL in a vendor name", Method::POST, "/v1/vendors", Some(&admin), Some(json!({"name": "\u{0}"})), Expect::Status(422)),
        Case::json("NUL in a search", Method::GET, "/v1/listings?q=%00", Some(&dave), None, Expect::Status(400)),
        Case::json("NUL in a category filter", Method::GET, "/v1/listings?category=a%00b", Some(&dave), None, Expect::Status(400)),
        // Periods and dates.
        Case::json("an order in the past", Method::POST, "/v1/orders", Some(&dave), Some(json!({"items": [{"listing_id": rental, "quantity": 1, "start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}]})), Expect::Status(422)),
        Case::json("a period ending before it starts", Method::POST, "/v1/orders", Some(&dave), Some(json!({"items": [{"listing_id": rental, "quantity": 1, "start": at(20, 0), "end": at(19, 0)}]})), Expect::Status(422)),
        Case::json("a blackout ending in 9999", Method::POST, format!("/v1/listings/{rental}/blackouts"), Some(&vendor_a), Some(json!({"start": at(30, 0), "end": "9999-12-31T00:00:00Z", "reason": "x"})), Expect::Status(422)),
        Case::json("availability from year 1 to 9999", Method::GET, format!("/v1/listings/{rental}/availability?from=0001-01-01T00:00:00Z&to=9999-12-31T00:00:00Z"), Some(&dave), None, Expect::OneOf(&[400, 422])),
        Case::json("a date without an offset", Method::POST, "/v1/orders", Some(&dave), Some(json!({"items": [{"listing_id": rental, "quantity": 1, "start": "2030-06-01T09:00:00", "end": "2030-06-02T09:00:00"}]})), Expect::OneOf(&[400, 422])),
        Case::json("a return in the future", Method::POST, format!("/v1/orders/{}/lines/{}/return", w.carol_order, w.carol_line), Some(&vendor_a), Some(json!({"returned_at": "2099-01-01T00:00:00Z"})), Expect::OneOf(&[409, 422])),
        // Malformed requests.
        Case::json("an unknown listing", Method::POST, format!("/v1/listings/{}/publish", Uuid::now_v7()), Some(&admin), None, Expect::Status(404)),
        Case::json("a path id that is no uuid", Method::POST, "/v1/listings/not-a-uuid/publish", Some(&admin), None, Expect::OneOf(&[400, 404])),
        Case::json("an unknown order", Method::POST, format!("/v1/orders/{}/cancel", Uuid::now_v7()), Some(&admin), Some(json!({})), Expect::Status(404)),
        Case::json("an order with no items", Method::POST, "/v1/orders", Some(&dave), Some(json!({"items": []})), Expect::Status(422)),
        Case::json("a list limit over the maximum", Method::GET, "/v1/orders?limit=100000", Some(&admin), None, Expect::OneOf(&[400, 422])),
        Case::json("a negative cursor of the log", Method::GET, "/v1/events?after=-5&limit=-1", Some(&admin), None, Expect::OneOf(&[400, 422])),
        Case {
            name: "malformed JSON".into(),
            wire: Wire::Http { method: Method::POST, path: "/v1/vendors".into(), token: Some(admin.clone()),
                body: Some(b"{\"name\": ".to_vec()), content_type: Some("application/json"), headers: vec![] },
            expect: Expect::Status(400),
        },
        Case {
            name: "a body without a content type".into(),
            wire: Wire::Http { method: Method::POST, path: "/v1/vendors".into(), token: Some(admin.clone()),
                body: Some(br#"{"name": "x"}"#.to_vec()), content_type: None, headers: vec![] },
            expect: Expect::OneOf(&[400, 415]),
        },
        Case {
            name: "a body as text/plain".into(),
            wire: Wire::Http { method: Method::POST, path: "/v1/vendors".into(), token: Some(admin.clone()),
                body: Some(br#"{"name": "x"}"#.to_vec()), content_type: Some("text/plain"), headers: vec![] },
            expect: Expect::OneOf(&[400, 415]),
        },
        Case {
            name: "a body over 1 MiB".into(),
            wire: Wire::Http { method: Method::POST, path: "/v1/vendors".into(), token: Some(admin.clone()),
                body: Some(format!("{{\"name\": \"{}\"}}", "x".repeat(1_200_000)).into_bytes()), content_type: Some("application/json"), headers: vec![] },
            expect: Expect::Status(413),
        },
        Case {
            name: "Content-Length and Transfer-Encoding together".into(),
            wire: Wire::Raw(format!(
                "POST /v1/vendors HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {admin}\r\n\
                 Content-Type: application/json\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\
                 Connection: close\r\n\r\nd\r\n{{\"name\":\"x\"}}\r\n0\r\n\r\n").into_bytes()),
            expect: Expect::Refused,
        },
        Case::json("the same key with another body", Method::POST, "/v1/vendors", Some(&admin), Some(json!({"name": "other"})), Expect::Status(422))
            .with_headers(vec![("Idempotency-Key", "attack-key".to_owned())]),
        // Webhooks.
        webhook_case("a replayed payment", w.paid_webhook.0.clone(), w.paid_webhook.1.clone(), Expect::Status(200)),
        webhook_case("a bad signature", w.paid_webhook.0.clone(), format!("t={},v1={}", unix_now(), "00".repeat(32)), Expect::Status(400)),
        webhook_case("no signature header value", w.paid_webhook.0.clone(), String::new(), Expect::Status(400)),
    ];
    let payment = |id: &str| {
        json!({"id": id, "type": "payment_intent.succeeded",
               "data": {"object": {"id": format!("pi_{id}"), "amount": 100, "currency": "usd",
                                   "metadata": {"order_id": w.dave_order.to_string()},
                                   "last_payment_error": null}}})
    };
    for (name, offset, expect) in [
        ("a signature 301 s in the future", 301, Expect::Status(400)),
        ("a signature 301 s old", -301, Expect::Status(400)),
        ("a signature from 1970", -unix_now(), Expect::Status(400)),
    ] {
        let body = serde_json::to_vec(&payment(&format!("evt_{}", Uuid::new_v4().simple())))
            .expect("encode");
        cases.push(Case {
            name: name.to_owned(),
            wire: Wire::SignedAtSend { body, offset },
            expect,
        });
    }
    for (name, body) in [
        (
            "customer.created",
            json!({"id": "evt_cust", "type": "customer.created", "data": {"object": {"id": "cus_1"}}}),
        ),
        (
            "checkout.session.completed",
            json!({"id": "evt_cs", "type": "checkout.session.completed", "data": {"object": {"id": "cs_1", "amount_total": 100}}}),
        ),
        (
            "a payment without metadata.order_id",
            json!({"id": "evt_nometa", "type": "payment_intent.succeeded", "data": {"object": {"id": "pi_x", "amount": 100, "currency": "usd", "metadata": {}}}}),
        ),
    ] {
        let (raw, signature) = signed(&body, WEBHOOK_SECRET, unix_now());
        cases.push(webhook_case(
            &format!("an unhandled webhook: {name}"),
            raw,
            signature,
            Expect::Status(200),
        ));
    }
    cases
}

/// Values no field of its kind may accept.
fn invalid_values(kind: FieldKind, rng: &mut StdRng) -> Value {
    let pool: Vec<Value> = match kind {
        FieldKind::Money => vec![
            json!("1e1"),
            json!("1e3"),
            json!(" 1.00"),
            json!("1.00 "),
            json!("+1.00"),
            json!("1,00"),
            json!(""),
            json!("NaN"),
            json!("inf"),
            json!("0x10"),
            json!("1.001"),
            json!("-1.00"),
            json!("1.0.0"),
            json!("\u{0}1.00"),
            json!("99999999999999999999999999.00"),
            json!(null),
            json!(true),
            json!([]),
            json!({}),
        ],
        FieldKind::Count => vec![
            json!(-1),
            json!(1.5),
            json!("3"),
            json!(null),
            json!(true),
            json!(1_000_000_000_000u64),
            json!(u64::MAX),
            json!([1]),
        ],
        FieldKind::Text => vec![
            json!("a\u{0}b"),
            json!("\u{0}"),
            json!(12),
            json!(null),
            json!([]),
            json!({}),
        ],
        FieldKind::Instant => vec![
            json!("2020-01-01T00:00:00Z"),
            json!("9999-12-31T00:00:00Z"),
            json!("0001-01-01T00:00:00Z"),
            json!("2030-13-01T00:00:00Z"),
            json!("yesterday"),
            json!(1234),
            json!("2030-06-01T09:00:00"),
            json!("\u{0}"),
        ],
        FieldKind::Choice => vec![
            json!("week"),
            json!(""),
            json!("DAY"),
            json!(1),
            json!(null),
            json!("\u{0}day"),
        ],
        FieldKind::Id => vec![
            json!("not-a-uuid"),
            json!(""),
            json!(1),
            json!(null),
            json!(Uuid::now_v7()),
        ],
    };
    pool.choose(rng).cloned().unwrap_or(Value::Null)
}

#[derive(Clone, Copy)]
enum FieldKind {
    Money,
    Count,
    Text,
    Instant,
    Choice,
    Id,
}

/// A valid command body and the typed fields it may be broken in.
struct Template {
    name: &'static str,
    path: String,
    token: String,
    body: Value,
    /// JSON pointers into `body` and their kinds.
    fields: Vec<(&'static str, FieldKind)>,
}

fn templates(w: &World) -> Vec<Template> {
    let vendor_a = w.app.vendor(w.vendor_a);
    let admin = w.app.admin();
    let dave = w.app.customer("dave");
    vec![
        Template {
            name: "rental listing",
            path: "/v1/listings".into(),
            token: vendor_a.clone(),
            body: json!({"title": "Kayak", "description": "d", "category": "boats", "kind": "rental",
                         "pricing_unit": "day", "price_per_unit": "45.00", "deposit": "100.00", "units": 3}),
            fields: vec![
                ("/title", FieldKind::Text),
                ("/description", FieldKind::Text),
                ("/category", FieldKind::Text),
                ("/kind", FieldKind::Choice),
                ("/pricing_unit", FieldKind::Choice),
                ("/price_per_unit", FieldKind::Money),
                ("/deposit", FieldKind::Money),
                ("/units", FieldKind::Count),
            ],
        },
        Template {
            name: "sale listing",
            path: "/v1/listings".into(),
            token: vendor_a.clone(),
            body: json!({"title": "Paddle", "description": "d", "category": "gear", "kind": "sale",
                         "unit_price": "10.00", "stock": 5}),
            fields: vec![
                ("/title", FieldKind::Text),
                ("/unit_price", FieldKind::Money),
                ("/stock", FieldKind::Count),
            ],
        },
        Template {
            name: "price change",
            path: format!("/v1/listings/{}/price", w.rental_a),
            token: vendor_a.clone(),
            body: json!({"price_per_unit": "50.00"}),
            fields: vec![("/price_per_unit", FieldKind::Money)],
        },
        Template {
            name: "payout",
            path: format!("/v1/vendors/{}/payouts", w.vendor_a),
            token: admin.clone(),
            body: json!({"amount": "1.00"}),
            fields: vec![("/amount", FieldKind::Money)],
        },
        Template {
            name: "rental order",
            path: "/v1/orders".into(),
            token: dave.clone(),
            body: json!({"items": [{"listing_id": w.rental_a, "quantity": 1, "start": at(40, 9), "end": at(41, 9)}]}),
            fields: vec![
                ("/items/0/listing_id", FieldKind::Id),
                ("/items/0/quantity", FieldKind::Count),
                ("/items/0/start", FieldKind::Instant),
                ("/items/0/end", FieldKind::Instant),
            ],
        },
        Template {
            name: "blackout",
            path: format!("/v1/listings/{}/blackouts", w.rental_a),
            token: vendor_a,
            body: json!({"start": at(50, 0), "end": at(51, 0), "units": 1, "reason": "repair"}),
            fields: vec![
                ("/start", FieldKind::Instant),
                ("/end", FieldKind::Instant),
                ("/units", FieldKind::Count),
                ("/reason", FieldKind::Text),
            ],
        },
        Template {
            name: "vendor",
            path: "/v1/vendors".into(),
            token: admin,
            body: json!({"name": "Canoes Ltd"}),
            fields: vec![("/name", FieldKind::Text)],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attack_run_finds_no_5xx_no_bare_4xx_and_nothing_recorded_by_a_refused_request() {
    let world = World::new().await;
    // The idempotency case needs its key taken first, by an accepted request.
    let first = world
        .app
        .post_with_key(
            "/v1/vendors",
            &world.app.admin(),
            json!({"name": "Keyed"}),
            "attack-key",
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{:?}", first.body);
    world.wait_until_quiet().await;

    let mut broken = Vec::new();
    for case in known_cases(&world) {
        broken.extend(world.attack(&case).await);
    }

    let seed: u64 = std::env::var("LEDGER_ATTACK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let mut rng = StdRng::seed_from_u64(seed);
    let templates = templates(&world);
    // The bad request ids a client library can put in a header as a string.
    let ascii_request_ids: Vec<String> = bad_request_ids()
        .into_iter()
        .filter_map(|(_, id)| String::from_utf8(id).ok())
        .filter(|id| id.is_ascii())
        .collect();
    for round in 0..160 {
        let template = &templates[rng.gen_range(0..templates.len())];
        let (pointer, kind) = template.fields[rng.gen_range(0..template.fields.len())];
        let mut body = template.body.clone();
        let value = invalid_values(kind, &mut rng);
        *body
            .pointer_mut(pointer)
            .expect("the template has the field") = value.clone();
        let case = Case::json(
            format!(
                "seed {seed} round {round}: {} with {pointer} = {value}",
                template.name
            ),
            Method::POST,
            template.path.clone(),
            Some(&template.token),
            Some(body),
            Expect::Refused,
        )
        // A bad request id rides along (in turn, not drawn from the seed's
        // sequence, so the rounds stay what they were).
        .with_headers(
            ascii_request_ids
                .get(round % ascii_request_ids.len().max(1))
                .map(|id| ("x-request-id", id.clone()))
                .into_iter()
                .collect(),
        );
        broken.extend(world.attack(&case).await);
    }

    // Bad request ids on accepted commands (which record events) and on a
    // refused one: each is answered with a replacement, and nothing but
    // plain ids is in the log.
    let admin = world.app.admin();
    for (what, id) in bad_request_ids() {
        let (accepted, wrong) = world
            .send_with_request_id(
                what,
                Method::POST,
                "/v1/vendors",
                Some(&admin),
                json!({"name": format!("Request id {what}")}),
                &id,
            )
            .await;
        broken.extend(wrong);
        if accepted.status != StatusCode::CREATED {
            broken.push(format!(
                "request id `{what}`: a vendor was not registered: {:?}",
                accepted.body
            ));
        }
        let (refused, wrong) = world
            .send_with_request_id(
                what,
                Method::POST,
                "/v1/vendors",
                None,
                json!({"name": "x"}),
                &id,
            )
            .await;
        broken.extend(wrong);
        if refused.status != StatusCode::UNAUTHORIZED {
            broken.push(format!(
                "request id `{what}` without a token answered {}",
                refused.status
            ));
        }
    }
    world.wait_until_quiet().await;
    broken.extend(world.events_with_bad_ids().await);
    assert!(
        broken.is_empty(),
        "{} broken cases:\n{}",
        broken.len(),
        broken.join("\n")
    );
    // The accepted requests of the set-up still answer as before.
    let order: Answer = world
        .app
        .send(
            Method::GET,
            &format!("/v1/orders/{}", world.carol_order),
            Some(&world.app.admin()),
            None,
            &[("Ledger-Min-Position", "1")],
        )
        .await;
    assert_eq!(order.status, StatusCode::OK, "{:?}", order.body);
    world.app.stop().await;
}
