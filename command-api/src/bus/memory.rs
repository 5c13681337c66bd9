//! An event store in memory, for tests of the application layer without
//! PostgreSQL: the same promises as the real one (appends after an
//! expected sequence, all or nothing; positions grow), none of the
//! durability. Stores that share a [`Positions`] hand out positions from
//! one log, as the events table does.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use cqrs_es::Aggregate;

use super::storage::{Appended, Companion, EventStorage, JointAppended, JointPart, Stored};
use super::CommandError;

/// The head of a log shared by several stores.
pub type Positions = Arc<AtomicI64>;

/// An aggregate's events with their global positions, in order.
type Stream<A> = Vec<(<A as Aggregate>::Event, i64)>;

/// One aggregate type's streams, by aggregate id.
pub struct MemoryStorage<A: Aggregate> {
    streams: Mutex<HashMap<String, Stream<A>>>,
    /// Each aggregate's tenant, from its first event's metadata.
    tenants: Mutex<HashMap<String, String>>,
    head: Positions,
}

impl<A: Aggregate> MemoryStorage<A> {
    pub fn new(head: Positions) -> Self {
        Self {
            streams: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
            head,
        }
    }

    /// The events stored for one aggregate, in order.
    pub fn events(&self, aggregate_id: &str) -> Vec<A::Event> {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(aggregate_id)
            .map(|stream| stream.iter().map(|(event, _)| event.clone()).collect())
            .unwrap_or_default()
    }

    /// The ids of the aggregates with events.
    pub fn ids(&self) -> Vec<String> {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .keys()
            .cloned()
            .collect()
    }

    /// How many events are stored, over all aggregates.
    pub fn len(&self) -> usize {
        self.streams
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .map(Vec::len)
            .sum()
    }

    fn record_tenant(&self, aggregate_id: &str, metadata: Option<&&HashMap<String, String>>) {
        let tenant = metadata
            .and_then(|m| m.get(crate::context::TENANT_KEY))
            .cloned()
            .unwrap_or_else(|| event_log::DEFAULT_TENANT.to_owned());
        self.tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(aggregate_id.to_owned())
            .or_insert(tenant);
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl<A> EventStorage<A> for MemoryStorage<A>
where
    A: Aggregate,
{
    async fn load(&self, aggregate_id: &str) -> Result<Stored<A>, CommandError> {
        let events = self.events(aggregate_id);
        let mut aggregate = A::default();
        let sequence = events.len();
        for event in events {
            aggregate.apply(event);
        }
        let tenant = self
            .tenants
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(aggregate_id)
            .cloned();
        Ok(Stored {
            aggregate,
            sequence,
            tenant,
        })
    }

    async fn append(
        &self,
        aggregate_id: &str,
        after: usize,
        events: &[A::Event],
        metadata: &[&HashMap<String, String>],
    ) -> Result<Appended, CommandError> {
        let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        let stream = streams.entry(aggregate_id.to_owned()).or_default();
        if stream.len() != after {
            return Ok(Appended::Conflict);
        }
        if !events.is_empty() {
            self.record_tenant(aggregate_id, metadata.first());
        }
        let mut positions = Vec::with_capacity(events.len());
        for event in events {
            let position = self.head.fetch_add(1, Ordering::SeqCst) + 1;
            stream.push((event.clone(), position));
            positions.push(position);
        }
        Ok(Appended::At(positions))
    }

    /// The parts all or nothing; the companions after them, each on its own
    /// store (no crash to survive in memory).
    async fn append_joint(
        &self,
        parts: &[JointPart<'_, A>],
        companions: &[Arc<dyn Companion>],
    ) -> Result<JointAppended, CommandError> {
        let mut positions = Vec::with_capacity(parts.len());
        {
            let mut streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
            let moved_on = parts
                .iter()
                .any(|part| streams.get(part.aggregate_id).map_or(0, Vec::len) != part.after);
            if moved_on {
                return Ok(JointAppended::Conflict);
            }
            for part in parts {
                if !part.events.is_empty() {
                    self.record_tenant(part.aggregate_id, part.metadata.first());
                }
                let stream = streams.entry(part.aggregate_id.to_owned()).or_default();
                let mut at = Vec::with_capacity(part.events.len());
                for event in part.events {
                    let position = self.head.fetch_add(1, Ordering::SeqCst) + 1;
                    stream.push((event.clone(), position));
                    at.push(position);
                }
                positions.push(at);
            }
        }
        let mut companion_positions = Vec::with_capacity(companions.len());
        for companion in companions {
            match companion.append_alone().await? {
                Appended::At(at) => companion_positions.push(at),
                Appended::Conflict => {
                    return Err(CommandError::internal(
                        "a companion's aggregate was taken in memory",
                    ))
                }
            }
        }
        Ok(JointAppended::At {
            parts: positions,
            companions: companion_positions,
        })
    }

    async fn latest(&self, aggregate_id: &str) -> Result<(usize, i64), CommandError> {
        let streams = self.streams.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(streams
            .get(aggregate_id)
            .and_then(|stream| stream.last().map(|(_, position)| (stream.len(), *position)))
            .unwrap_or((0, 0)))
    }

    /// States are replayed from the events; nothing to keep.
    fn write_snapshot(&self, _aggregate_id: &str, _aggregate: A, _sequence: usize) {}
}
