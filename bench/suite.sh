#!/usr/bin/env bash
# Every performance figure of the README's "Performance" section, in one run
# on one machine, so that each is reported next to the pgbench baseline
# measured in the same run.
#
#   bench/suite.sh [--quick] [--skip-bulk]
#
# Steps (each writes its raw output to bench/results/<run>/):
#   1. pgbench baseline (bench/pgbench.sh, 32 clients);
#   2. `ledger serve` (release) on a scratch database, driven over HTTP by
#      `ledger bench run`: place-order, hot-listing, deep-listing (10,000
#      bookings), mixed (with the server's peak RSS), place-order paced at
#      half its maximum (projection lag), reads;
#   3. bulk: seed 1,000 vendors / 100,000 listings / 1,000,000 bookings,
#      rebuild every read model, relay drain of the whole backlog plus the
#      commit -> published latency at a steady rate, then reads (availability
#      at scale) against `ledger serve` on that database.
# Ends with bench/results/<run>/summary.md. Scratch databases and streams
# are dropped at the end; the shared services are never stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=false
bulk=true
for arg in "$@"; do
  case "$arg" in
    --quick) quick=true ;;
    --skip-bulk) bulk=false ;;
    *) echo "usage: $0 [--quick] [--skip-bulk]" >&2; exit 2 ;;
  esac
done

# shellcheck source=scripts/services.sh
source scripts/services.sh

if $quick; then
  seconds=8; pg_seconds=8; bookings_deep=1000
  seed_args=(--vendors 100 --listings 10000 --bookings 100000)
else
  seconds=30; pg_seconds=20; bookings_deep=10000
  seed_args=(--vendors 1000 --listings 100000 --bookings 1000000)
fi

cargo build --release --locked -p ledger
ledger=target/release/ledger
run="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$run"
echo "suite: results in $run" >&2

admin_url="$LEDGER_TEST_DATABASE_URL"
export LEDGER_JWT_SECRET=bench-secret-0123456789
export LEDGER_WEBHOOK_SECRET=whsec_bench
server_pid=""
scratch=()

cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  "$ledger" bench drop-streams BENCH_ledger_bench_http BENCH_ledger_bench_big >/dev/null 2>&1 || true
  for db in "${scratch[@]}"; do
    psql "$admin_url" -qc "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true
  done
}
trap cleanup EXIT

fresh_db() {
  psql "$admin_url" -qc "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1" >/dev/null
  scratch+=("$1")
}

# start_server DB PORT: `ledger serve` on that database, its own stream,
# rate limits out of the way (all load comes from one address).
start_server() {
  DATABASE_URL="${DATABASE_URL%/*}/$1" LEDGER_STREAM="BENCH_$1" LEDGER_HTTP_ADDR="127.0.0.1:$2" \
  LEDGER_RATE_LIMIT_PER_PRINCIPAL=1000000 LEDGER_RATE_LIMIT_PER_PRINCIPAL_BURST=1000000 \
  LEDGER_RATE_LIMIT_PER_IP=1000000 LEDGER_RATE_LIMIT_PER_IP_BURST=1000000 RUST_LOG=warn \
    "$ledger" serve >"$run/serve-$1.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$2/health/ready" >/dev/null && return 0
    sleep 0.2
  done
  echo "suite: ledger serve on $1 did not become ready" >&2
  return 1
}

# wait_caught_up: until every consumer of the served ledger is at the head
# (the relay and projectors skip what the bulk steps already did).
wait_caught_up() {
  local token
  token=$("$ledger" token --role admin --sub bench)
  for _ in $(seq 1 600); do
    if curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/projections" \
      | python3 -c 'import json,sys; sys.exit(0 if all(p["lag_events"] == 0 for p in json.load(sys.stdin)) else 1)'; then
      return 0
    fi
    sleep 1
  done
  echo "suite: the read models did not catch up in 10 minutes" >&2
  return 1
}

stop_server() {
  kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# bench NAME ARGS...: one `ledger bench run`, table to NAME.txt, JSON to NAME.json.
bench() {
  local name=$1; shift
  echo "suite: $name" >&2
  "$ledger" bench run --url "http://127.0.0.1:$port" --json "$run/$name.json" "$@" \
    | tee "$run/$name.txt"
}

{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "postgres: $(psql "$admin_url" -Atc 'SHOW server_version') (fsync $(psql "$admin_url" -Atc 'SHOW fsync'), synchronous_commit $(psql "$admin_url" -Atc 'SHOW synchronous_commit'))"
  echo "nats: $(nats-server --version 2>/dev/null || echo unknown)"
  echo "commit: $(git rev-parse --short HEAD)"
} | tee "$run/machine.txt"

echo "suite: pgbench baseline" >&2
bench/pgbench.sh --clients 32 --seconds "$pg_seconds" | tee "$run/pgbench.txt"

port=18480
fresh_db ledger_bench_http
start_server ledger_bench_http "$port"
bench place_order --scenario place-order --concurrency 32 --duration "${seconds}s"
bench hot_listing --scenario hot-listing --concurrency 32 --duration "${seconds}s"
bench deep_listing --scenario deep-listing --concurrency 32 --duration "${seconds}s" --bookings "$bookings_deep"
bench mixed --scenario mixed --concurrency 32 --duration "${seconds}s" --server-pid "$server_pid"
half=$(python3 -c "import json;print(round(json.load(open('$run/place_order.json'))['commands']['per_second']/2))")
bench place_order_half --scenario place-order --concurrency 32 --duration "${seconds}s" --rate "$half"
bench reads --scenario reads --concurrency 32 --duration "${seconds}s" --server-pid "$server_pid"
stop_server

if $bulk; then
  fresh_db ledger_bench_big
  big_url="${DATABASE_URL%/*}/ledger_bench_big"
  echo "suite: seed" >&2
  "$ledger" bench seed --database-url "$big_url" "${seed_args[@]}" 2>&1 | tee "$run/seed.txt"
  echo "suite: rebuild" >&2
  "$ledger" bench rebuild --database-url "$big_url" 2>&1 | tee "$run/rebuild.txt"
  echo "suite: relay drain" >&2
  # Into the stream `ledger serve` uses next, kept, so that its relay
  # resumes at the end instead of publishing everything again.
  "$ledger" bench relay-drain --database-url "$big_url" --stream BENCH_ledger_bench_big \
    --keep-stream --steady-rate 2000 --seconds "$seconds" 2>&1 | tee "$run/relay_drain.txt"
  # The seeded history is complete (every order paid and confirmed), so the
  # policies have nothing to react to: start them at the head rather than
  # replaying a million events through them while reads are measured.
  psql "$big_url" -qc "INSERT INTO consumer_checkpoints (name, position)
      SELECT 'policies', coalesce(max(global_position), 0) FROM events
      ON CONFLICT (name) DO UPDATE SET position = EXCLUDED.position" >/dev/null
  port=18481
  start_server ledger_bench_big "$port"
  wait_caught_up
  bench reads_big --scenario reads --existing --listings 100000 --concurrency 32 \
    --duration "${seconds}s" --server-pid "$server_pid"
  stop_server
fi

python3 bench/summary.py "$run" | tee "$run/summary.md"
