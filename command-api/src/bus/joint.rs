//! Appends that span aggregates (issue 18, "one transaction per order"):
//!
//! - a new aggregate decided up front ([`CommandBus::prepare_new`]) whose
//!   events ride as the [`Companion`] of other commands and are recorded in
//!   the same transaction as theirs, then taken into the bus's cache
//!   ([`CommandBus::adopt`]);
//! - commands on several aggregates of one type recorded with a companion
//!   in one statement ([`CommandBus::execute_joint`]): a [`Round`] enters
//!   every aggregate's queue at once, each worker decides its part on its
//!   own state in its turn, and the last appends every part. One aggregate
//!   and a companion need no round: its worker appends the companion with
//!   its batch ([`CommandBus::execute_with_companion`]).

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, EventEnvelope};
use domain::DomainError;
use event_log::{Guard, NewEvents};
use tokio::sync::watch;

use super::cache::Loaded;
use super::postgres::encode;
use super::retry::{backoff, count, MAX_ATTEMPTS};
use super::storage::{Appended, Companion, EventStorage, JointAppended, JointPart};
use super::{
    foreign, in_tenant, scope_of, tenant_in, CommandBus, CommandError, Committed, Inner, Queued,
};
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
pub enum JointOutcome {
    /// At least one was refused, so nothing was recorded: each command's
    /// refusal, in order (`None`: that one would have been accepted).
    Rejected(Vec<Option<DomainError>>),
    /// All recorded, with the companion, in one transaction: the
    /// companion's positions.
    Committed { companion_positions: Vec<i64> },
}

/// Most a worker waits in a round for the other aggregates' workers (they
/// only ever wait for commands queued before the round, which never wait).
const ROUND_WAIT: Duration = Duration::from_secs(30);

/// One joint append over several aggregates of a type: each aggregate's
/// worker decides its part on its own state when the round reaches the head
/// of its queue, and the last to decide appends every part and the
/// companion in one statement. While a worker waits in a round, nothing
/// else of its aggregate is decided, so this process never conflicts with
/// itself; another process's append is a conflict, and the round is tried
/// again.
pub(super) struct Round<A: Aggregate> {
    aggregates: usize,
    companion: Arc<dyn Companion>,
    metadata: HashMap<String, String>,
    /// The only tenant whose aggregates it may change (`None`: any).
    scope: Option<String>,
    decided: StdMutex<Vec<Decision<A>>>,
    outcome: watch::Sender<Option<Arc<RoundOutcome>>>,
}

/// One aggregate's part of a round, as its worker decided it.
struct Decision<A: Aggregate> {
    aggregate_id: String,
    after: usize,
    /// The aggregate's tenant (`None`: it has no events yet).
    tenant: Option<String>,
    /// Each command's events, by its place in the round.
    events: Vec<(usize, Vec<A::Event>)>,
    rejections: Vec<(usize, DomainError)>,
    failure: Option<CommandError>,
}

enum RoundOutcome {
    Recorded { companion: Vec<i64> },
    Rejected(Vec<(usize, DomainError)>),
    Conflict,
    Stale,
    Failed(CommandError),
}

/// Commands with their places in a round.
type Placed<A> = Vec<(usize, <A as Aggregate>::Command)>;

/// An aggregate's turn in a round: its commands, by their place.
pub(super) struct Turn<A: Aggregate> {
    round: Arc<Round<A>>,
    commands: Placed<A>,
}

impl<A> Inner<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
{
    /// Decides this aggregate's part of a round on a copy of its state,
    /// hands it in, and waits for the round's outcome: the copy becomes the
    /// state if the round was recorded.
    pub(super) async fn take_turn(&self, aggregate_id: &str, turn: Turn<A>) {
        let Turn { round, commands } = turn;
        let mut outcome = round.outcome.subscribe();
        let loaded = match self.cache.take(aggregate_id) {
            Some(loaded) => Ok(loaded),
            None => self.storage.load(aggregate_id).await.map(|stored| Loaded {
                aggregate: stored.aggregate,
                sequence: stored.sequence,
                snapshot_at: stored.sequence,
                tenant: stored.tenant,
            }),
        };
        let mut decision = Decision {
            aggregate_id: aggregate_id.to_owned(),
            after: 0,
            tenant: None,
            events: Vec::new(),
            rejections: Vec::new(),
            failure: None,
        };
        let mut trial = None;
        match &loaded {
            Ok(loaded)
                if loaded
                    .tenant
                    .as_ref()
                    .zip(round.scope.as_ref())
                    .is_some_and(|(owner, scope)| owner != scope) =>
            {
                decision.failure = Some(foreign::<A>());
            }
            Ok(loaded) => {
                decision.after = loaded.sequence;
                decision.tenant = loaded.tenant.clone();
                let mut state = loaded.aggregate.clone();
                for (at, command) in commands {
                    let sink = EventSink::default();
                    match state.handle(command, &(), &sink).await {
                        Ok(()) => decision.events.push((at, sink.collect().await)),
                        Err(rejection) => decision.rejections.push((at, rejection)),
                    }
                }
                trial = Some(state);
            }
            Err(err) => decision.failure = Some(err.clone()),
        }
        let appended: usize = decision.events.iter().map(|(_, e)| e.len()).sum();
        let last = {
            let mut decided = round.decided.lock().unwrap_or_else(PoisonError::into_inner);
            decided.push(decision);
            decided.len() == round.aggregates
        };
        if last {
            let settled = self.settle_round(&round).await;
            round.outcome.send_replace(Some(Arc::new(settled)));
        }
        let settled = tokio::time::timeout(ROUND_WAIT, outcome.wait_for(Option::is_some))
            .await
            .ok()
            .and_then(|seen| seen.ok().and_then(|o| o.clone()));
        let Ok(mut loaded) = loaded else {
            return;
        };
        match settled.as_deref() {
            Some(RoundOutcome::Recorded { .. }) => {
                if let Some(state) = trial {
                    loaded.aggregate = state;
                    loaded.sequence += appended;
                    if appended > 0 && loaded.tenant.is_none() {
                        loaded.tenant = Some(tenant_in(&round.metadata));
                    }
                    self.cache.put(aggregate_id, loaded);
                }
            }
            // The copy may be behind the store: loaded afresh next time.
            Some(RoundOutcome::Conflict) | None => {}
            Some(_) => self.cache.put(aggregate_id, loaded),
        }
    }

    /// Done by the last worker of a round: appends every part and the
    /// companion in one statement, unless a part was refused or failed.
    async fn settle_round(&self, round: &Round<A>) -> RoundOutcome {
        let decided =
            std::mem::take(&mut *round.decided.lock().unwrap_or_else(PoisonError::into_inner));
        if let Some(failure) = decided.iter().find_map(|d| d.failure.clone()) {
            return RoundOutcome::Failed(failure);
        }
        let mut rejections: Vec<(usize, DomainError)> = decided
            .iter()
            .flat_map(|d| d.rejections.iter().cloned())
            .collect();
        if !rejections.is_empty() {
            rejections.sort_by_key(|(at, _)| *at);
            return RoundOutcome::Rejected(rejections);
        }
        let events: Vec<Vec<A::Event>> = decided
            .iter()
            .map(|d| {
                let mut by_place: Vec<&(usize, Vec<A::Event>)> = d.events.iter().collect();
                by_place.sort_by_key(|(at, _)| *at);
                by_place
                    .into_iter()
                    .flat_map(|(_, e)| e.iter().cloned())
                    .collect()
            })
            .collect();
        // Each part's events in its aggregate's tenant.
        let part_metadata: Vec<_> = decided
            .iter()
            .map(|d| in_tenant(&round.metadata, d.tenant.as_deref()))
            .collect();
        let metadata: Vec<Vec<&HashMap<String, String>>> = events
            .iter()
            .zip(&part_metadata)
            .map(|(e, m)| vec![&**m; e.len()])
            .collect();
        let parts: Vec<JointPart<'_, A>> = decided
            .iter()
            .zip(&events)
            .zip(&metadata)
            .map(|((d, events), metadata)| JointPart {
                aggregate_id: &d.aggregate_id,
                after: d.after,
                events,
                metadata,
            })
            .collect();
        match self
            .storage
            .append_joint(&parts, std::slice::from_ref(&round.companion))
            .await
        {
            Ok(JointAppended::At { mut companions, .. }) => {
                self.notifier.committed();
                RoundOutcome::Recorded {
                    companion: companions.pop().unwrap_or_default(),
                }
            }
            Ok(JointAppended::Conflict) => RoundOutcome::Conflict,
            Ok(JointAppended::Stale(_)) => RoundOutcome::Stale,
            Err(err) => RoundOutcome::Failed(err),
        }
    }
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
                tenant: Some(tenant_in(&companion.metadata)),
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
    /// in one transaction, or nothing when any command is refused. Each
    /// aggregate's part is decided by its worker, in its turn ([`Round`]).
    pub async fn execute_joint(
        &self,
        commands: Vec<(String, A::Command)>,
        companion: Arc<dyn Companion>,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<JointOutcome, CommandError> {
        let metadata = self.metadata(context, command_name).await?;
        let total = commands.len();
        // Each aggregate's commands, by their place, aggregates in the order
        // they first appear.
        let mut turns: Vec<(String, Placed<A>)> = Vec::new();
        for (at, (id, command)) in commands.into_iter().enumerate() {
            match turns.iter_mut().find(|(i, _)| *i == id) {
                Some((_, list)) => list.push((at, command)),
                None => turns.push((id, vec![(at, command)])),
            }
        }
        for attempt in 1..=MAX_ATTEMPTS {
            let (outcome, _) = watch::channel(None);
            let round = Arc::new(Round {
                aggregates: turns.len(),
                companion: companion.clone(),
                metadata: metadata.clone(),
                scope: scope_of(context),
                decided: StdMutex::new(Vec::with_capacity(turns.len())),
                outcome,
            });
            let mut settled = round.outcome.subscribe();
            self.inner.push(
                turns
                    .iter()
                    .map(|(id, list)| {
                        (
                            id.clone(),
                            Queued::Joint(Turn {
                                round: round.clone(),
                                commands: list.clone(),
                            }),
                        )
                    })
                    .collect(),
            );
            let seen = tokio::time::timeout(ROUND_WAIT, settled.wait_for(Option::is_some))
                .await
                .map_err(|_| CommandError::Stopped)?
                .map_err(|_| CommandError::Stopped)?
                .clone();
            match seen.as_deref() {
                Some(RoundOutcome::Recorded { companion }) => {
                    count::<A>(total, "accepted");
                    return Ok(JointOutcome::Committed {
                        companion_positions: companion.clone(),
                    });
                }
                Some(RoundOutcome::Rejected(found)) => {
                    count::<A>(total, "rejected");
                    let mut each = vec![None; total];
                    for (at, rejection) in found {
                        if let Some(slot) = each.get_mut(*at) {
                            *slot = Some(rejection.clone());
                        }
                    }
                    return Ok(JointOutcome::Rejected(each));
                }
                Some(RoundOutcome::Stale) => return Err(CommandError::StaleTerms),
                Some(RoundOutcome::Failed(err)) => return Err(err.clone()),
                Some(RoundOutcome::Conflict) | None => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        attempt,
                        "joint append conflict, retrying"
                    );
                    count::<A>(total, "retried");
                    tokio::time::sleep(backoff(attempt)).await;
                }
            }
        }
        count::<A>(total, "conflict");
        Err(CommandError::Conflict)
    }
}
