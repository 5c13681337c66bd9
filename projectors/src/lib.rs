//! Read models (availability, orders, earnings and the double-entry
//! ledger, analytics) are built here from the event stream, each in its own
//! module, by a runner that applies a batch and its checkpoint in one
//! transaction. The event pipeline that feeds them is not built yet; this
//! crate holds the place in the workspace layout of DESIGN.md "Shape".

pub use ledger_nats::EventEnvelope;
