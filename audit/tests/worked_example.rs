//! The worked example of docs/AUDIT.md, computed by the crate: if the
//! format changes, this test fails until the document is changed too.

use audit::chain::StoredEvent;
use audit::seal::{signed_message, DigestBuilder};
use audit::{merkle, Seal};
use chrono::DateTime;
use uuid::Uuid;

fn event() -> StoredEvent {
    StoredEvent {
        global_position: 1,
        aggregate_type: "Vendor".to_owned(),
        aggregate_id: "v1".to_owned(),
        sequence: 1,
        event_type: "VendorRegistered".to_owned(),
        event_version: "1.0".to_owned(),
        payload: r#"{"name": "Ada"}"#.to_owned(),
        metadata: "{}".to_owned(),
        event_id: Uuid::parse_str("00000000-0000-7000-8000-000000000001").unwrap(),
        recorded_at: DateTime::from_timestamp_micros(1_700_000_000_000_000).unwrap(),
        hash: Vec::new(),
    }
}

#[test]
fn the_documents_worked_example_holds() {
    let event = event();
    let canonical = event.canonical_content();
    let hash = event.chain_hash(None);
    let mut digest = DigestBuilder::new(&[]);
    digest.push(1, &hash);
    let mut seal = Seal {
        seal_id: 1,
        from_position: 1,
        to_position: 1,
        event_count: 1,
        positions: vec![1],
        previous_digest: Vec::new(),
        digest: digest.finish(),
        merkle_root: Some(merkle::root(&[(1, hash.to_vec())]).to_vec()),
        key_id: audit::key_id(&audit::dev_signing_key().verifying_key()),
        signature: Vec::new(),
        sealed_at: DateTime::from_timestamp_micros(1_700_000_010_000_000).unwrap(),
    };
    seal.sign(&audit::dev_signing_key());
    let shown = [
        ("canonical", hex::encode(&canonical)),
        ("hash", hex::encode(hash)),
        ("leaf", hex::encode(merkle::leaf_hash(1, &hash))),
        ("digest", hex::encode(&seal.digest)),
        (
            "merkle_root",
            hex::encode(seal.merkle_root.as_ref().unwrap()),
        ),
        ("key_id", seal.key_id.clone()),
        (
            "public_key",
            audit::verifying_key_hex(&audit::dev_signing_key().verifying_key()),
        ),
        ("signed_message", hex::encode(signed_message(&seal))),
        ("signature", hex::encode(&seal.signature)),
    ];
    let document = include_str!("../../docs/AUDIT.md");
    let missing: Vec<String> = shown
        .iter()
        .filter(|(_, value)| !document.contains(value.as_str()))
        .map(|(name, value)| format!("{name} = {value}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/AUDIT.md lacks the example's\n{}",
        missing.join("\n")
    );
}
