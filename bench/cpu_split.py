#!/usr/bin/env python3
"""CPU used by each program over an interval, from /proc.

    bench/cpu_split.py SECONDS

Prints, per program (every PostgreSQL backend counted as `postgres`, the
ledger's processes told apart by their subcommand: `ledger serve`, `ledger
bench`), the share of one core it used, and the total out of all cores.
Used by bench/profile.sh to say where the machine's CPU goes under a load.
"""
import os
import sys
import time


def program(pid):
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    ticks = int(fields[11]) + int(fields[12])  # utime + stime
    if name.startswith("postgres"):
        name = "postgres"
    elif name == "ledger":
        with open(f"/proc/{pid}/cmdline") as f:
            args = f.read().split("\0")
        if len(args) > 1:
            name = f"ledger {args[1]}"
    return name, ticks


def sample():
    found = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                found[pid] = program(pid)
            except (OSError, ValueError, IndexError):
                pass  # the process ended meanwhile
    return found


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    seconds = float(sys.argv[1])
    tick = os.sysconf("SC_CLK_TCK")
    before = sample()
    time.sleep(seconds)
    after = sample()
    used = {}
    for pid, (name, ticks) in after.items():
        start = before[pid][1] if pid in before else 0
        used[name] = used.get(name, 0) + ticks - start
    total = sum(used.values())
    for name, ticks in sorted(used.items(), key=lambda kv: -kv[1])[:8]:
        print(f"{name:24s} {100 * ticks / tick / seconds:6.1f} % of a core")
    print(f"{'all':24s} {100 * total / tick / seconds:6.1f} % of {100 * os.cpu_count()} %")


if __name__ == "__main__":
    main()
