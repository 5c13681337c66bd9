#!/usr/bin/env python3
"""An independent verifier of the ledger's log, written from docs/AUDIT.md
alone (Python 3.9+, standard library only; Ed25519 per RFC 8032 section 6).

    audit_verify.py --events EXPORT.ndjson --seals SEALS.json
                    (--public-key HEX | --no-signatures) [--anchor ANCHOR.json]
                    [--earlier EARLIER.ndjson]

EXPORT is `ledger events export` (NDJSON, every event with `hash` and
`canonical`); SEALS is a JSON list of seals, or a `GET /v1/audit/seals` page,
or one seal per line; ANCHOR is `ledger audit verify --save-anchor`'s file; EARLIER an older export, whose
hashes name the changed event when only a seal's digest fails.
Prints a JSON report; exits 0 when the log verifies, 1 when it does not.
"""
import argparse, calendar, hashlib, json, re, sys, uuid

# --- Ed25519 verification (RFC 8032, section 6) ------------------------------
P = 2**255 - 19
D = -121665 * pow(121666, P - 2, P) % P
Q = 2**252 + 27742317777372353535851937790883648493
SQRT_M1 = pow(2, (P - 1) // 4, P)

def _add(a, b):
    x = (a[1] - a[0]) * (b[1] - b[0]) % P
    y = (a[1] + a[0]) * (b[1] + b[0]) % P
    c, d = 2 * a[3] * b[3] * D % P, 2 * a[2] * b[2] % P
    e, f, g, h = y - x, d - c, d + c, y + x
    return (e * f, g * h, f * g, e * h)

def _mul(s, pt):
    acc = (0, 1, 1, 0)
    while s:
        if s & 1:
            acc = _add(acc, pt)
        pt, s = _add(pt, pt), s >> 1
    return acc

def _x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return P - x if (x & 1) != sign else x

def _point(b):
    y = int.from_bytes(b, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)

_GY = 4 * pow(5, P - 2, P) % P
G = (_x(_GY, 0), _GY, 1, _x(_GY, 0) * _GY % P)

def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _point(public), _point(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= Q:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % Q
    left, right = _mul(s, G), _add(r, _mul(h, a))
    return (left[0] * right[2] - right[0] * left[2]) % P == 0 and \
           (left[1] * right[2] - right[1] * left[2]) % P == 0

# --- The format (docs/AUDIT.md) ---------------------------------------------
def int8(n): return n.to_bytes(8, "big", signed=True)
def lp(b): return len(b).to_bytes(4, "big") + b
def sha256(*parts): return hashlib.sha256(b"".join(parts)).digest()

def micros(rfc3339):
    """Microseconds since the epoch of an RFC 3339 UTC time."""
    m = re.fullmatch(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(Z|\+00:00)", rfc3339)
    if not m:
        raise ValueError("not an RFC 3339 UTC time: " + rfc3339)
    seconds = calendar.timegm(tuple(int(v) for v in m.groups()[:6]))
    return seconds * 1_000_000 + int((m.group(7) or "0")[:6].ljust(6, "0"))

def parse_canonical(b):
    at = 0
    def take(n):
        nonlocal at
        at += n
        if at > len(b):
            raise ValueError("canonical content too short")
        return b[at - n:at]
    text = lambda: take(int.from_bytes(take(4), "big")).decode("utf-8")
    num = lambda: int.from_bytes(take(8), "big", signed=True)
    f = {"aggregate_type": text(), "aggregate_id": text(), "sequence": num(),
         "event_type": text(), "event_version": text(), "payload": text(),
         "metadata": text(), "event_id": str(uuid.UUID(bytes=bytes(take(16)))),
         "recorded_at": num(), "position": num()}
    if at != len(b):
        raise ValueError("trailing bytes after the canonical content")
    return f

def leaf(position, h): return sha256(b"\x00", int8(position), h)

def merkle_root(leaves):
    if not leaves:
        return sha256()
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return sha256(b"\x01", merkle_root(leaves[:k]), merkle_root(leaves[k:]))

def signed_message(s):
    root = s.get("merkle_root")
    out = lp(b"ledger-audit-seal-v2" if root else b"ledger-audit-seal-v1")
    out += b"".join(int8(s[k]) for k in ("seal_id", "from", "to", "event_count"))
    out += len(s["positions"]).to_bytes(4, "big") + b"".join(int8(p) for p in s["positions"])
    out += lp(bytes.fromhex(s["previous_digest"])) + lp(bytes.fromhex(s["digest"]))
    out += lp(s["key_id"].encode()) + int8(micros(s["sealed_at"]))
    return out + (lp(bytes.fromhex(root)) if root else b"")

# --- Verification -----------------------------------------------------------
def failure(kind, reason, position=None, seal=None):
    f = {"kind": kind, "reason": reason}
    if position is not None:
        f["position"] = position
    if seal is not None:
        f["range"], f["seal_id"] = {"from": seal["from"], "to": seal["to"]}, seal["seal_id"]
    return f

SEALED = re.compile(r"^pii:v1:[0-9a-f]{32}:[A-Za-z0-9_-]+$")

def same(stored, served):
    """Whether a served payload (or metadata) is the stored one. A sealed
    personal field (AUDIT.md section 6) is served opened, or "[erased]": any
    string stands for it; everything else must be equal."""
    if isinstance(stored, str) and SEALED.match(stored):
        return isinstance(served, str)
    if isinstance(stored, dict):
        return isinstance(served, dict) and stored.keys() == served.keys() \
            and all(same(v, served[k]) for k, v in stored.items())
    if isinstance(stored, list):
        return isinstance(served, list) and len(stored) == len(served) \
            and all(same(a, b) for a, b in zip(stored, served))
    return stored == served

def check_events(events):
    hashes = {}
    for e in events:
        pos, key = e["position"], (e["aggregate_type"], e["aggregate_id"])
        try:
            c = parse_canonical(bytes.fromhex(e["canonical"]))
        except ValueError as err:
            return failure("hash_mismatch", f"canonical content unreadable: {err}", pos)
        served = {k: e[k] for k in ("aggregate_type", "aggregate_id", "sequence", "event_type",
                                     "event_version", "event_id", "position")}
        served["recorded_at"] = micros(e["recorded_at"])
        hashed = {k: c[k] for k in served}
        if served != hashed or not same(json.loads(c["payload"]), e["payload"]) \
                or not same(json.loads(c["metadata"]), e["metadata"]):
            return failure("hash_mismatch", "the event differs from its canonical content", pos)
        previous = hashes.get((key, e["sequence"] - 1))
        if previous is None and e["sequence"] > 1:
            return failure("chain_broken", f"sequence {e['sequence'] - 1} is missing", pos)
        h = sha256(previous or b"", bytes.fromhex(e["canonical"]))
        if h != bytes.fromhex(e["hash"]):
            return failure("hash_mismatch", "the stored hash is not the content's", pos)
        hashes[(key, e["sequence"])] = h
    return None

def check_seals(seals, by_position, public_key):
    previous = None
    for s in seals:
        expected_id = previous["seal_id"] + 1 if previous else 1
        start = previous["to"] + 1 if previous else 1
        prev_digest = previous["digest"] if previous else ""
        if s["seal_id"] != expected_id or s["from"] != start or s["previous_digest"] != prev_digest:
            return failure("seal_invalid", "seals are not numbered, contiguous and chained", start, s)
        if public_key and not ed25519_verify(public_key, signed_message(s),
                                             bytes.fromhex(s["signature"])):
            return failure("seal_signature", "bad signature", s["from"], s)
        present = sorted(p for p in by_position if s["from"] <= p <= s["to"])
        for p, q in zip(present + [None], s["positions"] + [None]):
            if p != q:
                if q is not None and (p is None or q < p):
                    return failure("missing_event", f"sealed event {q} is missing", q, s)
                return failure("unexpected_event", f"event {p} was never sealed", p, s)
        hashes = [bytes.fromhex(by_position[p]["hash"]) for p in s["positions"]]
        digest = sha256(bytes.fromhex(s["previous_digest"]),
                        *(int8(p) + h for p, h in zip(s["positions"], hashes)))
        root = s.get("merkle_root")
        if digest.hex() != s["digest"] or (root and merkle_root(
                [leaf(p, h) for p, h in zip(s["positions"], hashes)]).hex() != root):
            return failure("seal_digest", "the events' hashes no longer give the seal", None, s)
        previous = s
    return None

def check_anchor(anchor, seals, by_position):
    kept = anchor.get("seal") or (anchor if "seal_id" in anchor else None)
    if kept:
        stored = next((s for s in seals if s["seal_id"] == kept["seal_id"]), None)
        if stored is None:
            return failure("seal_missing", "the anchor's seal is gone", None, kept)
        if stored["digest"] != kept["digest"]:
            return failure("seal_rewritten", "the anchor's seal was re-made", None, kept)
    head = anchor.get("head")
    if head:
        event = by_position.get(head["position"])
        if event is None or event["event_id"] != head["event_id"]:
            return failure("log_truncated", "the anchor's last event is gone", head["position"])
    return None

def load_seals(path):
    text = open(path, encoding="utf-8").read().strip()
    try:
        data = json.loads(text) if text else []
    except json.JSONDecodeError:
        data = [json.loads(line) for line in text.splitlines() if line.strip()]
    data = data["seals"] if isinstance(data, dict) else data
    return sorted(data, key=lambda s: s["seal_id"])

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--events", required=True)
    ap.add_argument("--seals", required=True)
    key = ap.add_mutually_exclusive_group(required=True)
    key.add_argument("--public-key")
    key.add_argument("--no-signatures", action="store_true")
    ap.add_argument("--anchor")
    ap.add_argument("--earlier")
    args = ap.parse_args()
    if args.no_signatures:
        print("WARNING: seal signatures are NOT checked: a rewritten log passes", file=sys.stderr)
    public_key = bytes.fromhex(args.public_key) if args.public_key else None
    with open(args.events, encoding="utf-8") as f:
        events = sorted((json.loads(line) for line in f if line.strip()),
                        key=lambda e: e["position"])
    seals = load_seals(args.seals)
    by_position = {e["position"]: e for e in events}
    sealed_through = seals[-1]["to"] if seals else 0
    found = [f for f in (check_events(events), check_seals(seals, by_position, public_key)) if f]
    found.sort(key=lambda f: f.get("position") or f.get("range", {}).get("from", 0))
    first = found[0] if found else None
    if first and first["kind"] == "seal_digest" and args.earlier:
        with open(args.earlier, encoding="utf-8") as f:
            kept = {e["position"]: e["hash"] for e in map(json.loads, filter(str.strip, f))}
        r = first["range"]
        changed = [p for p in sorted(by_position) if r["from"] <= p <= r["to"]
                   and p in kept and kept[p] != by_position[p]["hash"]]
        if changed:
            first["position"] = changed[0]
    if first is None and args.anchor:
        with open(args.anchor, encoding="utf-8") as f:
            first = check_anchor(json.load(f), seals, by_position)
    report = {"ok": first is None, "checked": len(events), "sealed_through": sealed_through,
              "unsealed": sum(1 for e in events if e["position"] > sealed_through),
              "seals_checked": len(seals), "signatures_checked": public_key is not None}
    if first:
        report["first_failure"] = first
    print(json.dumps(report, indent=2))
    return 0 if first is None else 1

if __name__ == "__main__":
    sys.exit(main())
