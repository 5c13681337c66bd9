#!/usr/bin/env python3
"""The targets of the Performance issue, read from one bench/suite.sh run.

usage: bench/summary.py bench/results/<run>

Prints a Markdown table: each target, the measured figure, the ratio to the
pgbench baseline of the same run where the target is one, and met / MISSED.
A step that did not run shows as "not run".
"""

import json
import re
import sys
from pathlib import Path

run = Path(sys.argv[1])


def load(name):
    path = run / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def text(name):
    path = run / f"{name}.txt"
    return path.read_text() if path.exists() else ""


def grab(pattern, source, group=1):
    m = re.search(pattern, source)
    return float(m.group(group).replace(",", "")) if m else None


def op(report, name):
    for o in report["operations"]:
        if o["operation"] == name:
            return o
    return None


def ms(us):
    return us / 1000.0


rows = []


def row(target, figure, ok, note=""):
    verdict = "not run" if ok is None else ("met" if ok else "**MISSED**")
    rows.append((target, figure, verdict, note))


baseline = grab(r"baseline_insert_tps=([\d.]+)", text("pgbench"))
baseline_read = grab(r"baseline_read_insert_tps=([\d.]+)", text("pgbench"))

place = load("place_order")
if place and baseline:
    commits = place["commands"]["events_per_second"] or 0.0
    orders = place["commands"]["per_second"]
    ratio = commits / baseline
    row(
        "aggregate commits/s at 32 clients ≥ 0.3 × pgbench insert TPS",
        f"{commits:,.0f} events/s committed ({orders:,.0f} orders/s); pgbench {baseline:,.0f} TPS",
        ratio >= 0.3,
        f"ratio {ratio:.2f}",
    )
    p99 = ms(op(place, "place_order")["latency"]["p99_us"])
    row("place-order p99 ≤ 25 ms at 32 clients", f"{p99:.1f} ms", p99 <= 25)
else:
    row("aggregate commits/s ≥ 0.3 × pgbench", "-", None)

peer_open = load("peer_open")
if peer_open and baseline:
    ratio = peer_open["ok_per_second"] / baseline
    ledger_ratio = (place["commands"]["events_per_second"] or 0.0) / baseline if place else None
    row(
        "the peer (standard cqrs-es + postgres-es wiring) measured in the same run",
        f"{peer_open['ok_per_second']:,.0f} commits/s (a new aggregate each, p99 {peer_open['p99_ms']:.1f} ms)",
        True,
        f"peer ratio {ratio:.2f}"
        + (f" vs ledger {ledger_ratio:.2f}" if ledger_ratio is not None else ""),
    )
peer_deposit = load("peer_deposit")
if peer_deposit and baseline:
    row(
        "the peer: commands on existing aggregates (100 per client)",
        f"{peer_deposit['ok_per_second']:,.0f} commits/s, p99 {peer_deposit['p99_ms']:.1f} ms",
        True,
        f"ratio {peer_deposit['ok_per_second'] / baseline:.2f}",
    )
peer_hot = load("peer_hot")
if peer_hot:
    row(
        "the peer: 32 clients on one aggregate",
        f"{peer_hot['ok_per_second']:,.0f} ok/s, error rate {peer_hot['error_rate']:.1%} ({peer_hot['errors']})",
        True,
        "for comparison with the hot listing",
    )

for scenario in ("place_order", "mixed"):
    single, split = load(f"scaleout_single_{scenario}"), load(f"scaleout_split_{scenario}")
    if not (single and split):
        continue

    def conflicts(r):
        answered = sum(o["count"] for o in r["operations"])
        return r["errors_by_status"].get("409", 0) / answered if answered else 0.0

    row(
        f"scale-out ({scenario.replace('_', '-')}): 2 command-api + read-api + relay + project vs one `ledger serve`",
        f"{split['commands']['per_second']:,.0f} vs {single['commands']['per_second']:,.0f} commands/s; "
        f"409 rate {conflicts(split):.2%} vs {conflicts(single):.2%}",
        split["check"]["passed"] and single["check"]["passed"],
        f"×{split['commands']['per_second'] / max(single['commands']['per_second'], 1e-9):.2f}; consistency checks "
        + ("passed" if split["check"]["passed"] and single["check"]["passed"] else "FAILED"),
    )

hot = load("hot_listing")
if hot:
    errors = sum(hot["errors_by_status"].values())
    holds = hot["hot_listing"]["holds_per_second"]
    row(
        "hot listing, 32 clients: no errors, ≥ 1,000 holds/s",
        f"{holds:,.0f} holds/s, {errors} errors",
        errors == 0 and holds >= 1000,
    )

deep = load("deep_listing")
if deep:
    d = deep["deep_listing"]
    row(
        "hold on a 10,000-booking listing ≤ 2 × a fresh one",
        f"p50 {ms(d['deep']['p50_us']):.1f} vs {ms(d['fresh']['p50_us']):.1f} ms "
        f"(×{d['ratio_p50']:.2f}); p99 ×{d['ratio_p99']:.2f}",
        d["ratio_p50"] <= 2 and d["ratio_p99"] <= 2,
        f"{d['bookings']} bookings",
    )

drain = text("relay_drain")
rate = grab(r"relay drain: .*?: ([\d.]+) events/s", drain)
events = grab(r"relay drain: (\d+) events", drain)
if rate is not None:
    row(
        "relay drains a 1,000,000-event backlog ≥ 60,000 events/s",
        f"{rate:,.0f} events/s ({events:,.0f} events)",
        rate >= 60000,
    )
steady_p99 = grab(r"commit returned -> subscriber received.*?p99 ([\d.]+) ms", drain)
if steady_p99 is not None:
    row("commit → published p99 ≤ 20 ms at steady load", f"{steady_p99:.1f} ms", steady_p99 <= 20)

half = load("place_order_half")
if half:
    lag = half["projection_lag"]
    p99 = ms(lag["p99_us"])
    row(
        "projection lag p99 ≤ 100 ms at half the maximum command throughput",
        f"p50 {ms(lag['p50_us']):.1f} ms, p99 {p99:.1f} ms over {lag['samples']} samples "
        f"at {half['commands']['per_second']:,.0f} orders/s",
        p99 <= 100 and lag["samples"] > 0,
    )

rebuild = text("rebuild")
rebuild_rate = grab(r"\(([\d.]+) log events/s", rebuild)
rebuild_events = grab(r"from (\d+) events", rebuild)
if rebuild_rate is not None:
    row(
        "rebuilding every read model from 1,000,000 events ≥ 70,000 events/s",
        f"{rebuild_rate:,.0f} events/s ({rebuild_events:,.0f} events, every model)",
        rebuild_rate >= 70000,
    )

for name, label in (("reads_big", "100,000 listings / 1,000,000 bookings"), ("reads", "small ledger")):
    reads = load(name)
    if not reads:
        continue
    availability = op(reads, "availability")
    total = sum(o["successes_per_second"] for o in reads["operations"])
    if name == "reads_big":
        p99 = ms(availability["latency"]["p99_us"])
        row(f"availability query p99 ≤ 10 ms ({label})", f"{p99:.1f} ms", p99 <= 10)
    row(f"read API ≥ 5,000 queries/s at 32 clients ({label})", f"{total:,.0f} queries/s", total >= 5000)

rss = [
    (r["peak_rss_bytes"], n)
    for n in ("mixed", "reads", "reads_big")
    if (r := load(n)) and r.get("peak_rss_bytes")
]
if rss:
    peak, during = max(rss)
    row("`ledger serve` resident memory ≤ 200 MB under load", f"{peak / 2**20:.0f} MiB (peak, during {during})", peak <= 200 * 2**20)

feeds = load("feeds_10k")
if feeds and feeds.get("feeds"):
    held = feeds["feeds"]
    peak = feeds.get("peak_rss_bytes") or 0
    ok = held["open_at_end"] >= 10000 and 0 < peak <= 200 * 2**20
    row(
        "RSS ≤ 200 MB with 10,000 open live feeds under the mixed load",
        f"{peak / 2**20:.0f} MiB; {held['open_at_end']:,} of {held['requested']:,} feeds open to the end, "
        f"{held['events_received']:,} events delivered; {feeds['commands']['per_second']:,.0f} commands/s",
        ok,
    )

flood = load("flood")
if flood:
    ok = flood["server_alive"] is not False and flood["answered_after"] and flood["steady_failed"] == 0
    row(
        "a client opening 50,000 connections: the server stays alive and answering",
        f"{flood['connected']:,} connections made; {flood['answered_503']:,} answered 503, "
        f"{flood['closed_by_server']:,} closed at the header-read timeout; established clients "
        f"{flood['steady_ok']:,} ok / {flood['steady_failed']} failed (p99 {ms(flood['steady_p99_us']):.1f} ms); "
        f"peak RSS {(flood.get('peak_rss_bytes') or 0) / 2**20:.0f} MiB",
        ok,
    )

mixed = load("mixed")
checks = [(n, r["check"]["passed"]) for n in ("place_order", "hot_listing", "deep_listing", "mixed", "place_order_half", "feeds_10k", "scaleout_single_place_order", "scaleout_single_mixed", "scaleout_split_place_order", "scaleout_split_mixed") if (r := load(n))]

print(f"# bench/suite.sh run {run.name}\n")
print("```")
print(text("machine").strip())
print("```\n")
if baseline:
    print(f"pgbench baseline (32 clients): {baseline:,.0f} one-row inserts/s, {baseline_read or 0:,.0f} read-then-insert/s\n")
print("| target | measured | verdict | note |")
print("|---|---|---|---|")
for target, figure, verdict, note in rows:
    print(f"| {target} | {figure} | {verdict} | {note} |")
if mixed:
    print(
        f"\nmixed workload: {mixed['commands']['per_second']:,.0f} commands/s, "
        + ", ".join(f"{o['operation']} p99 {ms(o['latency']['p99_us']):.1f} ms" for o in mixed["operations"])
    )
print("\nconsistency checks: " + ", ".join(f"{n} {'passed' if ok else 'FAILED'}" for n, ok in checks))
