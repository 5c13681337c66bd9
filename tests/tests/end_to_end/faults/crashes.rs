//! The relay and the projectors killed at random points under load.

use super::*;

/// The relay and each projector are killed at random points, several times
/// each, while clients record at least 20,000 events; every read model then
/// equals a fresh rebuild and nothing was lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_and_projectors_killed_at_random_points_under_load() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let mut rng = StdRng::seed_from_u64(seed);
    let started = Instant::now();
    let mut pipeline = Pipeline::start(&nats_url()).await;
    let load = Load::start(&pipeline.app, seed).await;

    let target = 20_000;
    while event_count(&pipeline.app.pool).await < target
        || pipeline.parts.iter().any(|p| p.crashes < 3)
    {
        assert!(
            started.elapsed() < Duration::from_secs(150),
            "the load is too slow: {} events ({})",
            event_count(&pipeline.app.pool).await,
            load.stats.summary()
        );
        tokio::time::sleep(Duration::from_millis(rng.gen_range(100..1_500))).await;
        // One part, or sometimes all of them at once.
        let victims: Vec<usize> = if rng.gen_ratio(1, 5) {
            (0..pipeline.parts.len()).collect()
        } else {
            vec![rng.gen_range(0..pipeline.parts.len())]
        };
        for &v in &victims {
            pipeline.parts[v].crash().await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..600))).await;
        for &v in &victims {
            let env = pipeline.env.clone();
            pipeline.parts[v].start(&env).await;
        }
    }
    let stats = load.finish().await;
    eprintln!(
        "load done in {:?}: {} events; {}; crashes: {}",
        started.elapsed(),
        event_count(&pipeline.app.pool).await,
        stats.summary(),
        pipeline
            .parts
            .iter()
            .map(|p| format!("{} {}", p.name, p.crashes))
            .collect::<Vec<_>>()
            .join(", ")
    );
    assert_no_failures(&stats, "crashes");
    assert_read_models_match_the_log(&pipeline, "crashes").await;
    assert_stream_holds_the_log(&pipeline, "crashes").await;
    pipeline.stop().await;
    eprintln!("total {:?}", started.elapsed());
}
