//! `ledger projections rebuild --all` in a real terminal: a pseudo-terminal
//! (util-linux `script`) whose output is replayed on a terminal emulator
//! (the `vt100` crate), so that what a person would see is checked: every
//! "rebuilt … swapped in" line intact on the screen (printed while the
//! other models' progress bars still draw, it used to be overwritten by
//! their next frame), with readable rates (`12,345 events/s`, not
//! `11,992.5861/s`).

use std::time::Duration;

use ledger_tests::TestApp;
use serde_json::json;

use ledger_tests::binary::ledger_binary;

const ROWS: u16 = 60;
const COLUMNS: u16 = 160;

#[tokio::test]
async fn rebuild_lines_stay_whole_on_a_terminal_with_readable_rates() {
    let script_found = std::process::Command::new("sh")
        .args(["-c", "command -v script"])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        script_found,
        "util-linux `script` is needed (apt-get install bsdutils)"
    );
    let app = TestApp::spawn().await;
    let vendor = app.register_vendor("Terminal Traders").await;
    let listing = app.sale_listing(vendor, "3.99", 10_000).await;
    for _ in 0..60 {
        app.place_order(
            "cust-terminal",
            json!([{"listing_id": listing, "quantity": 1}]),
        )
        .await;
    }

    let ledger = ledger_binary().await;
    let command = format!(
        "stty cols {COLUMNS} rows {ROWS}; exec {} projections rebuild --all",
        ledger.display()
    );
    let output = tokio::time::timeout(
        Duration::from_secs(120),
        tokio::process::Command::new("script")
            .args(["-qefc", &command, "/dev/null"])
            .env(
                "DATABASE_URL",
                ledger_tests::database::database_url(&app.database),
            )
            .env("LEDGER_STREAM", &app.stream)
            .env("TERM", "xterm-256color")
            .output(),
    )
    .await
    .expect("the rebuild ends within two minutes")
    .expect("run script");
    app.stop().await;
    let mut terminal = vt100::Parser::new(ROWS, COLUMNS, 0);
    terminal.process(&output.stdout);
    let screen = terminal.screen().contents();
    assert!(output.status.success(), "{screen}");

    for model in projectors::read_models() {
        let name = model.name();
        let line = screen
            .lines()
            .find(|l| l.starts_with(&format!("{name}: rebuilt ")))
            .unwrap_or_else(|| panic!("no intact line for {name} on the screen:\n{screen}"));
        assert!(
            line.trim_end().ends_with(", swapped in"),
            "{line}\n{screen}"
        );
        let rate = line
            .split('(')
            .nth(1)
            .and_then(|r| r.split(')').next())
            .unwrap_or_default();
        let (count, unit) = rate.split_once(' ').unwrap_or_default();
        assert_eq!(unit, "events/s", "{line}");
        assert!(
            !count.is_empty() && count.chars().all(|c| c.is_ascii_digit() || c == ','),
            "a whole number of events per second: {line}"
        );
    }
}
