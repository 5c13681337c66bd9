#!/usr/bin/env bash
# Every performance figure of the README's "Performance" section, in one run
# on one machine, so that each is reported next to the pgbench baseline
# measured in the same run.
#
#   bench/suite.sh [--quick] [--no-build] [--parts baseline,peer,http,scaleout,connections,bulk,big] [--out DIR]
#
# Parts (each writes its raw output to the run's directory, by default
# bench/results/<UTC time>/):
#   baseline  pgbench (bench/pgbench.sh, 32 clients);
#   peer      `ledger-peer` (bench/peer: the standard cqrs-es + postgres-es
#             wiring, as their demo builds it) on a scratch database with the
#             ledger's pool size, driven by `ledger-bench peer`: a new
#             aggregate per command (open), commands on existing aggregates
#             (deposit) and 32 clients on one aggregate (hot: ok/s and the
#             error rate);
#   http      `ledger serve` (release) on a scratch database, driven over HTTP
#             by `ledger-bench run`: place-order, hot-listing, deep-listing
#             (10,000 bookings), mixed (with the server's peak RSS),
#             place-order paced at half its maximum (projection lag), reads;
#   connections  `ledger serve` holding 10,000 live feeds (1,000 analysts,
#             10 each; all but 100 follow one aggregate type) under the mixed
#             load, with its RSS; then a client opening 50,000 connections
#             at once against the default caps (`ledger-bench flood`: the
#             server must stay alive and answering);
#   scaleout  the ledger split into processes on one machine: two `ledger
#             command-api`, one `ledger read-api`, one `ledger relay`, one
#             `ledger project`, against the same PostgreSQL and NATS, driven
#             through both command processes (`--command-url` twice), next
#             to one `ledger serve` on the same scenarios: throughput, the
#             conflict rate and the consistency check of each;
#   bulk      a ~1,000,000-event seed, every read model rebuilt from it, the
#             relay draining it, then commit -> published at a steady rate;
#   big       `ledger serve` on `ledger_bench_big` (1,000 vendors, 100,000
#             listings, 1,000,000 bookings: 5.3M events, seeded once and
#             kept, ~8 min) once its read models have caught up, then reads
#             (availability at scale) and the server's RSS.
# Ends with summary.md (bench/summary.py). Scratch databases and streams
# are dropped at the end; the shared services are never stopped.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

quick=false
build=true
parts=baseline,peer,http,scaleout,connections,bulk,big
run="bench/results/$(date -u +%Y%m%dT%H%M%SZ)"
while [[ $# -gt 0 ]]; do
  case "$1" in
    --quick) quick=true ;;
    --no-build) build=false ;;
    --parts) parts=$2; shift ;;
    --out) run=$2; shift ;;
    *) echo "usage: $0 [--quick] [--no-build] [--parts baseline,peer,http,scaleout,connections,bulk,big] [--out DIR]" >&2; exit 2 ;;
  esac
  shift
done
part() { [[ ",$parts," == *",$1,"* ]]; }

# shellcheck source=scripts/services.sh
source scripts/services.sh

if $quick; then
  seconds=8; pg_seconds=8; bookings_deep=1000
  seed_args=(--vendors 20 --listings 2000 --bookings 19000)
else
  seconds=20; pg_seconds=20; bookings_deep=10000
  # ~1,000,000 events (vendors, listings, 188,000 paid bookings).
  seed_args=(--vendors 200 --listings 20000 --bookings 188000 --seed 7)
fi

$build && cargo build --release --locked -p ledger -p loadgen -p ledger-peer
ledger=${LEDGER_BIN:-target/release/ledger}
bench=${LEDGER_BENCH_BIN:-target/release/ledger-bench}
peer=${LEDGER_PEER_BIN:-target/release/ledger-peer}
mkdir -p "$run"
echo "suite: results in $run" >&2

admin_url="$LEDGER_TEST_DATABASE_URL"
# Every client here (pgbench, the ledger, psql) talks to PostgreSQL over the
# loopback, where TLS protects nothing and costs CPU on both ends. libpq and
# sqlx both read PGSSLMODE, so the baseline and the ledger stay comparable.
export PGSSLMODE=${PGSSLMODE:-disable}
export LEDGER_JWT_SECRET=bench-secret-0123456789
export LEDGER_WEBHOOK_SECRET=whsec_bench
server_pid=""
split_pids=()
scratch=()

cleanup() {
  [[ -n "$server_pid" ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  for pid in "${split_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  "$bench" drop-streams BENCH_ledger_bench_http BENCH_ledger_bench_connections BENCH_DRAIN \
    BENCH_ledger_bench_single BENCH_ledger_bench_split >/dev/null 2>&1 || true
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
  for _ in $(seq 1 3600); do
    if curl -sf -H "Authorization: Bearer $token" "http://127.0.0.1:$port/v1/projections" \
      | python3 -c 'import json,sys; sys.exit(0 if all(p["lag_events"] == 0 for p in json.load(sys.stdin)) else 1)'; then
      return 0
    fi
    sleep 1
  done
  echo "suite: the read models did not catch up in an hour" >&2
  return 1
}

# start_part PART DB PORT POOL: one part of the ledger alone (`ledger
# command-api`, `read-api`, `relay`, `project`) on that database and its
# stream, with a pool of POOL connections; PORT is only listened on by the
# HTTP parts.
start_part() {
  DATABASE_URL="${DATABASE_URL%/*}/$2" LEDGER_STREAM="BENCH_$2" LEDGER_HTTP_ADDR="127.0.0.1:$3" \
  LEDGER_DB_POOL_SIZE="$4" \
  LEDGER_RATE_LIMIT_PER_PRINCIPAL=1000000 LEDGER_RATE_LIMIT_PER_PRINCIPAL_BURST=1000000 \
  LEDGER_RATE_LIMIT_PER_IP=1000000 LEDGER_RATE_LIMIT_PER_IP_BURST=1000000 RUST_LOG=warn \
    "$ledger" "$1" >"$run/$1-$3.log" 2>&1 &
  split_pids+=($!)
}

wait_ready() { # PORT
  for _ in $(seq 1 150); do
    curl -sf "http://127.0.0.1:$1/health/ready" >/dev/null && return 0
    sleep 0.2
  done
  echo "suite: the part on port $1 did not become ready" >&2
  return 1
}

stop_parts() {
  for pid in "${split_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${split_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  split_pids=()
}

stop_server() {
  kill "$server_pid" && wait "$server_pid" 2>/dev/null || true
  server_pid=""
}

# bench NAME ARGS...: one `ledger-bench run`, table to NAME.txt, JSON to NAME.json.
bench() {
  local name=$1; shift
  echo "suite: $name" >&2
  "$bench" run --url "http://127.0.0.1:$port" --json "$run/$name.json" "$@" \
    | tee "$run/$name.txt"
}

{
  echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
  echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "postgres: $(psql "$admin_url" -Atc 'SHOW server_version') (fsync $(psql "$admin_url" -Atc 'SHOW fsync'), synchronous_commit $(psql "$admin_url" -Atc 'SHOW synchronous_commit'))"
  echo "nats: $(nats-server --version 2>/dev/null || echo unknown)"
  echo "commit: $(git rev-parse --short HEAD)"
} | tee "$run/machine.txt"

if part baseline; then
  echo "suite: pgbench baseline" >&2
  bench/pgbench.sh --clients 32 --seconds "$pg_seconds" | tee "$run/pgbench.txt"
fi

if part peer; then
  port=18490
  fresh_db ledger_bench_peer
  "$peer" --database-url "${DATABASE_URL%/*}/ledger_bench_peer" --addr "127.0.0.1:$port" \
    --pool "${LEDGER_DB_POOL_SIZE:-32}" >"$run/peer.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 150); do
    curl -s -o /dev/null "http://127.0.0.1:$port/account/ready" && break
    sleep 0.2
  done
  for scenario in open deposit hot; do
    echo "suite: peer $scenario" >&2
    "$bench" peer --url "http://127.0.0.1:$port" --scenario "$scenario" --concurrency 32 \
      --duration "${seconds}s" --json "$run/peer_$scenario.json" | tee "$run/peer_$scenario.txt"
  done
  stop_server
fi

if part http; then
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
fi

if part scaleout; then
  # The same scenarios on one process, then on the split processes, each on
  # a fresh database and stream.
  port=18483
  fresh_db ledger_bench_single
  "$bench" drop-streams BENCH_ledger_bench_single >/dev/null 2>&1 || true
  start_server ledger_bench_single "$port"
  bench scaleout_single_place_order --scenario place-order --concurrency 32 --duration "${seconds}s"
  bench scaleout_single_mixed --scenario mixed --concurrency 32 --duration "${seconds}s"
  stop_server

  fresh_db ledger_bench_split
  "$bench" drop-streams BENCH_ledger_bench_split >/dev/null 2>&1 || true
  DATABASE_URL="${DATABASE_URL%/*}/ledger_bench_split" "$ledger" migrate >/dev/null
  # PostgreSQL's default max_connections is 100: the five pools share it
  # (one `ledger serve` has 32).
  start_part command-api ledger_bench_split 18484 24
  start_part command-api ledger_bench_split 18485 24
  start_part read-api ledger_bench_split 18486 16
  start_part relay ledger_bench_split 18487 4
  start_part project ledger_bench_split 18488 8
  wait_ready 18484 && wait_ready 18485 && wait_ready 18486
  port=18486
  for scenario in place-order mixed; do
    bench "scaleout_split_${scenario//-/_}" --scenario "$scenario" --concurrency 32 \
      --duration "${seconds}s" --command-url http://127.0.0.1:18484 --command-url http://127.0.0.1:18485
  done
  stop_parts
fi

if part connections; then
  port=18482
  fresh_db ledger_bench_connections
  # A stream left by an earlier run would not match the fresh database.
  "$bench" drop-streams BENCH_ledger_bench_connections >/dev/null 2>&1 || true
  # Room for 10,000 feeds and the load's own connections.
  LEDGER_MAX_FEEDS=10000 LEDGER_MAX_FEEDS_PER_PRINCIPAL=10 LEDGER_MAX_CONNECTIONS=11000 \
    start_server ledger_bench_connections "$port"
  bench feeds_10k --scenario mixed --concurrency 32 --duration "${seconds}s" \
    --feeds 10000 --feeds-per-subject 10 --feeds-query aggregate_type=Vendor --feeds-whole 100 \
    --server-pid "$server_pid"
  stop_server
  # The default caps (10,000 connections); the flood needs more open files
  # than the default 20,000 of this shell.
  start_server ledger_bench_connections "$port"
  echo "suite: flood" >&2
  (ulimit -n 120000 2>/dev/null || ulimit -n "$(ulimit -Hn)"
   "$bench" flood --url "http://127.0.0.1:$port" --connections 50000 --hold "${seconds}s" \
     --server-pid "$server_pid" --json "$run/flood.json") | tee "$run/flood.txt"
  stop_server
fi

if part bulk; then
  fresh_db ledger_bench_bulk
  bulk_url="${DATABASE_URL%/*}/ledger_bench_bulk"
  echo "suite: seed" >&2
  "$bench" seed --database-url "$bulk_url" "${seed_args[@]}" 2>&1 | tee "$run/seed.txt"
  echo "suite: rebuild" >&2
  "$bench" rebuild --database-url "$bulk_url" 2>&1 | tee "$run/rebuild.txt"
  echo "suite: relay drain" >&2
  "$bench" relay-drain --database-url "$bulk_url" --stream BENCH_DRAIN \
    --steady-rate 1000 --seconds "$seconds" 2>&1 | tee "$run/relay_drain.txt"
fi

if part big; then
  # Seeded once (the seed refuses a database that already has events) and
  # kept between runs: 5.3M events take ~8 minutes to write.
  big_url="${DATABASE_URL%/*}/ledger_bench_big"
  if ! psql "$big_url" -Atc "SELECT 1 FROM events LIMIT 1" 2>/dev/null | grep -q 1; then
    psql "$admin_url" -qc "CREATE DATABASE ledger_bench_big" 2>/dev/null || true
    "$bench" seed --database-url "$big_url" \
      --vendors 1000 --listings 100000 --bookings 1000000 2>&1 | tee "$run/seed_big.txt"
  fi
  port=18481
  start_server ledger_bench_big "$port"
  # The first time, the relay publishes the log and the projectors build
  # the read models from it; later runs find them built.
  wait_caught_up
  bench reads_big --scenario reads --existing --listings 100000 --concurrency 32 \
    --duration "${seconds}s" --server-pid "$server_pid"
  stop_server
fi

python3 bench/summary.py "$run" | tee "$run/summary.md"
