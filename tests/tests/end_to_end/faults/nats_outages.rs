//! A private nats-server stopped, killed, emptied or rolled back under load:
//! commands go on, and nothing is lost or applied twice.

use super::*;

/// nats-server is stopped (SIGTERM) mid-load: commands keep succeeding
/// while it is down, and once it is back the read models catch up with
/// nothing lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_stopped_during_load_commands_succeed_and_read_models_catch_up() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let started = Instant::now();
    let mut nats = PrivateNats::start().await;
    let pipeline = Pipeline::start(&nats.url()).await;
    let pool = pipeline.app.pool.clone();
    let load = Load::start(&pipeline.app, seed).await;

    wait_for_events(&pool, 2_500, Duration::from_secs(60), &load.stats).await;
    nats.terminate();
    let down_at = Instant::now();
    let (events_before, commands_before) = (event_count(&pool).await, load.stats.commands());
    let relay_before = published(&pool, &pipeline.app.stream).await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let (events_during, commands_during) = (event_count(&pool).await, load.stats.commands());
    let relay_during = published(&pool, &pipeline.app.stream).await;
    assert_no_failures(&load.stats, "nats down");
    assert!(
        commands_during - commands_before >= 50 && events_during - events_before >= 100,
        "commands kept succeeding while NATS was down: {} commands, {} events in {:?}",
        commands_during - commands_before,
        events_during - events_before,
        down_at.elapsed()
    );
    assert!(
        relay_during <= relay_before + 2_000,
        "nothing much was published while NATS was down ({relay_before} -> {relay_during})"
    );
    eprintln!(
        "while NATS was down: {} commands, {} events",
        commands_during - commands_before,
        events_during - events_before
    );
    nats.spawn().await;
    let resumed = wait_relay_past(
        &pool,
        &pipeline.app.stream,
        events_during,
        Duration::from_secs(60),
    )
    .await;
    eprintln!(
        "the relay published what was recorded while NATS was down {resumed:?} after its restart"
    );
    wait_for_events(&pool, 4_000, Duration::from_secs(90), &load.stats).await;
    let stats = load.finish().await;
    eprintln!("load done in {:?}: {}", started.elapsed(), stats.summary());
    assert_no_failures(&stats, "nats stop");
    assert_read_models_match_the_log(&pipeline, "nats stop").await;
    assert_stream_holds_the_log(&pipeline, "nats stop").await;
    pipeline.stop().await;
    drop(nats);
    eprintln!("total {:?}", started.elapsed());
}

/// nats-server is killed with SIGKILL mid-load, twice: first restarted on
/// its store as the crash left it, then restarted with an EMPTY store (the
/// worst case of JetStream losing what it acknowledged but had not synced:
/// the stream and the durable consumers are gone). The relay re-provisions
/// and republishes, and the read models end equal to a rebuild with
/// nothing lost or applied twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_killed_and_its_store_lost_during_load_nothing_lost_or_applied_twice() {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let started = Instant::now();
    let mut nats = PrivateNats::start().await;
    let pipeline = Pipeline::start(&nats.url()).await;
    let pool = pipeline.app.pool.clone();
    let load = Load::start(&pipeline.app, seed).await;

    let stream = pipeline.app.stream.clone();

    // 1. kill -9 mid-load, restart on the store as the crash left it.
    wait_for_events(&pool, 2_000, Duration::from_secs(60), &load.stats).await;
    wait_relay_past(&pool, &stream, 1_000, Duration::from_secs(60)).await;
    nats.kill9();
    let before = load.stats.commands();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_failures(&load.stats, "after kill -9");
    assert!(
        load.stats.commands() > before,
        "commands succeed while NATS is dead"
    );
    let recorded = event_count(&pool).await;
    nats.spawn().await;
    let resumed = wait_relay_past(&pool, &stream, recorded, Duration::from_secs(60)).await;
    eprintln!("the relay caught up {resumed:?} after the restart");

    // 2. kill -9 again, and the store is lost.
    wait_for_events(&pool, 3_000, Duration::from_secs(60), &load.stats).await;
    let relay_at_kill = published(&pool, &stream).await;
    nats.kill9();
    std::fs::remove_dir_all(&nats.store).expect("wipe the store");
    std::fs::create_dir_all(&nats.store).expect("an empty store");
    let before = load.stats.commands();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_no_failures(&load.stats, "after kill -9");
    assert!(
        load.stats.commands() > before,
        "commands succeed while NATS is dead"
    );
    let recorded = event_count(&pool).await;
    nats.spawn().await;
    let resumed = wait_relay_past(&pool, &stream, recorded, Duration::from_secs(60)).await;
    eprintln!(
        "the store was lost with {relay_at_kill} events published; the relay republished \
         the whole log {resumed:?} after the restart"
    );

    wait_for_events(&pool, 4_500, Duration::from_secs(90), &load.stats).await;
    let stats = load.finish().await;
    eprintln!("load done in {:?}: {}", started.elapsed(), stats.summary());
    assert_no_failures(&stats, "kill -9");
    assert_read_models_match_the_log(&pipeline, "kill -9").await;
    assert_stream_holds_the_log(&pipeline, "kill -9").await;
    pipeline.stop().await;
    drop(nats);
    eprintln!("total {:?}", started.elapsed());
}

/// Acknowledged messages vanish behind consumers that had already seen
/// them: nats-server is killed with SIGKILL and restarts with its stream's
/// messages rolled back to an older copy while the consumers' state (their
/// delivered and acknowledged sequences) is the newer one. The projectors
/// must neither skip the lost events nor apply anything twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_killed_and_acknowledged_tail_lost_behind_consumers() {
    lost_tail("lost tail", false).await;
}

/// As above, and the stream itself must end holding every event: the
/// relay has to notice that JetStream lost what it had acknowledged and
/// publish it again (DESIGN.md "NATS", nats/src/relay.rs module docs).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_republishes_what_jetstream_lost_while_it_stayed_connected() {
    lost_tail("lost tail, stream", true).await;
}

async fn lost_tail(label: &str, check_stream: bool) {
    let _serial = ONE_AT_A_TIME.lock().await;
    let seed = seed("FAULTS_SEED");
    eprintln!("FAULTS_SEED={seed}");
    let started = Instant::now();
    let mut nats = PrivateNats::start().await;
    let pipeline = Pipeline::start(&nats.url()).await;
    let pool = pipeline.app.pool.clone();
    let stream = pipeline.app.stream.clone();
    let load = Load::start(&pipeline.app, seed).await;

    // An old copy of the stream's messages, taken from a cleanly stopped
    // server so that it is consistent.
    wait_for_events(&pool, 2_000, Duration::from_secs(60), &load.stats).await;
    wait_relay_past(&pool, &stream, 1_000, Duration::from_secs(60)).await;
    nats.terminate();
    let old_messages = nats.dir.path().join("old-msgs");
    copy_dir(&nats.stream_dir(&stream).join("msgs"), &old_messages);
    nats.spawn().await;
    let (kept, _, _) = stream_state(&nats.url(), &stream).await;
    let kept = kept as i64;

    // Later, once the relay and the projectors are well past the copy:
    // kill -9, and the messages since the copy are gone while the
    // consumers' state survives.
    wait_relay_past(&pool, &stream, kept + 2_000, Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while checkpoints(&pool)
        .await
        .iter()
        .any(|(name, position)| name != command_api::policies::NAME && *position <= kept + 1_000)
    {
        assert!(Instant::now() < deadline, "the projectors move on");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let relay_at_kill = published(&pool, &stream).await;
    nats.kill9();
    let msgs = nats.stream_dir(&stream).join("msgs");
    std::fs::remove_dir_all(&msgs).expect("drop the newer messages");
    copy_dir(&old_messages, &msgs);
    nats.spawn().await;
    let (after_restore, first, last) = stream_state(&nats.url(), &stream).await;
    let after_restore = after_restore as i64;
    eprintln!(
        "the relay had published {relay_at_kill} events; the stream came back with \
         {after_restore} (sequences {first}..={last}; the copy had {kept})"
    );
    assert!(
        after_restore < relay_at_kill,
        "the stream lost acknowledged messages"
    );
    let recorded = event_count(&pool).await;
    let resumed = wait_relay_past(&pool, &stream, recorded, Duration::from_secs(60)).await;
    eprintln!("the relay went past what was recorded {resumed:?} after the restart");

    wait_for_events(&pool, 4_000, Duration::from_secs(90), &load.stats).await;
    let stats = load.finish().await;
    eprintln!("load done in {:?}: {}", started.elapsed(), stats.summary());
    assert_no_failures(&stats, label);
    assert_read_models_match_the_log(&pipeline, label).await;
    if check_stream {
        assert_stream_holds_the_log(&pipeline, label).await;
    }
    pipeline.stop().await;
    drop(nats);
    eprintln!("total {:?}", started.elapsed());
}
