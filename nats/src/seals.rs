//! The seal stream, `<stream>_SEALS`: a copy of every audit seal outside
//! the database (docs/AUDIT.md), so that removing or re-making the newest
//! seals in PostgreSQL shows. One message per seal, in seal order, on
//! subject `<lower-cased stream>.seals`, `Nats-Msg-Id` `seal:<seal_id>`.
//! Its configuration denies deleting and purging messages; nothing but the
//! seal publisher writes to it.
//!
//! The stream carries the seal's JSON as bytes: what a seal is and how it
//! is checked belongs to the `audit` crate.

use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::stream::{self, LastRawMessageErrorKind, RawMessageErrorKind};
use async_nats::jetstream::ErrorCode;
use async_nats::jetstream::{self};
use bytes::Bytes;

use crate::{Error, StreamSettings};

/// The seal stream of the deployment whose event stream is `stream`.
pub fn stream_name(stream: &str) -> String {
    format!("{stream}_SEALS")
}

/// The one subject of the seal stream.
pub fn subject(stream: &str) -> String {
    format!("{}.seals", stream.to_ascii_lowercase())
}

fn config(settings: &StreamSettings) -> stream::Config {
    stream::Config {
        name: stream_name(&settings.name),
        subjects: vec![subject(&settings.name)],
        storage: stream::StorageType::File,
        num_replicas: settings.replicas,
        duplicate_window: settings.duplicate_window,
        deny_delete: true,
        deny_purge: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// Creates the seal stream if it is missing and returns it.
pub async fn provision(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<stream::Stream, Error> {
    js.get_or_create_stream(config(settings))
        .await
        .map_err(Error::nats)
}

/// Publishes one seal's JSON and waits for the stream's acknowledgement.
pub async fn publish(
    js: &jetstream::Context,
    settings: &StreamSettings,
    seal_id: i64,
    body: Vec<u8>,
) -> Result<(), Error> {
    let message = PublishMessage::build()
        .message_id(format!("seal:{seal_id}"))
        .payload(Bytes::from(body));
    js.send_publish(subject(&settings.name), message)
        .await
        .map_err(Error::nats)?
        .await
        .map_err(Error::nats)?;
    Ok(())
}

/// The newest seal's JSON on the stream, if any.
pub async fn newest(
    stream: &stream::Stream,
    settings: &StreamSettings,
) -> Result<Option<Bytes>, Error> {
    match stream
        .get_last_raw_message_by_subject(&subject(&settings.name))
        .await
    {
        Ok(message) => Ok(Some(message.payload)),
        Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => Ok(None),
        Err(err) => Err(Error::nats(err)),
    }
}

/// The part of an event envelope that names it.
#[derive(serde::Deserialize)]
struct Named {
    position: i64,
    event_id: uuid::Uuid,
}

/// The position and event id of the event stream's last message, if any:
/// an event the events table must still hold.
pub async fn last_event(
    js: &jetstream::Context,
    settings: &StreamSettings,
) -> Result<Option<(i64, uuid::Uuid)>, Error> {
    let stream = match js.get_stream(&settings.name).await {
        Ok(stream) => stream,
        Err(err)
            if matches!(err.kind(), GetStreamErrorKind::JetStream(e)
                if e.error_code() == ErrorCode::STREAM_NOT_FOUND) =>
        {
            return Ok(None)
        }
        Err(err) => return Err(Error::nats(err)),
    };
    let info = stream.get_info().await.map_err(Error::nats)?;
    if info.state.messages == 0 {
        return Ok(None);
    }
    let first = info.state.first_sequence.max(1);
    let mut sequence = info.state.last_sequence;
    while sequence >= first {
        match stream.get_raw_message(sequence).await {
            Ok(message) => {
                let named: Named = serde_json::from_slice(&message.payload).map_err(|e| {
                    Error::nats(format!("message {sequence} is not an event envelope: {e}"))
                })?;
                return Ok(Some((named.position, named.event_id)));
            }
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => sequence -= 1,
            Err(err) => return Err(Error::nats(err)),
        }
    }
    Ok(None)
}
