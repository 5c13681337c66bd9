//! One try at a batch: decide every queued command on the aggregate's
//! state, one after the other, then append all their events in one go, so
//! that a hot listing costs one commit per batch instead of one per
//! command. Nothing is answered before the batch is durable. A rejection
//! or no-op decided on a cached copy is confirmed against the stored
//! sequence first.

use std::sync::Arc;

use cqrs_es::{Aggregate, EventEnvelope};
use domain::DomainError;

use super::cache::Loaded;
use super::retry::snapshot_due;
use super::storage::{Appended, Companion, JointAppended, JointPart};
use super::{foreign, in_tenant, tenant_in, CommandError, Committed, Inner, Pending};

/// How one command of a batch came out, before the batch is appended.
enum Decided<A: Aggregate> {
    Rejected(DomainError),
    /// The aggregate belongs to another tenant than the command's: final,
    /// since an aggregate's tenant never changes.
    Foreign,
    /// Its events, in order (none for a no-op).
    Accepted(Vec<A::Event>),
}

/// How one try at a batch came out.
pub(super) enum Attempt<A: Aggregate> {
    /// Every command decided and its events durable: one answer each.
    Answered(Vec<Result<Committed<A>, CommandError>>),
    /// Another writer recorded these sequences first: try again later.
    Conflict,
    /// The cached copy was behind the store: try again now, from the store.
    Stale,
    /// These commands (by their place in the batch) carried companions
    /// decided on terms that changed since: they are answered so, and the
    /// rest of the batch is tried again.
    StaleCompanions(Vec<usize>),
    /// The store failed; every command of the batch gets this error.
    Failed(CommandError),
}

impl<A> Inner<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
{
    pub(super) async fn attempt(&self, aggregate_id: &str, batch: &[Pending<A>]) -> Attempt<A> {
        let cached = self.cache.take(aggregate_id);
        let from_cache = cached.is_some();
        let mut loaded = match cached {
            Some(loaded) => loaded,
            None => match self.storage.load(aggregate_id).await {
                Ok(stored) => Loaded {
                    aggregate: stored.aggregate,
                    sequence: stored.sequence,
                    snapshot_at: stored.sequence,
                    tenant: stored.tenant,
                },
                Err(err) => return Attempt::Failed(err),
            },
        };
        let mut decided: Vec<Decided<A>> = Vec::with_capacity(batch.len());
        for pending in batch {
            if let (Some(owner), Some(scope)) = (&loaded.tenant, &pending.scope) {
                if owner != scope {
                    decided.push(Decided::Foreign);
                    continue;
                }
            }
            let sink = cqrs_es::event_sink::EventSink::default();
            // Handling applies the new events to `loaded.aggregate`; every
            // aggregate decides before it writes, so a rejection leaves it
            // untouched.
            decided.push(
                match loaded
                    .aggregate
                    .handle(pending.command.clone(), &(), &sink)
                    .await
                {
                    Ok(()) => {
                        let events = sink.collect().await;
                        // The first events make the aggregate its tenant's.
                        if loaded.tenant.is_none() && !events.is_empty() {
                            loaded.tenant = Some(tenant_in(&pending.metadata));
                        }
                        Decided::Accepted(events)
                    }
                    Err(rejection) => Decided::Rejected(rejection),
                },
            );
        }
        // Every event is recorded in its aggregate's tenant.
        let metadatas: Vec<_> = batch
            .iter()
            .map(|pending| in_tenant(&pending.metadata, loaded.tenant.as_deref()))
            .collect();
        let unconfirmed = decided.iter().any(|d| match d {
            Decided::Rejected(_) => true,
            Decided::Accepted(events) => events.is_empty(),
            Decided::Foreign => false,
        });
        let appending = decided.iter().any(|d| match d {
            Decided::Accepted(events) => !events.is_empty(),
            Decided::Rejected(_) | Decided::Foreign => false,
        });

        let mut companion_positions: Vec<Vec<i64>> = Vec::new();
        let mut stale_companions: Vec<usize> = Vec::new();
        let appending = appending
            || decided
                .iter()
                .zip(batch)
                .any(|(d, p)| matches!(d, Decided::Accepted(_)) && p.companion.is_some());
        let (positions, position) = if appending {
            // A stale copy makes the append conflict, which also covers
            // the rejections and no-ops decided on it.
            let mut events = Vec::new();
            let mut metadata = Vec::new();
            for (d, pending_metadata) in decided.iter().zip(&metadatas) {
                if let Decided::Accepted(new) = d {
                    events.extend(new.iter().cloned());
                    metadata.extend(std::iter::repeat_n(&**pending_metadata, new.len()));
                }
            }
            // The companions of the commands accepted ride in the same
            // transaction (the order beside its hold).
            let (owners, companions): (Vec<usize>, Vec<Arc<dyn Companion>>) = decided
                .iter()
                .zip(batch)
                .enumerate()
                .filter(|(_, (d, _))| matches!(d, Decided::Accepted(_)))
                .filter_map(|(at, (_, pending))| pending.companion.clone().map(|c| (at, c)))
                .unzip();
            let appended = if companions.is_empty() {
                self.storage
                    .append(aggregate_id, loaded.sequence, &events, &metadata)
                    .await
            } else {
                let part = JointPart {
                    aggregate_id,
                    after: loaded.sequence,
                    events: &events,
                    metadata: &metadata,
                };
                self.storage
                    .append_joint(std::slice::from_ref(&part), &companions)
                    .await
                    .map(|joint| match joint {
                        JointAppended::At {
                            mut parts,
                            companions,
                        } => {
                            companion_positions = companions;
                            Appended::At(parts.pop().unwrap_or_default())
                        }
                        JointAppended::Conflict => Appended::Conflict,
                        JointAppended::Stale(stale) => {
                            stale_companions = stale
                                .iter()
                                .filter_map(|&c| owners.get(c).copied())
                                .collect();
                            Appended::Conflict
                        }
                    })
            };
            if !stale_companions.is_empty() {
                return Attempt::StaleCompanions(stale_companions);
            }
            match appended {
                Ok(Appended::At(positions)) => {
                    self.notifier.committed();
                    let last = positions.last().copied().unwrap_or(0);
                    (positions, last)
                }
                // Not contention but a copy behind the store.
                Ok(Appended::Conflict) if from_cache => return Attempt::Stale,
                Ok(Appended::Conflict) => return Attempt::Conflict,
                Err(err) => return Attempt::Failed(err),
            }
        } else {
            let (sequence, position) = match self.storage.latest(aggregate_id).await {
                Ok(latest) => latest,
                Err(err) => return Attempt::Failed(err),
            };
            if unconfirmed && from_cache && sequence != loaded.sequence {
                return Attempt::Stale;
            }
            (Vec::new(), position)
        };

        // Every command is final: answer each with its own events.
        let mut answers = Vec::with_capacity(batch.len());
        let mut next = 0;
        let mut companion_positions = companion_positions.into_iter();
        for ((d, pending), pending_metadata) in decided.into_iter().zip(batch).zip(&metadatas) {
            answers.push(match d {
                Decided::Rejected(rejection) => Err(CommandError::Rejected(rejection)),
                Decided::Foreign => Err(foreign::<A>()),
                Decided::Accepted(new) => {
                    let companion_positions = if pending.companion.is_some() {
                        companion_positions.next().unwrap_or_default()
                    } else {
                        Vec::new()
                    };
                    let count = new.len();
                    let envelopes: Vec<EventEnvelope<A>> = new
                        .into_iter()
                        .zip(loaded.sequence + next + 1..)
                        .map(|(payload, sequence)| EventEnvelope {
                            aggregate_id: aggregate_id.to_owned(),
                            sequence,
                            payload,
                            metadata: (**pending_metadata).clone(),
                        })
                        .collect();
                    next += count;
                    Ok(Committed {
                        events: envelopes,
                        position: if count == 0 {
                            position
                        } else {
                            positions[next - 1]
                        },
                        companion_positions,
                    })
                }
            });
        }
        let last = loaded.sequence + next;
        loaded.sequence = last;
        if let Some(every) = self.snapshot_every {
            if next > 0 && snapshot_due(every, loaded.snapshot_at, last) {
                loaded.snapshot_at = last;
                self.storage
                    .write_snapshot(aggregate_id, loaded.aggregate.clone(), last);
            }
        }
        self.cache.put(aggregate_id, loaded);
        Attempt::Answered(answers)
    }
}
