//! The money read models end to end, on small examples computed by hand
//! (DESIGN.md "Domain" and invariant 2; API.md `GET /v1/ledger/trial-balance`,
//! `/v1/vendors/{id}/earnings`, `/earnings/entries`, `/v1/analytics/summary`
//! and `/revenue`): the double-entry postings of a payment, a cancellation
//! after payment, a return with damage and a payout; a vendor's earnings and
//! entries and who may see them; the analytics definitions.
//!
//! Queries that follow a command send its `position` as `Ledger-Min-Position`;
//! what a policy records later (earnings made available, damage credited) is
//! waited for with [`reconcile::settle`].

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Datelike, Timelike, Utc};
use ledger_tests::answer::position;
use ledger_tests::scenario::rental_days;
use ledger_tests::{assert_invalid_field, assert_problem};
use ledger_tests::{assert_ok, sale_item};
use ledger_tests::{reconcile, TestApp};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Waits until every read model has applied everything (policies included).
async fn settle(app: &TestApp) -> i64 {
    ledger_tests::pipeline::settle(app, Duration::from_secs(30))
        .await
        .expect("the read models settle")
}

/// The trial balance: account → (debit, credit, balance), and the totals.
async fn trial_balance(
    app: &TestApp,
    min: i64,
) -> (BTreeMap<String, (String, String, String)>, (String, String)) {
    let answer = app
        .get_at("/v1/ledger/trial-balance", &app.admin(), Some(min))
        .await;
    assert_ok(&answer);
    let text = |v: &Value| {
        v.as_str()
            .unwrap_or_else(|| panic!("not a string: {v}"))
            .to_owned()
    };
    let accounts = answer.body["accounts"]
        .as_array()
        .expect("accounts")
        .iter()
        .map(|a| {
            (
                text(&a["account"]),
                (text(&a["debit"]), text(&a["credit"]), text(&a["balance"])),
            )
        })
        .collect();
    let totals = (
        text(&answer.body["total_debit"]),
        text(&answer.body["total_credit"]),
    );
    (accounts, totals)
}

/// A ratio of the analytics (a decimal string, its scale not fixed by API.md).
fn ratio(value: &Value) -> Decimal {
    ledger_tests::answer::decimal(value)
}

fn figures(debit: &str, credit: &str, balance: &str) -> (String, String, String) {
    (debit.to_owned(), credit.to_owned(), balance.to_owned())
}

fn pending(vendor_id: Uuid) -> String {
    reconcile::vendor_pending(vendor_id)
}

fn available(vendor_id: Uuid) -> String {
    reconcile::vendor_available(vendor_id)
}

/// The earnings answer without its `vendor_id` and `currency`.
async fn earnings(app: &TestApp, vendor_id: Uuid, min: i64) -> Value {
    let answer = app
        .get_at(
            &format!("/v1/vendors/{vendor_id}/earnings"),
            &app.admin(),
            Some(min),
        )
        .await;
    assert_ok(&answer);
    assert_eq!(answer.body["vendor_id"], json!(vendor_id));
    assert_eq!(answer.body["currency"], "USD");
    let mut body = answer.body;
    let map = body.as_object_mut().expect("an object");
    map.remove("vendor_id");
    map.remove("currency");
    body
}

fn earnings_of(
    gross: &str,
    fees: &str,
    net: &str,
    pending: &str,
    available: &str,
    paid_out: &str,
    damage: &str,
) -> Value {
    json!({"gross": gross, "platform_fees": fees, "net": net, "pending": pending,
           "available": available, "paid_out": paid_out, "damage_credits": damage,
           "refunded": "0.00", "frozen": "0.00", "receivable": "0.00"})
}

/// Runs the reconciliation checker too: a hand example must also reconcile.
async fn reconciles(app: &TestApp) {
    let observed = reconcile::observe(app).await.expect("observe the ledger");
    let found = reconcile::check(&app.pool, &observed)
        .await
        .expect("read the log");
    assert!(
        found.is_empty(),
        "discrepancies:\n{}",
        found
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    );
}

// ---------------------------------------------------------------------------
// Trial balance
// ---------------------------------------------------------------------------

/// Rental (A): 3 days × 20.00 = 60.00, tax 6.00, deposit 50.00.
/// Sale (B): 2 × 15.50 = 31.00, tax 3.10. Total 150.10.
/// Fees (10 %): A 6.00, net 54.00; B 3.10, net 27.90.
#[tokio::test]
async fn a_paid_order_posts_cash_tax_deposits_fees_and_pending_nets() {
    let app = TestApp::spawn_with(|c| c.tax_rate = Decimal::new(10, 2)).await;
    let a = app.register_vendor("Kayaks").await;
    let b = app.register_vendor("Paddles").await;
    let kayak = app.rental_listing(a, "day", "20.00", "50.00", 2).await;
    let paddle = app.sale_listing(b, "15.50", 10).await;
    let order = app
        .place(
            "c-1",
            vec![rental_days(kayak, 1, 0, 3), sale_item(paddle, 2)],
        )
        .await;
    assert_eq!(order.body["total"], "150.10", "{:?}", order.body);

    // Placed but unpaid: nothing moved.
    let (accounts, totals) = trial_balance(&app, position(&order)).await;
    assert!(accounts.is_empty(), "{accounts:?}");
    assert_eq!(totals, ("0.00".to_owned(), "0.00".to_owned()));

    let paid = app.pay(&order).await.position();
    let (accounts, totals) = trial_balance(&app, paid).await;
    let expected: BTreeMap<String, (String, String, String)> = [
        ("cash".to_owned(), figures("150.10", "0.00", "150.10")),
        (
            "customer_funds".to_owned(),
            figures("150.10", "150.10", "0.00"),
        ),
        (
            "deposits_held".to_owned(),
            figures("0.00", "50.00", "-50.00"),
        ),
        ("platform_fees".to_owned(), figures("0.00", "9.10", "-9.10")),
        ("tax_payable".to_owned(), figures("0.00", "9.10", "-9.10")),
        (pending(a), figures("0.00", "54.00", "-54.00")),
        (pending(b), figures("0.00", "27.90", "-27.90")),
    ]
    .into_iter()
    .collect();
    assert_eq!(accounts, expected);
    assert_eq!(totals, ("300.20".to_owned(), "300.20".to_owned()));

    assert_eq!(
        earnings(&app, a, paid).await,
        earnings_of("60.00", "6.00", "54.00", "54.00", "0.00", "0.00", "0.00")
    );
    assert_eq!(
        earnings(&app, b, paid).await,
        earnings_of("31.00", "3.10", "27.90", "27.90", "0.00", "0.00", "0.00")
    );
    settle(&app).await;
    reconciles(&app).await;
}

/// 2 days × 20.00 = 40.00, deposit 50.00, no tax: total 90.00; fee 4.00.
/// Cancelled after payment: the allocation is reversed line by line and
/// the 90.00 refunded; every balance is back to zero.
#[tokio::test]
async fn a_cancellation_after_payment_reverses_the_allocation_and_refunds() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Kayaks").await;
    let kayak = app.rental_listing(a, "day", "20.00", "50.00", 2).await;
    let order = app.place("c-1", vec![rental_days(kayak, 1, 0, 2)]).await;
    assert_eq!(order.body["total"], "90.00");
    app.pay(&order).await.position();
    let order_id = order.uuid("order_id");
    let cancelled = app
        .cancel_order(
            &app.customer("c-1"),
            order_id,
            json!({"reason": "changed my mind"}),
        )
        .await;
    assert_ok(&cancelled);
    assert_eq!(cancelled.body["status"], "refunded");

    let (accounts, totals) = trial_balance(&app, position(&cancelled)).await;
    let expected: BTreeMap<String, (String, String, String)> = [
        ("cash".to_owned(), figures("90.00", "90.00", "0.00")),
        // captured (C), allocated (D), reversed (C), refunded (D)
        (
            "customer_funds".to_owned(),
            figures("180.00", "180.00", "0.00"),
        ),
        (
            "deposits_held".to_owned(),
            figures("50.00", "50.00", "0.00"),
        ),
        ("platform_fees".to_owned(), figures("4.00", "4.00", "0.00")),
        (pending(a), figures("36.00", "36.00", "0.00")),
    ]
    .into_iter()
    .collect();
    assert_eq!(accounts, expected);
    assert_eq!(totals, ("360.00".to_owned(), "360.00".to_owned()));
    assert_eq!(
        earnings(&app, a, position(&cancelled)).await,
        earnings_of("0.00", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00")
    );

    // The refund shows in the analytics; the order no longer counts.
    let summary = app
        .get_at(
            "/v1/analytics/summary",
            &app.analyst(),
            Some(position(&cancelled)),
        )
        .await;
    assert_ok(&summary);
    assert_eq!(summary.body["refunds"], "90.00");
    assert_eq!(summary.body["gmv"], "0.00");
    assert_eq!(summary.body["orders"], 1);
    assert_eq!(summary.body["paid_orders"], 0);
    assert_eq!(ratio(&summary.body["cancellation_rate"]), Decimal::ONE);
    settle(&app).await;
    reconciles(&app).await;
}

/// 2 days × 20.00 = 40.00, deposit 50.00: total 90.00, fee 4.00, net 36.00.
/// Returned with 12.50 withheld for damage: 37.50 goes back to the
/// customer, 12.50 to the vendor's available earnings, and the part being
/// fulfilled makes the 36.00 net available.
#[tokio::test]
async fn a_return_with_damage_refunds_the_rest_of_the_deposit_and_credits_the_vendor() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Kayaks").await;
    let kayak = app.rental_listing(a, "day", "20.00", "50.00", 2).await;
    let order = app.place("c-1", vec![rental_days(kayak, 1, 0, 2)]).await;
    app.pay(&order).await.position();
    settle(&app).await;
    let order_id = order.uuid("order_id");
    let line_id = order.body["lines"][0]["line_id"]
        .as_str()
        .expect("a line id")
        .to_owned();
    let picked = app.pickup(&app.vendor(a), order_id, &line_id).await;
    assert_ok(&picked);
    let returned = app
        .return_line(
            &app.vendor(a),
            order_id,
            line_id,
            json!({"damage_withheld": "12.50"}),
        )
        .await;
    assert_ok(&returned);
    assert_eq!(returned.body["deposit_refunded"], "37.50");
    // The damage credit is the policies' work: wait for everything.
    let head = settle(&app).await;

    let (accounts, totals) = trial_balance(&app, head).await;
    let expected: BTreeMap<String, (String, String, String)> = [
        ("cash".to_owned(), figures("90.00", "37.50", "52.50")),
        (
            "customer_funds".to_owned(),
            figures("90.00", "90.00", "0.00"),
        ),
        // allocated 50.00 (C); refunded 37.50 and credited 12.50 (D)
        (
            "deposits_held".to_owned(),
            figures("50.00", "50.00", "0.00"),
        ),
        ("platform_fees".to_owned(), figures("0.00", "4.00", "-4.00")),
        (pending(a), figures("36.00", "36.00", "0.00")),
        (available(a), figures("0.00", "48.50", "-48.50")),
    ]
    .into_iter()
    .collect();
    assert_eq!(accounts, expected);
    assert_eq!(totals, ("266.00".to_owned(), "266.00".to_owned()));
    assert_eq!(
        earnings(&app, a, head).await,
        earnings_of("40.00", "4.00", "36.00", "0.00", "48.50", "0.00", "12.50")
    );
    reconciles(&app).await;
}

/// Sale: 2 × 25.00 = 50.00, fee 5.00, net 45.00. Shipped and delivered,
/// the 45.00 is available; a payout of 20.00 moves it to paid out and in
/// transit (cash leaves when the provider says it is paid: `payouts.rs`);
/// a payout a cent above what is left is refused.
#[tokio::test]
async fn a_payout_moves_available_earnings_to_paid_out() {
    let app = TestApp::spawn().await;
    let b = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(b, "25.00", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 2)]).await;
    app.pay(&order).await.position();
    settle(&app).await;
    let order_id = order.uuid("order_id");
    for step in ["ship", "deliver"] {
        let answer = app
            .post(
                &format!("/v1/orders/{order_id}/vendors/{b}/{step}"),
                &app.vendor(b),
                json!({}),
            )
            .await;
        assert_ok(&answer);
    }
    let head = settle(&app).await;
    assert_eq!(
        earnings(&app, b, head).await,
        earnings_of("50.00", "5.00", "45.00", "0.00", "45.00", "0.00", "0.00")
    );

    let payout = app.request_payout(b, "20.00").await;
    assert_eq!(payout.status, StatusCode::CREATED, "{:?}", payout.body);
    let too_much = app.request_payout(b, "25.01").await;
    assert_eq!(too_much.status, StatusCode::CONFLICT, "{:?}", too_much.body);

    let at_payout = position(&payout);
    let (accounts, totals) = trial_balance(&app, at_payout).await;
    let expected: BTreeMap<String, (String, String, String)> = [
        ("cash".to_owned(), figures("50.00", "0.00", "50.00")),
        (
            "payouts_in_transit".to_owned(),
            figures("0.00", "20.00", "-20.00"),
        ),
        (
            "customer_funds".to_owned(),
            figures("50.00", "50.00", "0.00"),
        ),
        ("platform_fees".to_owned(), figures("0.00", "5.00", "-5.00")),
        (pending(b), figures("45.00", "45.00", "0.00")),
        (available(b), figures("20.00", "45.00", "-25.00")),
    ]
    .into_iter()
    .collect();
    assert_eq!(accounts, expected);
    assert_eq!(totals, ("165.00".to_owned(), "165.00".to_owned()));
    assert_eq!(
        earnings(&app, b, at_payout).await,
        earnings_of("50.00", "5.00", "45.00", "0.00", "25.00", "20.00", "0.00")
    );
    settle(&app).await;
    reconciles(&app).await;
}

#[tokio::test]
async fn the_trial_balance_is_for_admins_and_auditors_only() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Kayaks").await;
    for token in [app.admin(), app.auditor()] {
        let answer = app.get_at("/v1/ledger/trial-balance", &token, None).await;
        assert_ok(&answer);
        assert_eq!(answer.body["total_debit"], "0.00");
        assert_eq!(answer.body["total_credit"], "0.00");
        assert!(answer.body["accounts"].is_array());
    }
    for token in [app.customer("c-1"), app.vendor(a), app.analyst()] {
        let answer = app.get_at("/v1/ledger/trial-balance", &token, None).await;
        assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
    }
    let anonymous = app
        .send(Method::GET, "/v1/ledger/trial-balance", None, None, &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------
// Earnings and entries
// ---------------------------------------------------------------------------

/// Every page of a vendor's entries at `limit` a page.
async fn all_entries(app: &TestApp, vendor_id: Uuid, token: &str, limit: usize) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/vendors/{vendor_id}/earnings/entries?limit={limit}");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page = app.get_at(&path, token, None).await;
        assert_ok(&page);
        let got = page.body["items"].as_array().expect("items").clone();
        match page.body["next_cursor"].as_str() {
            Some(next) => {
                assert_eq!(got.len(), limit, "a page before the last is full");
                cursor = Some(next.to_owned());
                items.extend(got);
            }
            None => {
                assert!(page.body["next_cursor"].is_null());
                assert!(got.len() <= limit);
                items.extend(got);
                return items;
            }
        }
    }
}

/// Three paid sale orders of A (10.00, 20.00, 30.00; nets 9.00, 18.00,
/// 27.00) and one of B: A's entries page through A's postings only.
#[tokio::test]
async fn a_vendor_pages_through_its_own_entries_and_sees_no_one_elses() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Kayaks").await;
    let b = app.register_vendor("Paddles").await;
    let a_item = app.sale_listing(a, "10.00", 50).await;
    let b_item = app.sale_listing(b, "7.00", 50).await;
    for quantity in 1..=3 {
        let order = app.place("c-1", vec![sale_item(a_item, quantity)]).await;
        app.pay(&order).await.position();
    }
    let order = app.place("c-2", vec![sale_item(b_item, 1)]).await;
    app.pay(&order).await.position();
    let head = settle(&app).await;

    assert_eq!(
        earnings(&app, a, head).await,
        earnings_of("60.00", "6.00", "54.00", "54.00", "0.00", "0.00", "0.00")
    );
    let everything = all_entries(&app, a, &app.vendor(a), 500).await;
    let paged = all_entries(&app, a, &app.vendor(a), 2).await;
    assert_eq!(paged, everything, "pages join up to the whole list");
    assert!(everything.len() >= 3, "{everything:?}");
    let ids: Vec<i64> = everything
        .iter()
        .map(|e| e["posting_id"].as_i64().expect("posting_id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "in posting order: {ids:?}"
    );
    let mut nets: Vec<&str> = everything
        .iter()
        .filter(|e| e["account"] == pending(a).as_str())
        .map(|e| e["credit"].as_str().expect("credit"))
        .collect();
    nets.sort();
    assert_eq!(nets, ["18.00", "27.00", "9.00"]);
    for e in &everything {
        let account = e["account"].as_str().expect("account");
        assert!(
            !account.contains(&b.to_string()),
            "B's account in A's entries: {e}"
        );
        assert!(e["position"].is_i64() && e["kind"].is_string(), "{e}");
    }
    // The admin sees the same.
    assert_eq!(all_entries(&app, a, &app.admin(), 500).await, everything);

    // Nobody else does.
    for path in [
        format!("/v1/vendors/{a}/earnings"),
        format!("/v1/vendors/{a}/earnings/entries"),
    ] {
        for token in [
            app.vendor(b),
            app.customer("c-1"),
            app.analyst(),
            app.auditor(),
        ] {
            let answer = app.get_at(&path, &token, None).await;
            assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
        }
        let anonymous = app.send(Method::GET, &path, None, None, &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
    // An unknown vendor is 404, to the admin.
    let unknown = Uuid::now_v7();
    for path in [
        format!("/v1/vendors/{unknown}/earnings"),
        format!("/v1/vendors/{unknown}/earnings/entries"),
    ] {
        let answer = app.get_at(&path, &app.admin(), Some(head)).await;
        assert_problem(&answer, StatusCode::NOT_FOUND, "not-found");
    }
    // A vendor with no sales has zero earnings and no entries.
    let c = app.register_vendor("Nothing sold").await;
    let head = settle(&app).await;
    assert_eq!(
        earnings(&app, c, head).await,
        earnings_of("0.00", "0.00", "0.00", "0.00", "0.00", "0.00", "0.00")
    );
    assert!(all_entries(&app, c, &app.vendor(c), 50).await.is_empty());
    reconciles(&app).await;
}

// ---------------------------------------------------------------------------
// Analytics
// ---------------------------------------------------------------------------

async fn summary(app: &TestApp, query: &str, min: i64) -> Value {
    let answer = app
        .get_at(
            &format!("/v1/analytics/summary{query}"),
            &app.analyst(),
            Some(min),
        )
        .await;
    assert_ok(&answer);
    answer.body
}

async fn revenue(app: &TestApp, query: &str, min: i64) -> Vec<Value> {
    let answer = app
        .get_at(
            &format!("/v1/analytics/revenue{query}"),
            &app.analyst(),
            Some(min),
        )
        .await;
    assert_ok(&answer);
    answer.body["buckets"].as_array().expect("buckets").clone()
}

fn start_of(bucket: &Value) -> DateTime<Utc> {
    bucket["start"]
        .as_str()
        .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| panic!("a bucket without start: {bucket}"))
}

/// Three orders placed: one paid (rental 3 days × 20.00 = 60.00 plus
/// 2 × 15.50 = 31.00: subtotal 91.00, fees 6.00 + 3.10), one cancelled
/// before payment, one still awaiting payment.
#[tokio::test]
async fn the_summary_and_revenue_count_paid_orders_by_day_week_month_vendor_and_category() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Kayaks").await;
    let b = app.register_vendor("Paddles").await;
    let kayak = app.rental_listing(a, "day", "20.00", "50.00", 5).await;
    let paddle = app.sale_listing(b, "15.50", 10).await;
    let before = Utc::now();
    let paid = app
        .place(
            "c-1",
            vec![rental_days(kayak, 1, 0, 3), sale_item(paddle, 2)],
        )
        .await;
    app.pay(&paid).await.position();
    let cancelled = app.place("c-2", vec![sale_item(paddle, 1)]).await;
    let cancel = app
        .cancel_order(&app.customer("c-2"), cancelled.uuid("order_id"), json!({}))
        .await;
    assert_ok(&cancel);
    assert_eq!(cancel.body["status"], "cancelled");
    app.place("c-3", vec![rental_days(kayak, 1, 10, 11)]).await;
    let head = settle(&app).await;
    let after = Utc::now();

    let s = summary(&app, "", head).await;
    assert_eq!(s["gmv"], "91.00", "{s}");
    assert_eq!(s["orders"], 3);
    assert_eq!(s["paid_orders"], 1);
    assert_eq!(s["avg_order_value"], "91.00");
    assert_eq!(ratio(&s["cancellation_rate"]), Decimal::new(3333, 4));
    assert_eq!(s["refunds"], "0.00");
    assert_eq!(s["rental_days"], "3.00");
    assert_eq!(s["payment_failures"], json!([]));
    let top = s["top_listings"].as_array().expect("top_listings");
    assert_eq!(top.len(), 2, "{top:?}");
    assert_eq!(top[0]["listing_id"], json!(kayak));
    assert_eq!(top[0]["gmv"], "60.00");
    assert_eq!(top[0]["orders"], 1);
    assert_eq!(top[1]["listing_id"], json!(paddle));
    assert_eq!(top[1]["gmv"], "31.00");
    // The same window given explicitly answers the same; an empty one nothing.
    let explicit = summary(
        &app,
        &format!(
            "?from={}&to={}",
            reconcile::WINDOW_FROM,
            reconcile::WINDOW_TO
        ),
        head,
    )
    .await;
    assert_eq!(explicit["gmv"], "91.00");
    assert_eq!(explicit["orders"], 3);
    let empty = summary(
        &app,
        "?from=2001-01-01T00:00:00Z&to=2001-02-01T00:00:00Z",
        head,
    )
    .await;
    assert_eq!(empty["gmv"], "0.00");
    assert_eq!(empty["orders"], 0);
    assert_eq!(empty["avg_order_value"], "0.00");

    let day = revenue(&app, "?granularity=day", head).await;
    assert_eq!(day.len(), 1, "{day:?}");
    assert_eq!(day[0]["gmv"], "91.00");
    assert_eq!(day[0]["platform_fees"], "9.10");
    assert_eq!(day[0]["orders"], 1);
    assert!(day[0].get("key").is_none_or(Value::is_null), "{day:?}");
    let d = start_of(&day[0]);
    assert_eq!((d.hour(), d.minute(), d.second()), (0, 0, 0));
    assert!(d <= after && before < d + chrono::Duration::days(1), "{d}");

    let week = revenue(&app, "?granularity=week", head).await;
    assert_eq!(week.len(), 1, "{week:?}");
    let w = start_of(&week[0]);
    assert_eq!(w.weekday(), chrono::Weekday::Mon, "a week starts on Monday");
    assert_eq!((w.hour(), w.minute(), w.second()), (0, 0, 0));
    assert!(w <= d && d < w + chrono::Duration::days(7));
    assert_eq!(week[0]["gmv"], "91.00");

    let month = revenue(&app, "?granularity=month", head).await;
    assert_eq!(month.len(), 1, "{month:?}");
    let m = start_of(&month[0]);
    assert_eq!(
        (m.day(), m.hour(), m.minute()),
        (1, 0, 0),
        "a month starts on the 1st"
    );
    assert_eq!((m.year(), m.month()), (d.year(), d.month()));
    assert_eq!(month[0]["gmv"], "91.00");

    let by_category: BTreeMap<String, (Value, Value, Value)> =
        revenue(&app, "?group_by=category", head)
            .await
            .into_iter()
            .map(|b| {
                (
                    b["key"].as_str().expect("a key").to_owned(),
                    (
                        b["gmv"].clone(),
                        b["platform_fees"].clone(),
                        b["orders"].clone(),
                    ),
                )
            })
            .collect();
    assert_eq!(
        by_category,
        [
            (
                "boats".to_owned(),
                (json!("60.00"), json!("6.00"), json!(1))
            ),
            ("gear".to_owned(), (json!("31.00"), json!("3.10"), json!(1))),
        ]
        .into_iter()
        .collect()
    );
    let by_vendor: BTreeMap<String, Value> =
        revenue(&app, "?granularity=month&group_by=vendor", head)
            .await
            .into_iter()
            .map(|b| {
                (
                    b["key"].as_str().expect("a key").to_owned(),
                    b["gmv"].clone(),
                )
            })
            .collect();
    assert_eq!(
        by_vendor,
        [
            (a.to_string(), json!("60.00")),
            (b.to_string(), json!("31.00"))
        ]
        .into_iter()
        .collect()
    );
    reconciles(&app).await;
}

/// One rental listing of 3 units offered through [2030-01-01, 2030-01-11):
/// 30 unit-days. Paid: 2 units for 3 days, and 1 unit for 2 days of which
/// one falls in the window; unpaid: 3 units for 5 days. 7 unit-days booked.
#[tokio::test]
async fn rental_days_and_utilisation_count_paid_unit_days_inside_the_window() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Kayaks").await;
    let kayak = app.rental_listing(a, "day", "10.00", "0.00", 3).await;
    let first = app.place("c-1", vec![rental_days(kayak, 2, 1, 4)]).await;
    app.pay(&first).await.position();
    let second = app.place("c-1", vec![rental_days(kayak, 1, 9, 11)]).await;
    app.pay(&second).await.position();
    app.place("c-2", vec![rental_days(kayak, 1, 4, 9)]).await;
    let head = settle(&app).await;
    let s = summary(
        &app,
        "?from=2030-01-01T00:00:00Z&to=2030-01-11T00:00:00Z",
        head,
    )
    .await;
    assert_eq!(s["rental_days"], "7.00", "{s}");
    assert_eq!(ratio(&s["utilization"]), Decimal::new(2333, 4), "{s}");
    // Orders were placed today, not in 2030.
    assert_eq!(s["orders"], 0);
    assert_eq!(s["gmv"], "0.00");
    reconciles(&app).await;
}

#[tokio::test]
async fn a_failed_payment_is_counted_by_its_reason() {
    let app = TestApp::spawn().await;
    let b = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(b, "12.00", 10).await;
    let first = app.place("c-1", vec![sale_item(paddle, 1)]).await;
    let second = app.place("c-2", vec![sale_item(paddle, 2)]).await;
    let mut at = 0;
    for (order, event, reason) in [
        (&first, "evt_f1", "Your card was declined."),
        (&second, "evt_f2", "Your card was declined."),
        (&second, "evt_f3", "Insufficient funds."),
    ] {
        let answer = app
            .payment_webhook(
                event,
                "payment_intent.payment_failed",
                order.uuid("order_id"),
                ledger_tests::webhooks::total_minor(order),
                Some(reason),
            )
            .await;
        assert_ok(&answer);
        at = at.max(position(&answer));
    }
    let s = summary(&app, "", at).await;
    assert_eq!(
        s["payment_failures"],
        json!([{"reason": "Your card was declined.", "count": 2},
               {"reason": "Insufficient funds.", "count": 1}]),
        "{s}"
    );
    assert_eq!(s["paid_orders"], 0);
    assert_eq!(s["gmv"], "0.00");

    // Paid after failing, the order counts; its failure still does.
    let paid = app.pay(&second).await.position();
    let s = summary(&app, "", paid).await;
    assert_eq!(s["paid_orders"], 1);
    assert_eq!(s["gmv"], "24.00");
    assert_eq!(s["payment_failures"][0]["count"], 2);
    settle(&app).await;
    reconciles(&app).await;
}

/// Stripe's `last_payment_error.code` and `.decline_code` are kept on the
/// failure and counted; a failure without them counts under `null`.
#[tokio::test]
async fn failed_payments_are_counted_by_code_and_decline_code() {
    use ledger_tests::webhooks::{payment_event, signed, total_minor, FAILED};
    let app = TestApp::spawn().await;
    let b = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(b, "12.00", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 1)]).await;
    let mut at = 0;
    for (event_id, code, decline_code) in [
        ("evt_c1", Some("card_declined"), Some("insufficient_funds")),
        ("evt_c2", Some("card_declined"), Some("insufficient_funds")),
        ("evt_c3", Some("card_declined"), Some("lost_card")),
        ("evt_c4", Some("expired_card"), None),
        ("evt_c5", None, None),
    ] {
        let mut event = payment_event(
            event_id,
            FAILED,
            order.uuid("order_id"),
            total_minor(&order),
            Some("Your card was declined."),
        );
        event["data"]["object"]["last_payment_error"]["code"] = json!(code);
        event["data"]["object"]["last_payment_error"]["decline_code"] = json!(decline_code);
        let (raw, signature) = signed(
            &event,
            ledger_tests::tokens::WEBHOOK_SECRET,
            Utc::now().timestamp(),
        );
        let answer = app.send_raw_webhook(raw, &signature).await;
        assert_ok(&answer);
        at = at.max(position(&answer));
    }
    let s = summary(&app, "", at).await;
    assert_eq!(
        s["payment_failures"],
        json!([{"reason": "Your card was declined.", "count": 5}]),
        "{s}"
    );
    assert_eq!(
        s["payment_failures_by_code"],
        json!([{"code": "card_declined", "count": 3},
               {"code": "expired_card", "count": 1},
               {"code": null, "count": 1}]),
        "{s}"
    );
    assert_eq!(
        s["payment_failures_by_decline_code"],
        json!([{"decline_code": "insufficient_funds", "count": 2},
               {"decline_code": null, "count": 2},
               {"decline_code": "lost_card", "count": 1}]),
        "{s}"
    );
    settle(&app).await;
    reconciles(&app).await;
}

#[tokio::test]
async fn analytics_are_for_analysts_and_admins_only() {
    let app = TestApp::spawn().await;
    let a = app.register_vendor("Kayaks").await;
    for path in ["/v1/analytics/summary", "/v1/analytics/revenue"] {
        for token in [app.analyst(), app.admin()] {
            assert_ok(&app.get_at(path, &token, None).await);
        }
        for token in [app.customer("c-1"), app.vendor(a), app.auditor()] {
            let answer = app.get_at(path, &token, None).await;
            assert_problem(&answer, StatusCode::FORBIDDEN, "forbidden");
        }
        let anonymous = app.send(Method::GET, path, None, None, &[]).await;
        assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    }
}

#[tokio::test]
async fn bad_analytics_parameters_are_refused() {
    let app = TestApp::spawn().await;
    let token = app.analyst();
    for query in [
        "?granularity=year",
        "?granularity=",
        "?group_by=listing",
        "?group_by=VENDOR",
        "?from=yesterday",
        "?colour=blue",
    ] {
        let answer = app
            .get_at(&format!("/v1/analytics/revenue{query}"), &token, None)
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{query}: {:?}",
            answer.body
        );
        assert!(
            answer
                .header("content-type")
                .is_some_and(|c| c.starts_with("application/problem+json")),
            "{query}"
        );
    }
    for path in ["/v1/analytics/summary", "/v1/analytics/revenue"] {
        for window in [
            "?from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z",
            "?from=2030-01-01T00:00:00Z&to=2030-01-01T00:00:00Z",
        ] {
            let answer = app.get_at(&format!("{path}{window}"), &token, None).await;
            assert_invalid_field(&answer, "to");
        }
    }
}

// ---------------------------------------------------------------------------
// Payouts against a snapshotted vendor
// ---------------------------------------------------------------------------

/// The vendor aggregate is snapshotted every 50 events. Sale 2 × 25.00,
/// fee 5.00: 45.00 available (vendor events 1–2), then 48 payouts of 0.01
/// (events 3–50, the last one snapshotted): 44.52 is left, and exactly that
/// can be paid out; not a cent more.
#[tokio::test]
async fn a_payout_is_checked_against_the_true_balance_after_the_vendor_is_snapshotted() {
    let app = TestApp::spawn().await;
    let every = app.config.command_api.snapshot_every;
    assert_eq!(
        every, 50,
        "the example is computed for snapshots every 50 events"
    );
    let b = app.register_vendor("Paddles").await;
    let paddle = app.sale_listing(b, "25.00", 10).await;
    let order = app.place("c-1", vec![sale_item(paddle, 2)]).await;
    app.pay(&order).await.position();
    let order_id = order.uuid("order_id");
    for step in ["ship", "deliver"] {
        let path = format!("/v1/orders/{order_id}/vendors/{b}/{step}");
        assert_ok(&app.post(&path, &app.vendor(b), json!({})).await);
    }
    settle(&app).await;
    let path = format!("/v1/vendors/{b}/payouts");
    for _ in 0..48 {
        let answer = app
            .post(&path, &app.admin(), json!({"amount": "0.01"}))
            .await;
        assert_eq!(answer.status, StatusCode::CREATED, "{:?}", answer.body);
    }
    let head = settle(&app).await;
    assert_eq!(
        earnings(&app, b, head).await,
        earnings_of("50.00", "5.00", "45.00", "0.00", "44.52", "0.48", "0.00")
    );
    let rest = app
        .post(&path, &app.admin(), json!({"amount": "44.52"}))
        .await;
    assert_eq!(rest.status, StatusCode::CREATED, "{:?}", rest.body);
    let more = app
        .post(&path, &app.admin(), json!({"amount": "0.01"}))
        .await;
    assert_eq!(more.status, StatusCode::CONFLICT, "{:?}", more.body);
    settle(&app).await;
    reconciles(&app).await;
}
