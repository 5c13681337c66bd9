//! Runs commands against event-sourced aggregates.
//!
//! cqrs-es's `CqrsFramework` throws away what it committed, but a command's
//! answer must carry the global position of its last event, so the bus
//! drives the store itself: load, handle, append.
//!
//! - **One writer per aggregate in this process.** Commands to an aggregate
//!   queue for a worker task that exists while the queue is not empty. The
//!   worker takes every queued command as one batch (`batch`): it handles
//!   them one after the other on the aggregate's state and appends all
//!   their events at once, and never fails on version conflicts with
//!   itself. Conflicts that other processes cause are retried with a
//!   fresh load (`retry`).
//! - **A bounded cache of states** (`cache`), never trusted to accept
//!   anything: the append carries the expected sequence.
//! - **Storage behind a trait** (`storage`): PostgreSQL in production
//!   (`postgres`, which also writes snapshots off the worker's path),
//!   memory in tests (`memory`).
//!
//! Errors are [`CommandError`]s; HTTP answers are made of them in
//! `crate::error` only.

mod batch;
mod cache;
mod error;
mod joint;
pub mod memory;
pub mod postgres;
mod retry;
pub mod storage;

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use cqrs_es::{Aggregate, EventEnvelope};
use domain::DomainError;
use ledger_nats::CommitNotifier;
use sqlx::PgPool;
use tokio::sync::oneshot;
use tracing::Instrument;

use crate::auth::Principal;
use crate::context::CommandContext;
use batch::Attempt;
use cache::{Loaded, StateCache};
use retry::{backoff, count, MAX_ATTEMPTS};

pub use error::{CommandError, StoreError};
pub use joint::{JointOutcome, Prepared};
pub use memory::MemoryStorage;
pub use postgres::PostgresStorage;
pub use storage::{Appended, Companion, EventStorage, JointAppended, JointPart, Stored};

/// Most commands handled and appended together.
const MAX_BATCH: usize = 64;

/// What a command recorded.
pub struct Committed<A: Aggregate> {
    pub events: Vec<EventEnvelope<A>>,
    /// Global position of the last recorded event; when the command recorded
    /// nothing (an idempotent repeat), the aggregate's latest position.
    pub position: i64,
    /// The positions of the companion's events recorded with the command's
    /// (none without a companion).
    pub companion_positions: Vec<i64>,
}

/// What waits in an aggregate's queue: a command, or this aggregate's turn
/// in a joint round (`joint`), which its worker takes alone.
enum Queued<A: Aggregate> {
    Command(Pending<A>),
    Joint(joint::Turn<A>),
}

/// A command waiting for its aggregate's worker.
struct Pending<A: Aggregate> {
    command: A::Command,
    metadata: HashMap<String, String>,
    /// The only tenant whose aggregate it may act on (`None`: any, for the
    /// system's own principals).
    scope: Option<String>,
    /// Recorded in the same transaction if the command is accepted.
    companion: Option<Arc<dyn Companion>>,
    reply: oneshot::Sender<Result<Committed<A>, CommandError>>,
}

pub struct CommandBus<A: Aggregate> {
    inner: Arc<Inner<A>>,
}

struct Inner<A: Aggregate> {
    storage: Arc<dyn EventStorage<A>>,
    /// Snapshot the aggregate at least this many events apart (`None`:
    /// never); see [`retry::snapshot_due`].
    snapshot_every: Option<usize>,
    cache: StateCache<A>,
    /// Commands waiting, per aggregate; an aggregate has a worker exactly
    /// while it has an entry here. One lock for all, so that a joint round
    /// enters every queue it needs at once, and rounds keep one order in
    /// every queue (no two rounds can wait on each other).
    queues: Mutex<HashMap<String, VecDeque<Queued<A>>>>,
    /// Wakes the relay after each append.
    notifier: CommitNotifier,
    /// Seals the acting person's subject in each event's metadata (none:
    /// stored clear, in tests without a database).
    personal: Option<privacy::Keyring>,
}

impl<A> CommandBus<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
{
    /// A bus on PostgreSQL that replays every event of an aggregate on a
    /// cold load.
    pub fn new(pool: PgPool, notifier: CommitNotifier) -> Self {
        Self::with_storage(Arc::new(PostgresStorage::new(pool)), notifier, None)
    }

    /// A bus on PostgreSQL that snapshots the aggregate every `every` events.
    pub fn with_snapshots(pool: PgPool, notifier: CommitNotifier, every: usize) -> Self {
        let every = every.max(1);
        Self::with_storage(
            Arc::new(PostgresStorage::with_snapshots(pool, every)),
            notifier,
            Some(every),
        )
    }

    /// A bus on any storage (memory, in tests).
    pub fn with_storage(
        storage: Arc<dyn EventStorage<A>>,
        notifier: CommitNotifier,
        snapshot_every: Option<usize>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                storage,
                snapshot_every,
                cache: StateCache::new(),
                queues: Mutex::new(HashMap::new()),
                notifier,
                personal: None,
            }),
        }
    }

    /// Events record the acting person's subject (`principal` in their
    /// metadata) sealed under that subject's key from `keyring`
    /// (docs/PRIVACY.md). Only before the bus is shared.
    pub fn sealing_principals(mut self, keyring: privacy::Keyring) -> Self {
        if let Some(inner) = Arc::get_mut(&mut self.inner) {
            inner.personal = Some(keyring);
        }
        self
    }

    /// The metadata of `command_name`'s events: the acting principal's
    /// subject sealed when it names a person.
    async fn metadata(
        &self,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<HashMap<String, String>, CommandError> {
        let mut metadata = context.metadata(command_name);
        let principal = &context.principal;
        if let (Some(keyring), true) = (&self.inner.personal, principal.identifies_person()) {
            let subject = crate::context::data_subject(&principal.tenant, &principal.subject);
            let sealed = keyring.seal(&subject, &principal.subject).await?;
            metadata.insert("principal".to_owned(), sealed.into());
        }
        Ok(metadata)
    }

    /// The aggregate's current state (a default one if it has no events),
    /// as `context` may see it: another tenant's is not found (API.md
    /// "Tenants": its id answers 404, as if it did not exist).
    pub async fn load(&self, aggregate_id: &str, principal: &Principal) -> Result<A, CommandError> {
        Ok(self.load_stored(aggregate_id, principal).await?.aggregate)
    }

    /// [`load`](Self::load) with the sequence it reflects.
    pub async fn load_stored(
        &self,
        aggregate_id: &str,
        principal: &Principal,
    ) -> Result<Stored<A>, CommandError> {
        let stored = self.load_any_tenant(aggregate_id).await?;
        match &stored.tenant {
            Some(tenant) if !principal.reaches(tenant) => Err(foreign::<A>()),
            _ => Ok(stored),
        }
    }

    /// The aggregate's state whichever tenant it belongs to: for what
    /// checks the tenant itself (the terms cache) or follows from an
    /// aggregate already checked (an order's listings and vendors).
    pub async fn load_any_tenant(&self, aggregate_id: &str) -> Result<Stored<A>, CommandError> {
        self.inner.storage.load(aggregate_id).await
    }

    /// [`execute`](Self::execute) for an aggregate id this process has just
    /// made up (a new UUIDv7): no event can exist under it, so the worker
    /// starts from the empty aggregate instead of reading the store (one
    /// statement less per order). Were the id taken after all, the append
    /// would conflict on its first sequence, like any stale cached copy,
    /// and the worker would load the stored state and decide again.
    pub async fn execute_new(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Committed<A>, CommandError> {
        self.inner
            .cache
            .put_if_absent(aggregate_id, Loaded::empty());
        self.execute(aggregate_id, command, context, command_name)
            .await
    }

    /// Handles `command` and records its events. The command runs to its
    /// end even if the caller stops waiting.
    pub async fn execute(
        &self,
        aggregate_id: &str,
        command: A::Command,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Committed<A>, CommandError> {
        self.enqueue(aggregate_id, command, None, context, command_name)
            .await
    }

    /// [`execute`](Self::execute), recording `companion`'s events in the
    /// same transaction if the command is accepted (and not at all if it is
    /// rejected). Their positions come back in
    /// [`Committed::companion_positions`].
    pub async fn execute_with_companion(
        &self,
        aggregate_id: &str,
        command: A::Command,
        companion: Arc<dyn Companion>,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Committed<A>, CommandError> {
        self.enqueue(
            aggregate_id,
            command,
            Some(companion),
            context,
            command_name,
        )
        .await
    }

    async fn enqueue(
        &self,
        aggregate_id: &str,
        command: A::Command,
        companion: Option<Arc<dyn Companion>>,
        context: &CommandContext,
        command_name: &str,
    ) -> Result<Committed<A>, CommandError> {
        let metadata = self.metadata(context, command_name).await?;
        let (reply, answer) = oneshot::channel();
        let pending = Pending {
            command,
            metadata,
            scope: scope_of(context),
            companion,
            reply,
        };
        self.inner
            .push(vec![(aggregate_id.to_owned(), Queued::Command(pending))]);
        answer.await.unwrap_or(Err(CommandError::Stopped))
    }
}

/// The answer to a command on another tenant's aggregate: the same as for
/// one that does not exist, so that ids never leak across tenants.
fn foreign<A: Aggregate>() -> CommandError {
    CommandError::Rejected(DomainError::NotFound { what: A::TYPE })
}

/// The tenant `context` is confined to (`None`: the system, acting in
/// whichever tenant the aggregate belongs to).
fn scope_of(context: &CommandContext) -> Option<String> {
    (!context.principal.any_tenant).then(|| context.principal.tenant.clone())
}

/// `metadata` as recorded on an aggregate of `tenant`: the tenant is the
/// aggregate's, whoever acts (a system principal acts in every tenant).
fn in_tenant<'m>(
    metadata: &'m HashMap<String, String>,
    tenant: Option<&str>,
) -> std::borrow::Cow<'m, HashMap<String, String>> {
    use crate::context::TENANT_KEY;
    match tenant {
        Some(tenant) if metadata.get(TENANT_KEY).map(String::as_str) != Some(tenant) => {
            let mut owned = metadata.clone();
            owned.insert(TENANT_KEY.to_owned(), tenant.to_owned());
            std::borrow::Cow::Owned(owned)
        }
        _ => std::borrow::Cow::Borrowed(metadata),
    }
}

/// The tenant recorded in `metadata`.
fn tenant_in(metadata: &HashMap<String, String>) -> String {
    metadata
        .get(crate::context::TENANT_KEY)
        .cloned()
        .unwrap_or_else(|| event_log::DEFAULT_TENANT.to_owned())
}

/// Removes the aggregate's queue if its worker unwinds, so that the next
/// command starts a new worker (the commands still queued are answered
/// with [`CommandError::Stopped`] when their senders drop).
struct WorkerGuard<'a, A: Aggregate> {
    inner: &'a Inner<A>,
    aggregate_id: &'a str,
    finished: bool,
}

impl<A: Aggregate> Drop for WorkerGuard<'_, A> {
    fn drop(&mut self) {
        if !self.finished {
            self.inner
                .queues
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(self.aggregate_id);
        }
    }
}

impl<A> Inner<A>
where
    A: Aggregate<Error = DomainError, Services = ()> + Clone + 'static,
    A::Command: Clone + Send + Sync,
{
    /// Queues each item for its aggregate under one lock, starting the
    /// workers of aggregates that had none.
    fn push(self: &Arc<Self>, items: Vec<(String, Queued<A>)>) {
        let mut start = Vec::new();
        {
            let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
            for (aggregate_id, item) in items {
                match queues.get_mut(&aggregate_id) {
                    Some(queue) => queue.push_back(item),
                    None => {
                        queues.insert(aggregate_id.clone(), VecDeque::from([item]));
                        start.push(aggregate_id);
                    }
                }
            }
        }
        for aggregate_id in start {
            // Its logs say which aggregate they are about.
            let span = tracing::debug_span!(
                "aggregate_worker",
                aggregate_type = A::TYPE,
                aggregate_id = aggregate_id.as_str()
            );
            tokio::spawn(Inner::work(self.clone(), aggregate_id).instrument(span));
        }
    }

    /// The aggregate's worker: batches until its queue is empty.
    async fn work(self: Arc<Self>, aggregate_id: String) {
        let mut guard = WorkerGuard {
            inner: &self,
            aggregate_id: &aggregate_id,
            finished: false,
        };
        loop {
            let (batch, turn) = {
                let mut queues = self.queues.lock().unwrap_or_else(PoisonError::into_inner);
                let Some(queue) = queues.get_mut(&aggregate_id) else {
                    break;
                };
                if queue.is_empty() {
                    queues.remove(&aggregate_id);
                    break;
                }
                // Commands up to the next joint turn; a turn goes alone.
                let mut batch = Vec::new();
                let mut turn = None;
                while batch.len() < MAX_BATCH {
                    match queue.pop_front() {
                        Some(Queued::Command(pending)) => batch.push(pending),
                        Some(Queued::Joint(next)) if batch.is_empty() => {
                            turn = Some(next);
                            break;
                        }
                        Some(joint @ Queued::Joint(_)) => {
                            queue.push_front(joint);
                            break;
                        }
                        None => break,
                    }
                }
                (batch, turn)
            };
            if let Some(turn) = turn {
                self.take_turn(&aggregate_id, turn).await;
            } else {
                self.run_batch(&aggregate_id, batch).await;
            }
        }
        guard.finished = true;
    }

    /// Decides and appends one batch, retrying conflicts, and answers each
    /// command.
    async fn run_batch(&self, aggregate_id: &str, mut batch: Vec<Pending<A>>) {
        let mut attempt = 0;
        let outcome = loop {
            attempt += 1;
            match self.attempt(aggregate_id, &batch).await {
                Attempt::Answered(answers) => break Ok(answers),
                Attempt::Stale => continue,
                Attempt::StaleCompanions(mut stale) => {
                    stale.sort_unstable();
                    for at in stale.into_iter().rev() {
                        if at < batch.len() {
                            let _ = batch.remove(at).reply.send(Err(CommandError::StaleTerms));
                        }
                    }
                    if batch.is_empty() {
                        return;
                    }
                }
                Attempt::Conflict if attempt < MAX_ATTEMPTS => {
                    tracing::debug!(
                        aggregate = A::TYPE,
                        aggregate_id,
                        attempt,
                        "version conflict, retrying"
                    );
                    count::<A>(batch.len(), "retried");
                    tokio::time::sleep(backoff(attempt)).await;
                }
                Attempt::Conflict => {
                    count::<A>(batch.len(), "conflict");
                    break Err(CommandError::Conflict);
                }
                Attempt::Failed(err) => {
                    count::<A>(batch.len(), "error");
                    break Err(err);
                }
            }
        };
        match outcome {
            Ok(answers) => {
                for (pending, answer) in batch.into_iter().zip(answers) {
                    count::<A>(
                        1,
                        if answer.is_ok() {
                            "accepted"
                        } else {
                            "rejected"
                        },
                    );
                    // A caller that stopped waiting needs no answer.
                    let _ = pending.reply.send(answer);
                }
            }
            Err(err) => {
                for pending in batch {
                    let _ = pending.reply.send(Err(err.clone()));
                }
            }
        }
    }
}
