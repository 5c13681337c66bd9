//! The Merkle tree of a seal (RFC 6962's, over the sealed events in
//! position order), so that one event can be proven sealed without the
//! others:
//!
//! ```text
//! leaf(e)      = sha256(0x00 ‖ int8 global_position ‖ 32-byte hash)
//! node(l, r)   = sha256(0x01 ‖ l ‖ r)
//! root([])     = sha256("")
//! root([e])    = leaf(e)
//! root(E[0:n]) = node(root(E[0:k]), root(E[k:n])),  k the largest power
//!                of two smaller than n
//! ```
//!
//! A proof is the list of sibling hashes from the leaf up, each with the
//! side it sits on; folding them into the leaf gives the root.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash of a leaf: one sealed event.
pub fn leaf_hash(position: i64, event_hash: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(position.to_be_bytes());
    hasher.update(event_hash);
    hasher.finalize().into()
}

/// The hash of an inner node.
pub fn node_hash(left: &[u8], right: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two smaller than `n` (n ≥ 2).
fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// The root over leaf hashes, in order.
pub fn root_of_leaves(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves.len() {
        0 => Sha256::digest([]).into(),
        1 => leaves[0],
        n => {
            let k = split(n);
            node_hash(&root_of_leaves(&leaves[..k]), &root_of_leaves(&leaves[k..]))
        }
    }
}

/// The root over `(position, event hash)` pairs, in position order.
pub fn root(events: &[(i64, Vec<u8>)]) -> [u8; 32] {
    let leaves: Vec<[u8; 32]> = events.iter().map(|(p, h)| leaf_hash(*p, h)).collect();
    root_of_leaves(&leaves)
}

/// Which side of the running hash a sibling sits on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Side {
    Left,
    Right,
}

/// One step of an inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub side: Side,
    pub hash: [u8; 32],
}

/// The siblings from leaf `index` up to the root (empty for a one-leaf
/// tree); None when `index` is outside the tree.
pub fn path(leaves: &[[u8; 32]], index: usize) -> Option<Vec<Step>> {
    if index >= leaves.len() {
        return None;
    }
    let mut steps = Vec::new();
    let (mut lo, mut hi, mut at) = (0, leaves.len(), index);
    // Top-down, then reversed: each level records the other half's root.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if at < k {
            steps.push(Step {
                side: Side::Right,
                hash: root_of_leaves(&leaves[lo + k..hi]),
            });
            hi = lo + k;
        } else {
            steps.push(Step {
                side: Side::Left,
                hash: root_of_leaves(&leaves[lo..lo + k]),
            });
            lo += k;
            at -= k;
        }
    }
    steps.reverse();
    Some(steps)
}

/// Folds a proof into a leaf: the root it claims.
pub fn fold(leaf: [u8; 32], steps: &[Step]) -> [u8; 32] {
    steps.iter().fold(leaf, |running, step| match step.side {
        Side::Left => node_hash(&step.hash, &running),
        Side::Right => node_hash(&running, &step.hash),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(n: usize) -> Vec<(i64, Vec<u8>)> {
        (0..n)
            .map(|i| (i as i64 + 1, Sha256::digest([i as u8]).to_vec()))
            .collect()
    }

    #[test]
    fn every_leaf_of_every_size_proves_to_the_root() {
        for n in 1..=17 {
            let events = events(n);
            let leaves: Vec<_> = events.iter().map(|(p, h)| leaf_hash(*p, h)).collect();
            let root = root(&events);
            for (i, leaf) in leaves.iter().enumerate() {
                let steps = path(&leaves, i).expect("in the tree");
                assert_eq!(fold(*leaf, &steps), root, "n={n} i={i}");
            }
            assert!(path(&leaves, n).is_none());
        }
    }

    #[test]
    fn a_changed_leaf_or_sibling_does_not_prove() {
        let events = events(5);
        let leaves: Vec<_> = events.iter().map(|(p, h)| leaf_hash(*p, h)).collect();
        let root = root(&events);
        let mut steps = path(&leaves, 2).unwrap();
        assert_ne!(fold(leaves[3], &steps), root);
        steps[0].hash[0] ^= 1;
        assert_ne!(fold(leaves[2], &steps), root);
    }

    #[test]
    fn small_trees_are_the_rfc_6962_shapes() {
        let events = events(3);
        let l: Vec<_> = events.iter().map(|(p, h)| leaf_hash(*p, h)).collect();
        assert_eq!(root(&events[..1]), l[0]);
        assert_eq!(
            root(&events),
            node_hash(&node_hash(&l[0], &l[1]), &l[2]),
            "three leaves: ((0 1) 2)"
        );
        assert_eq!(root(&[]), <[u8; 32]>::from(Sha256::digest([])));
    }
}
