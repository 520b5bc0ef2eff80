"""Decode fidelity of the whole pipeline (capture → TCP/TLS → V2GTP → EXI) against the
reference decodes of the corpus: every V2GTP message with the same frame, name and tree,
every SLAC / SDP message at the same frame with the same name. Normalisation as in
../shared/tools/fidelity.py (hex case, numeric strings, one-element lists), plus: the
reference renders base64Binary as base64 text where our contract has lowercase hex, so a
base64 string equals the hex of its bytes."""
from __future__ import annotations

import base64
import binascii

import pytest

from ccs_analyzer.dissectors.pipeline import Dissector
from tests.conftest import corpus_captures, golden_rows


def leaf(x):
    """fidelity.py's normalisation of one value: numeric strings as ints, text lower-cased."""
    if isinstance(x, bool) or x is None or isinstance(x, (int, float)):
        return x
    s = str(x).strip()
    if s and s.lstrip("-").isdigit():
        return int(s)
    return s.lower()


def same(mine, ref) -> bool:
    """Trees equal under the normalisation (a one-element list equals its element)."""
    if isinstance(mine, list) and len(mine) == 1:
        mine = mine[0]
    if isinstance(ref, list) and len(ref) == 1:
        ref = ref[0]
    if isinstance(mine, dict) and isinstance(ref, dict):
        return mine.keys() == ref.keys() and all(same(mine[k], ref[k]) for k in mine)
    if isinstance(mine, list) and isinstance(ref, list):
        return len(mine) == len(ref) and all(same(a, b) for a, b in zip(mine, ref))
    if isinstance(mine, (dict, list)) or isinstance(ref, (dict, list)):
        return False
    if leaf(mine) == leaf(ref):
        return True
    if isinstance(mine, str) and isinstance(ref, str):      # base64Binary: hex vs base64
        try:
            return base64.b64decode(ref, validate=True).hex() == mine
        except (binascii.Error, ValueError):
            return False
    return False


@pytest.mark.parametrize("cap", corpus_captures(), ids=lambda p: p.name[:40])
def test_pipeline_matches_reference(corpus, cap):
    ref = golden_rows(cap)
    keylog = corpus / "golden" / (cap.name + ".keylog")
    mine: dict = {}
    for e in Dissector(cap, keylog=keylog if keylog.exists() else None).events():
        mine.setdefault((e.layer, e.frame), []).append(e)
    used: dict = {}
    diffs = []
    for g in ref:
        kind = g["kind"]
        if kind == "v2gtp" and g.get("decoded") is None:
            continue
        key = (kind, g["frame"])
        i = used.get(key, 0)
        cands = mine.get(key, [])
        if i >= len(cands):
            diffs.append(f"frame {g['frame']} {kind}: missing")
            continue
        used[key] = i + 1
        e = cands[i]
        if kind == "v2gtp":
            if e.name != g["msg"] or not same(e.message, g["decoded"]):
                diffs.append(f"frame {g['frame']} {g['msg']}: {e.name} differs")
        elif kind == "slac" and str(g.get("mmtype_name", ""))[:3] in ("CM_", "CC_"):
            if e.name != g["mmtype_name"]:
                diffs.append(f"frame {g['frame']}: {e.name} != {g['mmtype_name']}")
    assert not diffs, diffs[:5]
