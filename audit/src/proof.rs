//! One event's inclusion proof in its seal's Merkle tree
//! (`GET /v1/audit/proof?position=`): the event's hash, the siblings up to
//! the root, and the signed seal that holds the root. An auditor who keeps
//! it can later tell that event apart from the others of a seal whose
//! digest no longer matches.

use serde::Serialize;
use sqlx::PgPool;

use crate::merkle::{self, Side};
use crate::seal::{self, SealRecord};

/// One sibling on the way up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProofStep {
    pub side: Side,
    /// Hex.
    pub hash: String,
}

/// The inclusion proof of the event at `position`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Proof {
    pub position: i64,
    /// The event's stored hash (hex).
    pub event_hash: String,
    /// `sha256(0x00 ‖ int8 position ‖ event hash)` (hex).
    pub leaf_hash: String,
    /// Where the leaf is among the seal's events, and how many there are.
    pub leaf_index: usize,
    pub leaf_count: usize,
    /// Siblings from the leaf up: fold each in on its side.
    pub path: Vec<ProofStep>,
    /// The root the path folds to over the stored hashes; equal to the
    /// seal's `merkle_root` unless a hash of the seal was rewritten.
    pub merkle_root: String,
    pub seal: SealRecord,
}

/// Why there is no proof.
#[derive(Debug, thiserror::Error)]
pub enum NoProof {
    #[error("no seal covers position {0} yet")]
    NotSealed(i64),
    #[error("no event was sealed at position {0}")]
    NoEvent(i64),
    #[error("seal {0} was made before seals had Merkle roots")]
    NoRoot(i64),
    #[error("the events sealed by seal {0} are no longer all in the log (verify it)")]
    Incomplete(i64),
}

/// The inclusion proof of the event at `position`, or why there is none.
pub async fn proof(pool: &PgPool, position: i64) -> Result<Result<Proof, NoProof>, sqlx::Error> {
    let Some(seal) = seal::first_reaching(pool, position).await? else {
        return Ok(Err(NoProof::NotSealed(position)));
    };
    if seal.from_position > position {
        return Ok(Err(NoProof::NoEvent(position)));
    }
    let Ok(index) = seal.positions.binary_search(&position) else {
        return Ok(Err(NoProof::NoEvent(position)));
    };
    if seal.merkle_root.is_none() {
        return Ok(Err(NoProof::NoRoot(seal.seal_id)));
    }
    let rows = event_log::statements::audit::hashes_between(
        pool,
        seal.from_position,
        seal.to_position,
        seal.event_count + 1,
    )
    .await?;
    let listed: Vec<i64> = rows.iter().map(|(p, _)| *p).collect();
    if listed != seal.positions {
        return Ok(Err(NoProof::Incomplete(seal.seal_id)));
    }
    let leaves: Vec<[u8; 32]> = rows.iter().map(|(p, h)| merkle::leaf_hash(*p, h)).collect();
    let Some(path) = merkle::path(&leaves, index) else {
        return Ok(Err(NoProof::NoEvent(position)));
    };
    let root = merkle::fold(leaves[index], &path);
    Ok(Ok(Proof {
        position,
        event_hash: hex::encode(&rows[index].1),
        leaf_hash: hex::encode(leaves[index]),
        leaf_index: index,
        leaf_count: leaves.len(),
        path: path
            .iter()
            .map(|step| ProofStep {
                side: step.side,
                hash: hex::encode(step.hash),
            })
            .collect(),
        merkle_root: hex::encode(root),
        seal: SealRecord::from(&seal),
    }))
}
