//! The statements on `events` against a real PostgreSQL (a fresh database
//! per test, migrated): appends, conflicts, snapshots and the reads the
//! relay, the consumers and the event API go on from.

use event_log::statements::{positions, reads};
use event_log::{append, latest, upsert_snapshot, Error, Latest, NewEvents, StoredEvent};
use serde_json::json;
use sqlx::PgPool;

fn events(n: usize) -> NewEvents {
    let mut events = NewEvents::with_capacity(n);
    for i in 0..n {
        events.push(
            "VendorRegistered".into(),
            "1.0".into(),
            json!({"VendorRegistered": {"i": i}}),
            json!({"correlation_id": format!("c{i}")}),
        );
    }
    events
}

#[sqlx::test(migrator = "migrations::MIGRATOR")]
async fn an_append_answers_its_positions_in_sequence_order(pool: PgPool) {
    let first = append(&pool, "Vendor", "v1", 1, &events(3))
        .await
        .expect("appended");
    assert_eq!(first.len(), 3);
    assert!(first.windows(2).all(|w| w[0] < w[1]), "{first:?}");
    let next = append(&pool, "Vendor", "v1", 4, &events(1))
        .await
        .expect("appended");
    assert!(next[0] > first[2]);
    assert_eq!(
        latest(&pool, "Vendor", "v1").await.expect("latest"),
        Latest {
            sequence: 4,
            position: next[0]
        }
    );
    assert_eq!(
        latest(&pool, "Vendor", "v2").await.expect("latest"),
        Latest::default()
    );
}

#[sqlx::test(migrator = "migrations::MIGRATOR")]
async fn an_append_at_a_stored_sequence_is_a_conflict_and_stores_nothing(pool: PgPool) {
    append(&pool, "Vendor", "v1", 1, &events(2))
        .await
        .expect("appended");
    let again = append(&pool, "Vendor", "v1", 2, &events(2)).await;
    assert!(matches!(again, Err(Error::Conflict)), "{again:?}");
    assert_eq!(positions::count(&pool).await.expect("count"), 2);
}

#[sqlx::test(migrator = "migrations::MIGRATOR")]
async fn a_snapshot_is_only_ever_replaced_by_a_later_one(pool: PgPool) {
    let write = |sequence: i64, state: &'static str| {
        let pool = pool.clone();
        async move {
            upsert_snapshot(&pool, "Inventory", "i1", sequence, sequence / 10, state)
                .await
                .expect("upsert")
        }
    };
    assert!(write(10, r#"{"at":10}"#).await);
    assert!(write(20, r#"{"at":20}"#).await);
    assert!(!write(15, r#"{"at":15}"#).await);
    let (sequence, payload): (i64, serde_json::Value) =
        sqlx::query_as("SELECT last_sequence, payload FROM snapshots WHERE aggregate_id = 'i1'")
            .fetch_one(&pool)
            .await
            .expect("snapshot");
    assert_eq!((sequence, payload), (20, json!({"at": 20})));
}

#[sqlx::test(migrator = "migrations::MIGRATOR")]
async fn reads_by_range_position_and_aggregate_agree(pool: PgPool) {
    let v1 = append(&pool, "Vendor", "v1", 1, &events(2))
        .await
        .expect("appended");
    let v2 = append(&pool, "Vendor", "v2", 1, &events(2))
        .await
        .expect("appended");
    let head = positions::head(&pool).await.expect("head");
    assert_eq!(head, v2[1]);
    let all = reads::between(&pool, 0, head, None).await.expect("between");
    assert_eq!(
        all.iter().map(|e| e.position).collect::<Vec<_>>(),
        [v1[0], v1[1], v2[0], v2[1]]
    );
    let limited = reads::between(&pool, v1[0], head, Some(2))
        .await
        .expect("between");
    assert_eq!(limited, all[1..3].to_vec());

    let mut present = positions::present_between(&pool, v1[0], v2[0])
        .await
        .expect("present");
    present.sort_unstable();
    assert_eq!(present, [v1[1], v2[0]]);
    assert_eq!(
        positions::first_after(&pool, v1[1]).await.expect("first"),
        Some(v2[0])
    );
    assert!(positions::exists(&pool, v2[1]).await.expect("exists"));
    assert!(!positions::exists(&pool, head + 1).await.expect("exists"));

    let mut picked = reads::at_positions(&pool, &[v2[1], v1[0]])
        .await
        .expect("at");
    picked.sort_by_key(|e| e.position);
    assert_eq!(picked, vec![all[0].clone(), all[3].clone()]);

    let filter = reads::Filter {
        aggregate_id: Some("v2".into()),
        ..Default::default()
    };
    let page = reads::page(&pool, 0, head, &filter, 10)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|l| &l.event).collect::<Vec<_>>(),
        [&all[2], &all[3]]
    );
    assert!(page
        .iter()
        .all(|l| l.hash.as_ref().is_some_and(|h| h.len() == 64)));
    assert!(reads::page(&pool, head, head, &filter, 10)
        .await
        .expect("page")
        .is_empty());

    let stream = reads::of_aggregate(&pool, "Vendor", "v1")
        .await
        .expect("aggregate");
    assert_eq!(
        stream.iter().map(|l| l.event.sequence).collect::<Vec<_>>(),
        [1, 2]
    );
}

#[sqlx::test(migrator = "migrations::MIGRATOR")]
async fn the_verbatim_form_encodes_as_the_parsed_one(pool: PgPool) {
    append(&pool, "Vendor", "v1", 1, &events(3))
        .await
        .expect("appended");
    let parsed = reads::between(&pool, 0, i64::MAX, None)
        .await
        .expect("between");
    let verbatim = reads::after_verbatim(&pool, 0, 10).await.expect("verbatim");
    assert_eq!(verbatim.len(), 3);
    for (raw, event) in verbatim.iter().zip(&parsed) {
        let json = serde_json::to_vec(raw).expect("json");
        assert_eq!(&StoredEvent::decode(&json).expect("decodes"), event);
    }
}

/// Events of `tenant` (its slug in the metadata).
fn events_of(tenant: &str, n: usize) -> NewEvents {
    let mut events = NewEvents::with_capacity(n);
    for i in 0..n {
        events.push(
            "VendorRegistered".into(),
            "1.0".into(),
            json!({"VendorRegistered": {"i": i}}),
            json!({"correlation_id": format!("c{i}"), "tenant": tenant}),
        );
    }
    events
}

#[sqlx::test(migrator = "migrations::MIGRATOR")]
async fn a_tenants_page_and_export_hold_its_events_only(pool: PgPool) {
    use event_log::statements::export::{self, Selection};
    append(&pool, "Vendor", "old", 1, &events(1))
        .await
        .expect("append");
    let acme = append(&pool, "Vendor", "a1", 1, &events_of("acme", 2))
        .await
        .expect("append");
    append(&pool, "Vendor", "b1", 1, &events_of("beta", 3))
        .await
        .expect("append");
    let head = positions::head(&pool).await.expect("head");
    let any = reads::Filter::default();

    let page = reads::page_in(&pool, Some("acme"), 0, head, &any, 10)
        .await
        .expect("page");
    assert_eq!(
        page.iter().map(|l| l.event.position).collect::<Vec<_>>(),
        acme
    );
    assert!(page.iter().all(|l| l.event.tenant == "acme"));
    // Events without a tenant are the default tenant's.
    let default = reads::page_in(&pool, Some("default"), 0, head, &any, 10)
        .await
        .expect("page");
    assert_eq!(default.len(), 1);
    let all = reads::page_in(&pool, None, 0, head, &any, 10)
        .await
        .expect("page");
    assert_eq!(all.len(), 6);

    let beta = Selection {
        tenant: Some("beta".into()),
        ..Selection::default()
    };
    assert_eq!(export::count(&pool, &beta).await.expect("count"), 3);
    let mut tenants = Vec::new();
    let visited = export::for_each(&pool, &beta, |l| {
        tenants.push(l.event.tenant);
        Ok::<_, Error>(())
    })
    .await
    .expect("export");
    assert_eq!(visited, 3);
    assert!(tenants.iter().all(|t| t == "beta"));
    assert_eq!(
        export::count(&pool, &Selection::default())
            .await
            .expect("count"),
        6
    );
}
