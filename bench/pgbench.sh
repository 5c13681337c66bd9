#!/usr/bin/env bash
# Raw PostgreSQL insert baseline for the ledger's events table (see README.md).
#
# Usage: bench/pgbench.sh [--clients N] [--seconds S] [--jobs J]
#
# DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres) is only
# used to reach the server: the script works in its own scratch database
# `ledger_pgbench`, dropped before and after the run. Ends with
#   baseline_insert_tps=<float>
#   baseline_read_insert_tps=<float>
set -euo pipefail

clients=32
seconds=20
jobs=2
aggregates=10000       # seeded aggregates for read_then_insert.sql
events_per_aggregate=5 # events per seeded aggregate

usage() { sed -n '4p' "$0" | sed 's/^# //' >&2; exit 2; }
while [[ $# -gt 0 ]]; do
    case "$1" in
        --clients) clients="${2:?}"; shift 2 ;;
        --clients=*) clients="${1#*=}"; shift ;;
        --seconds) seconds="${2:?}"; shift 2 ;;
        --seconds=*) seconds="${1#*=}"; shift ;;
        --jobs) jobs="${2:?}"; shift 2 ;;
        --jobs=*) jobs="${1#*=}"; shift ;;
        -h|--help) usage ;;
        *) echo "unknown option: $1" >&2; usage ;;
    esac
done
for v in "$clients" "$seconds" "$jobs"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || { echo "not a positive integer: $v" >&2; exit 2; }
done

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# As bench/suite.sh: no TLS on the loopback, for the baseline as for the
# ledger it is compared with.
export PGSSLMODE="${PGSSLMODE:-disable}"
PGBENCH="${PGBENCH:-/usr/bin/pgbench}"
admin_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
db=ledger_pgbench
# Same server and credentials, the scratch database instead of the path.
scratch_url="$(printf '%s' "$admin_url" | sed -E "s#^(postgres(ql)?://[^/?]*)(/[^?]*)?#\\1/$db#")"
[[ "$scratch_url" == *"/$db"* ]] || { echo "cannot derive a URL for $db from DATABASE_URL" >&2; exit 2; }

admin() { psql "$admin_url" -X -q -v ON_ERROR_STOP=1 "$@"; }
scratch() { psql "$scratch_url" -X -q -v ON_ERROR_STOP=1 "$@"; }

drop_db() { admin -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null 2>&1 || true; }
cleanup() { drop_db; rm -f "${out:-}"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

drop_db
admin -c "CREATE DATABASE $db"

# The events table of migrations/sql (0001_event_store.sql) with its primary
# key and secondary indexes, without the triggers (immutability, relay
# notification, hash chain) and so without the hash column they fill.
scratch <<SQL
CREATE TABLE events
(
    aggregate_type  text                         NOT NULL,
    aggregate_id    text                         NOT NULL,
    sequence        bigint CHECK (sequence >= 0) NOT NULL,
    event_type      text                         NOT NULL,
    event_version   text                         NOT NULL,
    payload         json                         NOT NULL,
    metadata        json                         NOT NULL,
    global_position bigint GENERATED ALWAYS AS IDENTITY NOT NULL,
    event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    recorded_at     timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);
CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_event_type_position ON events (event_type, global_position);
CREATE INDEX events_recorded_at ON events (recorded_at);

-- Aggregates inv-1 .. inv-$aggregates with $events_per_aggregate events each.
INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
SELECT 'Inventory', 'inv-' || a, s, CASE WHEN s = 1 THEN 'InventoryInitialized' ELSE 'HoldPlaced' END, '1.0',
       json_build_object('HoldPlaced', json_build_object(
           'hold_id', gen_random_uuid(), 'order_id', gen_random_uuid(),
           'request', json_build_object('kind', 'rental', 'quantity', 1, 'period',
               json_build_object('start', '2026-06-01T09:00:00Z', 'end', '2026-06-04T09:00:00Z')),
           'expires_at', '2026-05-25T09:15:00Z', 'note', 'bench payload padding to ~300 bytes')),
       json_build_object('correlation_id', gen_random_uuid(), 'causation_id', gen_random_uuid(), 'actor', 'seed')
  FROM generate_series(1, $aggregates) AS a, generate_series(1, $events_per_aggregate) AS s;
VACUUM ANALYZE events;
SQL

out="$(mktemp)"
# run <script>: runs pgbench with it, prints its output, echoes nothing else
# to stdout; the tps is left in $tps.
run() {
    local script="$1"
    echo "== pgbench -n -c $clients -j $jobs -T $seconds -f $script" >&2
    "$PGBENCH" -n -c "$clients" -j "$jobs" -T "$seconds" -D "aggregates=$aggregates" \
        -f "$here/$script" "$scratch_url" >"$out" 2>&1 || { cat "$out"; exit 1; }
    cat "$out"
    tps="$(sed -nE 's/^tps = ([0-9.]+) \(without initial connection time\).*/\1/p' "$out")"
    [[ -n "$tps" ]] || { echo "no tps line in the pgbench output" >&2; exit 1; }
}

run events_insert.sql
insert_tps="$tps"
run read_then_insert.sql
read_insert_tps="$tps"

echo "rows_in_events=$(scratch -Atc 'SELECT count(*) FROM events')"
echo "baseline_insert_tps=$insert_tps"
echo "baseline_read_insert_tps=$read_insert_tps"
