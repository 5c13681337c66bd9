//! The crate graph follows the design's arrows (DESIGN.md "Shape"): read
//! from `cargo metadata`, so a dependency added against them fails here
//! rather than in review.

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

/// Normal (non-dev, non-build) dependencies of every workspace package and
/// of every crate they pull in, by crate name.
fn normal_dependencies() -> HashMap<String, Vec<String>> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let output = Command::new(cargo)
        .args(["metadata", "--format-version", "1", "--locked"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo metadata");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("metadata is JSON");
    let names: HashMap<&str, &str> = metadata["packages"]
        .as_array()
        .expect("packages")
        .iter()
        .filter_map(|p| Some((p["id"].as_str()?, p["name"].as_str()?)))
        .collect();
    metadata["resolve"]["nodes"]
        .as_array()
        .expect("a resolved graph")
        .iter()
        .map(|node| {
            let name = names[node["id"].as_str().expect("node id")].to_owned();
            let deps = node["deps"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|dep| {
                    dep["dep_kinds"]
                        .as_array()
                        .is_some_and(|kinds| kinds.iter().any(|k| k["kind"].is_null()))
                })
                .map(|dep| names[dep["pkg"].as_str().expect("dep id")].to_owned())
                .collect();
            (name, deps)
        })
        .collect()
}

/// Every crate `root` links, itself excluded.
fn reach(graph: &HashMap<String, Vec<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_owned()];
    while let Some(next) = todo.pop() {
        for dep in graph.get(&next).into_iter().flatten() {
            if seen.insert(dep.clone()) {
                todo.push(dep.clone());
            }
        }
    }
    seen
}

#[test]
fn the_crate_graph_has_only_the_designs_arrows() {
    let graph = normal_dependencies();
    assert!(
        graph.contains_key("ledger"),
        "the workspace has the ledger crate"
    );
    // (crate, crates it must never link, why)
    let rules: &[(&str, &[&str], &str)] = &[
        (
            "ledger",
            &["loadgen"],
            "the production binary ships no load generator",
        ),
        (
            "domain",
            // (cqrs-es itself brings tokio, for its in-memory store.)
            &[
                "axum",
                "hyper",
                "tower-http",
                "sqlx",
                "async-nats",
                "reqwest",
                "utoipa",
            ],
            "the domain is pure: no I/O, no HTTP, no OpenAPI (schemas live at the HTTP edge)",
        ),
        (
            "audit",
            &["command-api", "read-api", "projectors", "axum"],
            "verification needs only the log",
        ),
        (
            "privacy",
            &[
                "command-api",
                "read-api",
                "projectors",
                "axum",
                "async-nats",
            ],
            "the keys of personal data speak neither HTTP nor NATS: both sides call in",
        ),
        (
            "projectors",
            &["privacy"],
            "read models keep personal data sealed: only answers open it (docs/PRIVACY.md)",
        ),
        (
            "ledger-nats",
            &["privacy"],
            "the stream carries the sealed text the log stores",
        ),
        (
            "projectors",
            &["command-api", "read-api", "axum"],
            "read models are built from the log alone",
        ),
        (
            "ledger-nats",
            &["projectors", "command-api", "read-api", "axum"],
            "the relay knows only the events table and the stream",
        ),
        (
            "command-api",
            &["read-api", "loadgen"],
            "the write side never reads the read side's code",
        ),
        (
            "read-api",
            &["command-api", "loadgen"],
            "the read side never links command-side code",
        ),
        (
            "ledger-http",
            &[
                "command-api",
                "read-api",
                "projectors",
                "loadgen",
                "ledger-nats",
                "audit",
            ],
            "the shared HTTP plumbing knows neither side",
        ),
        (
            "ledger-clock",
            &["domain", "command-api", "read-api", "sqlx", "tokio"],
            "the clock is a leaf every component can take",
        ),
        (
            "command-api",
            &["projectors"],
            "the policies take the stream consumer from `ledger-nats`, not the read models",
        ),
        (
            "event-log",
            &[
                "axum",
                "async-nats",
                "command-api",
                "read-api",
                "projectors",
            ],
            "the events table's model and statements speak neither HTTP nor NATS",
        ),
    ];
    let mut broken = Vec::new();
    for (krate, forbidden, why) in rules {
        let links = reach(&graph, krate);
        for f in *forbidden {
            if links.contains(*f) {
                broken.push(format!("{krate} links {f}, but {why}"));
            }
        }
    }
    assert!(
        broken.is_empty(),
        "arrows against the design:\n{}",
        broken.join("\n")
    );
}
