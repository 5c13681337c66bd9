//! The `ledger` executable, for tests that run it as a user would (its
//! signals, its subcommands' exit codes).

use std::path::PathBuf;

use tokio::process::Command;

/// The `ledger` binary of this build, built once per test run (a no-op
/// when it is fresh): the test binary's dependency on the `ledger` library
/// does not build the executable.
pub async fn ledger_binary() -> PathBuf {
    static BUILT: tokio::sync::OnceCell<PathBuf> = tokio::sync::OnceCell::const_new();
    BUILT
        .get_or_init(|| async {
            let test_binary = std::env::current_exe().expect("the test binary's path");
            // <target>/<profile>/deps/end_to_end-…
            let profile_dir = test_binary
                .parent()
                .and_then(|deps| deps.parent())
                .expect("the profile directory")
                .to_path_buf();
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev".to_owned(),
                Some(other) => other.to_owned(),
            };
            let target_dir = profile_dir.parent().expect("the target directory");
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
            let mut build = Command::new(cargo);
            // What cargo sets for a test process, and a build from a shell
            // does not have: some build scripts (ring's) rerun when these
            // change, and everything above them would be rebuilt twice.
            for (name, _) in std::env::vars_os() {
                let name = name.to_string_lossy();
                let set_for_tests = ["CARGO_PKG_", "CARGO_BIN_EXE_", "CARGO_MANIFEST_"]
                    .iter()
                    .any(|prefix| name.starts_with(prefix))
                    || [
                        "CARGO_CRATE_NAME",
                        "CARGO_PRIMARY_PACKAGE",
                        "CARGO_TARGET_TMPDIR",
                        "OUT_DIR",
                        "LD_LIBRARY_PATH",
                    ]
                    .contains(&name.as_ref());
                if set_for_tests {
                    build.env_remove(name.as_ref());
                }
            }
            let status = build
                .args(["build", "--locked", "-p", "ledger", "--bin", "ledger"])
                .args(["--profile", &profile])
                .arg("--target-dir")
                .arg(target_dir)
                .current_dir(env!("CARGO_MANIFEST_DIR"))
                .status()
                .await
                .expect("run cargo build");
            assert!(status.success(), "cargo build of the ledger binary failed");
            profile_dir.join("ledger")
        })
        .await
        .clone()
}
