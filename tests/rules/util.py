"""Building sessions for rule tests without bytes: events with decoded trees, run through the
same session builder, summaries and engine as a real capture.

    evs = [ev(1, 0.0, "v2gtp", "SessionSetupReq", EV, din("SessionSetupReq", {"EVCCID": "01"}, "00")),
           ev(2, 0.1, "v2gtp", "SessionSetupRes", EVSE, din("SessionSetupRes", {...})), ...]
    a = analyze_events(evs)
    assert [f.rule for f in a.findings] == [...]

Message tree helpers follow the decoded-tree contract (docs/architecture.md): ``din`` and
``iso2`` wrap a body in ``V2G_Message`` with a Header; ``iso20`` puts the Header inside the
root element; ``pv`` makes a DIN / ISO-2 PhysicalValueType, ``rn`` an ISO-15118-20
RationalNumberType. ``script`` turns a list of (request, response, gap_s, latency_s)
exchanges into alternating events on one TCP connection with SYN / SYN-ACK first.
"""
from __future__ import annotations

from ccs_analyzer.analyzer.analysis import Analysis
from ccs_analyzer.analyzer.engine import evaluate
from ccs_analyzer.analyzer.profile import Profile
from ccs_analyzer.analyzer.sessions import SessionBuilder
from ccs_analyzer.dissectors.events import Event
from ccs_analyzer.dissectors.exi.namespaces import NS_APP_PROTOCOL as NS_SAP
from ccs_analyzer.dissectors.exi.namespaces import NS_DIN, NS_ISO2, NS_ISO20_AC, NS_ISO20_CM, NS_ISO20_DC

EV, EVSE = "EV->EVSE", "EVSE->EV"
PROTOCOL = {NS_SAP: "SupportedAppProtocol", NS_DIN: "DIN 70121", NS_ISO2: "ISO 15118-2"}
EV_EP, EVSE_EP = "[fe80::1]:50000", "[fe80::2]:60000"
SID = "5a3c9e01b2d47f68"


def din(name: str, body: dict, sid: str = SID) -> dict:
    """A DIN 70121 V2G_Message tree."""
    return {"V2G_Message": {"Header": {"SessionID": sid}, "Body": {name: body}}}


iso2 = din    # ISO 15118-2 trees have the same shape (another namespace)


def iso20(name: str, body: dict, sid: str = SID, ts: int = 1_767_225_600) -> dict:
    """An ISO 15118-20 message tree (Header inside the root element)."""
    return {name: {"Header": {"SessionID": sid, "TimeStamp": ts}, **body}}


def pv(value: float, unit: str, multiplier: int = 0) -> dict:
    """A PhysicalValueType of ``value`` in ``unit`` with the given multiplier."""
    return {"Multiplier": multiplier, "Unit": unit, "Value": int(round(value / 10 ** multiplier))}


def rn(value: float, exponent: int = 0) -> dict:
    """An ISO 15118-20 RationalNumberType."""
    return {"Exponent": exponent, "Value": int(round(value / 10 ** exponent))}


def ev(frame: int, t: float, layer: str, name: str, direction: str | None = None,
       message=None, *, namespace: str | None = None, conn: int | None = None,
       error: str | None = None, src=None, dst=None, info=None) -> Event:
    """An event as the dissectors would produce it (times are seconds from 1.7e9)."""
    if layer == "v2gtp" and namespace is None:
        root = next(iter(message)) if message else ""
        namespace = NS_SAP if root.startswith("supportedAppProtocol") else (
            NS_ISO20_CM if root != "V2G_Message" else NS_DIN)
    if conn is None and layer in ("v2gtp", "tcp", "tls"):
        conn = 0
    if src is None and dst is None and layer in ("v2gtp", "tcp", "tls", "sdp"):
        src, dst = (EV_EP, EVSE_EP) if direction == EV else (EVSE_EP, EV_EP)
    proto = {"slac": "SLAC", "sdp": "SDP", "tcp": "TCP", "tls": "TLS"}.get(layer)
    if layer == "v2gtp":
        proto = PROTOCOL.get(namespace, "ISO 15118-20" if namespace and "-20" in namespace else None)
    return Event(frame=frame, time=1_700_000_000.0 + t, layer=layer, name=name,
                 direction=direction, protocol=proto, namespace=namespace, message=message,
                 error=error, src=src, dst=dst, conn=conn, info=dict(info or {}))


def script(exchanges, *, t0: float = 0.0, frame0: int = 1, namespace: str = NS_DIN, conn: int = 0,
           handshake: bool = True) -> list[Event]:
    """Events of one TCP connection: SYN, SYN-ACK, then each (request, response, gap_s,
    latency_s) — ``response`` None for a request left unanswered. With ``handshake`` a
    DIN supportedAppProtocol exchange comes first."""
    out = [ev(frame0, t0, "tcp", "SYN", EV, conn=conn),
           ev(frame0 + 1, t0 + 0.001, "tcp", "SYN-ACK", EVSE, conn=conn)]
    f, t = frame0 + 2, t0 + 0.002
    if handshake:
        ns_name = namespace
        exchanges = [({"supportedAppProtocolReq": {"AppProtocol": [{
            "ProtocolNamespace": ns_name, "VersionNumberMajor": 2, "VersionNumberMinor": 0,
            "SchemaID": 1, "Priority": 1}]}},
            {"supportedAppProtocolRes": {"ResponseCode": "OK_SuccessfulNegotiation", "SchemaID": 1}},
            0.05, 0.02)] + list(exchanges)
    for req, res, gap, lat in exchanges:
        t += gap
        rname = _name(req)
        ns = NS_SAP if rname.startswith("supportedAppProtocol") else namespace
        out.append(ev(f, t, "v2gtp", rname, EV, req, namespace=ns, conn=conn))
        f += 1
        if res is not None:
            t += lat
            out.append(ev(f, t, "v2gtp", _name(res), EVSE, res, namespace=ns, conn=conn))
            f += 1
    return out


def _name(tree: dict) -> str:
    root = next(iter(tree))
    if root == "V2G_Message":
        return next(iter(tree[root]["Body"]))
    return root


def connection(conn: int = 0, *, syn: int | None = 1, synack: int | None = 2, fin=(None, None),
               rst=(None, None), kind: str = "v2gtp", namespace: str = NS_DIN, **extra) -> dict:
    """A TCP connection summary as the pipeline writes it (report.json ``connections``)."""
    d = {"conn": conn, "client": EV_EP, "server": EVSE_EP, "client_mac": None, "server_mac": None,
         "roles_guessed": False, "first_frame": syn or 1, "last_frame": 10**6, "first_time": 0.0,
         "last_time": 0.0, "frames": 10, "kind": kind, "syn_frame": syn, "synack_frame": synack,
         "fin_frames": list(fin), "rst_frames": list(rst), "bytes": [100, 100],
         "retransmissions": [0, 0], "out_of_order": [0, 0], "lost_bytes": [0, 0],
         "v2g_messages": 2, "namespace": namespace, "namespace_detected": False,
         "negotiated_frame": 4, "handshake_response": "OK_SuccessfulNegotiation", "offered": []}
    d.update(extra)
    return d


def analyze_events(events: list[Event], connections: list[dict] | None = None,
                   profile: Profile | None = None, capture_problems=()) -> Analysis:
    """Sessions, summaries, findings, outcomes and scores of a list of events (frame order),
    exactly as for a capture (analyzer/analysis.py), without the bytes."""
    b = SessionBuilder()
    for e in sorted(events, key=lambda e: e.frame):
        b.add(e)
    sessions = b.finish()
    conns = connections if connections is not None else [
        connection(c) for c in sorted({e.conn for e in events if e.conn is not None})]
    by_id = {c["conn"]: c for c in conns}
    summaries = {s.id: s.summary(by_id) for s in sessions}
    first = min((e.time for e in events), default=0.0)
    last = max((e.time for e in events), default=0.0)
    capture = {"file": "test", "frames": max((e.frame for e in events), default=0),
               "first_time": first, "last_time": last, "duration_s": last - first,
               "problems": list(capture_problems)}
    a = Analysis(capture=capture, accounting={}, messages={}, connections=conns,
                 sessions=sessions, summaries=summaries, capture_events=b.capture_events,
                 leftovers=b.leftovers)
    evaluate(a, profile)
    return a


def rules_found(a: Analysis, code: str | None = None) -> list:
    """The findings of rule ``code`` (all findings when None)."""
    return [f for f in a.findings if code is None or f.rule == code]
