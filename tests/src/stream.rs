//! A JetStream stream of its own for every test on the shared NATS server,
//! and the stream read back message by message (or tapped publish by
//! publish), to check what the relay put on it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use ledger_nats::envelope::{subject_prefix, POSITION_HEADER};
use ledger_nats::EventEnvelope;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::database::unix_now;

/// NATS with JetStream for tests.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned())
}

/// A NATS client on the test server.
pub async fn nats_client() -> async_nats::Client {
    async_nats::connect(nats_url())
        .await
        .expect("connect to NATS")
}

/// A stream name no other test uses. Streams left by test runs more than
/// an hour old are deleted on the way.
pub async fn fresh_stream_name() -> String {
    if let Ok(client) = async_nats::connect(nats_url()).await {
        let js = jetstream::new(client);
        let names: Vec<String> = js
            .stream_names()
            .filter_map(|n| async { n.ok() })
            .collect()
            .await;
        let hour_ago = unix_now().saturating_sub(3600);
        for name in names {
            let created = name
                .strip_prefix("LT_")
                .and_then(|rest| rest.split('_').next())
                .and_then(|ts| ts.parse::<u64>().ok());
            if created.is_some_and(|t| t < hour_ago) {
                let _ = js.delete_stream(&name).await;
            }
        }
    }
    format!(
        "LT_{}_{}",
        unix_now(),
        &Uuid::new_v4().simple().to_string()[..12]
    )
}

/// One message read back from the stream.
#[derive(Clone, Debug)]
pub struct StreamedEvent {
    pub stream_sequence: u64,
    pub subject: String,
    pub msg_id: Option<String>,
    pub position_header: Option<i64>,
    pub event: EventEnvelope,
}

/// Every message the stream holds now, in stream order (deleted
/// sequences are passed over).
pub async fn stream_events(client: &async_nats::Client, stream: &str) -> Vec<StreamedEvent> {
    let js = jetstream::new(client.clone());
    let stream = js.get_stream(stream).await.expect("the stream exists");
    let info = stream.get_info().await.expect("stream info");
    let mut out = Vec::with_capacity(info.state.messages as usize);
    if info.state.messages == 0 {
        return out;
    }
    for sequence in info.state.first_sequence..=info.state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue;
        };
        let event = EventEnvelope::decode(&message.payload).expect("an event envelope");
        out.push(StreamedEvent {
            stream_sequence: message.sequence,
            subject: message.subject.to_string(),
            msg_id: message
                .headers
                .get("Nats-Msg-Id")
                .map(|v| v.as_str().to_owned()),
            position_header: message
                .headers
                .get(POSITION_HEADER)
                .and_then(|v| v.as_str().parse().ok()),
            event,
        });
    }
    out
}

/// Messages on the stream now (0 if it does not exist).
pub async fn stream_count(client: &async_nats::Client, stream: &str) -> u64 {
    let js = jetstream::new(client.clone());
    match js.get_stream(stream).await {
        Ok(stream) => stream.get_info().await.map_or(0, |i| i.state.messages),
        Err(_) => 0,
    }
}

/// Waits until the stream holds at least `count` messages; returns how
/// many it holds (fewer on timeout).
pub async fn wait_for_stream_count(
    client: &async_nats::Client,
    stream: &str,
    count: u64,
    timeout: Duration,
) -> u64 {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let now = stream_count(client, stream).await;
        if now >= count || tokio::time::Instant::now() >= deadline {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every raw publish on a stream's subjects, duplicates included (a core
/// NATS subscription sees what JetStream's dedup later drops).
pub struct PublishTap {
    seen: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl PublishTap {
    pub async fn start(client: &async_nats::Client, stream: &str) -> PublishTap {
        let mut subscription = client
            .subscribe(format!("{}.>", subject_prefix(stream)))
            .await
            .expect("subscribe");
        client.flush().await.expect("flush the subscription");
        let seen = Arc::new(Mutex::new(Vec::new()));
        let sink = seen.clone();
        let task = tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("Nats-Msg-Id"))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_default();
                sink.lock().expect("tap lock").push(id);
            }
        });
        PublishTap { seen, task }
    }

    /// Message ids of every publish seen so far, in arrival order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().expect("tap lock").clone()
    }
}

impl Drop for PublishTap {
    fn drop(&mut self) {
        self.task.abort();
    }
}
