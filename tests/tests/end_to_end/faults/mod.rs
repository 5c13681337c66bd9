//! Invariant 5 (DESIGN.md "Invariants"): every read model equals a rebuild
//! from the log after any crash or restart of any part; no event is lost or
//! applied twice.
//!
//! The ledger runs as separate "processes" on one database: an HTTP instance
//! (command and read API, with the policies and the sweeper), the relay, and
//! one projector runner per read model. The relay and the projectors are
//! tokio tasks with their own database pool and NATS connection; a crash
//! aborts the task wherever it is (mid-publish, between the acks and the
//! stored position, inside a projector's transaction) and drops its
//! connections, as a killed process would. Meanwhile many clients drive a
//! load of orders, payments, cancellations and blackouts over HTTP.
//!
//! The NATS tests run a private `nats-server` (never the shared one on
//! 4222), stop it with SIGTERM or kill it with SIGKILL mid-load, and restart
//! it on the same port with its store, with an empty store (everything it
//! acknowledged is gone) or with its message store rolled back to an older
//! copy while the consumers' state is kept (acknowledged messages lost
//! behind consumers that had seen them).
//!
//! Every test ends the same way: wait until the relay and every consumer
//! have reached the head of the log, rebuild the read models from the
//! events table into a fresh schema and require no difference, and check
//! independently that nothing was applied twice or lost.
//!
//! Set `FAULTS_SEED` to replay a run's random choices (each test prints its
//! seed).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_nats::{Relay, RelayConfig, StreamSettings};
use ledger_tests::database::scalar;
use ledger_tests::events::head;
use ledger_tests::pipeline::{checkpoints, published, wait_converged};
use ledger_tests::scenario::seed;
use ledger_tests::services::{copy_dir, PrivateNats};
use ledger_tests::{at, nats_url, TestApp, WEBHOOK_SECRET};
use projectors::rebuild::{differences, rebuild_into, READ_MODEL_TABLES};
use projectors::{Consumer, Runner, RunnerConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use serde_json::{json, Value};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

mod checks;
mod crashes;
mod load;
mod nats_outages;
mod parts;

use checks::*;
use load::*;
use parts::*;

/// Concurrent clients of the load.
const CLIENTS: usize = 16;

/// The tests of this file run one at a time: each is a heavy load on its
/// own, and together they would exhaust the database's connections.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
