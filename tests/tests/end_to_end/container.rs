//! The container recipe (`Dockerfile`) and `compose.yaml` (the ledger with
//! PostgreSQL and NATS JetStream): built and started, and the ledger
//! answering ready, when a Docker daemon with the compose plugin is there;
//! otherwise skipped with the reason printed. The recipe's toolchain is
//! checked against `rust-version` either way.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

fn read(file: &str) -> String {
    std::fs::read_to_string(repository().join(file)).expect(file)
}

/// Why Docker cannot be used here, if it cannot.
fn docker_missing() -> Option<String> {
    let run = |args: &[&str]| Command::new("docker").args(args).output();
    match run(&["info", "--format", "{{.ServerVersion}}"]) {
        Err(e) => return Some(format!("no docker command ({e})")),
        Ok(o) if !o.status.success() => {
            return Some(format!(
                "no Docker daemon answers ({})",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Ok(_) => {}
    }
    match run(&["compose", "version"]) {
        Ok(o) if o.status.success() => None,
        _ => Some("the docker compose plugin is not installed".to_owned()),
    }
}

#[test]
fn the_recipe_builds_with_the_pinned_toolchain_and_compose_runs_all_three() {
    let manifest = read("Cargo.toml");
    let pinned = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("rust-version in the workspace manifest");
    let dockerfile = read("Dockerfile");
    assert!(
        dockerfile.contains(&format!("FROM rust:{pinned}-")),
        "the Dockerfile builds with rust {pinned}"
    );
    assert!(dockerfile.contains("cargo build --release --locked -p ledger"));
    let compose = read("compose.yaml");
    for needed in [
        "postgres:",
        "nats:",
        "\"-js\"",
        "build: .",
        "DATABASE_URL",
        "NATS_URL",
    ] {
        assert!(compose.contains(needed), "compose.yaml lacks {needed}");
    }

    if let Some(reason) = docker_missing() {
        eprintln!("SKIPPED building and starting the containers: {reason}");
        return;
    }
    let project = format!("ledger-e2e-{}", std::process::id());
    let port = crate::shutdown::unused_port().to_string();
    let compose = |args: &[&str]| {
        Command::new("docker")
            .args(["compose", "-p", &project])
            .args(args)
            .env("LEDGER_PORT", &port)
            .current_dir(repository())
            .output()
            .expect("run docker compose")
    };
    let up = compose(&["up", "-d", "--build"]);
    let result = std::panic::catch_unwind(|| {
        assert!(
            up.status.success(),
            "docker compose up: {}",
            String::from_utf8_lossy(&up.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let ready = Command::new("curl")
                .args(["-fsS", &format!("http://127.0.0.1:{port}/health/ready")])
                .output()
                .is_ok_and(|o| o.status.success());
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the ledger container never got ready"
            );
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let _ = compose(&["down", "-v"]);
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
