"""The event catalogue (dissectors/events.py): every event the dissectors emit over the corpus,
the test-event captures and the samples is registered, with the message and info keys the
catalogue documents; families decide membership by their rule; debug mode rejects a stranger."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ccs_analyzer.dissectors import events as E
from ccs_analyzer.dissectors.pipeline import Dissector
from tests.conftest import CORPUS, REPO, corpus_captures


def _captures(group: str) -> list:
    if group == "corpus":
        return corpus_captures()
    if group == "testevents":
        te = CORPUS / "testevents"
        return sorted(te.glob("*.dump")) if te.is_dir() else []
    return sorted((REPO / "samples").rglob("*.pcapng"))


def _documented(keys: E.Keys) -> set[str] | None:
    """The documented keys, or None when a wildcard (``<field>``) admits any."""
    names = {k for k, _ in keys}
    return None if any(k.startswith("<") for k in names) else names


@pytest.mark.parametrize("group", ["corpus", "testevents", "samples"])
def test_every_emitted_event_is_registered(group):
    paths = _captures(group)
    if not paths:
        pytest.skip(f"no {group} captures here")
    seen: dict[tuple[str, str], object] = {}
    unregistered: dict[tuple[str, str], str] = {}
    undocumented: dict[tuple[str, str], set] = {}
    for path in paths:
        for ev in Dissector(path).events():
            key = (ev.layer, ev.name)
            if key not in seen:
                seen[key] = E.lookup(ev.layer, ev.name)
                if seen[key] is None:
                    unregistered[key] = path.name
            kind = seen[key]
            if kind is None:
                continue
            for what, keys, got in (("message", kind.message, ev.message),
                                    ("info", kind.info, ev.info)):
                allowed = _documented(keys)
                if allowed is not None and isinstance(got, dict) and not set(got) <= allowed:
                    undocumented.setdefault(key, set()).update(
                        f"{what}.{k}" for k in set(got) - allowed)
    assert not unregistered, f"events missing from dissectors/events.py: {unregistered}"
    assert not undocumented, f"keys the catalogue does not document: {undocumented}"
    assert len(seen) > 3


def test_every_kind_and_family_has_a_constant():
    """Code names a kind by its constant: each registered name and family is one, and the
    layer of each is a known layer."""
    constants = {v for k, v in vars(E).items()
                 if k.isupper() and isinstance(v, (str, E.EventFamily))}
    assert not [n for n in E.EVENT_KINDS if n not in constants]
    assert all(f in constants for f in E.EVENT_FAMILIES)
    layers = {k.layer for k in E.EVENT_KINDS.values()} | {f.layer for f in E.EVENT_FAMILIES}
    assert layers <= set(E.LAYERS)


@pytest.mark.parametrize("layer, name, expected", [
    ("v2gtp", "PreChargeReq", E.V2G_MESSAGE),
    ("v2gtp", "supportedAppProtocolRes", E.V2G_MESSAGE),
    ("v2gtp", "DC_ChargeLoopRes", E.V2G_MESSAGE),
    ("v2gtp", "PreChargeReqType", None),
    ("v2gtp", "V2GTP SDP request", E.V2GTP_OTHER_PAYLOAD),
    ("v2gtp", "V2GTP reserved (0x1234)", E.V2GTP_OTHER_PAYLOAD),
    ("v2gtp", "V2GTP ISO 15118-20 AC main stream", None),      # carries EXI: decoded instead
    ("v2gtp", "(undecodable EXI)", E.EVENT_KINDS[E.UNDECODABLE_EXI]),
    ("slac", "CM_SLAC_PARM.REQ", E.SLAC_MME),
    ("slac", "VS_0xA002(OUI 0016e8)", E.SLAC_MME),
    ("slac", "MS_0x8123(dSPACE)", E.SLAC_MME),
    ("slac", "UNKNOWN_0x6088", E.SLAC_MME),
    ("slac", "VS_CP_STATE.IND(ST/IoTecha)", E.EVENT_KINDS[E.CP_STATE_ST]),
    ("slac", "CM_SLAC_PARM.REQUEST", None),
    ("slac", "VS_0xA002(nobody)", None),
    ("sdp", "SDP request", E.SDP_MESSAGE),
    ("sdp", "SDP EMSP response", E.SDP_MESSAGE),
    ("sdp", "V2GTP 0x8001", E.SDP_OTHER_PAYLOAD),
    ("sdp", "V2GTP 0x9000", None),
    ("tls", "ClientHello", E.TLS_HANDSHAKE),
    ("tls", "HelloRetryRequest", E.TLS_HANDSHAKE),
    ("tls", "Handshake type 99", E.TLS_HANDSHAKE),
    ("tls", "Alert fatal handshake_failure", E.TLS_ALERT),
    ("tls", "Alert level 7 description 200", E.TLS_ALERT),
    ("tls", "Alert fatal", None),
    ("tcp", "TCP retransmission", E.EVENT_KINDS[E.TCP_RETRANSMISSION]),
    ("tcp", "PreChargeReq", None),           # a family belongs to its layer
    ("v2gtp", "SYN", None),                  # so does a kind
])
def test_lookup_by_layer_and_rule(layer, name, expected):
    assert E.lookup(layer, name) == expected


def test_debug_mode_rejects_an_unregistered_event():
    """With CCS_ANALYZER_CHECK_EVENTS=1 an Event of an unknown name cannot be built; a
    registered one can; without it nothing is checked."""
    code = ("from ccs_analyzer.dissectors.events import Event, TCP_RST, UnregisteredEvent\n"
            "Event(1, 0.0, 'tcp', TCP_RST)\nEvent(1, 0.0, 'v2gtp', 'PreChargeReq')\n"
            "try:\n    Event(1, 0.0, 'tcp', 'TCP retransmision')\nexcept UnregisteredEvent:\n"
            "    print('rejected')\nelse:\n    print('accepted')\n")

    def run(flag: str) -> str:
        env = dict(os.environ, CCS_ANALYZER_CHECK_EVENTS=flag)
        return subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                              text=True, check=True, cwd=REPO).stdout.strip()

    assert run("1") == "rejected"
    assert run("") == "accepted"


def test_every_mme_name_is_in_the_family():
    """The HomePlug MME family admits the names mmtype_name gives: every MMTYPE below
    0x8000, the Qualcomm range, the vendor MMEs of the tables, and vendor MMTYPEs with every
    named OUI, an unknown one and none (not only the names the captures show)."""
    from ccs_analyzer.dissectors.homeplug import OUI_NAMES, OUI_QUALCOMM, VENDOR_MME, mmtype_name
    names = {mmtype_name(t) for t in range(0x8000)}                 # HomePlug AV, ISO 15118-3
    names |= {mmtype_name(t, OUI_QUALCOMM) for t in range(0xA000, 0xA400)}   # Qualcomm VS_*
    names |= {mmtype_name(t, oui) for t, oui in VENDOR_MME}
    names |= {mmtype_name(t, oui) for t in range(0x8000, 0x10000, 0x101)
              for oui in (None, "123456", *OUI_NAMES)}              # generic vendor names
    missing = sorted(n for n in names if E.lookup("slac", n) is None)
    assert not missing, missing[:10]


def test_every_payload_type_without_exi_is_in_the_family():
    """``V2GTP <payload_type_name>`` (a V2GTP message on a V2G connection whose payload type
    carries no EXI, dissectors/pipeline.py) is a member for every such payload type."""
    from ccs_analyzer.dissectors.v2gtp import EXI_PAYLOAD_TYPES, PAYLOAD_TYPES, payload_type_name
    # known, reserved and manufacturer-specific types
    types = [*PAYLOAD_TYPES, *range(0, 0x10000, 0x33), 0x9FFF, 0xA000, 0xFFFF]
    missing = [pt for pt in types if pt not in EXI_PAYLOAD_TYPES and E.lookup(
        "v2gtp", f"V2GTP {payload_type_name(pt)}") is not E.V2GTP_OTHER_PAYLOAD]
    assert not missing, missing[:10]


def test_event_pickles_every_field():
    """Event.__reduce__ lists the fields by hand (a faster pickle for the spool): a field
    added to the class and not to __reduce__ would be lost on the way to disk."""
    import dataclasses
    import pickle

    from ccs_analyzer.dissectors.events import Event

    names = [f.name for f in dataclasses.fields(Event)]
    ev = Event(*[f"value {i}" for i in range(len(names))])
    back = pickle.loads(pickle.dumps(ev))
    assert [getattr(back, n) for n in names] == [f"value {i}" for i in range(len(names))]
