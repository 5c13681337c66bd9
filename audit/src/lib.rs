//! Tamper evidence (DESIGN.md "Event store"): the per-aggregate hash chain
//! kept by the database, signed seals over position ranges, and their
//! verification.
//!
//! - `chain`: the canonical content of an event and its hash, equal to
//!   what the `events_chain_hash` trigger stores;
//! - `seal`: a seal, its digest and signed encoding;
//! - `sealer`: the [`Sealer`] that writes seals up to the relay's position;
//! - `verify`: [`verify`], the first bad position and why ([`Report`]);
//! - `merkle`: the Merkle tree of a seal, inclusion proofs;
//! - `proof`: [`proof`], one event's inclusion proof in its seal;
//! - `anchor`: what an auditor keeps between verifications;
//! - `privileges`: the application role that may not change the log;
//! - `keys`: Ed25519 keys from hex, a development key.
//!
//! The read API serves the [`Report`] at `GET /v1/audit/verify` (auditor,
//! admin); `ledger audit verify` prints it. Without a configured public
//! key verification still checks every hash, seal digest, seal position
//! list and seal link, and says
//! `signatures_checked: false`: only a verifier holding the key can tell a
//! seal re-made by someone with database access from a genuine one (the
//! CLI refuses to run so unless told `--no-signatures`). Only copies kept
//! outside the database ([`Anchors`]: a seal the auditor saved, the seal
//! stream) show that the newest seals were removed. docs/AUDIT.md is the
//! format an outside verifier implements.

pub mod anchor;
pub mod chain;
pub mod keys;
pub mod merkle;
pub mod privileges;
pub mod proof;
pub mod report;
pub mod seal;
pub mod sealer;
pub mod verify;

pub use anchor::AnchorFile;
pub use keys::{
    dev_signing_key, generate_signing_key, key_id, parse_signing_key, parse_verifying_key,
    signing_key_hex, verifying_key_hex, KeyError, DEV_KEY_ID,
};
pub use proof::{proof, Proof};
pub use report::{Failure, FailureKind, PositionRange, Report};
pub use seal::{Seal, SealRecord};
pub use sealer::Sealer;
pub use verify::{
    verify, verify_anchored, verify_anchored_in, verify_with, Anchors, KeptEvent, KeptSeal,
};
