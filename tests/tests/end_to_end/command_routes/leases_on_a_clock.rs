//! Leases: rental lines paid by instalments (issue 15 item 3), over HTTP on
//! a ledger whose every part runs on a `ManualClock` (the test moves time,
//! never sleeps for it; the sweeper runs the lease scheduler every 100 ms).
//!
//! - a lease is placed with a plan (`payment_plan`), its schedule in the
//!   answer; a plan past the rental is 422 on its field;
//! - the upfront payment (`due_now`) confirms it; instalments are paid by
//!   the webhook, by number (`metadata.instalment`) or the oldest unpaid;
//! - an unpaid instalment goes overdue (the analytics count it), paying it
//!   reinstates the lease; left unpaid, dunning suspends then terminates
//!   the lease, writes off what is unpaid and frees its unit;
//! - the customer terminates another lease early after pickup: the rest is
//!   due at once and paid like an instalment; one ended before pickup is
//!   waived the rest and frees its unit; instalments unpaid after the
//!   return are the platform's loss;
//! - schedulers racing on one lease take each dunning step once;
//! - the ledger stays balanced, the customers' receivable ends at what is
//!   still owed, and the reconciliation checker finds every figure as the
//!   log says (tests/src/reconcile/leases.rs).

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use ledger_clock::ManualClock;
use ledger_tests::answer::{dec, money, position};
use ledger_tests::pipeline::{eventually, settle};
use ledger_tests::reconcile;
use ledger_tests::tokens::WEBHOOK_SECRET;
use ledger_tests::webhooks::{minor_units, payment_event, signed, SUCCEEDED};
use ledger_tests::{assert_problem, Answer, TestApp};
use reqwest::{Method, StatusCode};
use rust_decimal::Decimal;
use serde_json::{json, Value};
use uuid::Uuid;

fn time(text: &str) -> DateTime<Utc> {
    text.parse().expect("an RFC 3339 time")
}

/// A ledger on a manual clock at 2030-01-01T08:00Z with one vendor's car
/// (a day listing at 10.00 a day, deposit 100.00, one unit).
async fn lessor() -> (TestApp, Arc<ManualClock>, Uuid, Uuid) {
    let clock = Arc::new(ManualClock::new(time("2030-01-01T08:00:00Z")));
    let app = TestApp::spawn_with_clock(clock.clone()).await;
    let vendor = app.register_vendor("City Car Lease").await;
    let listing = app
        .rental_listing(vendor, "day", "10.00", "100.00", 1)
        .await;
    (app, clock, vendor, listing)
}

/// 90 days from Jan 31, 90.00 with the order then 3 monthly instalments.
fn lease_item(listing: Uuid, instalments: u32) -> Value {
    json!({"listing_id": listing, "quantity": 1,
           "start": "2030-01-31T10:00:00Z", "end": "2030-05-01T10:00:00Z",
           "payment_plan": {"deposit": "90.00", "instalments": instalments, "interval": "month"}})
}

fn line_of(order: &Answer) -> Uuid {
    Uuid::parse_str(
        order.body["lines"][0]["line_id"]
            .as_str()
            .expect("a line id"),
    )
    .expect("a uuid")
}

/// Pays `amount` for `order_id` by the webhook, naming `instalment` if
/// given, as provider event `event_id`.
async fn pay(
    app: &TestApp,
    event_id: &str,
    order_id: Uuid,
    amount: &str,
    instalment: Option<u32>,
) -> Answer {
    let mut event = payment_event(
        event_id,
        SUCCEEDED,
        order_id,
        minor_units(dec(amount)),
        None,
    );
    if let Some(n) = instalment {
        event["data"]["object"]["metadata"]["instalment"] = json!(n.to_string());
    }
    let (raw, signature) = signed(&event, WEBHOOK_SECRET, app.now().timestamp());
    let answer = app.send_raw_webhook(raw, &signature).await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    answer
}

async fn shown(app: &TestApp, order_id: Uuid, min: Option<i64>) -> Value {
    let shown = app.order(&app.admin(), order_id, min).await;
    assert_eq!(shown.status, StatusCode::OK, "{:?}", shown.body);
    shown.body
}

/// The trial balance once the ledger reached `min`, debits equal to credits.
async fn balanced_trial(app: &TestApp, min: i64) -> Value {
    let trial = app
        .get_at("/v1/ledger/trial-balance", &app.admin(), Some(min))
        .await;
    assert_eq!(trial.status, StatusCode::OK, "{:?}", trial.body);
    assert_eq!(
        trial.body["total_debit"], trial.body["total_credit"],
        "{:?}",
        trial.body
    );
    trial.body
}

fn balance(trial: &Value, account: &str) -> Decimal {
    trial["accounts"]
        .as_array()
        .and_then(|rows| rows.iter().find(|r| r["account"] == account))
        .map(|r| money(r, "balance"))
        .unwrap_or_default()
}

/// Once settled, the checker finds nothing amiss.
async fn reconciled(app: &TestApp) {
    settle(app, Duration::from_secs(60))
        .await
        .expect("the read models settle");
    let observed = reconcile::observe(app).await.expect("observe the ledger");
    let found = reconcile::check(&app.pool, &observed)
        .await
        .expect("read the log");
    let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
    assert!(found.is_empty(), "{}", lines.join("\n"));
}

async fn summary(app: &TestApp, min: Option<i64>) -> Value {
    let summary = app
        .get_at(
            "/v1/analytics/summary?from=2030-01-01T00:00:00Z&to=2031-01-01T00:00:00Z",
            &app.admin(),
            min,
        )
        .await;
    assert_eq!(summary.status, StatusCode::OK, "{:?}", summary.body);
    summary.body
}

/// Waits until the order shows `check` (the sweeper acts within 100 ms of a
/// clock move; the read model follows).
async fn until(app: &TestApp, order_id: Uuid, what: &str, check: impl Fn(&Value) -> bool) {
    let reached = eventually(Duration::from_secs(10), || async {
        check(&shown(app, order_id, None).await)
    })
    .await;
    assert!(reached, "{what}: {:?}", shown(app, order_id, None).await);
}

#[tokio::test]
async fn a_lease_is_paid_by_instalments_through_dunning_to_termination() {
    let (app, clock, _vendor, listing) = lessor().await;

    // A fifth month would fall due after the rental ends.
    let refused = app.place_order("alice", vec![lease_item(listing, 5)]).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        refused.body["errors"][0]["field"],
        "items[0].payment_plan.instalments"
    );

    // A yearly plan, or no deposit: 422 on the plan's field.
    let mut yearly = lease_item(listing, 1);
    yearly["payment_plan"]["interval"] = json!("year");
    let refused = app.place_order("alice", vec![yearly]).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert!(
        refused.body["errors"][0]["field"]
            .as_str()
            .is_some_and(|f| f.starts_with("items[0].payment_plan")),
        "{:?}",
        refused.body
    );
    let mut free = lease_item(listing, 3);
    free["payment_plan"]["deposit"] = json!("0.00");
    let refused = app.place_order("alice", vec![free]).await;
    assert_problem(&refused, StatusCode::UNPROCESSABLE_ENTITY, "validation");
    assert_eq!(
        refused.body["errors"][0]["field"],
        "items[0].payment_plan.deposit"
    );

    let order = app.place("alice", vec![lease_item(listing, 3)]).await;
    let order_id = order.uuid("order_id");
    let line = &order.body["lines"][0];
    let line_total = money(line, "subtotal") + money(line, "tax");
    let schedule = order.body["schedule"].as_array().expect("a schedule");
    let dues: Vec<&str> = schedule
        .iter()
        .map(|i| i["due"].as_str().expect("due"))
        .collect();
    assert_eq!(
        dues,
        [
            "2030-01-31T10:00:00Z",
            "2030-02-28T10:00:00Z",
            "2030-03-31T10:00:00Z"
        ]
    );
    let amounts: Vec<Decimal> = schedule.iter().map(|i| money(i, "amount")).collect();
    assert_eq!(
        amounts.iter().copied().sum::<Decimal>() + dec("90.00"),
        line_total,
        "the instalments and the deposit make the line's price and tax"
    );
    assert_eq!(line["payment_plan"]["instalments"], 3);
    let due_now = money(&order.body, "due_now");
    assert_eq!(
        due_now,
        money(&order.body, "total") - amounts.iter().copied().sum::<Decimal>()
    );

    // The upfront payment confirms it.
    let paid = pay(&app, "evt_up", order_id, &due_now.to_string(), None).await;
    assert_eq!(paid.body["status"], "confirmed");
    // Instalment 1 by number; the same provider event again changes nothing.
    let first = amounts[0].to_string();
    pay(&app, "evt_i1", order_id, &first, Some(1)).await;
    let again = pay(&app, "evt_i1", order_id, &first, Some(1)).await;
    assert_eq!(again.body["duplicate"], true);
    let body = shown(&app, order_id, Some(position(&again))).await;
    assert_eq!(body["payment_plan"]["status"], "active");
    assert_eq!(body["schedule"][0]["status"], "paid");
    assert_eq!(body["schedule"][1]["status"], "due");

    // A day after Feb 28 instalment 2 is overdue and the lease past due.
    clock.set(time("2030-03-01T10:00:00Z"));
    until(&app, order_id, "instalment 2 overdue", |b| {
        b["schedule"][1]["status"] == "overdue" && b["payment_plan"]["status"] == "past_due"
    })
    .await;
    let figures = summary(&app, None).await;
    assert_eq!(figures["instalments_overdue"], money_text(amounts[1]));
    assert_eq!(figures["instalments_overdue_count"], 1);
    // Paid (the oldest unpaid, no number): in good standing again.
    let second = pay(&app, "evt_i2", order_id, &amounts[1].to_string(), None).await;
    let body = shown(&app, order_id, Some(position(&second))).await;
    assert_eq!(body["schedule"][1]["status"], "paid");
    assert_eq!(body["payment_plan"]["status"], "active");

    // Instalment 3 never paid: overdue on Apr 1, suspended a week later,
    // terminated for non-payment 14 days after that.
    clock.set(time("2030-04-01T10:00:00Z"));
    until(&app, order_id, "instalment 3 overdue", |b| {
        b["schedule"][2]["status"] == "overdue"
    })
    .await;
    clock.set(time("2030-04-08T10:00:00Z"));
    until(&app, order_id, "suspended", |b| {
        b["payment_plan"]["status"] == "suspended"
    })
    .await;
    clock.set(time("2030-04-22T10:00:00Z"));
    until(&app, order_id, "terminated", |b| {
        b["payment_plan"]["status"] == "terminated"
    })
    .await;
    let body = shown(&app, order_id, None).await;
    assert_eq!(body["payment_plan"]["ended_by"], "non_payment");
    assert_eq!(body["schedule"][2]["status"], "written_off");
    assert_eq!(body["payment_plan"]["amount_due"], "0.00");
    // Never picked up: returned at the termination, its deposit refunded.
    assert_eq!(body["lines"][0]["status"], "returned");
    assert_eq!(body["lines"][0]["deposit_refunded"], "100.00");
    assert_eq!(body["status"], "completed");

    // Its unit is free from the termination: another customer books it.
    let booked = app
        .place_order(
            "bob",
            vec![json!({"listing_id": listing, "quantity": 1,
                        "start": "2030-04-23T10:00:00Z", "end": "2030-04-25T10:00:00Z"})],
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{:?}", booked.body);

    // The books: balanced, nothing left owed, the unpaid instalment written
    // off the vendor's part; cash = what was paid less the deposit back.
    let figures = summary(&app, Some(position(&booked))).await;
    assert_eq!(figures["instalments_overdue"], "0.00");
    let trial = balanced_trial(&app, position(&booked)).await;
    assert_eq!(balance(&trial, "customer_receivable"), dec("0.00"));
    assert_eq!(balance(&trial, "customer_funds"), dec("0.00"));
    assert_eq!(balance(&trial, "deposits_held"), dec("0.00"));
    assert_eq!(
        balance(&trial, "cash"),
        due_now + amounts[0] + amounts[1] - dec("100.00")
    );
    reconciled(&app).await;
}

fn money_text(amount: Decimal) -> String {
    format!("{amount:.2}")
}

#[tokio::test]
async fn a_customer_terminates_a_lease_early_and_owes_the_rest_at_once() {
    let (app, clock, vendor, listing) = lessor().await;
    let order = app.place("carol", vec![lease_item(listing, 3)]).await;
    let (order_id, line_id) = (order.uuid("order_id"), line_of(&order));
    let due_now = money(&order.body, "due_now");
    pay(&app, "evt_up", order_id, &due_now.to_string(), None).await;

    // Only the lease's customer or an admin may end it.
    let path = format!("/v1/orders/{order_id}/lines/{line_id}/terminate");
    let by_other = app
        .send(
            Method::POST,
            &path,
            Some(&app.customer("mallory")),
            None,
            &[],
        )
        .await;
    assert_eq!(
        by_other.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        by_other.body
    );
    let by_vendor = app
        .send(Method::POST, &path, Some(&app.vendor(vendor)), None, &[])
        .await;
    assert_eq!(
        by_vendor.status,
        StatusCode::FORBIDDEN,
        "{:?}",
        by_vendor.body
    );
    // It cannot be cancelled or refunded instead.
    let cancelled = app
        .cancel_order(&app.customer("carol"), order_id, json!({}))
        .await;
    assert_problem(&cancelled, StatusCode::CONFLICT, "invalid-state");

    // Picked up at its start; instalment 1 paid.
    clock.set(time("2030-01-31T10:00:00Z"));
    let picked = app.pickup(&app.vendor(vendor), order_id, line_id).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);
    let schedule = order.body["schedule"].as_array().expect("a schedule");
    let amounts: Vec<Decimal> = schedule.iter().map(|i| money(i, "amount")).collect();
    pay(&app, "evt_i1", order_id, &amounts[0].to_string(), Some(1)).await;

    // Ten days in, the customer ends it: the rest is due at once.
    clock.set(time("2030-02-10T10:00:00Z"));
    let ended = app
        .send(Method::POST, &path, Some(&app.customer("carol")), None, &[])
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    assert_eq!(ended.body["lease_status"], "terminated");
    let rest = amounts[1] + amounts[2];
    assert_eq!(money(&ended.body, "amount_due"), rest);
    let statuses: Vec<&str> = ended.body["schedule"]
        .as_array()
        .expect("a schedule")
        .iter()
        .map(|i| i["status"].as_str().expect("status"))
        .collect();
    assert_eq!(statuses, ["paid", "cancelled", "cancelled", "due"]);
    // Again: nothing more.
    let again = app
        .send(Method::POST, &path, Some(&app.customer("carol")), None, &[])
        .await;
    assert_eq!(again.status, StatusCode::OK, "{:?}", again.body);

    // The charge is paid like an instalment; the car comes back.
    let paid = pay(&app, "evt_rest", order_id, &rest.to_string(), Some(4)).await;
    let returned = app
        .return_line(&app.vendor(vendor), order_id, line_id, json!({}))
        .await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    let min = position(&returned).max(position(&paid));
    let body = shown(&app, order_id, Some(min)).await;
    assert_eq!(body["payment_plan"]["ended_by"], "customer");
    assert_eq!(body["payment_plan"]["amount_due"], "0.00");
    assert_eq!(body["status"], "completed");

    // Everything paid: the books balanced, nothing owed, the vendor's whole
    // net available.
    let trial = balanced_trial(&app, min).await;
    assert_eq!(balance(&trial, "customer_receivable"), dec("0.00"));
    assert_eq!(balance(&trial, "customer_funds"), dec("0.00"));
    let earnings = app.earnings(vendor, Some(min)).await;
    assert_eq!(earnings.pending, dec("0.00"));
    assert_eq!(earnings.available, money(&order.body["vendors"][0], "net"));
    reconciled(&app).await;
}

#[tokio::test]
async fn a_lease_ended_before_pickup_waives_the_rest_and_frees_its_unit() {
    let (app, clock, vendor, listing) = lessor().await;
    let order = app.place("dave", vec![lease_item(listing, 3)]).await;
    let (order_id, line_id) = (order.uuid("order_id"), line_of(&order));
    let due_now = money(&order.body, "due_now");
    pay(&app, "evt_up", order_id, &due_now.to_string(), None).await;
    // The unit is the lease's: nobody else may book it.
    let taken = app
        .place_order(
            "erin",
            vec![json!({"listing_id": listing, "quantity": 1,
                        "start": "2030-02-10T10:00:00Z", "end": "2030-02-12T10:00:00Z"})],
        )
        .await;
    assert_problem(&taken, StatusCode::CONFLICT, "unavailable");

    // A week before the start, with no cancellation policy: nothing more
    // is due, the line comes back at once with its deposit.
    clock.set(time("2030-01-24T10:00:00Z"));
    let path = format!("/v1/orders/{order_id}/lines/{line_id}/terminate");
    let ended = app
        .send(Method::POST, &path, Some(&app.admin()), None, &[])
        .await;
    assert_eq!(ended.status, StatusCode::OK, "{:?}", ended.body);
    assert_eq!(ended.body["amount_due"], "0.00");
    assert_eq!(ended.body["order_status"], "completed");
    let body = shown(&app, order_id, Some(position(&ended))).await;
    assert_eq!(body["lines"][0]["status"], "returned");
    assert_eq!(body["lines"][0]["deposit_refunded"], "100.00");

    let booked = app
        .place_order(
            "erin",
            vec![json!({"listing_id": listing, "quantity": 1,
                        "start": "2030-02-10T10:00:00Z", "end": "2030-02-12T10:00:00Z"})],
        )
        .await;
    assert_eq!(booked.status, StatusCode::CREATED, "{:?}", booked.body);
    // The vendor keeps its share of the upfront 90.00 only.
    let earnings = app.earnings(vendor, Some(position(&booked))).await;
    let trial = balanced_trial(&app, position(&booked)).await;
    assert_eq!(balance(&trial, "customer_receivable"), dec("0.00"));
    assert_eq!(earnings.pending, dec("0.00"));
    assert!(earnings.available < money(&order.body["vendors"][0], "net"));
    reconciled(&app).await;
}

#[tokio::test]
async fn instalments_unpaid_after_the_return_are_the_platforms_loss() {
    let (app, clock, vendor, listing) = lessor().await;
    let order = app.place("frank", vec![lease_item(listing, 3)]).await;
    let (order_id, line_id) = (order.uuid("order_id"), line_of(&order));
    let due_now = money(&order.body, "due_now");
    pay(&app, "evt_up", order_id, &due_now.to_string(), None).await;
    clock.set(time("2030-01-31T10:00:00Z"));
    let picked = app.pickup(&app.vendor(vendor), order_id, line_id).await;
    assert_eq!(picked.status, StatusCode::OK, "{:?}", picked.body);
    // Back after a day: the vendor's part is fulfilled, its whole net
    // available, with no instalment paid.
    clock.set(time("2030-02-01T09:00:00Z"));
    let returned = app
        .return_line(&app.vendor(vendor), order_id, line_id, json!({}))
        .await;
    assert_eq!(returned.status, StatusCode::OK, "{:?}", returned.body);
    // Instalment 1 overdue since Feb 1 10:00; suspended, then terminated.
    clock.set(time("2030-02-01T10:00:00Z"));
    until(&app, order_id, "past due", |b| {
        b["payment_plan"]["status"] == "past_due"
    })
    .await;
    clock.set(time("2030-02-08T10:00:00Z"));
    until(&app, order_id, "suspended", |b| {
        b["payment_plan"]["status"] == "suspended"
    })
    .await;
    clock.set(time("2030-02-22T10:00:00Z"));
    until(&app, order_id, "terminated", |b| {
        b["payment_plan"]["status"] == "terminated"
    })
    .await;
    let body = shown(&app, order_id, None).await;
    let written_off: Vec<&Value> = body["schedule"]
        .as_array()
        .expect("a schedule")
        .iter()
        .filter(|i| i["status"] == "written_off")
        .collect();
    assert_eq!(written_off.len(), 3);
    let settled = ledger_tests::pipeline::settle(&app, Duration::from_secs(60))
        .await
        .expect("settle");
    let trial = balanced_trial(&app, settled).await;
    let scheduled: Decimal = written_off.iter().map(|i| money(i, "amount")).sum();
    assert_eq!(balance(&trial, "instalment_write_offs"), scheduled);
    assert_eq!(balance(&trial, "customer_receivable"), dec("0.00"));
    let earnings = app.earnings(vendor, Some(settled)).await;
    assert_eq!(earnings.available, money(&order.body["vendors"][0], "net"));
    reconciled(&app).await;
}

/// How many events of `event_type` the order's stream holds.
async fn count(app: &TestApp, aggregate_id: Uuid, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = $2")
        .bind(aggregate_id.to_string())
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .expect("count events")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedulers_racing_take_each_dunning_step_once() {
    use command_api::application::leases;
    use command_api::{CommandApiConfig, CommandApp};

    let (app, clock, _vendor, listing) = lessor().await;
    let order = app.place("gina", vec![lease_item(listing, 3)]).await;
    let order_id = order.uuid("order_id");
    let due_now = money(&order.body, "due_now");
    pay(&app, "evt_up", order_id, &due_now.to_string(), None).await;
    // Two more processes on the same log and clock, besides the server's
    // own sweeper.
    let process = || {
        CommandApp::with_clock(
            CommandApiConfig::for_tests(ledger_tests::JWT_SECRET, WEBHOOK_SECRET),
            app.pool.clone(),
            clock.clone(),
        )
    };
    let (a, b) = (process(), process());
    for now in [
        "2030-02-01T10:00:00Z",
        "2030-03-01T10:00:00Z",
        "2030-04-01T10:00:00Z",
        "2030-04-08T10:00:00Z",
        "2030-04-22T10:00:00Z",
        "2030-06-01T10:00:00Z",
    ] {
        clock.set(time(now));
        for _ in 0..2 {
            let (x, y) = tokio::join!(leases::tick(&a), leases::tick(&b));
            x.expect("scheduler a");
            y.expect("scheduler b");
        }
    }
    assert_eq!(count(&app, order_id, "InstalmentOverdue").await, 3);
    assert_eq!(count(&app, order_id, "LeasePastDue").await, 1);
    assert_eq!(count(&app, order_id, "LeaseSuspended").await, 1);
    assert_eq!(count(&app, order_id, "LeaseTerminated").await, 1);
    assert_eq!(count(&app, order_id, "InstalmentsWrittenOff").await, 1);
    assert_eq!(count(&app, order_id, "LineReturned").await, 1);
    let returns: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_id = $1 AND event_type = 'ReturnRecorded'",
    )
    .bind(listing.to_string())
    .fetch_one(&app.pool)
    .await
    .expect("count returns");
    assert_eq!(returns, 1);
    reconciled(&app).await;
}
