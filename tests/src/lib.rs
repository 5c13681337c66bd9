//! The test harness: the real ledger spawned on a random port against a
//! fresh database and stream, a typed client to drive it over HTTP like any
//! client would, and arrangements in a line, so that every end-to-end test
//! reads like a user story. One file per concern:
//!
//! - [`app`]: spawning the ledger (whole, in parts, on a given pool, as a
//!   replica); [`database`] and [`stream`]: a database and a stream of its
//!   own for every test;
//! - [`client`] and [`answer`]: the requests and the typed answers;
//!   [`tokens`]: tokens for every principal, and the forged ones;
//!   [`webhooks`]: the payment provider's signed events;
//! - [`changes`]: extensions, reschedules and their payments;
//! - [`scenario`]: `Marketplace` and the order items;
//! - [`events`] and [`pipeline`]: the log, the relay and the consumers,
//!   watched behind the API's back;
//! - [`services`]: private PostgreSQL and NATS servers for the fault tests;
//!   [`raw_http`]: framing no ordinary client sends;
//! - [`reconcile`]: the money checker, an independent oracle of the log.

pub mod answer;
pub mod app;
pub mod binary;
pub mod changes;
pub mod client;
pub mod database;
pub mod events;
pub mod pipeline;
pub mod raw_http;
pub mod reconcile;
pub mod scenario;
pub mod services;
pub mod sse;
pub mod stream;
pub mod tokens;
pub mod webhooks;

pub use answer::{assert_invalid_field, assert_ok, assert_problem, Answer};
pub use app::TestApp;
pub use database::{admin_database_url, fresh_database};
pub use scenario::{at, rental_item, sale_item, Marketplace};
pub use stream::{fresh_stream_name, nats_url};
pub use tokens::{JWT_SECRET, WEBHOOK_SECRET};
