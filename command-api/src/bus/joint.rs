//! Appends that span aggregates (issue 18, "one transaction per order"):
//!
//! - a new aggregate decided up front ([`CommandBus::prepare_new`]) whose
//!   events ride as the [`Companion`] of other commands and are recorded in
//!   the same transaction as theirs, then taken into the bus's cache
//!   ([`CommandBus::adopt`]);
//! - commands on several aggregates of one type decided together and
//!   appended with a companion in one statement
//!   ([`CommandBus::execute_joint`]). This path is optimistic: it loads
//!   each aggregate from the store, and a conflict with another writer
//!   (this process's workers included) retries it from a fresh load. The
//!   hot path, one aggregate and a companion, goes through the aggregate's
//!   worker instead ([`CommandBus::execute_with_companion`]), which batches.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, EventEnvelope};
use domain::DomainError;
use event_log::{Guard, NewEvents};

use super::cache::Loaded;
use super::postgres::encode;
use super::retry::{backoff, count, MAX_ATTEMPTS};
use super::storage::{Appended, Companion, EventStorage, JointAppended, JointPart};
use super::{CommandBus, CommandError, Committed};
use crate::context::CommandContext;

/// A new aggregate's events, decided and not yet recorded.
pub struct Prepared<A: Aggregate> {
    /// Its state once the events are applied.
    aggregate: A,
    companion: Arc<NewAggregate<A>>,
}

impl<A: Aggregate> Prepared<A> {
    pub fn events(&self) -> &[A::Event] {
        &self.companion.events
    }

    /// What records the events beside another aggregate's command.
    pub fn companion(&self) -> Arc<dyn Companion>
    where
        A: 'static,
    {
        self.companion.clone()
    }
}

/// The events of a new aggregate (sequence 1 on), as a companion.
struct NewAggregate<A: Aggregate> {
    storage: Arc<dyn EventStorage<A>>,
    aggregate_id: String,
    events: Vec<A::Event>,
    metadata: HashMap<String, String>,
    encoded: NewEvents,
    guards: Vec<Guard>,
}

#[async_trait]
impl<A: Aggregate + 'static> Companion for NewAggregate<A> {
    fn aggregate_type(&self) -> &'static str {
        A::TYPE
    }

    fn aggregate_id(&self) -> &str {
        &self.aggregate_id
    }

    fn after(&self) -> usize {
        0
    }

    fn encoded(&self) -> &NewEvents {
        &self.encoded
    }

    fn guards(&self) -> &[Guard] {
        &self.guards
    }

    async fn append_alone(&self) -> Result<Appended, CommandError> {
        let metadata = vec![&self.metadata; self.events.len()];
        self.storage
            .append(&self.aggregate_id, 0, &self.events, &metadata)
            .await
    }
}

/// How commands decided together came out.
pub enum JointOutcome<A: Aggregate> {
    /// At least one was refused, so nothing was recorded: each command's
    /// refusal, in order (`None`: that one would have been accepted).
    Rejected(Vec<Option<DomainError>>),
    /// All recorded, with the companion, in one transaction.
    Committed {
        commands: Vec<Committed<A>>,
        companion_positions: Vec<i64>,
    },
}

impl<A> CommandBus<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
{
    /// Decides `command` on a new aggregate (an id this process has just
    /// made up) without recording anything: a refusal comes back at once.
    /// `guards`: what the command was decided on, checked when it is
    /// recorded ([`CommandError::StaleTerms`] if it changed).
    pub async fn prepare_new(
        &self,
        aggregate_id: &str,
        command: A::Command,
        guards: Vec<Guard>,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Prepared<A>, CommandError> {
        let metadata = self.metadata(context, command_name).await?;
        let mut aggregate = A::default();
        let sink = EventSink::default();
        aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(CommandError::Rejected)?;
        let events = sink.collect().await;
        let encoded = encode::<A>(&events, &vec![&metadata; events.len()])?;
        Ok(Prepared {
            aggregate,
            companion: Arc::new(NewAggregate {
                storage: self.inner.storage.clone(),
                aggregate_id: aggregate_id.to_owned(),
                events,
                metadata,
                encoded,
                guards,
            }),
        })
    }

    /// The prepared aggregate's events, recorded at `positions` as a
    /// companion: kept in the cache, so the next command on it (its
    /// payment) needs no load.
    pub fn adopt(&self, prepared: Prepared<A>, positions: &[i64]) -> Committed<A> {
        let companion = &prepared.companion;
        let sequence = companion.events.len();
        self.inner.cache.put_if_absent(
            &companion.aggregate_id,
            Loaded {
                aggregate: prepared.aggregate,
                sequence,
                snapshot_at: 0,
            },
        );
        count::<A>(1, "accepted");
        let events = companion
            .events
            .iter()
            .cloned()
            .zip(1..)
            .map(|(payload, sequence)| EventEnvelope {
                aggregate_id: companion.aggregate_id.clone(),
                sequence,
                payload,
                metadata: companion.metadata.clone(),
            })
            .collect();
        Committed {
            events,
            position: positions.last().copied().unwrap_or(0),
            companion_positions: Vec::new(),
        }
    }

    /// Decides `commands` (each on its aggregate, in order; several may
    /// name the same one) and records all their events and `companion`'s
    /// in one transaction, or nothing when any command is refused.
    pub async fn execute_joint(
        &self,
        commands: Vec<(String, A::Command)>,
        companion: Arc<dyn Companion>,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<JointOutcome<A>, CommandError> {
        let metadata = self.metadata(context, command_name).await?;
        let mut ids: Vec<&str> = Vec::new();
        for (id, _) in &commands {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
        let companions = [companion];
        for attempt in 1..=MAX_ATTEMPTS {
            // Fresh from the store: a cached copy may be behind it.
            let mut states: HashMap<&str, (A, usize)> = HashMap::with_capacity(ids.len());
            for id in &ids {
                let stored = self.inner.storage.load(id).await?;
                states.insert(id, (stored.aggregate, stored.sequence));
            }
            let mut decided: Vec<Result<Vec<A::Event>, DomainError>> =
                Vec::with_capacity(commands.len());
            for (id, command) in &commands {
                let Some((aggregate, _)) = states.get_mut(id.as_str()) else {
                    return Err(CommandError::internal("a joint command lost its aggregate"));
                };
                let sink = EventSink::default();
                decided.push(match aggregate.handle(command.clone(), &(), &sink).await {
                    Ok(()) => Ok(sink.collect().await),
                    Err(rejection) => Err(rejection),
                });
            }
            if decided.iter().any(Result::is_err) {
                count::<A>(commands.len(), "rejected");
                return Ok(JointOutcome::Rejected(
                    decided.into_iter().map(Result::err).collect(),
                ));
            }
            let decided: Vec<Vec<A::Event>> = decided.into_iter().flatten().collect();

            // Each aggregate's events, in the commands' order.
            let mut per_aggregate: Vec<Vec<A::Event>> = vec![Vec::new(); ids.len()];
            for ((id, _), events) in commands.iter().zip(&decided) {
                let at = ids.iter().position(|i| i == id).unwrap_or_default();
                per_aggregate[at].extend(events.iter().cloned());
            }
            let metadata_refs: Vec<Vec<&HashMap<String, String>>> = per_aggregate
                .iter()
                .map(|events| vec![&metadata; events.len()])
                .collect();
            let parts: Vec<JointPart<'_, A>> = ids
                .iter()
                .zip(&per_aggregate)
                .zip(&metadata_refs)
                .map(|((id, events), metadata)| JointPart {
                    aggregate_id: id,
                    after: states.get(id).map_or(0, |(_, sequence)| *sequence),
                    events,
                    metadata,
                })
                .collect();
            match self.inner.storage.append_joint(&parts, &companions).await? {
                JointAppended::At {
                    parts: positions,
                    companions: mut companion_positions,
                } => {
                    self.inner.notifier.committed();
                    for id in &ids {
                        // The workers' copies are behind now: they reload.
                        self.inner.cache.take(id);
                    }
                    count::<A>(commands.len(), "accepted");
                    let committed =
                        answers(&commands, decided, &ids, &states, &positions, &metadata);
                    return Ok(JointOutcome::Committed {
                        commands: committed,
                        companion_positions: companion_positions.pop().unwrap_or_default(),
                    });
                }
                JointAppended::Stale(_) => {
                    count::<A>(commands.len(), "stale");
                    return Err(CommandError::StaleTerms);
                }
                JointAppended::Conflict => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        attempt,
                        "joint append conflict, retrying"
                    );
                    count::<A>(commands.len(), "retried");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        count::<A>(commands.len(), "conflict");
        Err(CommandError::Conflict)
    }
}

/// Each command's events with their sequences and positions.
fn answers<A: Aggregate>(
    commands: &[(String, A::Command)],
    decided: Vec<Vec<A::Event>>,
    ids: &[&str],
    states: &HashMap<&str, (A, usize)>,
    positions: &[Vec<i64>],
    metadata: &HashMap<String, String>,
) -> Vec<Committed<A>> {
    // How many events of each aggregate the earlier commands took.
    let mut taken = vec![0usize; ids.len()];
    commands
        .iter()
        .zip(decided)
        .map(|((id, _), events)| {
            let at = ids.iter().position(|i| i == id).unwrap_or_default();
            let after = states.get(id.as_str()).map_or(0, |(_, sequence)| *sequence);
            let first = taken[at];
            taken[at] += events.len();
            let recorded = positions.get(at).map_or(&[][..], Vec::as_slice);
            let position = match taken[at].checked_sub(1) {
                Some(last) if !events.is_empty() => recorded.get(last),
                _ => recorded.last(),
            }
            .copied()
            .unwrap_or(0);
            let envelopes = events
                .into_iter()
                .zip(after + first + 1..)
                .map(|(payload, sequence)| EventEnvelope {
                    aggregate_id: id.clone(),
                    sequence,
                    payload,
                    metadata: metadata.clone(),
                })
                .collect();
            Committed {
                events: envelopes,
                position,
                companion_positions: Vec::new(),
            }
        })
        .collect()
}
