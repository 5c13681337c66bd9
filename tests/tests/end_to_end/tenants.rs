//! Tenants (issue 15, API.md "Tenants"): a platform admin creates them and
//! sets their settings, which replace the deployment's defaults for the
//! tenant's new orders (currency, tax and fee rates, hold TTL, the time zone
//! of rentals without a schedule), and leave every other tenant alone.
//! Isolation across every route is the authorization matrix's tenant axis
//! and the `tenant_*` read tests.

use chrono::{DateTime, Duration, Utc};
use command_api::Role;
use ledger_tests::{at, rental_item, sale_item, Answer, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// A tenant's shop: its admin, a vendor with a sale listing at 10.00 and a
/// rental listing at 40.00 a day, and a customer.
struct Shop {
    tenant: Option<&'static str>,
    sale: Uuid,
    rental: Uuid,
    customer: String,
}

impl Shop {
    /// `tenant` `None`: the default tenant, with tokens without a claim.
    async fn open(app: &TestApp, tenant: Option<&'static str>) -> Shop {
        let token = |role: Role, subject: &str, vendor: Option<Uuid>| match tenant {
            Some(slug) => app.token_in(slug, role, subject, vendor),
            None => app.token(role, subject, vendor),
        };
        let vendor: Value = app
            .post(
                "/v1/vendors",
                &token(Role::Admin, "admin-1", None),
                json!({"name": "Garage"}),
            )
            .await
            .expect(StatusCode::CREATED);
        let vendor_id = Uuid::parse_str(vendor["vendor_id"].as_str().expect("id")).expect("uuid");
        let vendor_token = token(Role::Vendor, "vendor-user", Some(vendor_id));
        let mut listings = Vec::new();
        for body in [
            json!({"title": "Pass holder", "description": "x", "category": "gear",
                   "kind": "sale", "unit_price": "10.00", "stock": 50}),
            json!({"title": "Space", "description": "x", "category": "parking",
                   "kind": "rental", "pricing_unit": "day", "price_per_unit": "40.00",
                   "deposit": "0.00", "units": 5}),
        ] {
            let created = app.post("/v1/listings", &vendor_token, body).await;
            assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
            let id = created.uuid("listing_id");
            let published = app
                .post(
                    &format!("/v1/listings/{id}/publish"),
                    &vendor_token,
                    json!({}),
                )
                .await;
            assert_eq!(published.status, StatusCode::OK, "{}", published.body);
            listings.push(id);
        }
        Shop {
            tenant,
            sale: listings[0],
            rental: listings[1],
            customer: token(Role::Customer, "customer-a", None),
        }
    }

    /// One sale unit and one rental day (day 1 to day 2).
    async fn order(&self, app: &TestApp) -> Answer {
        let placed = app
            .post(
                "/v1/orders",
                &self.customer,
                json!({"items": [sale_item(self.sale, 1),
                                 rental_item(self.rental, 1, &at(1, 0), &at(2, 0))]}),
            )
            .await;
        assert_eq!(
            placed.status,
            StatusCode::CREATED,
            "{:?}: {}",
            self.tenant,
            placed.body
        );
        placed
    }
}

fn hold_minutes(placed: &Answer, asked_at: DateTime<Utc>) -> i64 {
    let expires: DateTime<Utc> = placed.body["hold_expires_at"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .expect("hold_expires_at");
    (expires - asked_at + Duration::seconds(30)).num_minutes()
}

#[tokio::test]
async fn a_tenants_settings_price_and_hold_its_new_orders_and_leave_the_default_tenant_alone() {
    let app = TestApp::spawn().await;
    let created = app
        .post(
            "/v1/tenants",
            &app.platform_admin(),
            json!({"slug": "eu-garage", "name": "EU Garage", "currency": "EUR",
                   "tax_rate": "0.2", "platform_fee_rate": "0.05", "hold_ttl": "PT5M",
                   "time_zone": "Europe/Berlin"}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    for (field, value) in [
        ("slug", "eu-garage"),
        ("name", "EU Garage"),
        ("currency", "EUR"),
        ("tax_rate", "0.2"),
        ("platform_fee_rate", "0.05"),
        ("hold_ttl", "PT5M"),
        ("time_zone", "Europe/Berlin"),
    ] {
        assert_eq!(created.body[field], value, "{field}: {}", created.body);
    }

    let eu = Shop::open(&app, Some("eu-garage")).await;
    let home = Shop::open(&app, None).await;

    let asked_at = Utc::now();
    let placed = eu.order(&app).await;
    assert_eq!(placed.body["currency"], "EUR");
    // 10.00 + 40.00, taxed at 20 %, the platform's fee at 5 %.
    assert_eq!(placed.body["subtotal"], "50.00");
    assert_eq!(placed.body["tax"], "10.00");
    assert_eq!(placed.body["total"], "60.00");
    assert_eq!(placed.body["vendors"][0]["platform_fee"], "2.50");
    assert_eq!(hold_minutes(&placed, asked_at), 5);
    let rental_line = |answer: &Answer| -> Value {
        answer.body["lines"]
            .as_array()
            .and_then(|lines| lines.iter().find(|l| l["kind"] == "rental").cloned())
            .expect("a rental line")
    };
    assert_eq!(rental_line(&placed)["time_zone"], "Europe/Berlin");

    // The default tenant keeps the deployment's settings.
    let asked_at = Utc::now();
    let placed = home.order(&app).await;
    assert_eq!(placed.body["currency"], "USD");
    assert_eq!(placed.body["tax"], "0.00");
    assert_eq!(placed.body["total"], "50.00");
    assert_eq!(placed.body["vendors"][0]["platform_fee"], "5.00");
    assert_eq!(hold_minutes(&placed, asked_at), 15);
    assert_eq!(rental_line(&placed)["time_zone"], "UTC");

    // A change applies to the next order; what it does not name stays.
    let changed = app
        .send(
            reqwest::Method::PATCH,
            "/v1/tenants/eu-garage",
            Some(&app.platform_admin()),
            Some(&json!({"tax_rate": "0.1"})),
            &[],
        )
        .await;
    assert_eq!(changed.status, StatusCode::OK, "{}", changed.body);
    assert_eq!(changed.body["tax_rate"], "0.1");
    assert_eq!(changed.body["currency"], "EUR");
    assert_eq!(changed.body["hold_ttl"], "PT5M");
    let placed = eu.order(&app).await;
    assert_eq!(placed.body["tax"], "5.00");
    assert_eq!(placed.body["currency"], "EUR");
    let placed = home.order(&app).await;
    assert_eq!(placed.body["tax"], "0.00");

    // The tenant's admin reads its settings as the platform admin does.
    let own = app
        .get(
            "/v1/tenants/eu-garage",
            &app.token_in("eu-garage", Role::Admin, "admin-1", None),
        )
        .await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    assert_eq!(own.body["tax_rate"], "0.1");
}

#[tokio::test]
async fn only_a_platform_admin_creates_tenants_and_bad_requests_record_nothing() {
    let app = TestApp::spawn().await;
    let platform = app.platform_admin();
    // A tenant's tokens are refused until it exists.
    let early = app.token_in("north", Role::Admin, "admin-1", None);
    let refused = app
        .post("/v1/vendors", &early, json!({"name": "Too early"}))
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
    let refused = app.get("/v1/orders", &early).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);

    let good = json!({"slug": "north", "name": "North", "currency": "SEK"});
    for token in [app.admin(), app.customer("c"), app.analyst()] {
        let answer = app.post("/v1/tenants", &token, good.clone()).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{}", answer.body);
    }
    let before = app.event_count().await;
    let bad: Vec<(Value, &str)> = vec![
        (
            json!({"slug": "Bad Slug", "name": "x", "currency": "SEK"}),
            "slug",
        ),
        (
            json!({"slug": "-x", "name": "x", "currency": "SEK"}),
            "slug",
        ),
        (json!({"slug": "x", "name": "", "currency": "SEK"}), "name"),
        (
            json!({"slug": "x", "name": "x", "currency": "sek"}),
            "currency",
        ),
        (
            json!({"slug": "x", "name": "x", "currency": "SEK", "tax_rate": "1.5"}),
            "tax_rate",
        ),
        (
            json!({"slug": "x", "name": "x", "currency": "SEK", "platform_fee_rate": "abc"}),
            "platform_fee_rate",
        ),
        (
            json!({"slug": "x", "name": "x", "currency": "SEK", "hold_ttl": "PT1S"}),
            "hold_ttl",
        ),
        (
            json!({"slug": "x", "name": "x", "currency": "SEK", "time_zone": "Mars/Base"}),
            "time_zone",
        ),
        (
            json!({"slug": "x", "name": "x", "currency": "SEK", "colour": "red"}),
            "colour",
        ),
    ];
    for (body, field) in bad {
        let answer = app.post("/v1/tenants", &platform, body.clone()).await;
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            answer.body
        );
        assert!(
            answer.body.to_string().contains(field),
            "{body}: the problem names `{field}`: {}",
            answer.body
        );
    }
    let reserved = app
        .post(
            "/v1/tenants",
            &platform,
            json!({"slug": "default", "name": "x", "currency": "SEK"}),
        )
        .await;
    assert_eq!(reserved.status, StatusCode::CONFLICT, "{}", reserved.body);
    assert_eq!(app.event_count().await, before, "refusals record nothing");

    let created = app.post("/v1/tenants", &platform, good.clone()).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let again = app.post("/v1/tenants", &platform, good).await;
    assert_eq!(again.status, StatusCode::CONFLICT, "{}", again.body);
    // Now its tokens work.
    let vendor = app
        .post("/v1/vendors", &early, json!({"name": "In time"}))
        .await;
    assert_eq!(vendor.status, StatusCode::CREATED, "{}", vendor.body);

    // Unknown tenants are 404 to the platform admin; a tenant's admin may
    // not change its settings, nor see another tenant's.
    let missing = app.get("/v1/tenants/south", &platform).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND, "{}", missing.body);
    let patch_missing = app
        .send(
            reqwest::Method::PATCH,
            "/v1/tenants/south",
            Some(&platform),
            Some(&json!({"tax_rate": "0.1"})),
            &[],
        )
        .await;
    assert_eq!(patch_missing.status, StatusCode::NOT_FOUND);
    let by_own_admin = app
        .send(
            reqwest::Method::PATCH,
            "/v1/tenants/north",
            Some(&early),
            Some(&json!({"tax_rate": "0.1"})),
            &[],
        )
        .await;
    assert_eq!(by_own_admin.status, StatusCode::FORBIDDEN);
    let by_default_admin = app.get("/v1/tenants/north", &app.admin()).await;
    assert_eq!(by_default_admin.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn an_order_of_one_tenant_cannot_take_another_tenants_listing() {
    let app = TestApp::spawn().await;
    app.create_tenant("west").await;
    let home = Shop::open(&app, None).await;
    let before = app.event_count().await;
    let placed = app
        .post(
            "/v1/orders",
            &app.token_in("west", Role::Customer, "customer-a", None),
            json!({"items": [sale_item(home.sale, 1)]}),
        )
        .await;
    assert_eq!(
        placed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        placed.body
    );
    assert!(placed.body.to_string().contains("no such listing"));
    assert_eq!(app.event_count().await, before);
    // The same customer name in the listing's own tenant may.
    home.order(&app).await;
}
