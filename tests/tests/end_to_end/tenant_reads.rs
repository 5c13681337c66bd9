//! The read side of tenant isolation (issue 15 item 1, API.md "Tenants":
//! "another tenant's ids answer 404"): two tenants each build a small
//! marketplace (a vendor, a listing, a paid order with its invoice, a plan
//! and a subscription), with the same customer subject in both; then
//! every query route shows each tenant its own rows only. Lists leave the
//! other tenant's rows out, by-id reads of them answer 404 (the same ids
//! answer 200 in their own tenant), and the live order feed of one tenant
//! carries none of the other's events. The rows themselves carry the
//! tenant of the events that made them.

use std::time::Duration;

use command_api::Role;
use ledger_tests::pipeline::eventually;
use ledger_tests::scenario::{rental_days, sale_item};
use ledger_tests::sse::{take_block, SseBlock};
use ledger_tests::{Answer, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// The customer subject of both tenants: a subject names a customer
/// within its tenant only.
const CUSTOMER: &str = "shared-customer";

/// One tenant's marketplace, and who acts in it.
struct Shop {
    slug: &'static str,
    admin: String,
    customer: String,
    vendor_id: Uuid,
    vendor: String,
    listing_id: Uuid,
    rental_id: Uuid,
    order_id: Uuid,
    plan_id: Uuid,
    subscription_id: Uuid,
}

async fn created(answer: Answer, what: &str) -> Answer {
    assert_eq!(
        answer.status,
        StatusCode::CREATED,
        "{what}: {}",
        answer.body
    );
    answer
}

/// Builds the marketplace of tenant `slug` (its admin's token `admin`):
/// a vendor, a sale and a rental listing, an order of both, paid, a plan
/// and a subscription to it.
async fn shop(app: &TestApp, slug: &'static str, admin: String) -> Shop {
    let vendor_id = created(
        app.post(
            "/v1/vendors",
            &admin,
            json!({"name": format!("{slug} boats")}),
        )
        .await,
        "vendor",
    )
    .await
    .uuid("vendor_id");
    let vendor = app.token_in(
        slug,
        Role::Vendor,
        &format!("vendor-user-{vendor_id}"),
        Some(vendor_id),
    );
    let listing_id = created(
        app.create_listing(
            &vendor,
            json!({"title": "Paddle", "description": "Carbon paddle", "category": "gear",
                   "kind": "sale", "unit_price": "12.00", "stock": 5}),
        )
        .await,
        "sale listing",
    )
    .await
    .uuid("listing_id");
    let rental_id = created(
        app.create_listing(
            &vendor,
            json!({"title": "Kayak", "description": "Two-seat kayak", "category": "boats",
                   "kind": "rental", "pricing_unit": "day", "price_per_unit": "20.00",
                   "deposit": "50.00", "units": 2}),
        )
        .await,
        "rental listing",
    )
    .await
    .uuid("listing_id");
    for listing in [listing_id, rental_id] {
        let published = app.publish_listing(&vendor, listing).await;
        assert_eq!(published.status, StatusCode::OK, "{}", published.body);
    }
    let customer = app.token_in(slug, Role::Customer, CUSTOMER, None);
    let order = created(
        app.post(
            "/v1/orders",
            &customer,
            json!({"items": [sale_item(listing_id, 1), rental_days(rental_id, 1, 3, 5)]}),
        )
        .await,
        "order",
    )
    .await;
    app.pay(&order).await;
    let plan_id = created(
        app.post(
            "/v1/plans",
            &admin,
            json!({"name": format!("{slug} pass"), "price": "9.00", "interval": "month"}),
        )
        .await,
        "plan",
    )
    .await
    .uuid("plan_id");
    let subscription_id = created(
        app.post("/v1/subscriptions", &customer, json!({"plan_id": plan_id}))
            .await,
        "subscription",
    )
    .await
    .uuid("subscription_id");
    Shop {
        slug,
        admin,
        customer,
        vendor_id,
        vendor,
        listing_id,
        rental_id,
        order_id: order.uuid("order_id"),
        plan_id,
        subscription_id,
    }
}

async fn settle(app: &TestApp) -> i64 {
    ledger_tests::pipeline::settle(app, Duration::from_secs(60))
        .await
        .expect("the read models settle")
}

/// The ids of a page's (or a list's) items, by `field`.
fn ids(body: &Value, field: &str) -> Vec<Uuid> {
    let items = body
        .get("items")
        .unwrap_or(body)
        .as_array()
        .cloned()
        .unwrap_or_default();
    items
        .iter()
        .filter_map(|item| item[field].as_str()?.parse().ok())
        .collect()
}

/// `path` as `token` reads it once the read models reach `at`.
async fn read(app: &TestApp, path: &str, token: &str, at: i64) -> Answer {
    app.get_at(path, token, Some(at)).await
}

async fn status(app: &TestApp, path: &str, token: &str, at: i64) -> StatusCode {
    read(app, path, token, at).await.status
}

/// The ids `path` lists to `token` (asserting 200).
async fn listed(app: &TestApp, path: &str, token: &str, at: i64, field: &str) -> Vec<Uuid> {
    let answer = read(app, path, token, at).await;
    assert_eq!(answer.status, StatusCode::OK, "{path}: {}", answer.body);
    ids(&answer.body, field)
}

/// The ids of `order_id`'s invoices as `token` reads them (`None`: not 200).
async fn order_invoices(app: &TestApp, shop: &Shop, token: &str, at: i64) -> Option<Vec<Uuid>> {
    let answer = read(
        app,
        &format!("/v1/orders/{}/invoices", shop.order_id),
        token,
        at,
    )
    .await;
    (answer.status == StatusCode::OK).then(|| ids(&answer.body, "invoice_id"))
}

/// One tenant's `/v1/orders/stream`, read message by message.
struct OrderFeed {
    response: reqwest::Response,
    buffer: String,
}

impl OrderFeed {
    async fn open(app: &TestApp, token: &str) -> OrderFeed {
        let response = app
            .client
            .get(format!("{}/v1/orders/stream?after=0", app.base_url))
            .bearer_auth(token)
            .send()
            .await
            .expect("the ledger answers");
        assert_eq!(response.status(), StatusCode::OK);
        OrderFeed {
            response,
            buffer: String::new(),
        }
    }

    /// The `(position, order_id)` of every message until none came for
    /// `quiet`.
    async fn drain(&mut self, quiet: Duration) -> Vec<(i64, Uuid)> {
        let mut seen = Vec::new();
        loop {
            while let Some(SseBlock { id, event, data }) = take_block(&mut self.buffer) {
                if event.is_some() {
                    let data: Value = serde_json::from_str(&data).expect("JSON data");
                    let order = data["order_id"]
                        .as_str()
                        .and_then(|o| o.parse().ok())
                        .expect("an order id");
                    seen.push((id.expect("an id"), order));
                }
            }
            match tokio::time::timeout(quiet, self.response.chunk()).await {
                Ok(Ok(Some(bytes))) => self
                    .buffer
                    .push_str(std::str::from_utf8(&bytes).expect("UTF-8")),
                _ => return seen,
            }
        }
    }
}

/// The position of the last event of `order_id`.
async fn last_order_event(app: &TestApp, order_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "SELECT max(global_position) FROM events
          WHERE aggregate_type = 'Order' AND aggregate_id = $1",
    )
    .bind(order_id.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("read the log")
}

#[tokio::test]
async fn no_query_route_shows_one_tenant_anything_of_another() {
    let app = TestApp::spawn().await;
    // Tenant south's admin follows its orders live from before anything
    // exists; north's feed and south's customer feed open later and catch
    // up from the database.
    let south_admin = app.create_tenant("south").await;
    let mut south_live = OrderFeed::open(&app, &south_admin).await;
    let north_admin = app.create_tenant("north").await;
    let north = shop(&app, "north", north_admin).await;
    let south = shop(&app, "south", south_admin.clone()).await;
    let both = [&north, &south];
    let mut at = settle(&app).await;
    // Each order's invoice comes from a policy once it is paid.
    for shop in both {
        assert!(
            eventually(Duration::from_secs(30), || async {
                let now = settle(&app).await;
                order_invoices(&app, shop, &shop.admin, now)
                    .await
                    .is_some_and(|found| !found.is_empty())
            })
            .await,
            "{}'s order got no invoice",
            shop.slug
        );
    }
    at = at.max(settle(&app).await);
    let default_admin = app.admin();
    let default_customer = app.customer(CUSTOMER);

    for (own, other) in [(&north, &south), (&south, &north)] {
        let name = own.slug;
        let one = |id: Uuid| vec![id];
        // Listings: search (plain, by words, by category, over a period),
        // by id, availability.
        let period = "available_from=2030-01-01T00:00:00Z&available_to=2030-01-02T00:00:00Z";
        for query in ["", "q=paddle", "category=gear", period] {
            for token in [&own.customer, &own.admin, &own.vendor] {
                let found = listed(
                    &app,
                    &format!("/v1/listings?{query}"),
                    token,
                    at,
                    "listing_id",
                )
                .await;
                assert!(
                    !found.contains(&other.listing_id) && !found.contains(&other.rental_id),
                    "{name} sees {}'s listings ({query}): {found:?}",
                    other.slug
                );
                if query != period {
                    assert!(
                        found.contains(&own.listing_id),
                        "{name}, {query}: {found:?}"
                    );
                }
            }
        }
        let vendor_filter = format!("/v1/listings?vendor_id={}", other.vendor_id);
        assert_eq!(
            listed(&app, &vendor_filter, &own.admin, at, "listing_id").await,
            Vec::<Uuid>::new()
        );
        let availability = "availability?from=2030-01-01T00:00:00Z&to=2030-01-03T00:00:00Z";
        for listing in [other.listing_id, other.rental_id] {
            for path in [
                format!("/v1/listings/{listing}"),
                format!("/v1/listings/{listing}/{availability}"),
            ] {
                for token in [&own.customer, &own.admin] {
                    assert_eq!(
                        status(&app, &path, token, at).await,
                        StatusCode::NOT_FOUND,
                        "{name}: {path}"
                    );
                }
                assert_eq!(
                    status(&app, &path, &other.customer, at).await,
                    StatusCode::OK,
                    "{path}"
                );
            }
        }

        // Orders: the list (all, by status), by id, its invoices and PDFs.
        for path in ["/v1/orders", "/v1/orders?status=confirmed"] {
            for token in [&own.customer, &own.admin] {
                let found = listed(&app, path, token, at, "order_id").await;
                assert_eq!(found, one(own.order_id), "{name}: {path}");
            }
        }
        let orders = listed(&app, "/v1/orders", &own.vendor, at, "order_id").await;
        assert_eq!(orders, one(own.order_id), "{name}'s vendor");
        let order = format!("/v1/orders/{}", other.order_id);
        let invoices = format!("{order}/invoices");
        for path in [&order, &invoices] {
            for token in [&own.customer, &own.admin] {
                assert_eq!(
                    status(&app, path, token, at).await,
                    StatusCode::NOT_FOUND,
                    "{name}: {path}"
                );
            }
            assert_eq!(
                status(&app, path, &other.customer, at).await,
                StatusCode::OK,
                "{path}"
            );
        }
        let documents = order_invoices(&app, other, &other.admin, at)
            .await
            .expect("its own tenant reads them");
        assert!(!documents.is_empty());
        for document in documents {
            let pdf = format!("/v1/invoices/{document}.pdf");
            for token in [&own.customer, &own.admin] {
                assert_eq!(
                    status(&app, &pdf, token, at).await,
                    StatusCode::NOT_FOUND,
                    "{name}: {pdf}"
                );
            }
            assert_eq!(
                status(&app, &pdf, &other.admin, at).await,
                StatusCode::OK,
                "{pdf}"
            );
        }

        // Plans and subscriptions.
        for token in [&own.customer, &own.admin] {
            let plans = listed(&app, "/v1/plans", token, at, "plan_id").await;
            assert_eq!(plans, one(own.plan_id), "{name}'s plans");
            let plan = format!("/v1/plans/{}", other.plan_id);
            assert_eq!(
                status(&app, &plan, token, at).await,
                StatusCode::NOT_FOUND,
                "{name}: {plan}"
            );
            assert_eq!(
                status(&app, &plan, &other.customer, at).await,
                StatusCode::OK
            );
            for path in ["/v1/subscriptions", "/v1/subscriptions?status=pending"] {
                let found = listed(&app, path, token, at, "subscription_id").await;
                assert_eq!(found, one(own.subscription_id), "{name}: {path}");
            }
            let subscription = format!("/v1/subscriptions/{}", other.subscription_id);
            assert_eq!(
                status(&app, &subscription, token, at).await,
                StatusCode::NOT_FOUND,
                "{name}: {subscription}"
            );
            assert_eq!(
                status(&app, &subscription, &other.customer, at).await,
                StatusCode::OK
            );
        }

        // One aggregate's events and state.
        let aggregates = [
            ("Order", other.order_id),
            ("Listing", other.listing_id),
            ("Inventory", other.rental_id),
            ("Vendor", other.vendor_id),
            ("Plan", other.plan_id),
            ("Subscription", other.subscription_id),
        ];
        for (kind, id) in aggregates {
            for tail in ["events", "state"] {
                let path = format!("/v1/aggregates/{kind}/{id}/{tail}");
                assert_eq!(
                    app.get(&path, &own.admin).await.status,
                    StatusCode::NOT_FOUND,
                    "{name}: {path}"
                );
                let theirs = app.get(&path, &other.admin).await;
                assert_eq!(theirs.status, StatusCode::OK, "{path}: {}", theirs.body);
            }
        }
    }

    // The default tenant (the same customer subject, an admin) sees none
    // of either.
    for token in [&default_admin, &default_customer] {
        for (path, field) in [
            ("/v1/listings", "listing_id"),
            ("/v1/orders", "order_id"),
            ("/v1/plans", "plan_id"),
            ("/v1/subscriptions", "subscription_id"),
        ] {
            assert_eq!(
                listed(&app, path, token, at, field).await,
                Vec::<Uuid>::new(),
                "default: {path}"
            );
        }
        for shop in both {
            for path in [
                format!("/v1/listings/{}", shop.listing_id),
                format!("/v1/orders/{}", shop.order_id),
                format!("/v1/subscriptions/{}", shop.subscription_id),
            ] {
                assert_eq!(
                    status(&app, &path, token, at).await,
                    StatusCode::NOT_FOUND,
                    "default: {path}"
                );
            }
        }
    }

    // The platform admin acts in no tenant: it reads no catalogue or plans.
    let platform = app.platform_admin();
    for path in [
        "/v1/listings".to_owned(),
        format!("/v1/listings/{}", north.listing_id),
        format!(
            "/v1/listings/{}/availability?from=2030-01-01T00:00:00Z&to=2030-01-02T00:00:00Z",
            north.rental_id
        ),
        "/v1/plans".to_owned(),
        format!("/v1/plans/{}", north.plan_id),
    ] {
        assert_eq!(
            app.get(&path, &platform).await.status,
            StatusCode::FORBIDDEN,
            "platform_admin: {path}"
        );
    }

    // The live order feeds: each tenant's carries its own order, and
    // nothing of the other's, though the other's events come first in
    // the log (north's) or after (south's, for north's feed).
    let north_last = last_order_event(&app, north.order_id).await;
    let south_last = last_order_event(&app, south.order_id).await;
    assert!(north_last < south_last);
    let mut north_feed = OrderFeed::open(&app, &north.admin).await;
    let mut south_customer = OrderFeed::open(&app, &south.customer).await;
    let mut north_customer = OrderFeed::open(&app, &north.customer).await;
    for (feed, own, other, last) in [
        (&mut south_live, &south, &north, south_last),
        (&mut north_feed, &north, &south, north_last),
        (&mut south_customer, &south, &north, south_last),
        (&mut north_customer, &north, &south, north_last),
    ] {
        let seen = feed.drain(Duration::from_secs(3)).await;
        assert!(
            seen.iter().all(|(_, order)| *order == own.order_id),
            "{}'s feed carries {}'s order: {seen:?}",
            own.slug,
            other.slug
        );
        assert!(
            seen.iter().any(|(position, _)| *position == last),
            "{}'s feed misses its own order's last event {last}: {seen:?}",
            own.slug
        );
    }

    // Every row the projectors wrote is its event's tenant's.
    for shop in both {
        let order = shop.order_id;
        let checks: [(&str, Uuid); 9] = [
            (
                "SELECT tenant FROM rm_listings WHERE listing_id = $1",
                shop.listing_id,
            ),
            (
                "SELECT tenant FROM rm_listings WHERE listing_id = $1",
                shop.rental_id,
            ),
            (
                "SELECT DISTINCT tenant FROM rm_allocations WHERE order_id = $1",
                order,
            ),
            ("SELECT tenant FROM rm_orders WHERE order_id = $1", order),
            (
                "SELECT DISTINCT tenant FROM rm_order_vendors WHERE order_id = $1",
                order,
            ),
            (
                "SELECT DISTINCT tenant FROM invoices WHERE order_id = $1",
                order,
            ),
            (
                "SELECT tenant FROM rm_plans WHERE plan_id = $1",
                shop.plan_id,
            ),
            (
                "SELECT tenant FROM rm_subscriptions WHERE subscription_id = $1",
                shop.subscription_id,
            ),
            (
                "SELECT DISTINCT tenant FROM rm_subscription_invoices WHERE subscription_id = $1",
                shop.subscription_id,
            ),
        ];
        for (sql, id) in checks {
            let tenants: Vec<String> = sqlx::query_scalar(sql)
                .bind(id)
                .fetch_all(&app.pool)
                .await
                .expect("read the read model");
            assert_eq!(tenants, vec![shop.slug.to_owned()], "{sql} ({id})");
        }
    }
}
