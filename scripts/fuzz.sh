#!/usr/bin/env bash
# The OpenAPI document checked by outside tools, then schema fuzzing.
# First the document the server serves is validated with
# openapi-spec-validator, a Python client is generated from it with
# openapi-python-client and drives every query route
# (scripts/openapi_client_check.py). Then schemathesis runs against `ledger serve` on a free port,
# with a fresh database (on $DATABASE_URL's server) and its own JetStream
# stream, using the OpenAPI document the server serves (/openapi.json) and
# an admin token. Fails on any 5xx and on any answer that contradicts the
# document (status code, content type, headers, body schema).
#
# The budget is fixed (a few examples per operation, fixed seed) so that it
# fits CI: about a minute. Extra arguments go to `st run`, e.g.
#   scripts/fuzz.sh --max-examples 50
# The three tools are installed into .local/venv (git-ignored) when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SCHEMATHESIS_VERSION=4.32.5
SPEC_VALIDATOR_VERSION=0.9.0
PYTHON_CLIENT_VERSION=0.29.1

# shellcheck source=scripts/services.sh
source scripts/services.sh

log() { printf 'fuzz: %s\n' "$*" >&2; }

venv=.local/venv
if [[ ! -x "$venv/bin/st" ]] || ! "$venv/bin/pip" show schemathesis 2>/dev/null | grep -qx "Version: $SCHEMATHESIS_VERSION"; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
  "$venv/bin/pip" install -q "schemathesis==$SCHEMATHESIS_VERSION"
fi
for pinned in "openapi-spec-validator==$SPEC_VALIDATOR_VERSION" "openapi-python-client==$PYTHON_CLIENT_VERSION"; do
  if ! "$venv/bin/pip" show "${pinned%%=*}" 2>/dev/null | grep -qx "Version: ${pinned##*=}"; then
    log "installing $pinned into $venv"
    "$venv/bin/pip" install -q "$pinned"
  fi
done

cargo build -q --locked -p ledger
ledger="${CARGO_TARGET_DIR:-target}/debug/ledger"

# A fresh database on the test server, dropped at the end.
database="ledger_fuzz_$(date +%s)_$$"
base="${LEDGER_TEST_DATABASE_URL%%\?*}"
query=""
[[ "$LEDGER_TEST_DATABASE_URL" == *\?* ]] && query="?${LEDGER_TEST_DATABASE_URL#*\?}"
psql -q -v ON_ERROR_STOP=1 "$LEDGER_TEST_DATABASE_URL" -c "CREATE DATABASE \"$database\"" >/dev/null
fuzz_db_url="${base%/*}/$database$query"

port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
export LEDGER_JWT_SECRET="fuzz-secret-$$"
export LEDGER_WEBHOOK_SECRET="whsec_fuzz"
# Seals, soon: the audit routes answer from them (a throwaway test key).
export LEDGER_AUDIT_SIGNING_KEY=7fda9afb94b5b5657718e5a1f025c63662feca246ff34ee5311eb249dd53d9ca
export LEDGER_AUDIT_SEAL_INTERVAL=200ms
LEDGER_STREAM="FUZZ_$$_$(date +%s)"
export LEDGER_STREAM
# One client from one address: the rate limits would only turn most cases
# into 429s (which the document allows, so nothing would be checked).
export LEDGER_RATE_LIMIT_PER_PRINCIPAL=1000000 LEDGER_RATE_LIMIT_PER_PRINCIPAL_BURST=1000000
export LEDGER_RATE_LIMIT_PER_IP=1000000 LEDGER_RATE_LIMIT_PER_IP_BURST=1000000

server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  psql -q "$LEDGER_TEST_DATABASE_URL" -c "DROP DATABASE IF EXISTS \"$database\" WITH (FORCE)" >/dev/null 2>&1 || true
}
trap cleanup EXIT

mkdir -p .local
DATABASE_URL="$fuzz_db_url" LEDGER_HTTP_ADDR="127.0.0.1:$port" RUST_LOG="${RUST_LOG:-warn}" \
  "$ledger" serve >.local/fuzz-server.log 2>&1 &
server_pid=$!

base_url="http://127.0.0.1:$port"
for _ in $(seq 1 120); do
  if curl -fsS "$base_url/health/ready" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server_pid" 2>/dev/null; then
    log "ledger serve exited; its log:"
    cat .local/fuzz-server.log >&2
    exit 1
  fi
  sleep 0.5
done
curl -fsS "$base_url/health/ready" >/dev/null

token="$(DATABASE_URL="$fuzz_db_url" "$ledger" token --role admin --sub fuzz)"

# The served document: valid OpenAPI, and a generated client reaches every
# query route with it.
openapi_rc=0
document=.local/openapi.json
client_dir=.local/openapi-client
curl -fsS "$base_url/openapi.json" >"$document"
log "openapi-spec-validator $document"
"$venv/bin/openapi-spec-validator" "$document" || openapi_rc=$?
if [[ $openapi_rc == 0 ]]; then
  rm -rf "$client_dir" && mkdir -p "$client_dir"
  # Invoices are served as PDF: the client takes them as bytes.
  printf 'post_hooks: []\ncontent_type_overrides:\n  application/pdf: application/octet-stream\n' >"$client_dir.yml"
  log "openapi-python-client generate (into $client_dir)"
  # A warning means a piece of the document was left out of the client.
  generated="$(cd "$client_dir" && "../../$venv/bin/openapi-python-client" generate \
    --path "../openapi.json" --meta none --config "../openapi-client.yml" 2>&1)" || openapi_rc=$?
  if [[ $openapi_rc != 0 ]] || grep -qi 'warning' <<<"$generated"; then
    printf '%s\n' "$generated" >&2
    log "the client generator failed or warned"
    openapi_rc=1
  else
    customer="$(DATABASE_URL="$fuzz_db_url" "$ledger" token --role customer --sub fuzz-customer)"
    platform="$(DATABASE_URL="$fuzz_db_url" "$ledger" token --role platform_admin --sub fuzz-platform)"
    "$venv/bin/python" scripts/openapi_client_check.py "$document" "$client_dir" "$base_url" \
      "$token" "$customer" "$LEDGER_WEBHOOK_SECRET" "$platform" || openapi_rc=$?
  fi
fi
if [[ $openapi_rc != 0 ]]; then
  log "FAILED: the OpenAPI document or its generated client (exit code $openapi_rc)"
fi

# GET /metrics (API.md) comes with the observability work; until a build
# serves it, its documented operation is skipped rather than failed.
extra=()
if [[ "$(curl -s -o /dev/null -w '%{http_code}' "$base_url/metrics")" == 404 ]]; then
  log "WARNING: this build does not serve GET /metrics; skipping that operation"
  extra+=(--exclude-path /metrics)
fi

start=$SECONDS
log "schemathesis against $base_url (server log: .local/fuzz-server.log)"
rc=0
# From .local/, where schemathesis keeps its state (.schemathesis/). One
# worker: CPython 3.11.7 can fail ast.parse in concurrent threads
# ("AST constructor recursion depth mismatch"), which hypothesis calls.
(cd .local && "../$venv/bin/st" run "$base_url/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
  --phases examples,coverage,fuzzing \
  --max-examples 5 \
  --seed 20261122 \
  --workers 1 \
  --request-timeout 15 \
  --exclude-path /v1/events/stream \
  --exclude-path /v1/orders/stream \
  --suppress-health-check all \
  --warnings off \
  --continue-on-failure \
  "${extra[@]}" "$@") || rc=$?
log "schemathesis finished in $((SECONDS - start))s with exit code $rc"
if [[ $openapi_rc != 0 ]]; then
  exit "$openapi_rc"
fi
exit "$rc"
