#!/usr/bin/env bash
# Run the ledger service locally (dev). Ensures PostgreSQL + NATS JetStream
# (see scripts/services.sh), then runs `ledger serve`, which applies the
# database migrations at start. Extra arguments go to `ledger serve`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# shellcheck source=scripts/services.sh
source scripts/services.sh

if [[ -z "${LEDGER_JWT_SECRET:-}" ]]; then
  export LEDGER_JWT_SECRET=dev-secret-change-me
  echo "serve: WARNING: LEDGER_JWT_SECRET not set; using the insecure dev default '$LEDGER_JWT_SECRET'" >&2
fi
export LEDGER_WEBHOOK_SECRET="${LEDGER_WEBHOOK_SECRET:-whsec_dev}"
if [[ -z "${LEDGER_AUDIT_SIGNING_KEY:-}" ]]; then
  # The publicly known development key (read_api::audit::dev_signing_key):
  # seals are made and checked, but prove nothing. `ledger audit keygen`
  # makes a real one.
  export LEDGER_AUDIT_SIGNING_KEY=7fda9afb94b5b5657718e5a1f025c63662feca246ff34ee5311eb249dd53d9ca
  echo "serve: WARNING: LEDGER_AUDIT_SIGNING_KEY not set; sealing with the public dev key" >&2
fi

# Local receivers of outgoing webhooks (development only).
export LEDGER_WEBHOOKS_ALLOW_LOOPBACK="${LEDGER_WEBHOOKS_ALLOW_LOOPBACK:-true}"

# The release build: the first one compiles every dependency (several
# minutes on two cores), later ones only what changed. Cargo's own
# progress ("Compiling …", and its bar on a terminal) shows on stderr.
ledger="${CARGO_TARGET_DIR:-target}/release/ledger"
if [[ -x "$ledger" ]]; then
  echo "serve: building the release binary (only what changed)" >&2
else
  echo "serve: building the release binary for the first time; this takes several minutes" >&2
fi
start=$SECONDS
cargo build --release --locked -p ledger --bin ledger
echo "serve: built $ledger in $((SECONDS - start))s; starting ledger serve on ${LEDGER_HTTP_ADDR:-127.0.0.1:8080}" >&2
echo "serve: the dashboard is at http://${LEDGER_HTTP_ADDR:-127.0.0.1:8080}/dashboard; paste a token from '$ledger token --role admin --sub ops' (or '--role vendor --sub me --vendor-id <id>') run with the same LEDGER_JWT_SECRET" >&2
exec "$ledger" serve "$@"
