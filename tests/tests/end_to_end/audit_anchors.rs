//! Seals outside the database (issue 16): the seal stream, the auditor's
//! anchor, the honest answer (`sealed_through`, `unsealed`, a seal's range
//! on a digest failure), Merkle inclusion proofs, the hashed text served by
//! the event API, and each tampering the database alone cannot show:
//! the newest seal removed, a seal removed with its events, the unsealed
//! tail cut off, the whole log rewritten without the key.

use std::time::Duration;

use audit::seal::{self, SealRecord};
use audit::{AnchorFile, Anchors, FailureKind, PositionRange, Report, Seal, Sealer};
use ed25519_dalek::SigningKey;
use ledger_tests::events::head;
use ledger_tests::stream::nats_client;
use ledger_tests::TestApp;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use sqlx::PgPool;

use crate::audit::{behind_the_back, make_traffic, settle};

fn key() -> SigningKey {
    audit::dev_signing_key()
}

/// A ledger that seals its own log every 100 ms and publishes the seals.
async fn sealing_app() -> TestApp {
    TestApp::spawn_server(|config| {
        config.audit = ledger::AuditKeys {
            signing: Some(key()),
            public: Some(key().verifying_key()),
            seal_interval: Duration::from_millis(100),
        };
    })
    .await
}

async fn stream_anchors(app: &TestApp) -> Anchors {
    read_api::audit::stream_anchors(&nats_client().await, &app.stream)
        .await
        .expect("the streams can be read")
}

/// Waits until the database's seals reach the head and the seal stream
/// holds the newest of them.
async fn sealed_and_published(app: &TestApp) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let newest = seal::newest(&app.pool).await.expect("seals");
        let published = stream_anchors(app).await.seals.first().map(|s| s.seal_id);
        if let Some(newest) = newest {
            if newest.to_position >= head(&app.pool).await && published == Some(newest.seal_id) {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the log was not sealed and published in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stopped sealing ledger with at least two published seals.
pub(crate) async fn sealed_log() -> (TestApp, Vec<Seal>) {
    let mut app = sealing_app().await;
    make_traffic(&app, 2).await;
    settle(&app).await;
    sealed_and_published(&app).await;
    make_traffic(&app, 1).await;
    settle(&app).await;
    sealed_and_published(&app).await;
    app.take_server().stop().await.expect("the ledger stops");
    let seals = seal::after(&app.pool, 0, 1000).await.expect("seals");
    assert!(seals.len() >= 2, "{} seals", seals.len());
    (app, seals)
}

async fn verify(pool: &PgPool, anchors: &Anchors) -> Report {
    audit::verify_anchored(pool, Some(&key().verifying_key()), None, None, anchors)
        .await
        .expect("verify")
}

#[track_caller]
fn assert_fails(report: &Report, kind: FailureKind) -> audit::Failure {
    assert!(!report.ok, "{report:?}");
    let failure = report.first_failure.clone().expect("a failure");
    assert_eq!(failure.kind, kind, "{report:?}");
    assert!(!failure.reason.is_empty());
    failure
}

fn range_of(seal: &Seal) -> Option<PositionRange> {
    Some(PositionRange {
        from: seal.from_position,
        to: seal.to_position,
    })
}

async fn get(app: &TestApp, path: &str) -> ledger_tests::Answer {
    app.send(Method::GET, path, Some(&app.auditor()), None, &[])
        .await
}

fn unhex(text: &Value) -> Vec<u8> {
    hex_decode(text.as_str().expect("a hex string"))
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Recomputes every event's hash, as someone who knows the format and can
/// write to the database would after changing events.
pub(crate) const REHASH_ALL: &str = "
DO $$
DECLARE
    r record; last_type text; last_id text; last_sequence bigint;
    last_hash bytea; previous bytea;
BEGIN
    FOR r IN SELECT * FROM events ORDER BY aggregate_type, aggregate_id, sequence LOOP
        IF r.aggregate_type = last_type AND r.aggregate_id = last_id
           AND r.sequence = last_sequence + 1 THEN
            previous := last_hash;
        ELSE
            previous := ''::bytea;
        END IF;
        last_hash := sha256(previous || events_canonical_content(
            r.aggregate_type, r.aggregate_id, r.sequence, r.event_type,
            r.event_version, r.payload::text, r.metadata::text, r.event_id,
            r.recorded_at, r.global_position));
        UPDATE events SET hash = last_hash WHERE global_position = r.global_position;
        last_type := r.aggregate_type; last_id := r.aggregate_id;
        last_sequence := r.sequence;
    END LOOP;
END
$$";

/// The position of the first event at or below `below` that is the last
/// of its aggregate (nothing chains to it).
pub(crate) async fn an_aggregates_last_event(pool: &PgPool, below: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT e.global_position FROM events e
          WHERE e.global_position <= $1 AND NOT EXISTS (
                SELECT 1 FROM events n WHERE n.aggregate_type = e.aggregate_type
                   AND n.aggregate_id = e.aggregate_id AND n.sequence = e.sequence + 1)
          ORDER BY e.global_position LIMIT 1",
    )
    .bind(below)
    .fetch_one(pool)
    .await
    .expect("an aggregate's last event")
}

/// Changes one event's payload and recomputes its hash: its chain holds,
/// only its seal's digest and Merkle root tell.
pub(crate) fn rewrite_one(position: i64) -> String {
    format!(
        "UPDATE events e SET payload = '{{\"forged\": true}}',
                hash = sha256(coalesce((SELECT p.hash FROM events p
                        WHERE p.aggregate_type = e.aggregate_type
                          AND p.aggregate_id = e.aggregate_id
                          AND p.sequence = e.sequence - 1), ''::bytea)
                    || events_canonical_content(e.aggregate_type, e.aggregate_id,
                        e.sequence, e.event_type, e.event_version, '{{\"forged\": true}}',
                        e.metadata::text, e.event_id, e.recorded_at, e.global_position))
          WHERE global_position = {position}"
    )
}

#[tokio::test]
async fn seals_are_served_published_and_proven_and_events_carry_what_was_hashed() {
    let app = sealing_app().await;
    make_traffic(&app, 2).await;
    settle(&app).await;
    sealed_and_published(&app).await;
    let seals = seal::after(&app.pool, 0, 1000).await.unwrap();
    let newest = seals.last().unwrap().clone();

    // The seal stream holds the newest seal and refuses deletes and purges.
    let js = async_nats::jetstream::new(nats_client().await);
    let mut stream = js
        .get_stream(ledger_nats::seals::stream_name(&app.stream))
        .await
        .expect("the seal stream exists");
    let info = stream.info().await.unwrap().clone();
    assert!(info.config.deny_delete && info.config.deny_purge);
    assert!(stream
        .delete_message(info.state.last_sequence)
        .await
        .is_err());
    assert!(stream.purge().await.is_err());
    let published = stream
        .get_last_raw_message_by_subject(&ledger_nats::seals::subject(&app.stream))
        .await
        .unwrap();
    assert_eq!(SealRecord::decode(&published.payload).unwrap(), newest);

    // GET /v1/audit/seals, page by page.
    let first = get(&app, "/v1/audit/seals?after=0&limit=1").await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    assert_eq!(first.body["seals"].as_array().unwrap().len(), 1);
    assert_eq!(first.body["next_after"], json!(1));
    let record: SealRecord = serde_json::from_value(first.body["seals"][0].clone()).unwrap();
    let stored = Seal::try_from(&record).unwrap();
    assert_eq!(stored, seals[0]);
    assert!(stored.signature_is_valid(&key().verifying_key()));
    let all = get(&app, "/v1/audit/seals").await;
    assert_eq!(all.body["seals"].as_array().unwrap().len(), seals.len());
    let past = get(&app, &format!("/v1/audit/seals?after={}", newest.seal_id)).await;
    assert_eq!(past.body["seals"], json!([]));
    assert_eq!(past.body["next_after"], json!(newest.seal_id));
    for bad in ["?after=-1", "?limit=0", "?limit=501"] {
        let answer = get(&app, &format!("/v1/audit/seals{bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // GET /v1/audit/verify: the API.md shape, against the streams and an
    // anchor given as parameters.
    let answer = get(&app, "/v1/audit/verify").await;
    assert_eq!(answer.status, StatusCode::OK, "{:?}", answer.body);
    assert_eq!(answer.body["ok"], json!(true), "{:?}", answer.body);
    assert_eq!(answer.body["sealed_through"], json!(newest.to_position));
    assert_eq!(answer.body["unsealed"], json!(0));
    assert_eq!(answer.body["signatures_checked"], json!(true));
    assert_eq!(
        answer.body["anchors_checked"],
        json!(2),
        "seal and event stream"
    );
    let digest = hex_encode(&newest.digest);
    let kept = get(
        &app,
        &format!(
            "/v1/audit/verify?anchor_seal_id={}&anchor_digest={digest}",
            newest.seal_id
        ),
    )
    .await;
    assert_eq!(kept.body["ok"], json!(true), "{:?}", kept.body);
    let other = get(
        &app,
        &format!(
            "/v1/audit/verify?anchor_seal_id={}&anchor_digest={}",
            newest.seal_id,
            "ab".repeat(32)
        ),
    )
    .await;
    assert_eq!(other.body["ok"], json!(false));
    assert_eq!(other.body["first_failure"]["kind"], json!("seal_rewritten"));
    assert_eq!(
        other.body["first_failure"]["range"],
        json!({"from": newest.from_position, "to": newest.to_position})
    );
    let unknown = get(
        &app,
        &format!("/v1/audit/verify?anchor_seal_id=999999&anchor_digest={digest}"),
    )
    .await;
    assert_eq!(unknown.body["first_failure"]["kind"], json!("seal_missing"));
    for bad in [
        "anchor_seal_id=1".to_owned(),
        format!("anchor_digest={digest}"),
        "anchor_seal_id=1&anchor_digest=xyz".to_owned(),
        "anchor_seal_id=0&anchor_digest=".to_owned() + &digest,
    ] {
        let answer = get(&app, &format!("/v1/audit/verify?{bad}")).await;
        assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    }

    // GET /v1/audit/proof: every sealed event folds to its seal's root.
    for seal in &seals {
        let root = seal.merkle_root.clone().expect("a Merkle root");
        for &position in &seal.positions {
            let proof = get(&app, &format!("/v1/audit/proof?position={position}")).await;
            assert_eq!(proof.status, StatusCode::OK, "{:?}", proof.body);
            assert_eq!(proof.body["seal"]["seal_id"], json!(seal.seal_id));
            let leaf = audit::merkle::leaf_hash(position, &unhex(&proof.body["event_hash"]));
            assert_eq!(leaf.to_vec(), unhex(&proof.body["leaf_hash"]));
            let steps: Vec<audit::merkle::Step> = proof.body["path"]
                .as_array()
                .unwrap()
                .iter()
                .map(|step| audit::merkle::Step {
                    side: serde_json::from_value(step["side"].clone()).unwrap(),
                    hash: unhex(&step["hash"]).try_into().unwrap(),
                })
                .collect();
            assert_eq!(audit::merkle::fold(leaf, &steps).to_vec(), root);
        }
    }
    let beyond = get(&app, "/v1/audit/proof?position=999999").await;
    assert_eq!(beyond.status, StatusCode::NOT_FOUND);
    for bad in ["", "?position=0", "?position=x"] {
        let answer = get(&app, &format!("/v1/audit/proof{bad}")).await;
        assert!(
            answer.status.is_client_error(),
            "{bad}: {:?}",
            answer.status
        );
        assert_ne!(answer.status, StatusCode::NOT_FOUND, "{bad}");
    }

    // GET /v1/events: `canonical` is what was hashed, chain by chain.
    let page = get(&app, "/v1/events?limit=500").await;
    assert_eq!(page.status, StatusCode::OK);
    let mut previous: std::collections::HashMap<(String, String), Vec<u8>> = Default::default();
    let events = page.body["events"].as_array().unwrap();
    assert!(!events.is_empty());
    for event in events {
        assert!(event["event_id"].is_string());
        let canonical = unhex(&event["canonical"]);
        let aggregate = (
            event["aggregate_type"].as_str().unwrap().to_owned(),
            event["aggregate_id"].as_str().unwrap().to_owned(),
        );
        let mut hasher = Sha256::new();
        hasher.update(previous.get(&aggregate).cloned().unwrap_or_default());
        hasher.update(&canonical);
        let hash = hasher.finalize().to_vec();
        assert_eq!(hash, unhex(&event["hash"]), "{event}");
        previous.insert(aggregate, hash);
    }
    app.stop().await;
}

#[tokio::test]
async fn removing_the_newest_seal_shows_against_the_stream_and_the_anchor() {
    let (app, seals) = sealed_log().await;
    let anchor = AnchorFile::take(&app.pool).await.unwrap();
    let newest = seals.last().unwrap();
    assert_eq!(
        anchor.seal.as_ref().map(|s| s.seal_id),
        Some(newest.seal_id)
    );
    assert!(verify(&app.pool, &stream_anchors(&app).await).await.ok);
    assert!(verify(&app.pool, &anchor.anchors().unwrap()).await.ok);

    behind_the_back(
        &app.pool,
        &[&format!(
            "DELETE FROM audit_seals WHERE seal_id = {}",
            newest.seal_id
        )],
    )
    .await;
    // The database alone cannot tell; it says the tail is unsealed.
    let alone = verify(&app.pool, &Anchors::default()).await;
    assert!(alone.ok, "{alone:?}");
    assert_eq!(alone.sealed_through, seals[seals.len() - 2].to_position);
    assert_eq!(alone.unsealed as i64, newest.event_count);
    for anchors in [stream_anchors(&app).await, anchor.anchors().unwrap()] {
        let failure = assert_fails(&verify(&app.pool, &anchors).await, FailureKind::SealMissing);
        assert_eq!(failure.range, range_of(newest));
        assert_eq!(failure.seal_id, Some(newest.seal_id));
    }
}

#[tokio::test]
async fn removing_a_seal_with_its_events_shows_and_so_does_resealing_the_rest() {
    let (app, seals) = sealed_log().await;
    let anchor = AnchorFile::take(&app.pool).await.unwrap();
    let newest = seals.last().unwrap();
    behind_the_back(
        &app.pool,
        &[
            &format!("DELETE FROM audit_seals WHERE seal_id = {}", newest.seal_id),
            &format!(
                "DELETE FROM events WHERE global_position >= {}",
                newest.from_position
            ),
        ],
    )
    .await;
    let alone = verify(&app.pool, &Anchors::default()).await;
    assert!(alone.ok, "the database alone is consistent: {alone:?}");
    let failure = assert_fails(
        &verify(&app.pool, &stream_anchors(&app).await).await,
        FailureKind::SealMissing,
    );
    assert_eq!(failure.range, range_of(newest));
    assert_fails(
        &verify(&app.pool, &anchor.anchors().unwrap()).await,
        FailureKind::SealMissing,
    );
    // Only the anchor's last event left: the log was cut short there.
    let head_only = AnchorFile {
        seal: None,
        head: anchor.head.clone(),
    };
    let failure = assert_fails(
        &verify(&app.pool, &head_only.anchors().unwrap()).await,
        FailureKind::LogTruncated,
    );
    assert_eq!(failure.position, anchor.head.as_ref().map(|h| h.position));

    // A sealer with the real key seals what was written since under the
    // removed seal's number: a different seal than the one published.
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type,
                             event_version, payload, metadata)
         VALUES ('Probe', 'after-the-cut', 1, 'Probed', '1.0', '{}', '{}')",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("UPDATE relay_positions SET position = (SELECT max(global_position) FROM events) WHERE stream = $1")
        .bind(&app.stream)
        .execute(&app.pool)
        .await
        .unwrap();
    let resealed = Sealer::new(
        app.pool.clone(),
        std::sync::Arc::new(ledger_clock::SystemClock),
        key(),
        audit::key_id(&key().verifying_key()),
        app.stream.clone(),
    )
    .seal_once()
    .await
    .unwrap();
    assert_eq!(resealed[0].seal_id, newest.seal_id);
    let alone = verify(&app.pool, &Anchors::default()).await;
    assert!(alone.ok, "re-sealed with the real key: {alone:?}");
    let failure = assert_fails(
        &verify(&app.pool, &stream_anchors(&app).await).await,
        FailureKind::SealRewritten,
    );
    assert_eq!(failure.seal_id, Some(newest.seal_id));
}

#[tokio::test]
async fn cutting_the_unsealed_tail_shows_against_the_anchor_and_the_event_stream() {
    let mut app = TestApp::spawn().await;
    make_traffic(&app, 1).await;
    settle(&app).await;
    let sealed = Sealer::new(
        app.pool.clone(),
        std::sync::Arc::new(ledger_clock::SystemClock),
        key(),
        "k1",
        app.stream.clone(),
    )
    .seal_once()
    .await
    .unwrap();
    let sealed_through = sealed.last().unwrap().to_position;
    make_traffic(&app, 1).await;
    settle(&app).await;
    app.take_server().stop().await.unwrap();
    let anchor = AnchorFile::take(&app.pool).await.unwrap();
    let report = verify(&app.pool, &Anchors::default()).await;
    assert!(report.ok);
    assert_eq!(report.sealed_through, sealed_through);
    assert_eq!(
        report.unsealed as i64,
        head(&app.pool).await - sealed_through - gaps(&app.pool, sealed_through).await
    );
    assert!(report.unsealed > 0);

    behind_the_back(
        &app.pool,
        &[&format!(
            "DELETE FROM events WHERE global_position > {sealed_through}"
        )],
    )
    .await;
    let alone = verify(&app.pool, &Anchors::default()).await;
    assert!(alone.ok, "{alone:?}");
    assert_eq!(alone.unsealed, 0);
    let failure = assert_fails(
        &verify(&app.pool, &anchor.anchors().unwrap()).await,
        FailureKind::LogTruncated,
    );
    assert_eq!(failure.position, anchor.head.map(|h| h.position));
    let failure = assert_fails(
        &verify(&app.pool, &stream_anchors(&app).await).await,
        FailureKind::LogTruncated,
    );
    assert!(failure.position.unwrap() > sealed_through);
}

/// Positions above `after` that no event holds (rolled-back inserts).
async fn gaps(pool: &PgPool, after: i64) -> i64 {
    sqlx::query_scalar(
        "SELECT (max(global_position) - $1) - count(*) FROM events WHERE global_position > $1",
    )
    .bind(after)
    .fetch_one(pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn a_digest_only_failure_names_the_seals_range_and_a_kept_proof_the_event() {
    let (mut app, seals) = {
        let app = sealing_app().await;
        make_traffic(&app, 2).await;
        settle(&app).await;
        sealed_and_published(&app).await;
        let seals = seal::after(&app.pool, 0, 1000).await.unwrap();
        (app, seals)
    };
    let newest = seals.last().unwrap();
    let target = an_aggregates_last_event(&app.pool, newest.to_position).await;
    let proof = get(&app, &format!("/v1/audit/proof?position={target}")).await;
    assert_eq!(proof.status, StatusCode::OK, "{:?}", proof.body);
    app.take_server().stop().await.unwrap();
    let seal = seals
        .iter()
        .find(|s| s.positions.contains(&target))
        .unwrap();
    // An earlier export's hashes, as an auditor would have kept them.
    let earlier: std::collections::BTreeMap<i64, Vec<u8>> =
        sqlx::query_as::<_, (i64, Vec<u8>)>("SELECT global_position, hash FROM events")
            .fetch_all(&app.pool)
            .await
            .unwrap()
            .into_iter()
            .collect();

    behind_the_back(&app.pool, &[&rewrite_one(target)]).await;
    let failure = assert_fails(
        &verify(&app.pool, &Anchors::default()).await,
        FailureKind::SealDigest,
    );
    assert_eq!(failure.position, None);
    assert_eq!(failure.range.unwrap().to, seal.to_position);
    assert!(failure.range.unwrap().from <= seal.from_position);
    assert_eq!(failure.seal_id, Some(seal.seal_id));
    // With the earlier hashes, the failure names the event.
    let narrowed = verify(
        &app.pool,
        &Anchors {
            hashes: earlier,
            ..Anchors::default()
        },
    )
    .await;
    let failure = assert_fails(&narrowed, FailureKind::SealDigest);
    assert_eq!(failure.position, Some(target), "{narrowed:?}");
    assert_eq!(failure.range.unwrap().to, seal.to_position);
    // The proof kept from before still folds to the signed root, and its
    // event hash is no longer the stored one: that event was changed.
    let stored: Vec<u8> = sqlx::query_scalar("SELECT hash FROM events WHERE global_position = $1")
        .bind(target)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_ne!(unhex(&proof.body["event_hash"]), stored);
    assert_eq!(
        unhex(&proof.body["merkle_root"]),
        seal.merkle_root.clone().unwrap()
    );
}

#[tokio::test]
async fn a_log_rewritten_without_the_key_fails_with_the_key_the_anchor_and_the_stream() {
    let (app, seals) = sealed_log().await;
    let anchor = AnchorFile::take(&app.pool).await.unwrap();
    let target = an_aggregates_last_event(&app.pool, seals[0].to_position).await;
    behind_the_back(
        &app.pool,
        &[
            &format!(
                "UPDATE events SET payload = '{{\"forged\": true}}' WHERE global_position = {target}"
            ),
            REHASH_ALL,
            "DELETE FROM audit_seals",
        ],
    )
    .await;
    let intruder = audit::generate_signing_key();
    Sealer::new(
        app.pool.clone(),
        std::sync::Arc::new(ledger_clock::SystemClock),
        intruder.clone(),
        "dev",
        app.stream.clone(),
    )
    .seal_once()
    .await
    .unwrap();
    // Without the key everything checks out: why the CLI refuses to run so.
    let unkeyed = audit::verify_with(&app.pool, None, None, None)
        .await
        .unwrap();
    assert!(unkeyed.ok && !unkeyed.signatures_checked, "{unkeyed:?}");
    let keyed = verify(&app.pool, &Anchors::default()).await;
    let failure = assert_fails(&keyed, FailureKind::SealSignature);
    assert_eq!(failure.range.map(|r| r.from), Some(1));
    // The intruder's seals need not number as many as the real ones.
    for anchors in [stream_anchors(&app).await, anchor.anchors().unwrap()] {
        let report = audit::verify_anchored(&app.pool, None, None, None, &anchors)
            .await
            .unwrap();
        let failure = report.first_failure.clone().expect("a failure");
        assert!(
            matches!(
                failure.kind,
                FailureKind::SealRewritten | FailureKind::SealMissing
            ),
            "{report:?}"
        );
    }
}

fn hex_encode(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs `ledger audit verify` with `args` on the app's database; its exit
/// status, stdout and stderr.
async fn ledger_audit_verify(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(ledger_tests::binary::ledger_binary().await)
        .args(["audit", "verify"])
        .args(args)
        .env(
            "DATABASE_URL",
            ledger_tests::database::database_url(&app.database),
        )
        .env_remove("LEDGER_AUDIT_PUBLIC_KEY")
        .env_remove("NATS_URL")
        .env_remove("LEDGER_STREAM")
        .output()
        .await
        .expect("run ledger audit verify");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn the_cli_needs_the_key_keeps_an_anchor_and_checks_the_seal_stream() {
    let (app, seals) = sealed_log().await;
    let public = audit::verifying_key_hex(&key().verifying_key());
    let dir = tempfile::tempdir().unwrap();
    let anchor = dir.path().join("anchor.json");
    let anchor_arg = anchor.to_str().unwrap();

    let (ok, _, stderr) = ledger_audit_verify(&app, &[]).await;
    assert!(!ok, "no key, no --no-signatures: refused");
    assert!(stderr.contains("--no-signatures"), "{stderr}");
    let (ok, stdout, stderr) = ledger_audit_verify(&app, &["--no-signatures"]).await;
    assert!(ok, "{stdout}{stderr}");
    assert!(stderr.contains("WARNING"), "{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["signatures_checked"], json!(false));
    let (ok, stdout, stderr) = ledger_audit_verify(
        &app,
        &[
            "--public-key",
            &public,
            "--save-anchor",
            anchor_arg,
            "--nats-url",
            &ledger_tests::nats_url(),
            "--stream",
            &app.stream,
        ],
    )
    .await;
    assert!(ok, "{stdout}{stderr}");
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["anchors_checked"], json!(2));
    assert_eq!(
        report["sealed_through"],
        json!(seals.last().unwrap().to_position)
    );
    let saved = AnchorFile::parse(&std::fs::read(&anchor).unwrap()).unwrap();
    assert_eq!(saved.seal.unwrap().seal_id, seals.last().unwrap().seal_id);

    // The newest seal removed: the anchor and the stream both tell.
    behind_the_back(
        &app.pool,
        &[&format!(
            "DELETE FROM audit_seals WHERE seal_id = {}",
            seals.last().unwrap().seal_id
        )],
    )
    .await;
    let (ok, _, _) = ledger_audit_verify(&app, &["--public-key", &public]).await;
    assert!(ok, "the database alone cannot tell");
    let (ok, stdout, _) =
        ledger_audit_verify(&app, &["--public-key", &public, "--anchor", anchor_arg]).await;
    assert!(!ok);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["first_failure"]["kind"], json!("seal_missing"));
    let (ok, stdout, _) = ledger_audit_verify(
        &app,
        &[
            "--public-key",
            &public,
            "--nats-url",
            &ledger_tests::nats_url(),
            "--stream",
            &app.stream,
        ],
    )
    .await;
    assert!(!ok);
    let report: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["first_failure"]["kind"], json!("seal_missing"));
}
