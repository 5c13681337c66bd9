#!/usr/bin/env python3
"""Counts the statements in a PostgreSQL server log excerpt (log_statement = all).

    bench/statement_census.py LOG_EXCERPT [TOP]

Groups statements by their first line of SQL (a multi-line statement that
starts on the line after `execute <name>:` is named by that next line) and
prints the TOP (default 30) most frequent with their counts.
"""
import collections
import re
import sys


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    top = int(sys.argv[2]) if len(sys.argv) == 3 else 30
    with open(sys.argv[1], errors="replace") as f:
        lines = f.read().split("\n")
    counts = collections.Counter()
    for i, line in enumerate(lines):
        found = re.search(r"LOG:  (?:execute [^:]*|statement): ?(.*)$", line)
        if not found:
            continue
        text = found.group(1).strip()
        if not text and i + 1 < len(lines):
            text = lines[i + 1].strip()
        counts[re.sub(r"\s+", " ", text)[:100]] += 1
    print(f"{sum(counts.values())} statements")
    for text, count in counts.most_common(top):
        print(f"{count:9d}  {text}")


if __name__ == "__main__":
    main()
