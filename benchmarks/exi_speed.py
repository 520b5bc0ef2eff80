"""EXI codec throughput over the real messages of the reference corpus.

Decodes (and re-encodes) every V2GTP message of ../shared/corpus/golden/*.jsonl in corpus
order — the real mix, mostly DIN 70121 / ISO 15118-2 CurrentDemandReq/Res — in one process,
and prints messages per second. Usage: python benchmarks/exi_speed.py [--golden DIR] [--rounds N]
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time
from pathlib import Path

from ccs_analyzer.dissectors.exi import decode, encode

DEFAULT_GOLDEN = Path(__file__).resolve().parents[1].parent / "shared" / "corpus" / "golden"


def corpus(golden: Path) -> list[tuple[bytes, str]]:
    """(payload, namespace) of every decodable V2GTP row, in file order."""
    msgs = []
    for f in sorted(glob.glob(str(golden / "*.jsonl"))):
        with open(f) as fh:
            for line in fh:
                r = json.loads(line)
                if r.get("kind") == "v2gtp" and r.get("hex") and r.get("namespace"):
                    msgs.append((bytes.fromhex(r["hex"]), r["namespace"]))
    return msgs


def main() -> int:
    """Print decode and encode rates (messages/s); exit 1 when the corpus is absent."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--golden", type=Path, default=Path(os.environ.get("CCS_GOLDEN", DEFAULT_GOLDEN)))
    ap.add_argument("--rounds", type=int, default=3, help="best of N passes")
    a = ap.parse_args()
    msgs = corpus(a.golden)
    if not msgs:
        print(f"no corpus at {a.golden}", file=sys.stderr)
        return 1
    for data, ns in msgs[:200]:  # warm up: load the grammars
        decode(data, ns)
    best = float("inf")
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        trees = [decode(data, ns) for data, ns in msgs]
        best = min(best, time.perf_counter() - t0)
    print(f"decode: {len(msgs)} messages, {len(msgs) / best:,.0f} messages/s "
          f"({best / len(msgs) * 1e6:.1f} µs/message)")
    pairs = list(zip(trees, (ns for _, ns in msgs)))
    best = float("inf")
    for _ in range(a.rounds):
        t0 = time.perf_counter()
        for tree, ns in pairs:
            encode(tree, ns)
        best = min(best, time.perf_counter() - t0)
    print(f"encode: {len(msgs)} messages, {len(msgs) / best:,.0f} messages/s "
          f"({best / len(msgs) * 1e6:.1f} µs/message)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
