//! Whether the stream belongs to this database's history.
//!
//! The stream is derived from the events table, but it outlives it: a
//! database restored from an older backup, or dropped and created again,
//! finds a stream that holds events it never had. The relay resumes from
//! the stream's last message (it trusts the stream), so it would wait for
//! positions it believes published and never publish the database's new
//! events; consumers would take messages of the other history for theirs.
//!
//! Every event carries its global position and event id on the wire, and
//! event ids are unique: the stream is this database's when the events
//! table holds, at the position of the stream's first and last message,
//! the very event that message carries. A database restored behind its
//! stream lacks the last message's position or holds another event there;
//! a new database has another event even at position 1. An empty stream
//! belongs to any database (the relay fills it from the table).
//!
//! The relay and each consumer call [`wait_until_ours`] before they start:
//! on a foreign stream they refuse to go on, log an ERROR naming both
//! sides, record a `stream_mismatch` fault (readiness, projections) and look
//! again every [`RECHECK`], so that they go on by themselves once an
//! operator has run `ledger stream reset`.

use std::time::Duration;

use async_nats::jetstream::stream::{RawMessageErrorKind, Stream};
use serde::Deserialize;
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::faults::{self, FaultKind};
use crate::Error;

/// How often a component refusing a foreign stream looks again.
pub const RECHECK: Duration = Duration::from_secs(2);

/// While refusing, the ERROR is logged again after this many looks
/// (about five minutes), so that it is not lost in a long log.
const REMIND_EVERY: u32 = 150;

/// Deleted messages passed over at either end of the stream before giving
/// up on telling its history.
const MAX_WALK: u64 = 1_000;

/// One message of the stream, as far as its history goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub sequence: u64,
    pub position: i64,
    pub event_id: Uuid,
}

/// What the events table holds at a stream message's position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableSide {
    pub database: String,
    /// The event id at that position, if the table has one.
    pub event_id: Option<Uuid>,
    /// The highest position in the table (0 on an empty log).
    pub head: i64,
}

/// A stream message that is not this database's event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub stream: String,
    pub message: Stamp,
    pub table: TableSide,
}

impl Mismatch {
    /// The fault's detail: both sides, and the way out.
    pub fn detail(&self) -> String {
        let Stamp {
            sequence,
            position,
            event_id,
        } = self.message;
        let table = &self.table;
        let found = match table.event_id {
            Some(other) => format!("holds event {other} at position {position}"),
            None => format!(
                "has no event at position {position} (its head is {})",
                table.head
            ),
        };
        format!(
            "stream {} holds event {event_id} at position {position} (stream sequence {sequence}), \
             but database {} {found}: the stream belongs to another history (a restored or \
             recreated database); run `ledger stream reset`",
            self.stream, table.database
        )
    }
}

/// What the stream's ends say about its history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Empty, or its first and last messages are this database's events.
    Ours,
    Foreign(Mismatch),
    /// Its ends cannot be read as events (something else published there).
    Unknown(String),
}

/// The pure rule: a message is this database's when the table holds that
/// very event at its position.
pub fn compare(stream: &str, message: Stamp, table: TableSide) -> Option<Mismatch> {
    (table.event_id != Some(message.event_id)).then(|| Mismatch {
        stream: stream.to_owned(),
        message,
        table,
    })
}

/// The part of an envelope that places it in a history.
#[derive(Deserialize)]
struct Placed {
    position: i64,
    event_id: Uuid,
}

/// Reads the message at `sequence`; `None` when it was deleted.
async fn stamp_at(stream: &Stream, sequence: u64) -> Result<Option<Result<Stamp, String>>, Error> {
    match stream.get_raw_message(sequence).await {
        Ok(message) => Ok(Some(
            serde_json::from_slice::<Placed>(&message.payload)
                .map(|placed| Stamp {
                    sequence,
                    position: placed.position,
                    event_id: placed.event_id,
                })
                .map_err(|e| format!("message {sequence} is not an event envelope: {e}")),
        )),
        Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => Ok(None),
        Err(err) => Err(Error::nats(err)),
    }
}

/// The first message at or after `from` going `forward` (else backward),
/// within `first..=last`.
async fn first_present(
    stream: &Stream,
    from: u64,
    first: u64,
    last: u64,
    forward: bool,
) -> Result<Result<Stamp, String>, Error> {
    let mut sequence = from;
    for _ in 0..MAX_WALK {
        if sequence < first || sequence > last {
            break;
        }
        if let Some(stamp) = stamp_at(stream, sequence).await? {
            return Ok(stamp);
        }
        sequence = if forward { sequence + 1 } else { sequence - 1 };
    }
    Ok(Err(format!(
        "no message found within {MAX_WALK} sequences of {from}"
    )))
}

/// What this database's events table holds at `position`.
async fn table_side(pool: &PgPool, position: i64) -> Result<TableSide, Error> {
    let (database, event_id, head) =
        event_log::statements::positions::database_event_and_head(pool, position).await?;
    Ok(TableSide {
        database,
        event_id,
        head,
    })
}

/// Compares the stream's last and first messages with the events table.
pub async fn check(pool: &PgPool, stream: &Stream) -> Result<Verdict, Error> {
    let info = stream.get_info().await.map_err(Error::nats)?;
    let state = &info.state;
    if state.messages == 0 {
        return Ok(Verdict::Ours);
    }
    let first = state.first_sequence.max(1);
    let last = state.last_sequence;
    let tail = match first_present(stream, last, first, last, false).await? {
        Ok(stamp) => stamp,
        Err(why) => return Ok(Verdict::Unknown(why)),
    };
    let head = match first_present(stream, first, first, last, true).await? {
        Ok(stamp) => stamp,
        Err(why) => return Ok(Verdict::Unknown(why)),
    };
    for message in [tail, head] {
        let table = table_side(pool, message.position).await?;
        if let Some(mismatch) = compare(&info.config.name, message, table) {
            return Ok(Verdict::Foreign(mismatch));
        }
    }
    Ok(Verdict::Ours)
}

/// Returns once the stream is this database's, or once `shutdown` is
/// cancelled (the caller tells which). Until then it refuses: ERROR log,
/// `stream_mismatch` fault of `component`, another look every
/// [`RECHECK`]. A `stream_mismatch` fault of `component` is cleared when the
/// stream is found to be ours (a fault of another kind is left alone).
pub async fn wait_until_ours(
    pool: &PgPool,
    stream: &Stream,
    component: &str,
    shutdown: &CancellationToken,
) -> Result<(), Error> {
    let mut reported: Option<Mismatch> = None;
    let mut looks_since_logged = 0u32;
    loop {
        if shutdown.is_cancelled() {
            return Ok(());
        }
        match check(pool, stream).await? {
            Verdict::Ours => {
                clear_mismatch(pool, component).await?;
                return Ok(());
            }
            Verdict::Unknown(why) => {
                // Not a message of any ledger's history: the relay's
                // expected-sequence check deals with foreign publishers.
                tracing::warn!(
                    component,
                    reason = %why,
                    "cannot tell whether the stream belongs to this database; going on"
                );
                clear_mismatch(pool, component).await?;
                return Ok(());
            }
            Verdict::Foreign(mismatch) => {
                let detail = mismatch.detail();
                if reported.as_ref() != Some(&mismatch) || looks_since_logged >= REMIND_EVERY {
                    tracing::error!(
                        component,
                        stream = %mismatch.stream,
                        stream_sequence = mismatch.message.sequence,
                        stream_position = mismatch.message.position,
                        stream_event_id = %mismatch.message.event_id,
                        database = %mismatch.table.database,
                        database_event_id = ?mismatch.table.event_id,
                        database_head = mismatch.table.head,
                        "refusing a stream from another history: {detail}"
                    );
                    looks_since_logged = 0;
                }
                faults::record(
                    pool,
                    component,
                    FaultKind::StreamMismatch,
                    Some(mismatch.message.position),
                    &detail,
                )
                .await?;
                reported = Some(mismatch);
                looks_since_logged += 1;
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(RECHECK) => {}
            _ = shutdown.cancelled() => {}
        }
    }
}

/// Clears `component`'s fault if it is a stream mismatch; true if it was.
pub async fn clear_mismatch(pool: &PgPool, component: &str) -> Result<bool, Error> {
    let mismatched = faults::clear(pool, component, FaultKind::StreamMismatch).await?;
    if mismatched {
        tracing::info!(
            component,
            "the stream belongs to this database again; going on"
        );
    }
    Ok(mismatched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(position: i64, event_id: Uuid) -> Stamp {
        Stamp {
            sequence: position as u64,
            position,
            event_id,
        }
    }

    fn table(event_id: Option<Uuid>, head: i64) -> TableSide {
        TableSide {
            database: "ledger".into(),
            event_id,
            head,
        }
    }

    #[test]
    fn a_message_whose_event_the_table_holds_at_its_position_is_ours() {
        let id = Uuid::from_u128(7);
        assert_eq!(compare("LEDGER", stamp(30, id), table(Some(id), 45)), None);
    }

    #[test]
    fn a_stream_ahead_of_a_restored_database_is_foreign() {
        // An older dump: positions 1..20 of the same history, the stream at 30.
        let mismatch =
            compare("LEDGER", stamp(30, Uuid::from_u128(1)), table(None, 20)).expect("a mismatch");
        let detail = mismatch.detail();
        assert!(detail.contains("stream LEDGER"), "{detail}");
        assert!(detail.contains("at position 30"), "{detail}");
        assert!(detail.contains(&Uuid::from_u128(1).to_string()), "{detail}");
        assert!(detail.contains("its head is 20"), "{detail}");
        assert!(detail.contains("ledger stream reset"), "{detail}");
    }

    #[test]
    fn another_event_at_the_same_position_is_foreign() {
        // A new database that has written past the stream's tail since.
        let (ours, theirs) = (Uuid::from_u128(2), Uuid::from_u128(3));
        let mismatch =
            compare("LEDGER", stamp(1, theirs), table(Some(ours), 40)).expect("a mismatch");
        let detail = mismatch.detail();
        assert!(detail.contains(&format!("holds event {ours} at position 1")));
        assert!(detail.contains(&format!("holds event {theirs} at position 1")));
    }

    #[test]
    fn a_missing_position_below_the_head_is_foreign() {
        // The relay never publishes a position the table lacks.
        assert!(compare("LEDGER", stamp(5, Uuid::from_u128(4)), table(None, 9)).is_some());
    }
}
