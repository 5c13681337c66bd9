//! `Idempotency-Key` (API.md "Conventions"): the same key with the same body
//! returns the first answer again (status and body) with
//! `Idempotent-Replayed: true` and records nothing new; the same key with
//! another body is 422 `idempotency-key-reused`; a request racing one still
//! in flight is 409; keys are kept 24 h, per principal.

use command_api::Role;
use futures::future::join_all;
use ledger_tests::assert_problem;
use ledger_tests::Marketplace;
use ledger_tests::{at, Answer, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const REPLAYED: &str = "idempotent-replayed";

/// The hash the ledger keyed a request by before it compared canonical
/// JSON: sha256(method " " uri "\n" body). Keys stored with it still match.
fn request_hash(method: &str, uri: &str, body: &Value) -> Vec<u8> {
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update(b" ");
    hasher.update(uri.as_bytes());
    hasher.update(b"\n");
    hasher.update(serde_json::to_vec(body).expect("serialise"));
    hasher.finalize().to_vec()
}

#[track_caller]
fn assert_replay_of(replay: &Answer, first: &Answer) {
    assert_eq!(replay.status, first.status, "{:?}", replay.body);
    assert_eq!(replay.body, first.body, "the first answer's body again");
    assert_eq!(replay.header(REPLAYED), Some("true"));
    assert_eq!(
        replay.header("content-type"),
        first.header("content-type"),
        "the first answer's content type again"
    );
}

#[track_caller]
fn assert_first(answer: &Answer, status: StatusCode) {
    assert_eq!(answer.status, status, "{:?}", answer.body);
    assert_eq!(answer.header(REPLAYED), None, "a first answer is no replay");
}

async fn order_count(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Order' AND event_type = 'OrderPlaced'",
    )
    .fetch_one(&app.pool)
    .await
    .expect("count orders")
}

async fn key_row(app: &TestApp, principal: &str, key: &str) -> Option<(String, Option<i16>)> {
    sqlx::query_as(
        "SELECT state, response_status FROM idempotency_keys
          WHERE principal = $1 AND idempotency_key = $2",
    )
    .bind(principal)
    .bind(key)
    .fetch_optional(&app.pool)
    .await
    .expect("read the key")
}

#[tokio::test]
async fn an_order_repeated_with_the_same_key_and_body_returns_the_first_answer_and_records_nothing()
{
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_shop("Alpine", 1, 2).await;
    let (sale, rental) = (shop.sale, shop.rental);
    let token = app.customer("c1");
    let body = json!({"items": [
        {"listing_id": sale, "quantity": 1},
        {"listing_id": rental, "quantity": 2, "start": at(1, 0), "end": at(3, 0)},
    ]});

    let first = app
        .post_with_key("/v1/orders", &token, body.clone(), "order-1")
        .await;
    assert_first(&first, StatusCode::CREATED);
    let after_first = app.event_count().await;

    for _ in 0..3 {
        let again = app
            .post_with_key("/v1/orders", &token, body.clone(), "order-1")
            .await;
        assert_replay_of(&again, &first);
        assert_eq!(again.uuid("order_id"), first.uuid("order_id"));
    }
    assert_eq!(
        app.event_count().await,
        after_first,
        "a replay records nothing"
    );
    assert_eq!(order_count(&app).await, 1);

    // The stock and units are held once: a new key finds nothing left.
    let other = app
        .post_with_key("/v1/orders", &token, body, "order-2")
        .await;
    assert_problem(&other, StatusCode::CONFLICT, "unavailable");
}

#[tokio::test]
async fn a_vendor_registration_repeated_with_the_same_key_registers_one_vendor() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let body = json!({"name": "Alpine"});
    let first = app
        .post_with_key("/v1/vendors", &admin, body.clone(), "vendor-1")
        .await;
    assert_first(&first, StatusCode::CREATED);
    let count = app.event_count().await;

    let again = app
        .post_with_key("/v1/vendors", &admin, body.clone(), "vendor-1")
        .await;
    assert_replay_of(&again, &first);
    assert_eq!(app.event_count().await, count);

    // Without a key, the same body is a new vendor.
    let unkeyed = app.post("/v1/vendors", &admin, body).await;
    assert_first(&unkeyed, StatusCode::CREATED);
    assert_ne!(unkeyed.uuid("vendor_id"), first.uuid("vendor_id"));
}

#[tokio::test]
async fn a_409_answer_is_replayed_even_after_the_conflict_is_gone() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_shop("Alpine", 1, 2).await;
    let (vendor_id, sale) = (shop.vendor_id, shop.sale);
    let token = app.customer("c1");
    let body = json!({"items": [{"listing_id": sale, "quantity": 3}]});
    let first = app
        .post_with_key("/v1/orders", &token, body.clone(), "too-many")
        .await;
    assert_first(&first, StatusCode::CONFLICT);
    assert_eq!(first.problem_type(), "unavailable");

    let restocked = app
        .change_stock(&app.vendor(vendor_id), sale, json!({"delta": 5}))
        .await;
    assert_eq!(restocked.status, StatusCode::OK, "{:?}", restocked.body);
    let count = app.event_count().await;

    let again = app
        .post_with_key("/v1/orders", &token, body.clone(), "too-many")
        .await;
    assert_replay_of(&again, &first);
    assert_eq!(
        again.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(app.event_count().await, count);
    assert_eq!(order_count(&app).await, 0);

    // A new key runs the request anew.
    let fresh = app
        .post_with_key("/v1/orders", &token, body, "too-many-2")
        .await;
    assert_first(&fresh, StatusCode::CREATED);
}

#[tokio::test]
async fn a_422_answer_is_replayed_and_records_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let before = app.event_count().await;
    let first = app
        .post_with_key("/v1/vendors", &admin, json!({"name": "  "}), "blank-name")
        .await;
    assert_first(&first, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(first.problem_type(), "validation");
    let again = app
        .post_with_key("/v1/vendors", &admin, json!({"name": "  "}), "blank-name")
        .await;
    assert_replay_of(&again, &first);
    assert_eq!(again.body["errors"][0]["field"], "name");
    assert_eq!(app.event_count().await, before);
}

#[tokio::test]
async fn the_same_key_with_another_body_or_route_is_422_idempotency_key_reused_and_records_nothing()
{
    let app = TestApp::spawn().await;
    let sale = Marketplace::new(&app).with_shop("Alpine", 5, 2).await.sale;
    let token = app.customer("c1");
    let first = app
        .post_with_key(
            "/v1/orders",
            &token,
            json!({"items": [{"listing_id": sale, "quantity": 1}]}),
            "reused",
        )
        .await;
    assert_first(&first, StatusCode::CREATED);
    let count = app.event_count().await;

    let other_body = app
        .post_with_key(
            "/v1/orders",
            &token,
            json!({"items": [{"listing_id": sale, "quantity": 2}]}),
            "reused",
        )
        .await;
    assert_problem(
        &other_body,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    assert_eq!(other_body.header(REPLAYED), None);

    let other_route = app
        .post_with_key(
            &format!("/v1/orders/{}/cancel", first.uuid("order_id")),
            &token,
            json!({"items": [{"listing_id": sale, "quantity": 1}]}),
            "reused",
        )
        .await;
    assert_problem(
        &other_route,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    assert_eq!(app.event_count().await, count);

    // The first answer is still there for the first body.
    let again = app
        .post_with_key(
            "/v1/orders",
            &token,
            json!({"items": [{"listing_id": sale, "quantity": 1}]}),
            "reused",
        )
        .await;
    assert_replay_of(&again, &first);
}

#[tokio::test]
async fn keys_are_per_principal_so_two_customers_with_one_key_get_two_orders() {
    let app = TestApp::spawn().await;
    let sale = Marketplace::new(&app).with_shop("Alpine", 5, 2).await.sale;
    let body = json!({"items": [{"listing_id": sale, "quantity": 1}]});
    let first = app
        .post_with_key("/v1/orders", &app.customer("c1"), body.clone(), "shared")
        .await;
    let second = app
        .post_with_key("/v1/orders", &app.customer("c2"), body.clone(), "shared")
        .await;
    assert_first(&first, StatusCode::CREATED);
    assert_first(&second, StatusCode::CREATED);
    assert_ne!(first.uuid("order_id"), second.uuid("order_id"));
    assert_eq!(order_count(&app).await, 2);

    // And each customer's own retry is answered from its own key.
    let retry = app
        .post_with_key("/v1/orders", &app.customer("c2"), body, "shared")
        .await;
    assert_replay_of(&retry, &second);
}

#[tokio::test]
async fn a_request_while_the_same_key_is_in_flight_is_409_and_records_nothing() {
    let app = TestApp::spawn().await;
    let sale = Marketplace::new(&app).with_shop("Alpine", 5, 2).await.sale;
    let body = json!({"items": [{"listing_id": sale, "quantity": 1}]});
    sqlx::query(
        "INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, state, lease_until)
         VALUES ($1, $2, $3, 'in_flight', now() + interval '60 seconds')",
    )
    .bind("customer:c1")
    .bind("busy")
    .bind(request_hash("POST", "/v1/orders", &body))
    .execute(&app.pool)
    .await
    .expect("claim the key");
    let before = app.event_count().await;

    let answer = app
        .post_with_key("/v1/orders", &app.customer("c1"), body.clone(), "busy")
        .await;
    assert_problem(&answer, StatusCode::CONFLICT, "idempotency-key-in-flight");
    assert_eq!(answer.header(REPLAYED), None);
    assert_eq!(app.event_count().await, before);
    // The claim is left to its owner.
    assert_eq!(
        key_row(&app, "customer:c1", "busy").await,
        Some(("in_flight".to_owned(), None))
    );
}

#[tokio::test]
async fn a_key_whose_in_flight_lease_ran_out_is_taken_over_and_then_replayed() {
    let app = TestApp::spawn().await;
    let sale = Marketplace::new(&app).with_shop("Alpine", 5, 2).await.sale;
    let body = json!({"items": [{"listing_id": sale, "quantity": 1}]});
    sqlx::query(
        "INSERT INTO idempotency_keys (principal, idempotency_key, request_hash, state, lease_until)
         VALUES ($1, $2, $3, 'in_flight', now() - interval '1 second')",
    )
    .bind("customer:c1")
    .bind("abandoned")
    .bind(request_hash("POST", "/v1/orders", &body))
    .execute(&app.pool)
    .await
    .expect("claim the key");

    let taken = app
        .post_with_key("/v1/orders", &app.customer("c1"), body.clone(), "abandoned")
        .await;
    assert_first(&taken, StatusCode::CREATED);
    assert_eq!(
        key_row(&app, "customer:c1", "abandoned").await,
        Some(("completed".to_owned(), Some(201)))
    );
    let count = app.event_count().await;
    let again = app
        .post_with_key("/v1/orders", &app.customer("c1"), body, "abandoned")
        .await;
    assert_replay_of(&again, &taken);
    assert_eq!(app.event_count().await, count);
    assert_eq!(order_count(&app).await, 1);
}

#[tokio::test]
async fn a_key_older_than_24_hours_is_forgotten_and_the_request_runs_anew() {
    let app = TestApp::spawn().await;
    let sale = Marketplace::new(&app).with_shop("Alpine", 5, 2).await.sale;
    let token = app.customer("c1");
    let body = json!({"items": [{"listing_id": sale, "quantity": 1}]});
    let first = app
        .post_with_key("/v1/orders", &token, body.clone(), "old")
        .await;
    assert_first(&first, StatusCode::CREATED);

    // 23 hours on, the key still answers.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '23 hours'")
        .execute(&app.pool)
        .await
        .expect("age the key");
    let kept = app
        .post_with_key("/v1/orders", &token, body.clone(), "old")
        .await;
    assert_replay_of(&kept, &first);

    // 25 hours on, it is new again: same body or another.
    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("age the key");
    let count = app.event_count().await;
    let anew = app
        .post_with_key("/v1/orders", &token, body.clone(), "old")
        .await;
    assert_first(&anew, StatusCode::CREATED);
    assert_ne!(anew.uuid("order_id"), first.uuid("order_id"));
    assert!(app.event_count().await > count);

    sqlx::query("UPDATE idempotency_keys SET created_at = now() - interval '25 hours'")
        .execute(&app.pool)
        .await
        .expect("age the key");
    let other_body = app
        .post_with_key(
            "/v1/orders",
            &token,
            json!({"items": [{"listing_id": sale, "quantity": 2}]}),
            "old",
        )
        .await;
    assert_first(&other_body, StatusCode::CREATED);
    assert_eq!(order_count(&app).await, 3);
}

#[tokio::test]
async fn twenty_concurrent_identical_requests_with_one_key_create_exactly_one_order() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_shop("Alpine", 50, 2).await;
    let (sale, rental) = (shop.sale, shop.rental);
    let token = app.customer("c1");
    let body = json!({"items": [
        {"listing_id": sale, "quantity": 1},
        {"listing_id": rental, "quantity": 1, "start": at(1, 0), "end": at(2, 0)},
    ]});
    let answers = join_all(
        (0..20).map(|_| app.post_with_key("/v1/orders", &token, body.clone(), "stampede")),
    )
    .await;

    let created: Vec<&Answer> = answers
        .iter()
        .filter(|a| a.status == StatusCode::CREATED)
        .collect();
    for answer in &answers {
        assert!(
            answer.status == StatusCode::CREATED
                || (answer.status == StatusCode::CONFLICT
                    && answer.problem_type() == "idempotency-key-in-flight"),
            "every answer is the order or 409 in flight: {} {:?}",
            answer.status,
            answer.body
        );
    }
    assert!(!created.is_empty(), "at least one request placed the order");
    assert_eq!(
        created
            .iter()
            .filter(|a| a.header(REPLAYED).is_none())
            .count(),
        1,
        "exactly one request ran"
    );
    assert!(
        created.iter().all(|a| a.body == created[0].body),
        "every 201 is the same answer"
    );
    assert_eq!(order_count(&app).await, 1);
    let holds: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'HoldPlaced'")
            .fetch_one(&app.pool)
            .await
            .expect("count holds");
    assert_eq!(holds, 2, "one hold per line, once");

    // Afterwards every retry is the replay.
    let retry = app
        .post_with_key("/v1/orders", &token, body, "stampede")
        .await;
    assert_replay_of(&retry, created[0]);
}

#[tokio::test]
async fn an_idempotency_key_that_is_not_1_to_255_visible_ascii_characters_is_400() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let before = app.event_count().await;
    let long = "k".repeat(256);
    for key in [long.as_str(), "has space", ""] {
        let answer = app
            .post_with_key("/v1/vendors", &admin, json!({"name": "Alpine"}), key)
            .await;
        assert_problem(&answer, StatusCode::BAD_REQUEST, "bad-request");
    }
    assert_eq!(app.event_count().await, before);
    let longest = "k".repeat(255);
    let answer = app
        .post_with_key("/v1/vendors", &admin, json!({"name": "Alpine"}), &longest)
        .await;
    assert_first(&answer, StatusCode::CREATED);
}

#[tokio::test]
async fn a_keyed_delete_is_replayed_too() {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_shop("Alpine", 1, 2).await;
    let (vendor_id, rental) = (shop.vendor_id, shop.rental);
    let token = app.vendor(vendor_id);
    let added = app
        .add_blackout(
            &token,
            rental,
            json!({"start": at(1, 0), "end": at(2, 0), "reason": "x"}),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED, "{:?}", added.body);
    let path = format!(
        "/v1/listings/{rental}/blackouts/{}",
        added.uuid("blackout_id")
    );
    let headers = [("Idempotency-Key", "remove-1")];
    let first = app
        .send(Method::DELETE, &path, Some(&token), None, &headers)
        .await;
    assert_first(&first, StatusCode::OK);
    let count = app.event_count().await;
    // Without the key the blackout is gone: 404. With it, the first answer.
    let again = app
        .send(Method::DELETE, &path, Some(&token), None, &headers)
        .await;
    assert_replay_of(&again, &first);
    assert_eq!(app.event_count().await, count);
    let unkeyed = app.delete(&path, &token).await;
    assert_problem(&unkeyed, StatusCode::NOT_FOUND, "not-found");
}

#[tokio::test]
async fn a_keyed_request_answered_5xx_is_not_stored_and_may_be_retried() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let body = json!({"name": "Alpine"});
    // Take the event store away so that the command fails on the server side.
    sqlx::query("ALTER TABLE events RENAME TO events_away")
        .execute(&app.pool)
        .await
        .expect("hide the events table");
    let failed = app
        .post_with_key("/v1/vendors", &admin, body.clone(), "flaky")
        .await;
    sqlx::query("ALTER TABLE events_away RENAME TO events")
        .execute(&app.pool)
        .await
        .expect("restore the events table");
    assert!(
        failed.status.is_server_error(),
        "the command failed on the server: {} {:?}",
        failed.status,
        failed.body
    );
    assert_eq!(
        key_row(&app, "admin:admin-1", "flaky").await,
        None,
        "a 5xx answer is not kept"
    );

    let retried = app
        .post_with_key("/v1/vendors", &admin, body, "flaky")
        .await;
    assert_first(&retried, StatusCode::CREATED);
    assert_eq!(app.event_count().await, 1);
}

/// Two principals of different roles that share a subject are still two
/// principals: one's key never answers the other's request.
#[tokio::test]
async fn keys_are_scoped_to_role_and_subject_together() {
    let app = TestApp::spawn().await;
    let as_admin = app.token(Role::Admin, "shared-subject", None);
    let as_customer = app.token(Role::Customer, "shared-subject", None);
    let admin_answer = app
        .post_with_key("/v1/vendors", &as_admin, json!({"name": "Alpine"}), "k")
        .await;
    assert_eq!(admin_answer.status, StatusCode::CREATED);
    // The same key and body from the customer is not a replay: it is the
    // customer's own request, refused by role.
    let customer_answer = app
        .post_with_key("/v1/vendors", &as_customer, json!({"name": "Alpine"}), "k")
        .await;
    assert_eq!(customer_answer.status, StatusCode::FORBIDDEN);
    assert!(customer_answer.header("idempotent-replayed").is_none());
}

/// Posts `body` as these exact bytes, with an idempotency key.
async fn post_bytes_with_key(
    app: &TestApp,
    path: &str,
    token: &str,
    body: &str,
    key: &str,
) -> Answer {
    app.send_bytes(
        Method::POST,
        path,
        Some(token),
        Some("application/json"),
        body.as_bytes().to_vec(),
        &[("Idempotency-Key", key)],
    )
    .await
}

#[tokio::test]
async fn the_same_json_with_reordered_keys_and_other_whitespace_is_a_replay_and_a_changed_value_is_422(
) {
    let app = TestApp::spawn().await;
    let shop = Marketplace::new(&app).with_shop("Alpine", 5, 2).await;
    let (sale, rental) = (shop.sale, shop.rental);
    let token = app.customer("c1");
    let (start, end) = (at(1, 0), at(3, 0));
    let compact = format!(
        r#"{{"items":[{{"listing_id":"{sale}","quantity":1}},{{"listing_id":"{rental}","quantity":1,"start":"{start}","end":"{end}"}}]}}"#
    );
    let first = post_bytes_with_key(&app, "/v1/orders", &token, &compact, "meaning").await;
    assert_first(&first, StatusCode::CREATED);
    let after_first = app.event_count().await;

    // Another library's rendering: keys in another order, spaces, newlines.
    let respaced = format!(
        "{{\n  \"items\" : [\n    {{ \"quantity\" : 1 ,\t\"listing_id\" : \"{sale}\" }},\r\n    {{\"end\": \"{end}\", \"start\": \"{start}\",\n     \"quantity\": 1, \"listing_id\": \"{rental}\"}}\n  ]\n}}\n"
    );
    assert_ne!(respaced, compact);
    let again = post_bytes_with_key(&app, "/v1/orders", &token, &respaced, "meaning").await;
    assert_replay_of(&again, &first);
    assert_eq!(again.uuid("order_id"), first.uuid("order_id"));
    assert_eq!(
        app.event_count().await,
        after_first,
        "a replay records nothing"
    );
    assert_eq!(order_count(&app).await, 1);

    // The same shape with one value changed is another request.
    let changed = respaced.replacen("\"quantity\" : 1", "\"quantity\" : 2", 1);
    assert_ne!(changed, respaced);
    let other = post_bytes_with_key(&app, "/v1/orders", &token, &changed, "meaning").await;
    assert_problem(
        &other,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    assert_eq!(other.header(REPLAYED), None);
    // So is a reordered array: its order is part of the meaning.
    let swapped = format!(
        r#"{{"items":[{{"listing_id":"{rental}","quantity":1,"start":"{start}","end":"{end}"}},{{"listing_id":"{sale}","quantity":1}}]}}"#
    );
    let swapped = post_bytes_with_key(&app, "/v1/orders", &token, &swapped, "meaning").await;
    assert_problem(
        &swapped,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
    assert_eq!(app.event_count().await, after_first);
    assert_eq!(order_count(&app).await, 1);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_compared_by_its_bytes() {
    let app = TestApp::spawn().await;
    let admin = app.admin();
    let first = post_bytes_with_key(&app, "/v1/vendors", &admin, "{\"name\": ", "not-json").await;
    assert_first(&first, StatusCode::BAD_REQUEST);
    let again = post_bytes_with_key(&app, "/v1/vendors", &admin, "{\"name\": ", "not-json").await;
    assert_replay_of(&again, &first);
    let respaced =
        post_bytes_with_key(&app, "/v1/vendors", &admin, "{\"name\":  ", "not-json").await;
    assert_problem(
        &respaced,
        StatusCode::UNPROCESSABLE_ENTITY,
        "idempotency-key-reused",
    );
}
