#!/usr/bin/env bash
# THE test command (README and .ci/run call exactly this).
# Ensures PostgreSQL + NATS JetStream (scripts/services.sh), then runs
# rustfmt check, clippy (-D warnings), the whole workspace test suite and
# the OpenAPI checks and schema fuzz run (scripts/fuzz.sh: spec validator,
# generated client, schemathesis).
# Extra arguments are passed to `cargo test` (e.g. `-p domain`, `--release`).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The services, the build's tools and promtool (alert-rule checks).
export LEDGER_TEST_TOOLS=1
# shellcheck source=scripts/services.sh
source scripts/services.sh
if command -v promtool >/dev/null 2>&1; then
  # Installed: the checks that need it must run, not skip.
  export LEDGER_TEST_REQUIRE_TOOLS=1
else
  echo "==> WARNING: promtool is not installed; the alert-rule checks will be skipped" >&2
fi

failed=()
step() { # name command...
  local name="$1" start rc=0
  shift
  echo "==> $name: $*" >&2
  start=$SECONDS
  "$@" || rc=$?
  if [[ $rc == 0 ]]; then
    echo "==> $name: ok ($((SECONDS - start))s)" >&2
  else
    echo "==> $name: FAILED with exit code $rc ($((SECONDS - start))s)" >&2
    failed+=("$name")
  fi
  return "$rc"
}

total=$SECONDS
step fmt cargo fmt --all -- --check || true
step clippy cargo clippy --workspace --all-targets --locked -- -D warnings || true
# The end-to-end tests mostly wait on PostgreSQL, NATS and the pipeline, so
# they run 4 at a time on 2 cores (set RUST_TEST_THREADS to change it). One
# test measures the test process's resident memory, which tests running
# beside it would inflate: it runs alone afterwards.
alone=order_feeds::two_hundred_feeds_share_one_watcher_with_bounded_memory
step test env RUST_TEST_THREADS="${RUST_TEST_THREADS:-4}" \
  cargo test --workspace --locked --no-fail-fast "$@" -- --skip "$alone" || true
if (($# == 0)); then
  step test-alone cargo test -p ledger-tests --test end_to_end --locked -- --exact "$alone" || true
fi
step fuzz scripts/fuzz.sh || true

if ((${#failed[@]})); then
  echo "==> FAILED: ${failed[*]} (total $((SECONDS - total))s)" >&2
  exit 1
fi
echo "==> all checks passed (total $((SECONDS - total))s)" >&2
