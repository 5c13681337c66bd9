//! What operators plug the ledger into: `/metrics` with `# HELP` on every
//! family, the `process_*` series, `ledger_build_info`, and every series
//! the documentation names present from the first scrape (at zero), not
//! only once it first counts; the Prometheus alert rules and the Grafana
//! dashboard in `deploy/` name only series that exist, and the rules pass
//! `promtool check rules` and their unit tests (`promtool test rules`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use ledger_tests::TestApp;
use reqwest::StatusCode;

fn repository() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the repository root")
        .to_path_buf()
}

/// The family of a sample line (`name{labels} value`, histogram suffixes
/// folded into their family).
fn family(sample: &str) -> &str {
    let name = sample.split(['{', ' ']).next().unwrap_or("");
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// `ledger_*` and `process_*` names in a text, histogram suffixes folded.
fn series_named_in(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for prefix in ["ledger_", "process_"] {
        let mut rest = text;
        while let Some(at) = rest.find(prefix) {
            let preceded_by_word = rest[..at]
                .chars()
                .next_back()
                .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            // `ledger_db_pool_*` names a group; `ledger_tests` a crate;
            // `ledger_owner` and `ledger_app` the production database roles.
            let not_a_series = ["ledger_owner", "ledger_app"].contains(&name.as_str());
            if preceded_by_word || name.ends_with('_') || rest.starts_with('*') || not_a_series {
                continue;
            }
            names.insert(family(&name).to_owned());
        }
    }
    names
}

async fn scrape(app: &TestApp) -> String {
    let (status, content_type, body) = app.get_text("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    body
}

fn families(exposition: &str) -> BTreeSet<String> {
    exposition
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| family(l).to_owned())
        .collect()
}

#[tokio::test]
async fn every_series_has_help_and_the_documented_ones_exist_from_the_start() {
    let app = TestApp::spawn().await;
    // One request, so that the latency histogram has its first sample.
    let (status, _, _) = app.get_text("/health/live").await;
    assert_eq!(status, StatusCode::OK);
    let exposition = scrape(&app).await;
    let exposed = families(&exposition);
    for family in &exposed {
        assert!(
            exposition.contains(&format!("# HELP {family} ")),
            "{family} has no # HELP line:\n{exposition}"
        );
    }
    for name in ledger::metrics_catalog::SERIES {
        assert!(exposed.contains(*name), "{name} is missing:\n{exposition}");
    }
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_start_time_seconds",
        "process_open_fds",
    ] {
        assert!(exposed.contains(name), "{name} is missing:\n{exposition}");
    }
    let build = exposition
        .lines()
        .find(|l| l.starts_with("ledger_build_info{"))
        .expect("ledger_build_info");
    assert!(
        build.contains(&format!("version=\"{}\"", env!("CARGO_PKG_VERSION")))
            && build.ends_with(" 1"),
        "{build}"
    );
    // Counters that have not counted yet are there at zero.
    for sample in [
        "ledger_rate_limited_total{scope=\"principal\"}",
        "ledger_consumer_repositioned_total{consumer=\"orders\"}",
    ] {
        assert!(
            exposition.lines().any(|l| l.starts_with(sample)),
            "{sample} is missing:\n{exposition}"
        );
    }
    // Every series the operators' guide and the README name.
    for document in ["docs/operations.md", "README.md"] {
        let text = std::fs::read_to_string(repository().join(document)).expect(document);
        for name in series_named_in(&text) {
            assert!(
                exposed.contains(&name),
                "{document} names {name}, which /metrics does not expose"
            );
        }
    }
    app.stop().await;
}

/// `promtool`, or why the check is skipped. scripts/test.sh installs it
/// (Debian's `prometheus` package) and sets LEDGER_TEST_REQUIRE_TOOLS, so
/// that the test command never skips it.
fn promtool() -> Option<&'static str> {
    let found = std::process::Command::new("promtool")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return Some("promtool");
    }
    assert!(
        std::env::var_os("LEDGER_TEST_REQUIRE_TOOLS").is_none(),
        "promtool is required (LEDGER_TEST_REQUIRE_TOOLS is set): apt-get install prometheus"
    );
    eprintln!(
        "SKIPPED promtool checks: promtool is not installed (apt-get install prometheus; \
         scripts/test.sh installs it)"
    );
    None
}

#[tokio::test]
async fn the_alert_rules_and_the_dashboard_name_only_exposed_series_and_pass_promtool() {
    let app = TestApp::spawn().await;
    let (status, _, _) = app.get_text("/health/live").await;
    assert_eq!(status, StatusCode::OK);
    let exposed = families(&scrape(&app).await);
    app.stop().await;

    let rules = repository().join("deploy/prometheus/ledger-alerts.yml");
    let dashboard = repository().join("deploy/grafana/ledger-dashboard.json");
    for file in [&rules, &dashboard] {
        let text = std::fs::read_to_string(file).expect("the file exists");
        let named = series_named_in(&text);
        assert!(named.len() >= 5, "{}: {named:?}", file.display());
        for name in named {
            assert!(
                exposed.contains(&name),
                "{} uses {name}, which /metrics does not expose",
                file.display()
            );
        }
    }
    let board: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&dashboard).expect("the dashboard"))
            .expect("the dashboard is JSON");
    let panels = board["panels"].as_array().expect("panels");
    assert!(!panels.is_empty());
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(targets.iter().all(|t| t["expr"].is_string()), "{panel}");
    }

    let Some(promtool) = promtool() else { return };
    for args in [
        vec!["check", "rules", "deploy/prometheus/ledger-alerts.yml"],
        vec!["test", "rules", "deploy/prometheus/ledger-alerts.test.yml"],
    ] {
        let output = std::process::Command::new(promtool)
            .args(&args)
            .current_dir(repository())
            .output()
            .expect("run promtool");
        assert!(
            output.status.success(),
            "promtool {args:?}:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}
