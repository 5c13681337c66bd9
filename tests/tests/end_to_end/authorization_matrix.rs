//! The whole authorization matrix of API.md: every route (commands and
//! queries, the event log, aggregates, audit, projections, the money read
//! models, analytics, health, metrics and the OpenAPI document) against every
//! principal: no token, an expired token, a token signed with another secret,
//! an `alg: none` token, the owning customer and another customer, the vendor
//! that owns the resources and another vendor, an admin, an analyst and an
//! auditor; and its tenant axis (API.md "Tenants"): the resources live in
//! the default tenant (tokens without a claim, and an admin claiming it
//! explicitly), and the same principals of another tenant (the same
//! subjects and vendor id, claimed in tenant `other`) are answered as if
//! the resources did not exist: 404 where a route names one of them (403
//! where the role is refused anyway), never a 2xx. A platform admin is
//! refused everything but the tenant routes; a token of a tenant that was
//! never created is 403, one with a malformed tenant 401.
//!
//! Each row of `routes()` is one route with the `who` column of API.md
//! written out as the set of principals it allows. Expected: 401 for every
//! bad token, 403 for a principal the route refuses; for an allowed
//! principal a 2xx on a query (the resources exist and the read models have
//! caught up), and on a command anything but 401/403/405/5xx (a 2xx, or a
//! domain 404/409/422 once an earlier allowed request has changed the
//! resource). Health, metrics and the OpenAPI document refuse nobody, bad
//! tokens included; `/metrics`, `/openapi.json` and `/docs` are skipped
//! while they answer 404. The payment webhook is authenticated by its
//! signature: unsigned it is 400 whatever bearer token comes with it.
//! The refusals are all checked first, on untouched resources, then the
//! allowed requests. The matrix of answers is printed (shown on failure).

use std::collections::BTreeMap;
use std::time::Duration;

use command_api::Role;
use ledger_tests::scenario::TwoVendors;
use ledger_tests::tokens::{admin_claims, signed, unix_now, unsigned};
use ledger_tests::Marketplace;
use ledger_tests::{at, TestApp, JWT_SECRET};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

/// The columns of the matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    NoToken,
    Expired,
    BadSignature,
    AlgNone,
    /// `customer-a`, who placed the order.
    Customer,
    /// `customer-b`, who did not.
    OtherCustomer,
    /// Vendor A: owns the listings and has lines in the order.
    Vendor,
    /// Vendor B: owns nothing of the above and is not in the order.
    OtherVendor,
    Admin,
    Analyst,
    Auditor,
    /// The admin, with the default tenant claimed explicitly.
    OwnClaim,
    /// The principals of tenant `other`: `customer-a`, vendor A's id, an
    /// admin, an analyst and an auditor (same subjects, another tenant).
    TenantCustomer,
    TenantVendor,
    TenantAdmin,
    TenantAnalyst,
    TenantAuditor,
    PlatformAdmin,
    /// An admin of a tenant that was never created.
    UnknownTenant,
    /// An admin whose `tenant` claim is no slug.
    MalformedTenant,
}

use Who::*;

/// The tenant the `Tenant*` principals act in.
const OTHER_TENANT: &str = "other";

#[path = "authorization_matrix_subscriptions.rs"]
mod subscriptions;

const EVERYONE: [Who; 20] = [
    NoToken,
    Expired,
    BadSignature,
    AlgNone,
    Customer,
    OtherCustomer,
    Vendor,
    OtherVendor,
    Admin,
    Analyst,
    Auditor,
    OwnClaim,
    TenantCustomer,
    TenantVendor,
    TenantAdmin,
    TenantAnalyst,
    TenantAuditor,
    PlatformAdmin,
    UnknownTenant,
    MalformedTenant,
];

/// Every valid principal ("any" in API.md).
const ANY: &[Who] = &[
    Customer,
    OtherCustomer,
    Vendor,
    OtherVendor,
    Admin,
    Analyst,
    Auditor,
];

impl Who {
    fn short(self) -> &'static str {
        match self {
            NoToken => "none",
            Expired => "expd",
            BadSignature => "bsig",
            AlgNone => "anon",
            Customer => "cust",
            OtherCustomer => "cst2",
            Vendor => "vndr",
            OtherVendor => "vnd2",
            Admin => "admn",
            Analyst => "anlt",
            Auditor => "audt",
            OwnClaim => "adm=",
            TenantCustomer => "tcus",
            TenantVendor => "tvnd",
            TenantAdmin => "tadm",
            TenantAnalyst => "tanl",
            TenantAuditor => "taud",
            PlatformAdmin => "plat",
            UnknownTenant => "t???",
            MalformedTenant => "t!!!",
        }
    }

    fn bad_token(self) -> bool {
        matches!(
            self,
            NoToken | Expired | BadSignature | AlgNone | MalformedTenant
        )
    }

    /// The principal of the resources' own tenant that this one mirrors
    /// (same role and subject).
    fn twin(self) -> Option<Who> {
        match self {
            OwnClaim | TenantAdmin => Some(Admin),
            TenantCustomer => Some(Customer),
            TenantVendor => Some(Vendor),
            TenantAnalyst => Some(Analyst),
            TenantAuditor => Some(Auditor),
            _ => None,
        }
    }
}

/// What a route expects of the principals it does not list.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Access {
    /// A token is needed; `allowed` may, other valid tokens get 403, bad
    /// tokens 401.
    Token(&'static [Who]),
    /// Health, metrics, OpenAPI: no token needed; nobody is refused.
    /// `optional` routes are skipped when they answer 404 (not built yet).
    Public { optional: bool },
    /// The payment webhook: authenticated by its signature, not by a JWT.
    /// Without a signature it is 400 whatever bearer token is sent.
    Signature,
    /// Like `Token`, except that `hidden` principals are answered 404: the
    /// resource is someone else's and its existence is not told (another
    /// customer's subscription).
    Hiding {
        allowed: &'static [Who],
        hidden: &'static [Who],
    },
}

struct Route {
    method: Method,
    /// The route as API.md writes it, for the printed matrix.
    label: &'static str,
    path: String,
    body: Option<Value>,
    access: Access,
}

/// The resources the routes act on: a vendor A with a rental listing (with
/// a blackout) and a sale listing, a vendor B with a sale listing, and a paid
/// order of `customer-a` with a rental line and a sale line of vendor A.
struct World {
    app: TestApp,
    marketplace: TwoVendors,
    /// Vendor A's outgoing webhook endpoint.
    endpoint: uuid::Uuid,
    /// Plans, `customer-a`'s subscription, the order's invoice of vendor A.
    subscriptions: subscriptions::Resources,
}

impl World {
    async fn new() -> World {
        let app = TestApp::spawn().await;
        let w = Marketplace::new(&app)
            .with_two_vendors_and_a_paid_order(1)
            .await;
        // The tenant of the `Tenant*` principals, with nothing in it.
        app.create_tenant(OTHER_TENANT).await;
        let subscriptions_ready = subscriptions::Resources::new(&app, w.order, w.vendor_a).await;
        // What the payment sets off (holds confirmed, invoices issued) is
        // recorded before the refusals, which must record nothing, are asked.
        ledger_tests::pipeline::settle(&app, Duration::from_secs(30))
            .await
            .expect("the policies settle");
        let (vendor_a, rental_a) = (w.vendor_a, w.rental_a);
        let registered = app
            .post(
                "/v1/webhook-endpoints",
                &app.vendor(vendor_a),
                json!({"url": "http://127.0.0.1:9/hook", "event_types": ["OrderPlaced"]}),
            )
            .await;
        assert_eq!(
            registered.status,
            StatusCode::CREATED,
            "{:?}",
            registered.body
        );
        let subscriptions = subscriptions_ready;
        let world = World {
            endpoint: registered.uuid("endpoint_id"),
            app,
            marketplace: w,
            subscriptions,
        };
        // The read models hold the order (paid) and the vendor's earnings,
        // so that a refusal cannot hide behind a 404 of a lagging model.
        let head = world.app.head().await;
        let head = head.to_string();
        for path in [
            format!("/v1/orders/{}", world.marketplace.order),
            format!("/v1/vendors/{vendor_a}/earnings"),
            format!("/v1/listings/{rental_a}"),
            format!("/v1/subscriptions/{}", world.subscriptions.subscription),
            format!("/v1/plans/{}", world.subscriptions.plan),
        ] {
            let answer = world
                .app
                .send(
                    Method::GET,
                    &path,
                    Some(&world.app.admin()),
                    None,
                    &[("Ledger-Min-Position", &head)],
                )
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{path}: {:?}", answer.body);
        }
        // Sealed (the relay has published it all), so that the proof of
        // position 1 exists.
        let sealed = audit::Sealer::new(
            world.app.pool.clone(),
            std::sync::Arc::new(ledger_clock::SystemClock),
            audit::dev_signing_key(),
            audit::DEV_KEY_ID,
            world.app.stream.clone(),
        )
        .seal_once()
        .await
        .expect("seal the log");
        assert!(!sealed.is_empty(), "the log was sealed");
        world
    }

    /// The table: API.md's routes with their `who` column.
    fn routes(&self) -> Vec<Route> {
        let (a, b) = (self.marketplace.vendor_a, self.marketplace.vendor_b);
        let (rental, sale, sale_b) = (
            self.marketplace.rental_a,
            self.marketplace.sale_a,
            self.marketplace.sale_b,
        );
        let (order, line) = (self.marketplace.order, self.marketplace.rental_line_a);
        let period = format!(
            "from={}&to={}",
            at(1, 0).replace('+', "%2B"),
            at(3, 0).replace('+', "%2B")
        );
        let range = "from=2020-01-01T00:00:00Z&to=2040-01-01T00:00:00Z";
        let mut routes = Vec::new();
        let mut add = |method: Method,
                       label: &'static str,
                       path: String,
                       body: Option<Value>,
                       access: Access| {
            routes.push(Route {
                method,
                label,
                path,
                body,
                access,
            })
        };
        use Access::{Public, Signature, Token};
        const OWNER_OR_ADMIN: &[Who] = &[Vendor, Admin];

        // --- Tenants ------------------------------------------------------
        add(
            Method::POST,
            "POST /v1/tenants",
            "/v1/tenants".into(),
            Some(json!({"slug": "matrix-made", "name": "Matrix", "currency": "EUR"})),
            Token(&[PlatformAdmin]),
        );
        add(
            Method::GET,
            "GET /v1/tenants/{slug}",
            format!("/v1/tenants/{OTHER_TENANT}"),
            None,
            Access::Hiding {
                allowed: &[PlatformAdmin, TenantAdmin],
                hidden: &[Admin],
            },
        );
        add(
            Method::PATCH,
            "PATCH /v1/tenants/{slug}",
            format!("/v1/tenants/{OTHER_TENANT}"),
            Some(json!({"tax_rate": "0.05"})),
            Token(&[PlatformAdmin]),
        );

        // --- Commands -----------------------------------------------------
        add(
            Method::POST,
            "POST /v1/vendors",
            "/v1/vendors".into(),
            Some(json!({"name": "Matrix"})),
            Token(&[Admin]),
        );
        add(
            Method::POST,
            "POST /v1/listings (vendor_id A)",
            "/v1/listings".into(),
            Some(
                json!({"vendor_id": a, "title": "Tent", "description": "two people",
                        "category": "camping", "kind": "sale", "unit_price": "5.00",
                        "stock": 1}),
            ),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/listings/{id}/publish",
            format!("/v1/listings/{sale}/publish"),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/listings/{id}/price",
            format!("/v1/listings/{rental}/price"),
            Some(json!({"price_per_unit": "41.00"})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/listings/{id}/stock",
            format!("/v1/listings/{rental}/stock"),
            Some(json!({"units": 4})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/listings/{id}/blackouts",
            format!("/v1/listings/{rental}/blackouts"),
            Some(json!({"start": at(30, 0), "end": at(31, 0), "units": 1, "reason": "x"})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::PUT,
            "PUT /v1/listings/{id}/schedule",
            format!("/v1/listings/{rental}/schedule"),
            Some(json!({"time_zone": "UTC"})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::PUT,
            "PUT /v1/listings/{id}/policies",
            format!("/v1/listings/{rental}/policies"),
            Some(json!({"late_fee_per_unit": "0.00"})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::DELETE,
            "DELETE /v1/listings/{id}/blackouts/{bid}",
            format!(
                "/v1/listings/{rental}/blackouts/{}",
                self.marketplace.blackout_a
            ),
            None,
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/orders",
            "/v1/orders".into(),
            Some(json!({"items": [{"listing_id": sale_b, "quantity": 1}]})),
            Token(&[Customer, OtherCustomer]),
        );
        add(
            Method::POST,
            "POST /v1/orders/{id}/vendors/{v}/ship",
            format!("/v1/orders/{order}/vendors/{a}/ship"),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/orders/{id}/vendors/{v}/deliver",
            format!("/v1/orders/{order}/vendors/{a}/deliver"),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/orders/{id}/lines/{l}/extend",
            format!("/v1/orders/{order}/lines/{line}/extend"),
            Some(json!({"end": at(40, 0)})),
            Token(&[Customer, Admin]),
        );
        add(
            Method::POST,
            "POST /v1/orders/{id}/lines/{l}/reschedule",
            format!("/v1/orders/{order}/lines/{line}/reschedule"),
            Some(json!({"start": at(41, 0), "end": at(42, 0)})),
            Token(&[Customer, Admin]),
        );
        add(
            Method::POST,
            "POST /v1/orders/{id}/lines/{l}/terminate",
            format!("/v1/orders/{order}/lines/{line}/terminate"),
            Some(json!({})),
            Token(&[Customer, Admin]),
        );
        add(
            Method::POST,
            "POST /v1/orders/{id}/lines/{l}/pickup",
            format!("/v1/orders/{order}/lines/{line}/pickup"),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/orders/{id}/lines/{l}/return",
            format!("/v1/orders/{order}/lines/{line}/return"),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/vendors/{id}/payouts",
            format!("/v1/vendors/{a}/payouts"),
            Some(json!({"amount": "1.00"})),
            Token(&[Admin]),
        );
        add(
            Method::POST,
            "POST /v1/vendors/{id}/fee-rate",
            format!("/v1/vendors/{a}/fee-rate"),
            Some(json!({"rate": "0.10"})),
            Token(&[Admin]),
        );
        add(
            Method::POST,
            "POST /v1/webhooks/payments (unsigned)",
            "/v1/webhooks/payments".into(),
            Some(
                json!({"id": "evt_matrix", "type": "payment_intent.succeeded",
                        "data": {"object": {"id": "pi_matrix", "amount": 100,
                                            "currency": "usd",
                                            "metadata": {"order_id": order}}}}),
            ),
            Signature,
        );
        // After the fulfilment routes, which need the order alive.
        add(
            Method::POST,
            "POST /v1/orders/{id}/cancel",
            format!("/v1/orders/{order}/cancel"),
            Some(json!({"reason": "matrix"})),
            Token(&[Customer, Admin]),
        );
        add(
            Method::POST,
            "POST /v1/subjects/{subject}/erase",
            "/v1/subjects/customer-a/erase".into(),
            None,
            Token(&[Admin]),
        );

        // --- Queries ------------------------------------------------------
        add(
            Method::GET,
            "GET /v1/listings",
            format!("/v1/listings?q=tent&category=camping&vendor_id={a}&quantity=1"),
            None,
            Token(ANY),
        );
        add(
            Method::GET,
            "GET /v1/listings?available_from..",
            format!(
                "/v1/listings?available_from={}&available_to={}",
                at(1, 0).replace('+', "%2B"),
                at(3, 0).replace('+', "%2B")
            ),
            None,
            Token(ANY),
        );
        add(
            Method::GET,
            "GET /v1/listings/{id}",
            format!("/v1/listings/{rental}"),
            None,
            Token(ANY),
        );
        add(
            Method::GET,
            "GET /v1/listings/{id}/availability",
            format!("/v1/listings/{rental}/availability?{period}"),
            None,
            Token(ANY),
        );
        add(
            Method::GET,
            "GET /v1/orders/{id}",
            format!("/v1/orders/{order}"),
            None,
            Token(&[Customer, Vendor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/orders?status=",
            "/v1/orders?status=confirmed".into(),
            None,
            Token(&[Customer, OtherCustomer, Vendor, OtherVendor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/vendors/{id}/earnings",
            format!("/v1/vendors/{a}/earnings"),
            None,
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::GET,
            "GET /v1/vendors/{id}/earnings/entries",
            format!("/v1/vendors/{a}/earnings/entries?limit=5"),
            None,
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::GET,
            "GET /v1/vendors/{id}/payouts",
            format!("/v1/vendors/{a}/payouts"),
            None,
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::GET,
            "GET /v1/orders/{id}/invoices",
            format!("/v1/orders/{order}/invoices"),
            None,
            Token(&[Customer, Vendor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/vendors/{B}/earnings",
            format!("/v1/vendors/{b}/earnings"),
            None,
            Token(&[OtherVendor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/ledger/trial-balance",
            "/v1/ledger/trial-balance".into(),
            None,
            Token(&[Admin, Auditor]),
        );
        add(
            Method::GET,
            "GET /v1/analytics/summary",
            format!("/v1/analytics/summary?{range}"),
            None,
            Token(&[Analyst, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/analytics/revenue",
            format!("/v1/analytics/revenue?{range}&granularity=day&group_by=vendor"),
            None,
            Token(&[Analyst, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/events",
            format!("/v1/events?after=0&limit=10&aggregate_type=Order&aggregate_id={order}"),
            None,
            Token(&[Analyst, Auditor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/orders/stream",
            "/v1/orders/stream?after=0".into(),
            None,
            Token(&[Customer, OtherCustomer, Vendor, OtherVendor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/events/stream",
            "/v1/events/stream?after=0".into(),
            None,
            Token(&[Analyst, Auditor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/aggregates/{t}/{id}/events",
            format!("/v1/aggregates/Order/{order}/events"),
            None,
            Token(&[Analyst, Auditor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/aggregates/{t}/{id}/state",
            format!("/v1/aggregates/Order/{order}/state?as_of_sequence=1"),
            None,
            Token(&[Analyst, Auditor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/audit/verify",
            "/v1/audit/verify".into(),
            None,
            Token(&[Auditor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/audit/seals",
            "/v1/audit/seals?after=0&limit=10".into(),
            None,
            Token(&[Auditor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/audit/proof",
            "/v1/audit/proof?position=1".into(),
            None,
            Token(&[Auditor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/projections",
            "/v1/projections".into(),
            None,
            Token(&[Admin, Analyst]),
        );

        // --- Outgoing webhooks (vendor A's endpoint; deleted last) ------------
        let endpoint = self.endpoint;
        add(
            Method::POST,
            "POST /v1/webhook-endpoints",
            "/v1/webhook-endpoints".into(),
            Some(json!({"url": "http://127.0.0.1:9/other", "event_types": ["*"]})),
            Token(&[Vendor, OtherVendor, Admin]),
        );
        add(
            Method::GET,
            "GET /v1/webhook-endpoints",
            "/v1/webhook-endpoints".into(),
            None,
            Token(&[Vendor, OtherVendor, Admin]),
        );
        add(
            Method::POST,
            "POST /v1/webhook-endpoints/{id}/rotate-secret",
            format!("/v1/webhook-endpoints/{endpoint}/rotate-secret"),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::GET,
            "GET /v1/webhook-endpoints/{id}/deliveries",
            format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
            None,
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::POST,
            "POST /v1/webhook-endpoints/{id}/deliveries/{d}/redeliver",
            format!(
                "/v1/webhook-endpoints/{endpoint}/deliveries/{}/redeliver",
                uuid::Uuid::now_v7()
            ),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        add(
            Method::DELETE,
            "DELETE /v1/webhook-endpoints/{id}",
            format!("/v1/webhook-endpoints/{endpoint}"),
            None,
            Token(OWNER_OR_ADMIN),
        );

        // --- Subscriptions and an order's invoice PDF -----------------------
        for row in self.subscriptions.routes() {
            add(row.method, row.label, row.path, row.body, row.access);
        }

        // --- No token needed ------------------------------------------------
        for (label, path, optional) in [
            ("GET /health/live", "/health/live", false),
            ("GET /health/ready", "/health/ready", false),
            ("GET /metrics", "/metrics", true),
            ("GET /openapi.json", "/openapi.json", true),
            ("GET /docs", "/docs", true),
            ("GET /dashboard", "/dashboard", false),
        ] {
            add(Method::GET, label, path.into(), None, Public { optional });
        }
        // Last: the listing routes and queries above need the listing
        // published (an archived listing is hidden from all but its owner).
        add(
            Method::POST,
            "POST /v1/listings/{id}/archive",
            format!("/v1/listings/{rental}/archive"),
            Some(json!({})),
            Token(OWNER_OR_ADMIN),
        );
        routes
    }

    fn token(&self, who: Who) -> Option<String> {
        let app = &self.app;
        let now = unix_now();
        match who {
            NoToken => None,
            Expired => Some(signed(&admin_claims(now - 120), JWT_SECRET)),
            BadSignature => Some(signed(&admin_claims(now + 3600), "another-secret")),
            AlgNone => Some(unsigned(&admin_claims(now + 3600))),
            Customer => Some(app.customer("customer-a")),
            OtherCustomer => Some(app.customer("customer-b")),
            Vendor => Some(app.vendor(self.marketplace.vendor_a)),
            OtherVendor => Some(app.vendor(self.marketplace.vendor_b)),
            Admin => Some(app.admin()),
            Analyst => Some(app.analyst()),
            Auditor => Some(app.auditor()),
            OwnClaim => Some(app.token_in("default", Role::Admin, "admin-1", None)),
            TenantCustomer => Some(app.token_in(OTHER_TENANT, Role::Customer, "customer-a", None)),
            TenantVendor => Some(app.token_in(
                OTHER_TENANT,
                Role::Vendor,
                &format!("vendor-user-{}", self.marketplace.vendor_a),
                Some(self.marketplace.vendor_a),
            )),
            TenantAdmin => Some(app.token_in(OTHER_TENANT, Role::Admin, "admin-1", None)),
            TenantAnalyst => Some(app.token_in(OTHER_TENANT, Role::Analyst, "analyst-1", None)),
            TenantAuditor => Some(app.token_in(OTHER_TENANT, Role::Auditor, "auditor-1", None)),
            PlatformAdmin => Some(app.platform_admin()),
            UnknownTenant => Some(app.token_in("never-created", Role::Admin, "admin-1", None)),
            MalformedTenant => Some(signed(
                &json!({"sub": "admin-1", "role": "admin", "tenant": "Not A Slug",
                        "exp": now + 3600}),
                JWT_SECRET,
            )),
        }
    }

    /// The status only: the body is not read, so that the event stream
    /// (which never ends) answers too.
    async fn status(&self, route: &Route, who: Who) -> StatusCode {
        let mut request = self
            .app
            .client
            .request(
                route.method.clone(),
                format!("{}{}", self.app.base_url, route.path),
            )
            .timeout(Duration::from_secs(15));
        if let Some(token) = self.token(who) {
            request = request.bearer_auth(token);
        }
        if let Some(body) = &route.body {
            request = request.json(body);
        }
        let response = request.send().await.unwrap_or_else(|e| {
            panic!("{} as {who:?}: no answer: {e}", route.label);
        });
        response.status()
    }
}

/// What a cell expects.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Unauthorized,
    Forbidden,
    /// Not 401 nor 403 (nor 405 or 5xx): a command may meet a domain
    /// 404/409/422 once an earlier allowed request changed its resource.
    Allowed,
    /// A 2xx: queries of resources that exist, with read models caught up.
    Success,
    /// Health, metrics, docs: anything but 401/403 (ready may be 503).
    Open,
    /// Exactly this status.
    Exactly(StatusCode),
    /// A command of another tenant naming this tenant's resources in its
    /// body: refused as if they did not exist (404 or 422), never done.
    Unknown,
}

/// Whether the route's path names a resource of the world (an id, a data
/// subject, an event by its position): another tenant must find none of
/// them.
fn names_a_resource(route: &Route) -> bool {
    let path = route.path.split('?').next().unwrap_or_default();
    // A proof names an event by its position.
    path.starts_with("/v1/subjects/")
        || path == "/v1/audit/proof"
        || path
            .split('/')
            .any(|segment| uuid::Uuid::parse_str(segment.trim_end_matches(".pdf")).is_ok())
}

/// Whether the route's body names a resource of the world.
fn body_names_a_resource(route: &Route) -> bool {
    fn any_id(value: &Value) -> bool {
        match value {
            Value::String(text) => uuid::Uuid::parse_str(text).is_ok(),
            Value::Array(items) => items.iter().any(any_id),
            Value::Object(fields) => fields.values().any(any_id),
            _ => false,
        }
    }
    route.body.as_ref().is_some_and(any_id)
}

impl Expect {
    /// The cell of `who` on `route`, with the tenant axis: a principal
    /// listed by the route is judged as itself; one of another tenant as
    /// its twin of the resources' tenant, except that what names the
    /// resources is not found.
    fn of(route: &Route, who: Who) -> Expect {
        let listed = match route.access {
            Access::Token(allowed) | Access::Hiding { allowed, .. } => allowed.contains(&who),
            _ => false,
        };
        if who == UnknownTenant {
            return match route.access {
                Access::Token(_) | Access::Hiding { .. } => Expect::Forbidden,
                Access::Public { .. } => Expect::Open,
                Access::Signature => Expect::Exactly(StatusCode::BAD_REQUEST),
            };
        }
        match who.twin() {
            Some(twin) if !listed => {
                let own = Expect::of(route, twin);
                let foreign = who != OwnClaim;
                match own {
                    Expect::Allowed | Expect::Success | Expect::Exactly(StatusCode::NOT_FOUND)
                        if foreign && names_a_resource(route) =>
                    {
                        Expect::Exactly(StatusCode::NOT_FOUND)
                    }
                    Expect::Allowed if foreign && body_names_a_resource(route) => Expect::Unknown,
                    other => other,
                }
            }
            _ => Expect::of_role(&route.method, route.access, who),
        }
    }

    /// The cell as the route's `who` column says, for one tenant.
    fn of_role(method: &Method, access: Access, who: Who) -> Expect {
        match access {
            Access::Token(_) if who.bad_token() => Expect::Unauthorized,
            Access::Token(allowed) if allowed.contains(&who) => {
                if *method == Method::GET {
                    Expect::Success
                } else {
                    Expect::Allowed
                }
            }
            Access::Token(_) => Expect::Forbidden,
            Access::Hiding { .. } if who.bad_token() => Expect::Unauthorized,
            Access::Hiding { hidden, .. } if hidden.contains(&who) => {
                Expect::Exactly(StatusCode::NOT_FOUND)
            }
            Access::Hiding { allowed, .. } => Expect::of_role(method, Access::Token(allowed), who),
            Access::Public { .. } => Expect::Open,
            Access::Signature => Expect::Exactly(StatusCode::BAD_REQUEST),
        }
    }

    fn holds(self, status: StatusCode) -> bool {
        match self {
            Expect::Unauthorized => status == StatusCode::UNAUTHORIZED,
            Expect::Forbidden => status == StatusCode::FORBIDDEN,
            Expect::Allowed => {
                status != StatusCode::UNAUTHORIZED
                    && status != StatusCode::FORBIDDEN
                    && status != StatusCode::METHOD_NOT_ALLOWED
                    && !status.is_server_error()
            }
            Expect::Success => status.is_success(),
            Expect::Open => status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            Expect::Exactly(expected) => status == expected,
            Expect::Unknown => {
                status == StatusCode::NOT_FOUND || status == StatusCode::UNPROCESSABLE_ENTITY
            }
        }
    }

    /// Cells that must change nothing: checked first, on untouched
    /// resources, and the log must not grow while they are asked.
    fn refuses(self) -> bool {
        matches!(
            self,
            Expect::Unauthorized
                | Expect::Forbidden
                | Expect::Unknown
                | Expect::Exactly(StatusCode::NOT_FOUND)
        )
    }
}

#[tokio::test]
async fn every_route_answers_every_principal_as_api_md_says() {
    let started = std::time::Instant::now();
    let world = World::new().await;
    eprintln!("resources set up in {:?}", started.elapsed());
    let routes = world.routes();

    // Optional public routes that are not built yet are skipped.
    let mut skipped = Vec::new();
    for route in &routes {
        if route.access == (Access::Public { optional: true })
            && world.status(route, NoToken).await == StatusCode::NOT_FOUND
        {
            skipped.push(route.label);
        }
    }

    // cells[(route index, who)] = (expected, answered)
    let mut cells: BTreeMap<(usize, Who), (Expect, StatusCode)> = BTreeMap::new();
    // Refusals first, on untouched resources; then what is allowed, in the
    // table's order (which keeps the order alive for its fulfilment).
    let recorded_before = world.app.event_count().await;
    for refusals in [true, false] {
        if !refusals {
            // No refusal, in any tenant, recorded anything.
            assert_eq!(
                world.app.event_count().await,
                recorded_before,
                "the refused requests recorded events"
            );
        }
        for (index, route) in routes.iter().enumerate() {
            if skipped.contains(&route.label) {
                continue;
            }
            for who in EVERYONE {
                let expect = Expect::of(route, who);
                if expect.refuses() != refusals {
                    continue;
                }
                let asked = std::time::Instant::now();
                let status = world.status(route, who).await;
                if asked.elapsed() > Duration::from_secs(1) {
                    eprintln!("slow: {} as {who:?}: {:?}", route.label, asked.elapsed());
                }
                cells.insert((index, who), (expect, status));
            }
        }
    }

    let failures: Vec<String> = cells
        .iter()
        .filter(|(_, (expect, status))| !expect.holds(*status))
        .map(|((index, who), (expect, status))| {
            format!(
                "{} as {who:?}: expected {expect:?}, answered {status}",
                routes[*index].label
            )
        })
        .collect();

    let checked = cells.len();
    eprintln!(
        "in {:?}: {} routes x {} principals: {checked} cells checked{}",
        started.elapsed(),
        routes.len() - skipped.len(),
        EVERYONE.len(),
        if skipped.is_empty() {
            String::new()
        } else {
            format!(" (skipped, 404: {skipped:?})")
        }
    );
    // The matrix, printed always (cargo shows it with --nocapture or on
    // failure): each cell is the status answered, `!` where it is wrong.
    let mut matrix = format!("{:<44}", "route \\ who");
    for who in EVERYONE {
        matrix.push_str(&format!(" {:>5}", who.short()));
    }
    matrix.push('\n');
    for (index, route) in routes.iter().enumerate() {
        matrix.push_str(&format!("{:<44}", route.label));
        for who in EVERYONE {
            let cell = match cells.get(&(index, who)) {
                None => "  -  ".to_owned(),
                Some((expect, status)) => format!(
                    "{}{}",
                    status.as_u16(),
                    if expect.holds(*status) { " " } else { "!" }
                ),
            };
            matrix.push_str(&format!(" {cell:>5}"));
        }
        matrix.push('\n');
    }
    eprintln!("{matrix}");
    if !failures.is_empty() {
        panic!(
            "{} of {checked} cells are wrong (`!` in the matrix above):\n{}",
            failures.len(),
            failures.join("\n")
        );
    }
}
