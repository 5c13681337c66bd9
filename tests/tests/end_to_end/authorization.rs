//! Who may issue which command (API.md "Commands", the `who` column, and
//! "Auth"): 401 for a missing or bad token, 403 for a role or ownership that
//! does not allow the command, and a refused command records nothing.

use command_api::Role;
use jsonwebtoken::Algorithm;
use ledger_tests::assert_problem;
use ledger_tests::scenario::TwoVendors;
use ledger_tests::tokens::{admin_claims, signed_with, unix_now, unsigned};
use ledger_tests::Marketplace;
use ledger_tests::{at, Answer, TestApp, JWT_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// A marketplace with two vendors and a paid order that touches both.
struct World {
    app: TestApp,
    /// Paid, placed by `customer-a`: a rental line of A, sale lines of A and B.
    marketplace: TwoVendors,
}

impl World {
    async fn new() -> World {
        let app = TestApp::spawn().await;
        let marketplace = Marketplace::new(&app)
            .with_two_vendors_and_a_paid_order(2)
            .await;
        // What the payment sets off (holds confirmed, invoices issued) is
        // recorded before the refusals are counted.
        ledger_tests::pipeline::settle(&app, std::time::Duration::from_secs(30))
            .await
            .expect("the policies settle");
        World { app, marketplace }
    }

    /// Every command route with a body that would be accepted from the
    /// right principal: (method, path, body).
    fn every_route(&self) -> Vec<(Method, String, Option<Value>)> {
        let (a, l, o) = (
            self.marketplace.vendor_a,
            self.marketplace.rental_a,
            self.marketplace.order,
        );
        let line = self.marketplace.rental_line_a;
        vec![
            (
                Method::POST,
                "/v1/vendors".to_owned(),
                Some(json!({"name": "Intruder"})),
            ),
            (
                Method::POST,
                format!("/v1/vendors/{a}/payouts"),
                Some(json!({"amount": "1.00"})),
            ),
            (
                Method::POST,
                "/v1/listings".to_owned(),
                Some(
                    json!({"vendor_id": a, "title": "Tent", "category": "camping",
                            "kind": "sale", "unit_price": "5.00", "stock": 1}),
                ),
            ),
            (
                Method::POST,
                format!("/v1/listings/{}/publish", self.marketplace.sale_a),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/listings/{l}/archive"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/listings/{l}/price"),
                Some(json!({"price_per_unit": "1.00"})),
            ),
            (
                Method::POST,
                format!("/v1/listings/{l}/stock"),
                Some(json!({"units": 9})),
            ),
            (
                Method::POST,
                format!("/v1/listings/{l}/blackouts"),
                Some(json!({"start": at(30, 0), "end": at(31, 0), "reason": "x"})),
            ),
            (
                Method::DELETE,
                format!("/v1/listings/{l}/blackouts/{}", self.marketplace.blackout_a),
                None,
            ),
            (
                Method::POST,
                "/v1/orders".to_owned(),
                Some(json!({"items": [{"listing_id": self.marketplace.sale_a, "quantity": 1}]})),
            ),
            (
                Method::POST,
                format!("/v1/orders/{o}/cancel"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/orders/{o}/vendors/{a}/ship"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/orders/{o}/vendors/{a}/deliver"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/orders/{o}/lines/{line}/pickup"),
                Some(json!({})),
            ),
            (
                Method::POST,
                format!("/v1/orders/{o}/lines/{line}/return"),
                Some(json!({})),
            ),
        ]
    }

    async fn send(&self, route: &(Method, String, Option<Value>), token: Option<&str>) -> Answer {
        let (method, path, body) = route;
        self.app
            .send(method.clone(), path, token, body.as_ref(), &[])
            .await
    }

    /// Every route answers `status`/`type_ending` for `token` and nothing is recorded.
    async fn assert_every_route(&self, token: Option<&str>, status: StatusCode, type_ending: &str) {
        let before = self.app.event_count().await;
        for route in self.every_route() {
            let answer = self.send(&route, token).await;
            assert_eq!(
                answer.status, status,
                "{} {} answered {:?}",
                route.0, route.1, answer.body
            );
            assert_problem(&answer, status, type_ending);
        }
        assert_eq!(
            self.app.event_count().await,
            before,
            "refused commands record nothing"
        );
    }

    /// `route` is refused with 403 for `token` and records nothing.
    async fn assert_forbidden(&self, method: Method, path: &str, body: Option<Value>, token: &str) {
        let before = self.app.event_count().await;
        let answer = self
            .send(&(method, path.to_owned(), body), Some(token))
            .await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
        assert_eq!(
            self.app.event_count().await,
            before,
            "a forbidden {path} records nothing"
        );
    }
}

// ---------------------------------------------------------------------------
// 401: no token, bad tokens
// ---------------------------------------------------------------------------

#[tokio::test]
async fn every_command_route_is_401_without_a_token_and_records_nothing() {
    let world = World::new().await;
    world
        .assert_every_route(None, StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
}

#[tokio::test]
async fn an_expired_token_is_401_on_every_command_route() {
    let world = World::new().await;
    // Well past the verifier's leeway of a few seconds.
    let expired = signed_with(
        &admin_claims(unix_now() - 120),
        JWT_SECRET,
        Algorithm::HS256,
    );
    world
        .assert_every_route(Some(&expired), StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
}

#[tokio::test]
async fn a_token_signed_with_another_secret_is_401_on_every_command_route() {
    let world = World::new().await;
    let forged = signed_with(
        &admin_claims(unix_now() + 3600),
        "not-the-ledger-secret",
        Algorithm::HS256,
    );
    world
        .assert_every_route(Some(&forged), StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
}

#[tokio::test]
async fn a_token_with_alg_none_is_401_on_every_command_route() {
    let world = World::new().await;
    let token = unsigned(&admin_claims(unix_now() + 3600));
    world
        .assert_every_route(Some(&token), StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
    // The same claims with a signature that is not HS256 are refused too.
    let hs512 = signed_with(
        &admin_claims(unix_now() + 3600),
        JWT_SECRET,
        Algorithm::HS512,
    );
    world
        .assert_every_route(Some(&hs512), StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
}

#[tokio::test]
async fn a_vendor_token_without_vendor_id_is_401() {
    let world = World::new().await;
    let token = signed_with(
        &json!({"sub": "vendor-user-x", "role": "vendor", "exp": unix_now() + 3600}),
        JWT_SECRET,
        Algorithm::HS256,
    );
    world
        .assert_every_route(Some(&token), StatusCode::UNAUTHORIZED, "unauthorized")
        .await;
}

#[tokio::test]
async fn malformed_tokens_and_claims_are_401_and_record_nothing() {
    let world = World::new().await;
    let app = &world.app;
    let exp = unix_now() + 3600;
    let bad_claims = [
        json!({"sub": "someone", "role": "superuser", "exp": exp}),
        json!({"sub": "admin-1", "role": "admin"}),
        json!({"role": "admin", "exp": exp}),
        json!({"sub": "", "role": "admin", "exp": exp}),
        json!({"sub": "admin-1", "exp": exp}),
    ];
    let mut tokens: Vec<String> = bad_claims
        .iter()
        .map(|claims| signed_with(claims, JWT_SECRET, Algorithm::HS256))
        .collect();
    tokens.push("not-a-jwt".to_owned());
    tokens.push("a.b.c".to_owned());
    // A valid token with its signature cut off.
    let good = app.admin();
    tokens.push(good[..good.rfind('.').expect("three parts") + 1].to_owned());

    let before = app.event_count().await;
    for token in &tokens {
        let answer = app
            .post("/v1/vendors", token, json!({"name": "Intruder"}))
            .await;
        assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
    }
    // Another scheme than Bearer.
    let basic = app
        .send(
            Method::POST,
            "/v1/vendors",
            None,
            Some(&json!({"name": "Intruder"})),
            &[("Authorization", &format!("Basic {good}"))],
        )
        .await;
    assert_problem(&basic, StatusCode::UNAUTHORIZED, "unauthorized");
    assert_eq!(app.event_count().await, before);

    // The token that was cut up works whole.
    let whole = app
        .post("/v1/vendors", &good, json!({"name": "Welcome"}))
        .await;
    assert_eq!(whole.status, StatusCode::CREATED, "{:?}", whole.body);
}

#[tokio::test]
async fn authentication_is_checked_before_the_body_so_a_bad_body_without_a_token_is_401() {
    let world = World::new().await;
    let answer = world
        .app
        .send(
            Method::POST,
            "/v1/orders",
            None,
            Some(&json!({"items": "nonsense"})),
            &[],
        )
        .await;
    assert_problem(&answer, StatusCode::UNAUTHORIZED, "unauthorized");
}

// ---------------------------------------------------------------------------
// 403: roles and ownership
// ---------------------------------------------------------------------------

#[tokio::test]
async fn analysts_and_auditors_may_write_nothing_403_on_every_command_route() {
    let world = World::new().await;
    for role in [Role::Analyst, Role::Auditor] {
        let token = world.app.token(role, "reader-1", None);
        world
            .assert_every_route(Some(&token), StatusCode::FORBIDDEN, "forbidden")
            .await;
    }
}

#[tokio::test]
async fn only_an_admin_registers_vendors_and_requests_payouts() {
    let world = World::new().await;
    let app = &world.app;
    let a = world.marketplace.vendor_a;
    for token in [
        app.customer("customer-a"),
        app.vendor(a),
        app.vendor(world.marketplace.vendor_b),
    ] {
        world
            .assert_forbidden(
                Method::POST,
                "/v1/vendors",
                Some(json!({"name": "Mine"})),
                &token,
            )
            .await;
        world
            .assert_forbidden(
                Method::POST,
                &format!("/v1/vendors/{a}/payouts"),
                Some(json!({"amount": "1.00"})),
                &token,
            )
            .await;
    }
    let by_admin = app
        .post("/v1/vendors", &app.admin(), json!({"name": "Mine"}))
        .await;
    assert_eq!(by_admin.status, StatusCode::CREATED, "{:?}", by_admin.body);
}

#[tokio::test]
async fn customers_may_not_create_or_change_listings() {
    let world = World::new().await;
    let customer = world.app.customer("customer-a");
    for (method, path, body) in world
        .every_route()
        .into_iter()
        .filter(|(_, path, _)| path.starts_with("/v1/listings"))
    {
        world.assert_forbidden(method, &path, body, &customer).await;
    }
}

#[tokio::test]
async fn a_vendor_may_not_create_or_change_another_vendors_listings_but_its_own_and_an_admin_may() {
    let world = World::new().await;
    let app = &world.app;
    let intruder = app.vendor(world.marketplace.vendor_b);
    let listing_routes: Vec<_> = world
        .every_route()
        .into_iter()
        .filter(|(_, path, _)| path.starts_with("/v1/listings/"))
        .collect();
    assert_eq!(listing_routes.len(), 6);
    for (method, path, body) in listing_routes.clone() {
        world.assert_forbidden(method, &path, body, &intruder).await;
    }
    // Creating a listing in another vendor's name.
    world
        .assert_forbidden(
            Method::POST,
            "/v1/listings",
            Some(
                json!({"vendor_id": world.marketplace.vendor_a, "title": "Tent", "category": "camping",
                        "kind": "sale", "unit_price": "5.00", "stock": 1}),
            ),
            &intruder,
        )
        .await;

    // The owner may do each (archive last), and so may an admin.
    let owner = app.vendor(world.marketplace.vendor_a);
    for (i, (method, path, body)) in listing_routes.into_iter().enumerate() {
        if path.ends_with("/archive") {
            continue;
        }
        let token = if i % 2 == 0 {
            owner.clone()
        } else {
            app.admin()
        };
        let answer = world
            .send(&(method, path.clone(), body), Some(&token))
            .await;
        assert!(answer.status.is_success(), "{path}: {:?}", answer.body);
    }
    let archived = app
        .post(
            &format!("/v1/listings/{}/archive", world.marketplace.rental_a),
            &owner,
            json!({}),
        )
        .await;
    assert_eq!(archived.status, StatusCode::OK, "{:?}", archived.body);
    let own = app
        .create_listing(
            &owner,
            json!({"vendor_id": world.marketplace.vendor_a, "title": "Tent", "category": "camping",
                   "kind": "sale", "unit_price": "5.00", "stock": 1}),
        )
        .await;
    assert_eq!(own.status, StatusCode::CREATED, "{:?}", own.body);
}

#[tokio::test]
async fn only_customers_place_orders() {
    let world = World::new().await;
    let app = &world.app;
    let body = json!({"items": [{"listing_id": world.marketplace.sale_a, "quantity": 1}]});
    for token in [
        app.vendor(world.marketplace.vendor_a),
        app.vendor(world.marketplace.vendor_b),
        app.admin(),
    ] {
        world
            .assert_forbidden(Method::POST, "/v1/orders", Some(body.clone()), &token)
            .await;
    }
    let placed = app
        .post("/v1/orders", &app.customer("customer-z"), body)
        .await;
    assert_eq!(placed.status, StatusCode::CREATED, "{:?}", placed.body);
}

#[tokio::test]
async fn a_customer_may_not_cancel_another_customers_order_nor_may_vendors_but_the_owner_may() {
    let world = World::new().await;
    let app = &world.app;
    let path = format!("/v1/orders/{}/cancel", world.marketplace.order);
    for token in [
        app.customer("customer-b"),
        app.vendor(world.marketplace.vendor_a),
        app.vendor(world.marketplace.vendor_b),
    ] {
        world
            .assert_forbidden(Method::POST, &path, Some(json!({})), &token)
            .await;
    }
    let cancelled = app
        .post(&path, &app.customer("customer-a"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{:?}", cancelled.body);
    assert_eq!(cancelled.body["status"], "refunded");
}

#[tokio::test]
async fn a_vendor_may_not_fulfil_another_vendors_part_or_line_nor_may_customers() {
    let world = World::new().await;
    let app = &world.app;
    let fulfilment: Vec<_> = world
        .every_route()
        .into_iter()
        .filter(|(_, path, _)| path.contains("/vendors/") || path.contains("/lines/"))
        .filter(|(_, path, _)| path.starts_with("/v1/orders/"))
        .collect();
    assert_eq!(fulfilment.len(), 4);
    for token in [
        app.vendor(world.marketplace.vendor_b),
        app.customer("customer-a"),
    ] {
        for (method, path, body) in fulfilment.clone() {
            world.assert_forbidden(method, &path, body, &token).await;
        }
    }

    // Vendor B may fulfil its own part of the same order.
    let own = app
        .post(
            &format!(
                "/v1/orders/{}/vendors/{}/ship",
                world.marketplace.order, world.marketplace.vendor_b
            ),
            &app.vendor(world.marketplace.vendor_b),
            json!({}),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{:?}", own.body);
    // And vendor A (or an admin for it) its own, in order.
    let owner = app.vendor(world.marketplace.vendor_a);
    for (i, (method, path, body)) in fulfilment.into_iter().enumerate() {
        let token = if i % 2 == 0 {
            owner.clone()
        } else {
            app.admin()
        };
        let answer = world
            .send(&(method, path.clone(), body), Some(&token))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
    }
}
