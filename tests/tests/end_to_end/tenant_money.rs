//! Issue 15: the money, the analytics and the log per tenant (API.md
//! "Tenants": "exports, the event API, analytics and audit verification
//! are per tenant"; "another tenant's ids answer 404"). Two tenants in one
//! deployment, each with a vendor, a listing and a paid order at prices
//! that tell them apart: each tenant's trial balance, earnings, payouts,
//! analytics, event API, export and audit verification hold its own money
//! and events only, and each tenant's books balance on their own.

use std::collections::BTreeSet;
use std::time::Duration;

use command_api::Role;
use ledger::commands::events::{export, ExportArgs, Format};
use ledger_tests::answer::{dec, money};
use ledger_tests::webhooks::SUCCEEDED;
use ledger_tests::{sale_item, TestApp};
use reqwest::StatusCode;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

/// What a tenant's set-up made: its ids and the tokens that act in it.
struct Shop {
    slug: &'static str,
    admin: String,
    vendor_id: Uuid,
    listing_id: Uuid,
    order_id: Uuid,
    subtotal: Decimal,
}

impl Shop {
    fn token(&self, app: &TestApp, role: Role) -> String {
        app.token_in(self.slug, role, &format!("{role:?}-of-{}", self.slug), None)
    }

    fn ids(&self) -> BTreeSet<String> {
        [self.vendor_id, self.listing_id, self.order_id]
            .iter()
            .map(Uuid::to_string)
            .collect()
    }
}

/// Creates tenant `slug` with a vendor selling one item at `price`, and a
/// customer's paid order for it.
async fn shop(app: &TestApp, slug: &'static str, price: &str) -> Shop {
    let admin = app.create_tenant(slug).await;
    let vendor = app
        .post(
            "/v1/vendors",
            &admin,
            json!({"name": format!("{slug} gear")}),
        )
        .await;
    assert_eq!(vendor.status, StatusCode::CREATED, "{:?}", vendor.body);
    let vendor_id = vendor.uuid("vendor_id");
    let vendor_token = app.token_in(slug, Role::Vendor, "seller", Some(vendor_id));
    let listing = app
        .create_listing(
            &vendor_token,
            json!({"title": format!("{slug} paddle"), "description": "Carbon paddle",
                   "category": "gear", "kind": "sale", "unit_price": price, "stock": 5}),
        )
        .await;
    assert_eq!(listing.status, StatusCode::CREATED, "{:?}", listing.body);
    let listing_id = listing.uuid("listing_id");
    let published = app.publish_listing(&vendor_token, listing_id).await;
    assert_eq!(published.status, StatusCode::OK, "{:?}", published.body);
    let customer = app.token_in(slug, Role::Customer, "carol", None);
    let order = app
        .post(
            "/v1/orders",
            &customer,
            json!({"items": [sale_item(listing_id, 2)]}),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{:?}", order.body);
    app.pay(&order).await;
    Shop {
        slug,
        admin,
        vendor_id,
        listing_id,
        order_id: order.uuid("order_id"),
        subtotal: dec(price) * Decimal::from(2),
    }
}

async fn settle(app: &TestApp) -> i64 {
    ledger_tests::pipeline::settle(app, Duration::from_secs(30))
        .await
        .expect("the read models settle")
}

/// Two shops, `acme` selling at 111.00 and `beta` at 22.00, both paid and
/// projected.
async fn two_shops(app: &TestApp) -> (Shop, Shop, i64) {
    let a = shop(app, "acme", "111.00").await;
    let b = shop(app, "beta", "22.00").await;
    let reached = settle(app).await;
    (a, b, reached)
}

/// The tenant's trial balance: account → balance, and whether it balances.
async fn trial_balance(app: &TestApp, token: &str, min: i64) -> (Vec<(String, Decimal)>, bool) {
    let answer = app
        .get_at("/v1/ledger/trial-balance", token, Some(min))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    let accounts = answer.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                a["account"].as_str().expect("account").to_owned(),
                money(a, "balance"),
            )
        })
        .collect();
    let balanced = money(&answer.body, "total_debit") == money(&answer.body, "total_credit");
    (accounts, balanced)
}

#[tokio::test]
async fn each_tenants_books_hold_its_own_money_and_balance_on_their_own() {
    let app = TestApp::spawn().await;
    let (a, b, reached) = two_shops(&app).await;

    let (a_accounts, a_balanced) = trial_balance(&app, &a.admin, reached).await;
    let (b_accounts, b_balanced) = trial_balance(&app, &b.admin, reached).await;
    assert!(a_balanced, "acme's books balance: {a_accounts:?}");
    assert!(b_balanced, "beta's books balance: {b_accounts:?}");
    let cash = |accounts: &[(String, Decimal)]| {
        accounts
            .iter()
            .find(|(account, _)| account == "cash")
            .map(|(_, balance)| *balance)
            .unwrap_or_default()
    };
    // Each tenant's cash is its own customer's payment, tax included.
    assert!(cash(&a_accounts) >= a.subtotal, "{a_accounts:?}");
    assert!(cash(&b_accounts) >= b.subtotal, "{b_accounts:?}");
    assert!(cash(&b_accounts) < a.subtotal, "{b_accounts:?}");
    let a_pending = format!("vendor_pending:{}", a.vendor_id);
    let b_pending = format!("vendor_pending:{}", b.vendor_id);
    assert!(b_accounts.iter().all(|(account, _)| *account != a_pending));
    assert!(a_accounts.iter().all(|(account, _)| *account != b_pending));
    assert!(b_accounts.iter().any(|(account, _)| *account == b_pending));

    // The default tenant had no money at all.
    let (default_accounts, default_balanced) = trial_balance(&app, &app.admin(), reached).await;
    assert!(default_balanced);
    assert!(
        default_accounts
            .iter()
            .all(|(_, balance)| balance.is_zero()),
        "{default_accounts:?}"
    );
}

#[tokio::test]
async fn another_tenants_vendor_is_not_found_and_earnings_payouts_are_the_tenants_own() {
    let app = TestApp::spawn().await;
    let (a, b, reached) = two_shops(&app).await;

    for path in [
        format!("/v1/vendors/{}/earnings", a.vendor_id),
        format!("/v1/vendors/{}/earnings/entries", a.vendor_id),
        format!("/v1/vendors/{}/payouts", a.vendor_id),
    ] {
        let answer = app.get_at(&path, &b.admin, Some(reached)).await;
        assert_eq!(
            answer.status,
            StatusCode::NOT_FOUND,
            "{path}: {:?}",
            answer.body
        );
        let own = app.get_at(&path, &a.admin, Some(reached)).await;
        assert_eq!(own.status, StatusCode::OK, "{path}: {:?}", own.body);
    }

    let earnings = app
        .get_at(
            &format!("/v1/vendors/{}/earnings", b.vendor_id),
            &b.admin,
            Some(reached),
        )
        .await;
    assert_eq!(earnings.status, StatusCode::OK, "{:?}", earnings.body);
    assert_eq!(money(&earnings.body, "gross"), b.subtotal);
    let entries = app
        .get_at(
            &format!("/v1/vendors/{}/earnings/entries", b.vendor_id),
            &b.admin,
            Some(reached),
        )
        .await;
    assert_eq!(entries.status, StatusCode::OK, "{:?}", entries.body);
    let items = entries.body["items"].as_array().expect("items");
    assert!(!items.is_empty());
    assert!(items
        .iter()
        .all(|p| p["order_id"].as_str() == Some(b.order_id.to_string().as_str())));
    let payouts = app
        .get_at(
            &format!("/v1/vendors/{}/payouts", b.vendor_id),
            &b.admin,
            Some(reached),
        )
        .await;
    assert_eq!(payouts.status, StatusCode::OK, "{:?}", payouts.body);

    // The default tenant's admin does not see either tenant's vendor.
    let answer = app
        .get_at(
            &format!("/v1/vendors/{}/earnings", b.vendor_id),
            &app.admin(),
            Some(reached),
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND, "{:?}", answer.body);
}

#[tokio::test]
async fn the_analytics_are_the_tenants_own() {
    let app = TestApp::spawn().await;
    let (a, b, reached) = two_shops(&app).await;
    let analyst = b.token(&app, Role::Analyst);

    let summary = app
        .get_at("/v1/analytics/summary", &analyst, Some(reached))
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{:?}", summary.body);
    assert_eq!(summary.body["orders"], json!(1), "{:?}", summary.body);
    assert_eq!(summary.body["paid_orders"], json!(1));
    assert_eq!(money(&summary.body, "gmv"), b.subtotal);
    let top: Vec<&Value> = summary.body["top_listings"]
        .as_array()
        .expect("top listings")
        .iter()
        .collect();
    assert_eq!(top.len(), 1, "{top:?}");
    assert_eq!(top[0]["listing_id"], json!(b.listing_id));
    assert_eq!(summary.body["active_subscriptions"], json!(0));

    let revenue = app
        .get_at(
            "/v1/analytics/revenue?group_by=vendor",
            &analyst,
            Some(reached),
        )
        .await;
    assert_eq!(revenue.status, StatusCode::OK, "{:?}", revenue.body);
    let buckets = revenue.body["buckets"].as_array().expect("buckets");
    assert_eq!(buckets.len(), 1, "{buckets:?}");
    assert_eq!(buckets[0]["key"], json!(b.vendor_id.to_string()));
    assert_eq!(money(&buckets[0], "gmv"), b.subtotal);

    // And acme's are acme's.
    let summary = app
        .get_at(
            "/v1/analytics/summary",
            &a.token(&app, Role::Analyst),
            Some(reached),
        )
        .await;
    assert_eq!(money(&summary.body, "gmv"), a.subtotal);
}

/// Every event of the page is `tenant`'s (its metadata says so).
fn all_of(events: &[Value], tenant: &str) -> bool {
    events
        .iter()
        .all(|e| e["metadata"]["tenant"].as_str() == Some(tenant))
}

fn aggregate_ids(events: &[Value]) -> BTreeSet<String> {
    events
        .iter()
        .filter_map(|e| e["aggregate_id"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn the_event_api_and_the_export_hold_the_tenants_events_only() {
    let app = TestApp::spawn().await;
    let (a, b, _) = two_shops(&app).await;
    let b_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant = 'beta'")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    let all_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert!(b_events > 0 && b_events < all_events);

    let page = app
        .get("/v1/events?limit=500", &b.token(&app, Role::Auditor))
        .await;
    assert_eq!(page.status, StatusCode::OK, "{:?}", page.body);
    let events = page.body["events"].as_array().expect("events").clone();
    assert_eq!(events.len() as i64, b_events);
    assert!(all_of(&events, "beta"));
    let ids = aggregate_ids(&events);
    assert!(b.ids().is_subset(&ids), "{ids:?}");
    assert!(a.ids().is_disjoint(&ids), "{ids:?}");

    // The export of one tenant.
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("beta.ndjson");
    let args = ExportArgs {
        format: Format::Ndjson,
        output: Some(path.clone()),
        after: None,
        until_position: None,
        since: None,
        until: None,
        aggregate_type: None,
        event_type: None,
        tenant: Some("beta".to_owned()),
        columns: Vec::new(),
        personal_data_kek: None,
    };
    let written = export(&app.pool, &args).await.expect("export");
    assert_eq!(written as i64, b_events);
    let lines: Vec<Value> = std::fs::read_to_string(&path)
        .expect("the file")
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(lines.len() as i64, b_events);
    assert!(lines.iter().all(|l| l["tenant"] == json!("beta")));
    assert!(all_of(&lines, "beta"));
    assert!(a.ids().is_disjoint(&aggregate_ids(&lines)));
}

/// The events of the complete messages of a server-sent stream so far.
fn messages(text: &str) -> Vec<Value> {
    let complete = text.rfind("\n\n").map_or("", |end| &text[..end]);
    complete
        .lines()
        .filter_map(|l| l.strip_prefix("data:"))
        .map(|d| serde_json::from_str(d.trim()).expect("an event"))
        .collect()
}

#[tokio::test]
async fn the_event_stream_sends_the_tenants_events_only() {
    let app = TestApp::spawn().await;
    let (a, b, _) = two_shops(&app).await;
    let b_events: usize =
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE tenant = 'beta'")
            .fetch_one(&app.pool)
            .await
            .expect("count") as usize;
    let token = b.token(&app, Role::Auditor);
    let response = reqwest::Client::new()
        .get(format!("{}/v1/events/stream", app.base_url))
        .bearer_auth(&token)
        .send()
        .await
        .expect("the stream");
    assert_eq!(response.status(), StatusCode::OK);
    let mut response = response;
    let mut text = String::new();
    let mut events: Vec<Value> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < b_events && tokio::time::Instant::now() < deadline {
        let chunk = tokio::time::timeout(Duration::from_secs(5), response.chunk())
            .await
            .expect("a chunk in time")
            .expect("the stream's body")
            .expect("not the end");
        text.push_str(&String::from_utf8_lossy(&chunk));
        events = messages(&text);
    }
    assert_eq!(events.len(), b_events, "{text}");
    assert!(all_of(&events, "beta"));
    assert!(a.ids().is_disjoint(&aggregate_ids(&events)));

    // What comes later of the other tenant does not go out live either:
    // acme pays another order, beta places one; only beta's arrives.
    let more_a = shop(&app, "acme2", "7.00").await;
    let more_b = app
        .post(
            "/v1/orders",
            &app.token_in("beta", Role::Customer, "dave", None),
            json!({"items": [sale_item(b.listing_id, 1)]}),
        )
        .await;
    assert_eq!(more_b.status, StatusCode::CREATED, "{:?}", more_b.body);
    let order = more_b.uuid("order_id").to_string();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !events
        .iter()
        .any(|e| e["aggregate_id"].as_str() == Some(order.as_str()))
        && tokio::time::Instant::now() < deadline
    {
        let chunk = tokio::time::timeout(Duration::from_secs(10), response.chunk())
            .await
            .expect("a chunk in time")
            .expect("the stream's body")
            .expect("not the end");
        text.push_str(&String::from_utf8_lossy(&chunk));
        events = messages(&text);
    }
    assert!(events
        .iter()
        .any(|e| e["aggregate_id"].as_str() == Some(order.as_str())));
    assert!(all_of(&events, "beta"), "{text}");
    assert!(more_a.ids().is_disjoint(&aggregate_ids(&events)));
}

#[tokio::test]
async fn a_tenants_audit_verification_counts_its_own_events_and_its_proofs_only() {
    let app = TestApp::spawn().await;
    let (a, b, _) = two_shops(&app).await;
    let b_events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE tenant = 'beta'")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    let auditor = b.token(&app, Role::Auditor);
    let report = app.get("/v1/audit/verify", &auditor).await;
    assert_eq!(report.status, StatusCode::OK, "{:?}", report.body);
    assert_eq!(report.body["ok"], json!(true), "{:?}", report.body);
    assert_eq!(report.body["tenant"], json!("beta"));
    assert_eq!(report.body["checked"], json!(b_events), "{:?}", report.body);

    // A proof of acme's order's first event is not beta's to see.
    let position: i64 =
        sqlx::query_scalar("SELECT min(global_position) FROM events WHERE aggregate_id = $1")
            .bind(a.order_id.to_string())
            .fetch_one(&app.pool)
            .await
            .expect("position");
    let proof = app
        .get(&format!("/v1/audit/proof?position={position}"), &auditor)
        .await;
    assert_eq!(proof.status, StatusCode::NOT_FOUND, "{:?}", proof.body);

    // The CLI's verification of one tenant counts the same.
    let whole = audit::verify_anchored_in(&app.pool, None, None, None, &Default::default(), None)
        .await
        .expect("verify");
    let beta = audit::verify_anchored_in(
        &app.pool,
        None,
        None,
        None,
        &Default::default(),
        Some("beta"),
    )
    .await
    .expect("verify");
    assert!(whole.ok && beta.ok);
    assert_eq!(beta.checked as i64, b_events);
    assert!(whole.checked > beta.checked);
}

#[tokio::test]
async fn a_subscription_invoice_is_posted_in_its_tenants_books_and_metrics_only() {
    let app = TestApp::spawn().await;
    let (a, b, _) = two_shops(&app).await;
    let plan = app
        .post(
            "/v1/plans",
            &a.admin,
            json!({"name": "Pro", "price": "89.00", "interval": "month"}),
        )
        .await;
    assert_eq!(plan.status, StatusCode::CREATED, "{:?}", plan.body);
    let started = app
        .post(
            "/v1/subscriptions",
            &a.token(&app, Role::Customer),
            json!({"plan_id": plan.body["plan_id"]}),
        )
        .await;
    assert_eq!(started.status, StatusCode::CREATED, "{:?}", started.body);
    let invoice_id = started.uuid("invoice_id");
    let paid = app
        .invoice_webhook("evt_acme_sub_1", SUCCEEDED, invoice_id, 8900)
        .await;
    assert_eq!(paid.status, StatusCode::OK, "{:?}", paid.body);
    let reached = settle(&app).await;

    let revenue = |accounts: &[(String, Decimal)]| {
        accounts
            .iter()
            .find(|(account, _)| account == "subscription_revenue")
            .map(|(_, balance)| *balance)
            .unwrap_or_default()
    };
    let (a_accounts, a_balanced) = trial_balance(&app, &a.admin, reached).await;
    let (b_accounts, b_balanced) = trial_balance(&app, &b.admin, reached).await;
    assert!(a_balanced && b_balanced, "{a_accounts:?} {b_accounts:?}");
    assert_eq!(revenue(&a_accounts), dec("-89.00"), "{a_accounts:?}");
    assert!(revenue(&b_accounts).is_zero(), "{b_accounts:?}");

    let summary = |token: String| {
        let app = &app;
        async move {
            let answer = app
                .get_at("/v1/analytics/summary", &token, Some(reached))
                .await;
            assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
            answer.body
        }
    };
    let a_summary = summary(a.token(&app, Role::Analyst)).await;
    let b_summary = summary(b.token(&app, Role::Analyst)).await;
    assert_eq!(a_summary["active_subscriptions"], json!(1), "{a_summary:?}");
    assert_eq!(money(&a_summary, "mrr"), dec("89.00"));
    assert_eq!(b_summary["active_subscriptions"], json!(0), "{b_summary:?}");
    assert!(money(&b_summary, "mrr").is_zero());
}
