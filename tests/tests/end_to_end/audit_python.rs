//! The second-language verifier (`scripts/audit_verify.py`, written from
//! docs/AUDIT.md) on what an auditor with read access to the database has:
//! the export (`hash`, `canonical`), the seals and an anchor. It passes on
//! a clean log and fails on each kind of tampering, on copies of one sealed
//! database (`CREATE DATABASE … TEMPLATE`).

use std::path::{Path, PathBuf};

use audit::seal::{self, SealRecord};
use audit::{AnchorFile, Sealer};
use ledger::commands::events::{export, ExportArgs, Format};
use ledger_tests::database::{admin_database_url, connect};
use serde_json::Value;
use sqlx::{Connection, Executor, PgConnection, PgPool};

use crate::audit::behind_the_back;
use crate::audit_anchors::{an_aggregates_last_event, rewrite_one, sealed_log, REHASH_ALL};

/// The verifier's script, from the repository root.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("scripts")
        .join("audit_verify.py")
}

/// Writes what the auditor reads from `pool` into `dir`; runs the
/// verifier; its exit status and report.
pub(crate) async fn python_verify(pool: &PgPool, dir: &Path, extra: &[&str]) -> (bool, Value) {
    let events = dir.join("events.ndjson");
    let seals_file = dir.join("seals.json");
    export(
        pool,
        &ExportArgs {
            format: Format::Ndjson,
            output: Some(events.clone()),
            after: None,
            until_position: None,
            since: None,
            until: None,
            aggregate_type: None,
            event_type: None,
            tenant: None,
            columns: Vec::new(),
            personal_data_kek: None,
        },
    )
    .await
    .expect("export");
    let seals: Vec<SealRecord> = seal::after(pool, 0, 100_000)
        .await
        .expect("seals")
        .iter()
        .map(SealRecord::from)
        .collect();
    std::fs::write(&seals_file, serde_json::to_vec(&seals).unwrap()).unwrap();
    let output = tokio::process::Command::new("python3")
        .arg(script())
        .arg("--events")
        .arg(&events)
        .arg("--seals")
        .arg(&seals_file)
        .args(extra)
        .output()
        .await
        .expect("run python3");
    let report: Value = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "not a report ({e}): {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.success(), report)
}

async fn clone_database(template: &str, name: &str) -> PgPool {
    let mut admin = PgConnection::connect(&admin_database_url()).await.unwrap();
    admin
        .execute(format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\"").as_str())
        .await
        .expect("clone the database");
    connect(name, 2).await
}

async fn drop_database(name: &str) {
    let mut admin = PgConnection::connect(&admin_database_url()).await.unwrap();
    let _ = admin
        .execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str())
        .await;
}

#[tokio::test]
async fn the_python_verifier_passes_a_clean_log_and_fails_each_tampering() {
    let (app, seals) = sealed_log().await;
    let newest = seals.last().unwrap().clone();
    let first_seal_end = seals[0].to_position;
    let anchor = AnchorFile::take(&app.pool).await.unwrap();
    let public = audit::verifying_key_hex(&audit::dev_signing_key().verifying_key());
    let dir = tempfile::tempdir().unwrap();
    let anchor_file = dir.path().join("anchor.json");
    std::fs::write(&anchor_file, serde_json::to_vec(&anchor).unwrap()).unwrap();
    let anchor_arg = anchor_file.to_str().unwrap().to_owned();
    let keyed: Vec<&str> = vec!["--public-key", &public];
    let anchored: Vec<&str> = vec!["--public-key", &public, "--anchor", &anchor_arg];

    let (ok, report) = python_verify(&app.pool, dir.path(), &anchored).await;
    assert!(ok, "{report}");
    assert_eq!(report["sealed_through"], newest.to_position);
    assert_eq!(report["unsealed"], 0);
    assert_eq!(report["signatures_checked"], true);
    let (ok, report) = python_verify(&app.pool, dir.path(), &["--no-signatures"]).await;
    assert!(ok && report["signatures_checked"] == false, "{report}");
    // Kept for narrowing a digest failure later.
    let earlier = dir.path().join("earlier.ndjson");
    std::fs::copy(dir.path().join("events.ndjson"), &earlier).unwrap();
    let earlier_arg = earlier.to_str().unwrap().to_owned();
    let target = an_aggregates_last_event(&app.pool, first_seal_end).await;
    app.pool.close().await;

    let newest_id = newest.seal_id;
    let from = newest.from_position;
    let cases: Vec<(&str, Vec<String>, &[&str], &str)> = vec![
        (
            "changed payload",
            vec![format!(
                "UPDATE events SET payload = '{{\"forged\": true}}' WHERE global_position = {target}"
            )],
            &keyed,
            "hash_mismatch",
        ),
        ("digest only", vec![rewrite_one(target)], &keyed, "seal_digest"),
        (
            "newest seal removed",
            vec![format!("DELETE FROM audit_seals WHERE seal_id = {newest_id}")],
            &anchored,
            "seal_missing",
        ),
        (
            "seal and its events removed",
            vec![
                format!("DELETE FROM audit_seals WHERE seal_id = {newest_id}"),
                format!("DELETE FROM events WHERE global_position >= {from}"),
            ],
            &anchored,
            "seal_missing",
        ),
        (
            "full rewrite without the key",
            vec![
                format!(
                    "UPDATE events SET payload = '{{\"forged\": true}}' WHERE global_position = {target}"
                ),
                REHASH_ALL.to_owned(),
                "DELETE FROM audit_seals".to_owned(),
            ],
            &keyed,
            "seal_signature",
        ),
    ];
    for (i, (name, sql, args, kind)) in cases.into_iter().enumerate() {
        let copy = format!("{}_py{i}", app.database);
        let pool = clone_database(&app.database, &copy).await;
        let statements: Vec<&str> = sql.iter().map(String::as_str).collect();
        behind_the_back(&pool, &statements).await;
        if name == "full rewrite without the key" {
            Sealer::new(
                pool.clone(),
                std::sync::Arc::new(ledger_clock::SystemClock),
                audit::generate_signing_key(),
                "dev",
                app.stream.clone(),
            )
            .seal_once()
            .await
            .unwrap();
            let (ok, report) = python_verify(&pool, dir.path(), &["--no-signatures"]).await;
            assert!(ok, "{name}: without the key a rewrite passes: {report}");
        }
        let (ok, report) = python_verify(&pool, dir.path(), args).await;
        assert!(!ok, "{name}: {report}");
        assert_eq!(report["first_failure"]["kind"], *kind, "{name}: {report}");
        if kind == "seal_digest" {
            assert!(
                report["first_failure"]["range"]["from"].is_i64(),
                "{report}"
            );
            assert!(
                report["first_failure"].get("position").is_none(),
                "{report}"
            );
            let narrowed = [args, &["--earlier", &earlier_arg]].concat();
            let (ok, report) = python_verify(&pool, dir.path(), &narrowed).await;
            assert!(!ok);
            assert_eq!(report["first_failure"]["position"], target, "{report}");
        }
        pool.close().await;
        drop_database(&copy).await;
    }

    // The unsealed tail cut off: a log with events after its last seal.
    let copy = format!("{}_pytail", app.database);
    let pool = clone_database(&app.database, &copy).await;
    behind_the_back(
        &pool,
        &[&format!(
            "DELETE FROM audit_seals WHERE seal_id = {newest_id}"
        )],
    )
    .await;
    let tail_anchor = AnchorFile {
        seal: anchor.seal.clone().filter(|_| false),
        head: anchor.head.clone(),
    };
    std::fs::write(&anchor_file, serde_json::to_vec(&tail_anchor).unwrap()).unwrap();
    let (ok, report) = python_verify(&pool, dir.path(), &anchored).await;
    assert!(ok, "{report}");
    assert!(report["unsealed"].as_i64().unwrap() > 0, "{report}");
    behind_the_back(
        &pool,
        &[&format!(
            "DELETE FROM events WHERE global_position >= {from}"
        )],
    )
    .await;
    let (ok, report) = python_verify(&pool, dir.path(), &anchored).await;
    assert!(!ok, "{report}");
    assert_eq!(report["first_failure"]["kind"], "log_truncated", "{report}");
    pool.close().await;
    drop_database(&copy).await;
}

#[tokio::test]
async fn a_parquet_export_names_the_seals_that_cover_its_rows_and_they_check_out() {
    use arrow_array::{Array, Int64Array, StringArray};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    let (app, seals) = sealed_log().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.parquet");
    let written = export(
        &app.pool,
        &ExportArgs {
            format: Format::Parquet,
            output: Some(path.clone()),
            after: None,
            until_position: None,
            since: None,
            until: None,
            aggregate_type: None,
            event_type: None,
            tenant: None,
            columns: Vec::new(),
            personal_data_kek: None,
        },
    )
    .await
    .expect("export as parquet");
    assert_eq!(
        written as i64,
        ledger_tests::database::scalar(&app.pool, "SELECT count(*) FROM events").await
    );

    let builder = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(&path).unwrap())
        .expect("a parquet file");
    let metadata: std::collections::HashMap<String, String> = builder
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .expect("key-value metadata")
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    assert_eq!(
        metadata["ledger.sealed_through"],
        seals.last().unwrap().to_position.to_string()
    );
    let listed: Vec<Value> = serde_json::from_str(&metadata["ledger.seals"]).unwrap();
    assert_eq!(listed.len(), seals.len());
    let mut rows: Vec<(i64, Vec<u8>)> = Vec::new();
    for batch in builder.build().unwrap() {
        let batch = batch.unwrap();
        let positions = batch
            .column_by_name("position")
            .unwrap()
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        let hashes = batch
            .column_by_name("hash")
            .unwrap()
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        for i in 0..positions.len() {
            let hash = (0..64)
                .step_by(2)
                .map(|j| u8::from_str_radix(&hashes.value(i)[j..j + 2], 16).unwrap())
                .collect();
            rows.push((positions.value(i), hash));
        }
    }
    assert_eq!(rows.len() as u64, written);
    // Each listed seal's digest is recomputed from the file's rows alone.
    let mut previous = Vec::new();
    for (seal, record) in seals.iter().zip(&listed) {
        assert_eq!(record["seal_id"], seal.seal_id);
        assert_eq!(record["digest"], audit_hex(&seal.digest));
        let mut digest = audit::seal::DigestBuilder::new(&previous);
        for (position, hash) in rows
            .iter()
            .filter(|(p, _)| (seal.from_position..=seal.to_position).contains(p))
        {
            digest.push(*position, hash);
        }
        let digest = digest.finish();
        assert_eq!(digest, seal.digest, "seal {}", seal.seal_id);
        previous = digest;
    }
}

fn audit_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
