//! Tamper evidence: the hash chain kept by the database equals the Rust
//! one, seals cover the final log, and verification finds changes made
//! behind the application's back (triggers disabled) at the right position:
//! a changed payload, a deleted event, two swapped events, a forged seal.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

use audit::chain::{chained_page, StoredEvent};
use audit::{self, FailureKind, Report, Seal, Sealer};
use command_api::Role;
use ed25519_dalek::SigningKey;
use ledger_tests::events::head;
use ledger_tests::{at, TestApp};
use reqwest::{Method, StatusCode};
use serde_json::json;
use sqlx::PgPool;

fn key() -> SigningKey {
    audit::dev_signing_key()
}

/// Some traffic over several aggregates: vendors, listings, inventories,
/// orders.
pub(crate) async fn make_traffic(app: &TestApp, rounds: u32) {
    for round in 0..rounds {
        let vendor = app.register_vendor(&format!("Vendor {round}")).await;
        let listing = app.rental_listing(vendor, "day", "10.00", "5.00", 3).await;
        let item =
            json!({"listing_id": listing, "quantity": 1, "start": at(1, 0), "end": at(3, 0)});
        app.place(&format!("customer-{round}"), json!([item])).await;
    }
}

/// Waits until the relay has published everything (and the policies have
/// nothing left to add), so that the whole log may be sealed.
pub(crate) async fn settle(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let mut stable = 0;
    let mut last = -1;
    loop {
        let head = head(&app.pool).await;
        let published: Option<i64> =
            sqlx::query_scalar("SELECT position FROM relay_positions WHERE stream = $1")
                .bind(&app.stream)
                .fetch_optional(&app.pool)
                .await
                .expect("relay position");
        if published == Some(head) && head == last {
            stable += 1;
            if stable >= 3 {
                return;
            }
        } else {
            stable = 0;
        }
        last = head;
        assert!(
            tokio::time::Instant::now() < deadline,
            "the relay did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn sealer(app: &TestApp, max_events: usize) -> Sealer {
    Sealer::new(
        app.pool.clone(),
        std::sync::Arc::new(ledger_clock::SystemClock),
        key(),
        audit::DEV_KEY_ID,
        app.stream.clone(),
    )
    .with_max_events(max_events)
}

/// A fresh app with traffic, sealed in ranges of at most 5 events.
async fn sealed_app() -> (TestApp, Vec<Seal>) {
    let app = TestApp::spawn().await;
    make_traffic(&app, 3).await;
    settle(&app).await;
    let seals = sealer(&app, 5).seal_once().await.expect("seal");
    assert!(seals.len() >= 3, "{} seals", seals.len());
    (app, seals)
}

async fn verify(app: &TestApp) -> Report {
    audit::verify(&app.pool, &key().verifying_key(), None, None)
        .await
        .expect("verify")
}

/// Runs `sql` with the immutability triggers of events and seals off.
pub(crate) async fn behind_the_back(pool: &PgPool, sql: &[&str]) {
    let mut tx = pool.begin().await.expect("begin");
    for statement in [
        "ALTER TABLE events DISABLE TRIGGER events_no_update",
        "ALTER TABLE audit_seals DISABLE TRIGGER USER",
    ]
    .iter()
    .chain(sql)
    .chain(&[
        "ALTER TABLE events ENABLE TRIGGER events_no_update",
        "ALTER TABLE audit_seals ENABLE TRIGGER USER",
    ]) {
        sqlx::query(statement)
            .execute(&mut *tx)
            .await
            .unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
    tx.commit().await.expect("commit");
}

/// Positions of one aggregate's events, in sequence order, for the first
/// aggregate with at least `n` events at or below `below`.
async fn aggregate_with(pool: &PgPool, n: i64, below: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "SELECT array_agg(global_position ORDER BY sequence) FROM events
          WHERE global_position <= $2
          GROUP BY aggregate_type, aggregate_id HAVING count(*) >= $1
          ORDER BY min(global_position) LIMIT 1",
    )
    .bind(n)
    .bind(below)
    .fetch_one(pool)
    .await
    .expect("an aggregate with enough events")
}

#[track_caller]
fn assert_failure(report: &Report, position: i64, kind: FailureKind) {
    let failure = report
        .first_failure
        .as_ref()
        .unwrap_or_else(|| panic!("no failure reported: {report:?}"));
    assert!(!report.ok, "{report:?}");
    assert_eq!(
        (failure.position, failure.kind),
        (Some(position), kind),
        "{report:?}"
    );
    assert!(!failure.reason.is_empty());
}

async fn get_verify(app: &TestApp, token: &str, query: &str) -> ledger_tests::Answer {
    app.send(
        Method::GET,
        &format!("/v1/audit/verify{query}"),
        Some(token),
        None,
        &[],
    )
    .await
}

#[tokio::test]
async fn the_rust_hash_equals_the_trigger_hash() {
    let app = TestApp::spawn().await;
    make_traffic(&app, 2).await;
    settle(&app).await;
    let events = chained_page(&app.pool, 0, i64::MAX, 10_000)
        .await
        .expect("events");
    assert_eq!(events.len() as i64, app.event_count().await);
    for chained in &events {
        let event: &StoredEvent = &chained.event;
        let sql: Vec<u8> = sqlx::query_scalar(
            "SELECT events_canonical_content(aggregate_type, aggregate_id, sequence,
                    event_type, event_version, payload::text, metadata::text, event_id,
                    recorded_at, global_position)
               FROM events WHERE global_position = $1",
        )
        .bind(event.global_position)
        .fetch_one(&app.pool)
        .await
        .expect("canonical content");
        assert_eq!(event.canonical_content(), sql, "{event:?}");
        let expected = event.chain_hash(chained.previous_hash.as_deref());
        assert_eq!(expected.as_slice(), event.hash.as_slice(), "{event:?}");
        assert_eq!(chained.previous_hash.is_some(), event.sequence > 1);
    }
    // Non-ASCII text and a first event not at sequence 1 chain the same way.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         VALUES ('Probe', 'ünï', 4, 'Probed', '1.0', '{\"ß\":  \"€\"}', '{\"a\":[1, 2]}'),
                ('Probe', 'ünï', 5, 'Probed', '1.0', '{}', '{}')",
    )
    .execute(&app.pool)
    .await
    .expect("insert probes");
    let probes = chained_page(&app.pool, head(&app.pool).await - 2, i64::MAX, 10)
        .await
        .expect("probes");
    assert_eq!(probes.len(), 2);
    for chained in &probes {
        let event = &chained.event;
        let expected = event.chain_hash(chained.previous_hash.as_deref());
        assert_eq!(expected.as_slice(), event.hash.as_slice(), "{event:?}");
    }
    assert_eq!(
        probes[1].previous_hash.as_ref(),
        Some(&probes[0].event.hash)
    );
    app.stop().await;
}

#[tokio::test]
async fn an_untouched_log_verifies_through_the_library_and_the_route() {
    let (app, seals) = sealed_app().await;
    let total = app.event_count().await;
    // Seals are contiguous from 1, chained, and reach the relay's position.
    assert_eq!(seals[0].from_position, 1);
    for pair in seals.windows(2) {
        assert_eq!(pair[1].from_position, pair[0].to_position + 1);
        assert_eq!(pair[1].previous_digest, pair[0].digest);
    }
    assert_eq!(seals.last().unwrap().to_position, head(&app.pool).await);
    assert!(seals.iter().all(|s| s.event_count <= 5));
    assert_eq!(seals.iter().map(|s| s.event_count).sum::<i64>(), total);
    assert!(sealer(&app, 5).seal_once().await.unwrap().is_empty());

    let report = verify(&app).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked as i64, total);
    assert_eq!(report.seals_checked as usize, seals.len());
    assert!(report.signatures_checked);
    assert!(report.first_failure.is_none());

    // A range inside the log is widened to whole seals.
    let middle = &seals[1];
    let part = audit::verify(
        &app.pool,
        &key().verifying_key(),
        Some(middle.from_position + 1),
        Some(middle.to_position),
    )
    .await
    .unwrap();
    assert!(part.ok, "{part:?}");
    assert_eq!(
        (part.from, part.to),
        (middle.from_position, middle.to_position)
    );
    assert_eq!(part.checked as i64, middle.event_count);

    let sealed_through = seals.last().unwrap().to_position;
    assert_eq!(
        (report.sealed_through, report.unsealed),
        (sealed_through, 0)
    );

    // More traffic, not sealed yet: still verified by its chain, and the
    // answer says how much of it no seal covers.
    make_traffic(&app, 1).await;
    settle(&app).await;
    let report = verify(&app).await;
    assert!(report.ok, "{report:?}");
    assert_eq!(report.checked as i64, app.event_count().await);
    assert_eq!(report.sealed_through, sealed_through);
    assert_eq!(report.unsealed as i64, app.event_count().await - total);
    assert!(report.unsealed > 0);

    for token in [app.admin(), app.token(Role::Auditor, "auditor-1", None)] {
        let answer = get_verify(&app, &token, "").await;
        assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
        assert_eq!(answer.body["ok"], json!(true), "{:?}", answer.body);
        assert_eq!(answer.body["checked"], json!(app.event_count().await));
        assert_eq!(answer.body["sealed_through"], json!(sealed_through));
        assert!(answer.body["unsealed"].as_u64().unwrap_or(0) > 0);
        assert!(answer.body.get("first_failure").is_none());
    }
    let auditor = app.token(Role::Auditor, "auditor-1", None);
    let ranged = get_verify(&app, &auditor, "?from=2&to=3").await;
    assert_eq!(ranged.status, StatusCode::OK, "{:?}", ranged.body);
    assert_eq!(ranged.body["ok"], json!(true));
    let backwards = get_verify(&app, &auditor, "?from=5&to=3").await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    let malformed = get_verify(&app, &auditor, "?from=x").await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    let vendor = app.register_vendor("Nosy").await;
    for token in [
        app.customer("customer-x"),
        app.vendor(vendor),
        app.token(Role::Analyst, "analyst-1", None),
    ] {
        let answer = get_verify(&app, &token, "").await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{:?}", answer.body);
    }
    let anonymous = app
        .send(Method::GET, "/v1/audit/verify", None, None, &[])
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    app.stop().await;
}

/// The sealer dates its seals by the clock it is given, never the system's
/// (DESIGN.md "Time"): the stored, signed `sealed_at` is the clock's.
#[tokio::test]
async fn seals_are_dated_by_the_injected_clock() {
    let app = TestApp::spawn().await;
    make_traffic(&app, 1).await;
    settle(&app).await;
    let start = chrono::DateTime::parse_from_rfc3339("2031-03-04T05:06:07.123456Z")
        .expect("instant")
        .to_utc();
    let clock = std::sync::Arc::new(ledger_clock::ManualClock::new(start));
    let sealer = Sealer::new(
        app.pool.clone(),
        clock.clone(),
        key(),
        audit::DEV_KEY_ID,
        app.stream.clone(),
    );
    let first = sealer.seal_once().await.expect("seal");
    assert!(!first.is_empty());
    assert!(
        first.iter().all(|seal| seal.sealed_at == start),
        "{first:?}"
    );

    clock.advance(chrono::Duration::hours(5));
    make_traffic(&app, 1).await;
    settle(&app).await;
    let later = sealer.seal_once().await.expect("seal");
    assert!(!later.is_empty());
    let five_hours_on = start + chrono::Duration::hours(5);
    assert!(later.iter().all(|seal| seal.sealed_at == five_hours_on));

    let stored: Vec<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT sealed_at FROM audit_seals ORDER BY seal_id")
            .fetch_all(&app.pool)
            .await
            .expect("seals");
    let expected: Vec<_> = first
        .iter()
        .chain(&later)
        .map(|seal| seal.sealed_at)
        .collect();
    assert_eq!(stored, expected);
    // What was signed is what was stored.
    let report = verify(&app).await;
    assert!(report.ok && report.signatures_checked, "{report:?}");
}

#[tokio::test]
async fn a_changed_payload_is_found_at_its_position() {
    let (app, seals) = sealed_app().await;
    let target = seals[1].positions[1];
    behind_the_back(
        &app.pool,
        &[&format!(
            "UPDATE events SET payload = '{{\"forged\": true}}' WHERE global_position = {target}"
        )],
    )
    .await;
    let report = verify(&app).await;
    assert_failure(&report, target, FailureKind::HashMismatch);
    assert!(report.checked as i64 <= target);

    let answer = get_verify(&app, &app.admin(), "").await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["ok"], json!(false));
    assert_eq!(answer.body["first_failure"]["position"], json!(target));
    assert_eq!(answer.body["first_failure"]["kind"], json!("hash_mismatch"));
    assert!(answer.body["first_failure"]["reason"].is_string());
    // A range ending before the change is still fine.
    let before = audit::verify(
        &app.pool,
        &key().verifying_key(),
        None,
        Some(seals[0].to_position),
    )
    .await
    .unwrap();
    assert!(before.ok, "{before:?}");

    // Metadata, or the time, of an unsealed event: found by its chain alone.
    make_traffic(&app, 1).await;
    settle(&app).await;
    let tail = head(&app.pool).await;
    behind_the_back(
        &app.pool,
        &[&format!(
            "UPDATE events SET recorded_at = recorded_at + interval '1 microsecond'
              WHERE global_position = {tail}"
        )],
    )
    .await;
    let tail_only = audit::verify(&app.pool, &key().verifying_key(), Some(tail), None)
        .await
        .unwrap();
    assert_failure(&tail_only, tail, FailureKind::HashMismatch);
    app.stop().await;
}

#[tokio::test]
async fn a_deleted_event_is_found_at_its_position() {
    let (app, _) = sealed_app().await;
    let sealed_head = head(&app.pool).await;
    // Sealed: found exactly where it was, even before the next event of
    // its aggregate.
    let aggregate = aggregate_with(&app.pool, 2, sealed_head).await;
    let deleted = aggregate[0];
    behind_the_back(
        &app.pool,
        &[&format!(
            "DELETE FROM events WHERE global_position = {deleted}"
        )],
    )
    .await;
    let report = verify(&app).await;
    assert_failure(&report, deleted, FailureKind::MissingEvent);
    app.stop().await;

    // Unsealed: found at the next event of its aggregate.
    let app = TestApp::spawn().await;
    make_traffic(&app, 2).await;
    settle(&app).await;
    let aggregate = aggregate_with(&app.pool, 2, head(&app.pool).await).await;
    behind_the_back(
        &app.pool,
        &[&format!(
            "DELETE FROM events WHERE global_position = {}",
            aggregate[0]
        )],
    )
    .await;
    let report = verify(&app).await;
    assert_eq!(report.seals_checked, 0);
    assert_failure(&report, aggregate[1], FailureKind::ChainBroken);
    app.stop().await;
}

#[tokio::test]
async fn two_swapped_events_are_found() {
    // Positions exchanged between two events of different aggregates.
    let (app, seals) = sealed_app().await;
    let (a, b) = (seals[1].positions[0], seals[2].positions[1]);
    behind_the_back(
        &app.pool,
        &[
            "ALTER TABLE events ALTER COLUMN global_position SET GENERATED BY DEFAULT",
            &format!("UPDATE events SET global_position = -1 WHERE global_position = {a}"),
            &format!("UPDATE events SET global_position = {a} WHERE global_position = {b}"),
            &format!("UPDATE events SET global_position = {b} WHERE global_position = -1"),
            "ALTER TABLE events ALTER COLUMN global_position SET GENERATED ALWAYS",
        ],
    )
    .await;
    let report = verify(&app).await;
    assert_failure(&report, a, FailureKind::HashMismatch);
    app.stop().await;

    // Contents exchanged between two events of one aggregate.
    let (app, _) = sealed_app().await;
    let aggregate = aggregate_with(&app.pool, 2, head(&app.pool).await).await;
    let (a, b) = (aggregate[0], aggregate[1]);
    let columns = "event_type, event_version, payload, metadata";
    behind_the_back(
        &app.pool,
        &[&format!(
            "UPDATE events e SET ({columns}) = (SELECT {columns} FROM events o
                WHERE o.global_position = CASE e.global_position WHEN {a} THEN {b} ELSE {a} END)
              WHERE e.global_position IN ({a}, {b})"
        )],
    )
    .await;
    let report = verify(&app).await;
    assert_failure(&report, a, FailureKind::HashMismatch);
    app.stop().await;
}

#[tokio::test]
async fn a_forged_checkpoint_is_found() {
    let (app, seals) = sealed_app().await;
    let forged = &seals[1];
    // Its digest changed: the signature no longer covers it.
    behind_the_back(
        &app.pool,
        &[&format!(
            "UPDATE audit_seals SET digest = sha256('forged'::bytea) WHERE seal_id = {}",
            forged.seal_id
        )],
    )
    .await;
    let report = verify(&app).await;
    assert_failure(&report, forged.from_position, FailureKind::SealSignature);
    assert_eq!(
        report.first_failure.as_ref().unwrap().seal_id,
        Some(forged.seal_id)
    );
    assert!(report
        .first_failure
        .as_ref()
        .unwrap()
        .reason
        .contains("signature"));
    // Without the key, the digest gives it away all the same.
    let unkeyed = audit::verify_with(&app.pool, None, None, None)
        .await
        .unwrap();
    assert!(!unkeyed.signatures_checked);
    let failure = unkeyed.first_failure.as_ref().expect("a failure");
    assert_eq!(failure.kind, FailureKind::SealDigest, "{unkeyed:?}");
    assert_eq!(
        failure.position, None,
        "any event of the seal may be the changed one"
    );
    assert_eq!(
        failure.range,
        Some(audit::PositionRange {
            from: forged.from_position,
            to: forged.to_position
        })
    );
    let answer = get_verify(&app, &app.admin(), "").await;
    assert_eq!(answer.body["first_failure"]["kind"], json!("seal_digest"));
    app.stop().await;

    // Re-made consistently (range, digest) and signed with another key.
    let (app, seals) = sealed_app().await;
    let last = seals.last().unwrap();
    let mut remade = last.clone();
    remade.to_position += 10;
    remade.key_id = "intruder".to_owned();
    remade.sign(&audit::generate_signing_key());
    behind_the_back(
        &app.pool,
        &[&format!(
            "UPDATE audit_seals SET to_position = {}, key_id = 'intruder',
                    signature = decode('{}', 'hex') WHERE seal_id = {}",
            remade.to_position,
            hex(&remade.signature),
            remade.seal_id
        )],
    )
    .await;
    let report = verify(&app).await;
    assert_failure(&report, last.from_position, FailureKind::SealSignature);
    assert!(report
        .first_failure
        .as_ref()
        .unwrap()
        .reason
        .contains("intruder"));

    // A seal removed from the middle breaks the seals' chain.
    behind_the_back(
        &app.pool,
        &[&format!(
            "DELETE FROM audit_seals WHERE seal_id = {}",
            seals[1].seal_id
        )],
    )
    .await;
    let report = verify(&app).await;
    assert_failure(&report, seals[1].from_position, FailureKind::SealInvalid);
    app.stop().await;
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// 1 200 events over 7 aggregates, written straight into a fresh database,
/// all final for stream `AUDIT`.
async fn long_log() -> PgPool {
    let (pool, _) = ledger_tests::fresh_database().await.expect("database");
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         SELECT 'Probe', 'p-' || (n % 7), n / 7 + 1, 'Probed', '1.0',
                json_build_object('n', n), '{}'
           FROM generate_series(0, 1199) AS n ORDER BY n",
    )
    .execute(&pool)
    .await
    .expect("insert");
    sqlx::query("INSERT INTO relay_positions (stream, position) SELECT 'AUDIT', max(global_position) FROM events")
        .execute(&pool)
        .await
        .expect("relay position");
    pool
}

#[tokio::test]
async fn a_long_log_is_verified_page_by_page() {
    let pool = long_log().await;
    let seals = Sealer::new(
        pool.clone(),
        std::sync::Arc::new(ledger_clock::SystemClock),
        key(),
        "k1",
        "AUDIT",
    )
    .with_max_events(100)
    .seal_once()
    .await
    .expect("seal");
    assert_eq!(seals.len(), 12);
    let public = key().verifying_key();
    let report = audit::verify(&pool, &public, None, None).await.unwrap();
    assert!(report.ok, "{report:?}");
    assert_eq!((report.checked, report.seals_checked), (1200, 12));

    // Deep in the log, past several pages and seals.
    behind_the_back(
        &pool,
        &[
            "UPDATE events SET metadata = '{\"x\":1}' WHERE global_position = 1107",
            "DELETE FROM events WHERE global_position = 1150",
        ],
    )
    .await;
    let report = audit::verify(&pool, &public, None, None).await.unwrap();
    assert_failure(&report, 1107, FailureKind::HashMismatch);
    let later = audit::verify(&pool, &public, Some(1120), None)
        .await
        .unwrap();
    assert_eq!(later.from, 1101, "widened to the seal");
    assert_failure(&later, 1107, FailureKind::HashMismatch);
    let report = audit::verify(&pool, &public, Some(1108), None)
        .await
        .unwrap();
    assert_failure(&report, 1107, FailureKind::HashMismatch);
    pool.close().await;
}

#[tokio::test]
async fn the_sealer_runs_until_shut_down_and_stays_below_the_relay() {
    let pool = long_log().await;
    sqlx::query("UPDATE relay_positions SET position = 950 WHERE stream = 'AUDIT'")
        .execute(&pool)
        .await
        .unwrap();
    let stop = CancellationToken::new();
    let shutdown = stop.clone();
    let task = tokio::spawn(
        Sealer::new(
            pool.clone(),
            std::sync::Arc::new(ledger_clock::SystemClock),
            key(),
            "k1",
            "AUDIT",
        )
        .with_max_events(300)
        .with_interval(Duration::from_millis(50))
        .run(shutdown),
    );
    let sealed_to = || async {
        sqlx::query_scalar::<_, Option<i64>>("SELECT max(to_position) FROM audit_seals")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while sealed_to().await != Some(950) {
        assert!(tokio::time::Instant::now() < deadline, "not sealed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sqlx::query("UPDATE relay_positions SET position = 1200 WHERE stream = 'AUDIT'")
        .execute(&pool)
        .await
        .unwrap();
    while sealed_to().await != Some(1200) {
        assert!(tokio::time::Instant::now() < deadline, "not sealed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the sealer stops")
        .unwrap();
    let counts: Vec<i64> =
        sqlx::query_scalar("SELECT event_count FROM audit_seals ORDER BY seal_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(counts, vec![300, 300, 300, 50, 250]);
    let report = audit::verify(&pool, &key().verifying_key(), None, None)
        .await
        .unwrap();
    assert!(report.ok, "{report:?}");
    pool.close().await;
}

/// The ledger seals its own log when it has a signing key, and the audit
/// route then checks the seals' signatures with the public key.
#[tokio::test]
async fn a_ledger_with_a_signing_key_seals_its_log_and_the_route_checks_the_signatures() {
    let key = audit::dev_signing_key();
    let app = TestApp::spawn_server(|config| {
        config.audit = ledger::AuditKeys {
            signing: Some(key.clone()),
            public: Some(key.verifying_key()),
            seal_interval: Duration::from_millis(100),
        };
    })
    .await;
    let vendor = app.register_vendor("Sealed").await;
    let listing = app.sale_listing(vendor, "5.00", 10).await;
    let order = app
        .post(
            "/v1/orders",
            &app.customer("sealed-buyer"),
            serde_json::json!({"items": [{"listing_id": listing, "quantity": 2}]}),
        )
        .await;
    assert_eq!(
        order.status,
        reqwest::StatusCode::CREATED,
        "{:?}",
        order.body
    );
    app.pay(&order).await;

    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&app.pool)
        .await
        .expect("head");
    let mut sealed_to = 0i64;
    for _ in 0..200 {
        sealed_to = sqlx::query_scalar("SELECT coalesce(max(to_position), 0) FROM audit_seals")
            .fetch_one(&app.pool)
            .await
            .expect("seals");
        if sealed_to >= head {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        sealed_to >= head,
        "the sealer reached the head ({sealed_to} < {head})"
    );

    let auditor = app.token(command_api::Role::Auditor, "auditor-1", None);
    let report = app
        .send(
            reqwest::Method::GET,
            "/v1/audit/verify",
            Some(&auditor),
            None,
            &[],
        )
        .await;
    assert_eq!(report.status, reqwest::StatusCode::OK, "{:?}", report.body);
    assert_eq!(report.body["ok"], true, "{:?}", report.body);
    assert_eq!(report.body["signatures_checked"], true);
    assert!(report.body["seals_checked"].as_u64().unwrap_or(0) >= 1);
    assert!(report.body["checked"].as_i64().unwrap_or(0) >= head);
}
