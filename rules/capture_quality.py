"""Capture quality: what the capture itself lets us trust."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.connections import half_open_retry, one_sided
from ccs_analyzer.analyzer.views.index import session_index
from ccs_analyzer.dissectors.events import TCP_BYTES_MISSING, TCP_STARTED_BEFORE_CAPTURE

from .base import Rule


class CaptureDamaged(Rule):
    """The capture file is damaged or cut short.

    What it checks: the reader's problems — a truncated last block, corrupted blocks skipped
    while resynchronising, packets cut by the snap length. A problem that falls inside a
    session belongs to that session (its report names it): damage between a session's first
    and last frame, or a cut at the end of the file while the session that holds the last
    frames was still running (not ended by SessionStop, a TCP close or reset). Other damage
    (between sessions, after the last one ended) stays a capture-level finding.
    Why it matters: frames are missing from the analysis; findings near the damage may be
    artefacts of the capture, not of the charger or the vehicle; a session cut by the end of
    the file ends without its end being in the capture.
    Fix (capture): stop the capture cleanly (let the capture tool flush), capture with a
    snap length of at least 1600 bytes, check the storage medium.
    Source: pcapng (draft-ietf-opsawg-pcapng §4) block framing; pcap record headers.

    Example:

        #224 capture problem (capture ends inside a block (type 0x00000006, 68 of 108 byt…)
    """

    code = "CAP001"
    title = "Capture file damaged or cut short"
    severity = "warning"
    category = "capture-quality"
    kinds = ("capture-cut",)
    explains = ("capture-ended", "no-session-stop", "no-response")
    culprit = "capture"
    scope = "segment"

    def check(self, session, ctx):
        for p in ctx.capture_problems:
            at = max(p["after_frame"], 1)
            owner, last = _session_cut(ctx, at)
            where = ""
            if owner is not None:
                where = (f" — inside session {owner.id}, whose last frame before it is {last.frame} "
                         f"({last.name})")
            yield self.finding(owner, [at] + ([last.frame] if last is not None else []),
                               f"Capture damaged at byte {p['offset']}: {p['reason']}{where}",
                               time=last.time if last is not None else None,
                               evidence={"offset": p["offset"], "length": p["length"],
                                         "session": owner.id if owner is not None else None})


def _session_cut(ctx, frame: int):
    """(session, its last event at or before ``frame``) when a capture problem after
    ``frame`` falls inside a session (CAP001's page), else (None, None)."""
    for s in ctx.sessions:
        if not s.events:
            continue
        first, last = s.events[0].frame, s.events[-1].frame
        if first <= frame < last:
            return s, _last_before(s, frame)
    ended_last = max((s for s in ctx.sessions if s.events), key=lambda s: s.events[-1].frame,
                     default=None)
    if ended_last is None or ended_last.events[-1].frame > frame:
        return None, None
    if frame < max(ctx.capture.get("frames") or 0, frame):
        return None, None                       # frames follow the damage outside any session
    ended = ctx.summaries.get(ended_last.id, {}).get("ended", {})
    if ended.get("by") is not None or str(ended.get("how", "")).startswith("SessionStop"):
        return None, None                       # the session was over before the cut
    return ended_last, _last_before(ended_last, frame)


def _last_before(s, frame: int):
    evs = [e for e in s.events if e.frame <= frame]
    return evs[-1] if evs else s.events[0]


def _conns(ctx) -> dict:
    return {c["conn"]: c for c in ctx.connections}


def _dir_word(d: int) -> str:
    return "EV→EVSE" if d == 0 else "EVSE→EV"


class FramesLost(Rule):
    """Frames of the session's TCP streams are missing from the capture.

    What it checks: TCP stream bytes the capture never saw although the peer acknowledged
    them ("TCP bytes missing from capture" events; ``lost_bytes`` of the connection
    summaries), per connection and direction, with the first and last gap. Not on a SYN the
    SECC answered with an older connection's ACK (TRN009): what that ACK acknowledges was
    sent on the old connection, not lost by the capture.
    Why it matters: messages inside the gaps are missing from the analysis: a "missing
    response", a timeout or an undecodable message near a gap may be an artefact of the
    capture, and timing findings around it are unreliable.
    Fix (capture): capture closer to the EV or EVSE (on the modem's host interface), with
    a faster capture device or a larger capture buffer; do not capture over Wi-Fi.
    Source: RFC 9293 §3.4 (cumulative acknowledgement reveals unseen segments); capture
    practice (Wireshark "previous segment not captured").

    Example:

        #165 TCP bytes missing from capture EVSE→EV why=ACKed unseen segment
    """

    code = "CAP002"
    title = "Frames lost from the capture"
    severity = "warning"
    category = "capture-quality"
    kinds = ("capture-gap",)
    explains = ("no-response",)
    culprit = "capture"

    def check(self, session, ctx):
        gaps: dict = {}
        for e in session_index(session, ctx).tcp:
            if e.name == TCP_BYTES_MISSING:
                g = gaps.setdefault((e.conn, e.direction), [])
                g.append(e)
        conns = _conns(ctx)
        later = sorted(ctx.connections, key=lambda c: c["conn"])
        for cid in session.connections:
            c = conns.get(cid) or {}
            if half_open_retry(c, [d for d in later if d["conn"] > cid]) is not None:
                continue        # the "missing" bytes are an older connection's ACK (TRN009)
            lost = c.get("lost_bytes") or [0, 0]
            for d, direction in ((0, "EV->EVSE"), (1, "EVSE->EV")):
                evs = gaps.get((cid, direction), [])
                n_bytes = lost[d] if d < len(lost) else 0
                if not evs and not n_bytes:
                    continue
                frames = [evs[0].frame, evs[-1].frame] if evs else [c.get("first_frame")]
                yield self.finding(session, frames,
                                   f"{n_bytes or sum((x.message or {}).get('bytes', 0) for x in evs)} "
                                   f"byte(s) of the {_dir_word(d)} stream of connection {cid} are "
                                   f"missing from the capture ({len(evs)} gap(s)"
                                   + (f", frames {evs[0].frame}-{evs[-1].frame}" if evs else "")
                                   + "): messages there were not seen; timing findings near the "
                                     "gaps are unreliable",
                                   time=evs[0].time if evs else c.get("first_time"),
                                   measured=n_bytes, unit="bytes",
                                   evidence={"connection": cid, "direction": direction,
                                             "lost_bytes": n_bytes, "gaps": len(evs),
                                             "why": sorted({(x.message or {}).get("why") for x in evs
                                                            if (x.message or {}).get("why")})})


class OneSidedCapture(Rule):
    """The capture shows only one side of the session.

    What it checks: SLAC messages of only one side that imply the other side's (e.g.
    CM_SLAC_PARM.CNF, CM_ATTEN_CHAR.IND and CM_SLAC_MATCH.CNF of the EVSE but no request of
    the EV; an EV that sounds or matches without any EVSE message) — an EV's lone
    CM_SLAC_PARM.REQ is an unanswered request (SLC001), not evidence of a one-sided capture;
    and V2G connections of which only one endpoint's frames were captured (data from one
    side, not a single frame from the other).
    Why it matters: a listen-mode sniffer or a capture point on one side's segment misses
    the other side: missing requests, "unanswered" messages and retransmissions are
    artefacts; findings about the missing side cannot be trusted.
    Fix (capture): capture on a device that sees both directions (a modem in the same
    AVLN that receives unicast, or the EV's / EVSE's own interface); in listen mode, make
    sure the sniffer joined the AVLN (CM_SET_KEY) before SLAC completes.
    Source: HomePlug GreenPHY unicast delivery (ISO 15118-3 §A.9); PROTOCOL_FACTS §2.3
    (SLAC on the wire); CORPUS.md listen-mode captures.

    Example:

        #3 CM_SLAC_PARM.CNF
        #15 CM_SLAC_MATCH.CNF
        #17 SYN-ACK EVSE→EV
        #94 FIN EVSE→EV
    """

    code = "CAP003"
    title = "One-sided capture"
    severity = "warning"
    category = "capture-quality"
    culprit = "capture"

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        parts, frames, ev = [], [], {}
        slac = [e for e in idx.slac if e.protocol == "SLAC" and e.direction]
        if slac:
            sides = {e.direction for e in slac}
            implies_peer = sides == {"EVSE->EV"} or any(e.name != "CM_SLAC_PARM.REQ" for e in slac)
            if len(sides) == 1 and implies_peer:
                seen = "EVSE" if sides == {"EVSE->EV"} else "EV"
                names = sorted({e.name for e in slac})
                parts.append(f"SLAC of the {seen} only ({', '.join(names)}; frames "
                             f"{slac[0].frame}-{slac[-1].frame})")
                frames += [slac[0].frame, slac[-1].frame]
                ev["slac_seen_from"] = seen
                ev["slac_messages"] = names
        conns = _conns(ctx)
        for cid in session.connections:
            c = conns.get(cid) or {}
            if not one_sided(c):
                continue
            seen = "EVSE" if c.get("server_mac") else "EV"
            parts.append(f"connection {cid} from the {seen} only ({c.get('frames')} frames, "
                         f"{(c.get('bytes') or [0, 0])[1 if seen == 'EVSE' else 0]} bytes)")
            frames += [c.get("first_frame"), c.get("last_frame")]
            ev.setdefault("connections", []).append(
                {"connection": cid, "seen_from": seen, "frames": c.get("frames"),
                 "retransmissions": c.get("retransmissions")})
        if not parts:
            return
        first = min((f for f in frames if f is not None), default=None)
        yield self.finding(session, frames, "The capture shows one side only: " + "; ".join(parts)
                           + " — the other side's messages were not captured (listen-mode "
                             "sniffer?); do not read their absence as a protocol failure",
                           time=next((e.time for e in session.events if e.frame == first), None),
                           evidence={"expected": "frames of both sides", **ev})


class CaptureStartsMidSession(Rule):
    """The capture starts in the middle of a V2G connection.

    What it checks: connections whose first captured segment is not the SYN ("TCP
    connection started before the capture"), and connections whose schema was detected from
    the messages because no SupportedAppProtocol handshake was captured
    (``namespace_detected``); and, at capture level, connections open before the capture that
    carry only teardown (FIN / RST, retransmissions, a stale SessionStopRes): leftovers of a
    session that ended before the capture, which belong to no session of this capture
    (``Analysis.leftovers``, analyzer/sessions.py).
    Why it matters: everything before the first captured frame is unknown: the handshake,
    the negotiated protocol (detected, not negotiated), SessionSetup and earlier phases;
    the session's outcome and phase are judged from a fragment. A leftover is no session at
    all: counting it as one would report a failed plug-in that never happened here.
    Fix (capture): start the capture before plugging in (before SLAC).
    Source: RFC 9293 §3.5 (connection establishment); ISO 15118-2 §8.2 / DIN 70121 §8.2
    (SupportedAppProtocol opens every V2G connection); PROTOCOL_FACTS §3.

    Example:

        #1 AuthorizationReq → #3 AuthorizationRes
    """

    code = "CAP004"
    title = "Capture starts mid-session"
    severity = "info"
    category = "capture-quality"
    culprit = "capture"
    scope = "segment"

    def check(self, session, ctx):
        for s in ctx.sessions:
            yield from self._fragments(s, ctx)
        for left in getattr(ctx, "leftovers", None) or ():
            frames = left["frames"]
            sid = f" (SessionID {left['SessionID']})" if left.get("SessionID") else ""
            where = f"frame {frames[0]}" if len(frames) == 1 else f"frames {frames[0]}-{frames[-1]}"
            yield self.finding(None, frames,
                               f"Leftover of a session that ended before the capture ({where}): "
                               f"connection {left['conn']} was already "
                               f"open and carries only {', '.join(left['what']) or 'its start'}"
                               f"{sid} — counted as capture events, not as a session",
                               time=left.get("time"),
                               evidence={"connection": left["conn"], "frames": frames,
                                         "what": left["what"], "SessionID": left.get("SessionID"),
                                         "reason": left["reason"]})

    def _fragments(self, session, ctx):
        # a segment rule: the sessions' views are let go already, so the index is built only
        # for a session with a fragment to describe
        late = {e.conn: e for e in session.events
                if e.layer == "tcp" and e.name == TCP_STARTED_BEFORE_CAPTURE}
        conns = _conns(ctx)
        if not late and not any((conns.get(cid) or {}).get("namespace_detected")
                                for cid in session.connections):
            return
        idx = session_index(session, ctx)
        for cid in session.connections:
            c = conns.get(cid) or {}
            start = late.get(cid)
            detected = bool(c.get("namespace_detected"))
            if start is None and not detected:
                continue
            first_msg = next((e for e in idx.v2g_all if e.conn == cid and (
                e.info.get("namespace_detected") or e.info.get("schema_detected"))), None) or \
                next((e for e in idx.v2g_all if e.conn == cid), None)
            what = []
            if start is not None:
                what.append(f"connection {cid} was already open when the capture started (first "
                            f"frame {start.frame}, no SYN)")
            if detected:
                what.append(f"no SupportedAppProtocol handshake captured: the schema "
                            f"{c.get('namespace')} was detected from "
                            + (f"{first_msg.name} (frame {first_msg.frame})" if first_msg else
                               "the messages") + ", not negotiated")
            frames = [x.frame for x in (start, first_msg) if x is not None]
            yield self.finding(session, frames, "; ".join(what) + " — earlier phases are not in "
                               "the capture", time=(start or first_msg).time if (start or first_msg)
                               else c.get("first_time"),
                               evidence={"connection": cid, "namespace": c.get("namespace"),
                                         "namespace_detected": detected,
                                         "first_message": first_msg.name if first_msg else None})


class EncryptedWithoutKeys(Rule):
    """TLS traffic that could not be decrypted for lack of secrets.

    What it checks: the session's TLS connections whose records could not be decrypted
    (connection summary ``tls.undecryptable`` / ``decrypting`` false) because no key log
    secrets for their client random were available.
    Why it matters: the V2G messages inside are invisible: the analysis sees the TLS
    handshake (TLS 1.2) or nothing past the ServerHello (TLS 1.3), so message, timing and
    sequence findings are missing for that connection. This is not a TLS error.
    Fix (capture): provide the secrets: ``--keylog`` with an NSS key log file from the EVCC
    or SECC (SSLKEYLOGFILE), a pcapng with a Decryption Secrets Block, or a test system
    that discloses them (dSPACE UDP 52345).
    Source: NSS key log format; RFC 8446 §7 / RFC 5246 §8 key derivation; DESIGN.md "TLS".

    Example:

        #41 ServerHello, Encrypted record, Encrypted record EVSE→EV version=TLS 1.3
            cipher_suite=TLS_AES_256_GCM_SHA384
        #235 Encrypted record EVSE→EV
    """

    code = "CAP005"
    title = "Encrypted traffic without keys"
    severity = "info"
    category = "capture-quality"
    culprit = "capture"

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        conns = _conns(ctx)
        for cid in session.connections:
            c = conns.get(cid) or {}
            tls = c.get("tls")
            if c.get("kind") != "tls" or not tls:
                continue
            undec = sum(tls.get("undecryptable") or [0, 0])
            if not undec:
                continue
            enc = [e for e in idx.tls if e.conn == cid and e.info.get("kind") == "encrypted"]
            why = next((e.error for e in enc if e.error), None)
            partly = tls.get("decrypting")
            yield self.finding(session, [enc[0].frame, enc[-1].frame] if enc else [c.get("first_frame")],
                               f"{undec} TLS record(s) of connection {cid} ({tls.get('version')}, "
                               f"{tls.get('cipher_suite')}) could not be decrypted"
                               + (" (some were)" if partly else "")
                               + f": no key log secrets for client random {tls.get('client_random')}"
                               " — the V2G messages inside are not analysed",
                               time=enc[0].time if enc else c.get("first_time"), measured=undec,
                               evidence={"connection": cid, "client_random": tls.get("client_random"),
                                         "version": tls.get("version"),
                                         "cipher_suite": tls.get("cipher_suite"),
                                         "why": why, "keylog": dict(ctx.keylog or {})})


_SNAP_WORDS = ("truncated", "captured")


class FramesSkipped(Rule):
    """Frames the analysis had to skip, and frames cut by the snap length.

    What it checks: the frame accounting's skipped frames by reason (malformed or
    truncated headers, IPv6/IPv4 payloads cut short, internal dissector errors); frames cut
    by the capture's snap length ("payload truncated (n of m bytes captured)") are a
    warning, the rest info.
    Why it matters: a skipped frame's content is missing from the analysis; a snap length
    below the frame size cuts every long V2G message (certificates, schedules).
    Fix (capture): capture full frames (snap length ≥ 1600 bytes, tcpdump -s 0); a
    dissector error is ours — report it with the capture.
    Source: pcap / pcapng snap length (draft-ietf-opsawg-pcapng §4.2 SnapLen); frame
    accounting (DESIGN.md "Events").

    Example:

        (9 frame(s) cut by the capture's snap length (128 bytes) were skipped: long V2G messages are
        missing)
    """

    code = "CAP006"
    title = "Frames skipped or cut by the snap length"
    severity = "info"
    category = "capture-quality"
    culprit = "capture"
    scope = "capture"

    def check(self, session, ctx):
        skipped = (ctx.accounting or {}).get("skipped_by_reason") or {}
        if not skipped:
            return
        snap = {r: n for r, n in skipped.items() if all(w in r for w in _SNAP_WORDS)}
        internal = {r: n for r, n in skipped.items() if r.startswith("internal error")}
        other = {r: n for r, n in skipped.items() if r not in snap and r not in internal}
        lens = sorted({i.get("snaplen") for i in ctx.capture.get("interfaces") or [] if i.get("snaplen")})
        if snap:
            yield self.finding(None, [], f"{sum(snap.values())} frame(s) cut by the capture's snap "
                               f"length{' (' + ', '.join(map(str, lens)) + ' bytes)' if lens else ''} "
                               "were skipped: long V2G messages are missing",
                               severity="warning", measured=sum(snap.values()),
                               evidence={"reasons": snap, "snaplen": lens})
        if internal:
            yield self.finding(None, [], f"{sum(internal.values())} frame(s) skipped after an "
                               f"internal dissector error: {', '.join(internal)}", severity="warning",
                               culprit="unknown", measured=sum(internal.values()),
                               evidence={"reasons": internal})
        if other:
            yield self.finding(None, [], f"{sum(other.values())} frame(s) skipped: "
                               + "; ".join(f"{r} ({n})" for r, n in other.items()),
                               measured=sum(other.values()), evidence={"reasons": other})


class FramesCapturedTwice(Rule):
    """The capture recorded the same frames twice.

    What it checks: TCP segments of the session's connections that the dissector saw twice
    within 1 ms, identical (connection summaries ``duplicates`` / ``duplicate_frames``): the
    sender sent them once — the capture setup recorded them twice: reported from
    ``min_count`` duplicated segments per connection and direction on. They are not counted
    as retransmissions.
    Why it matters: duplicates inflate retransmission counts in other tools and can disturb
    stream reassembly; it says the capture point (two interfaces, a bridge plus its member
    port, port mirroring of both directions) needs attention.
    Fix (capture): capture on one interface only (not "any" together with a bridge), or
    de-duplicate (editcap -d).
    Source: capture practice (Wireshark "duplicate frame"); RFC 9293 §3.8.1 (a real
    retransmission comes after the retransmission timeout, ≥ 200 ms in practice).

    Example:

        (frames 72, 386: 80 EV→EVSE segment(s) of connection 0 were captured twice at the same
        instant (frames 72-386); they are not retransmissions)
    """

    code = "CAP007"
    title = "Frames captured twice"
    severity = "info"
    category = "capture-quality"
    culprit = "capture"
    params = {"min_count": 3}

    def check(self, session, ctx):
        conns = {c["conn"]: c for c in ctx.connections}
        for cid in session.connections:
            c = conns.get(cid) or {}
            for d, (n, span) in enumerate(zip(c.get("duplicates") or [0, 0],
                                              c.get("duplicate_frames") or [None, None])):
                if n < self.p["min_count"] or not span:
                    continue
                yield self.finding(session, list(span),
                                   f"{n} {_dir_word(d)} segment(s) of connection {cid} were "
                                   f"captured twice at the same instant (frames {span[0]}-{span[1]}); "
                                   "they are not retransmissions", measured=n,
                                   time=next((e.time for e in session.events if e.frame >= span[0]), None),
                                   evidence={"connection": cid,
                                             "direction": "EV->EVSE" if d == 0 else "EVSE->EV",
                                             "duplicates": n})
