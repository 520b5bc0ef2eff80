"""Each rule's example: the sample scenario that shows it (its fixture) and the trace lines
around its finding there.

Every rule of the pack has one fixture, a scenario of the session simulator
(samples/scenarios/, docs/simulator.md) whose capture makes the rule fire:
:data:`EXAMPLE_SCENARIOS` maps rule code → scenario name. The rule's docstring shows what the
rule sees there in an "Example" section, a few lines of trace written by :func:`example`::

    #59 ChargeParameterDiscoveryReq → (no response)
    #61 FIN EV→EVSE (+2.000 s)

— frame number, message name, the values the finding speaks of, → between a request and its
response. ``ccs-analyzer rules explain CODE`` and docs/rules.md print that section and name
the fixture (:func:`fixture_note`); tests/rules/test_rule_examples.py checks every rule's
findings on its fixture against a snapshot and every Example's frames and message names
against the fixture's trace, so an example cannot drift from what the rule does.

Run ``python -m ccs_analyzer.analyzer.rule_examples CODE …`` to print the trace of a rule's
first finding on its fixture (``--all``: every finding of it; ``--scenario NAME``: on another
sample), e.g. to write a new rule's Example section.
"""
from __future__ import annotations

import json
import re
import sys
import textwrap
from functools import lru_cache

from ccs_analyzer.analyzer.physical import event_facts, extract, message_body

#: Rule code → the sample scenario (samples/scenarios/NAME.toml, its capture
#: samples/captures/NAME.pcapng) that shows the rule firing: the scenario made for the
#: rule's fault where there is one, else the one with the fewest other findings.
EXAMPLE_SCENARIOS: dict[str, str] = {
    "CAP001": "iso2_dc_capture_truncated",
    "CAP002": "iso2_dc_lost_frames",
    "CAP003": "din_dc_listen_mode_one_sided",
    "CAP004": "iso2_ac_pnc_capture_starts_at_authorization",
    "CAP005": "iso20_dc_tls_keys_withheld",
    "CAP006": "iso2_dc_capture_snaplen",
    "CAP007": "iso2_dc_capture_duplicates",
    "CBL001": "din_dc_cablecheck_invalid",
    "CBL002": "din_dc_cablecheck_not_ready",
    "CBL003": "iso2_dc_cablecheck_unanswered",
    "CBL004": "din_dc_isolation_warning",
    "CBL005": "iso2_dc_isolation_fault",
    "CHL001": "din_dc_loop_after_refused_power_delivery",
    "CHL002": "din_dc_stop_charging_ignored",
    "CHL003": "din_dc_charging_complete_at_bulk",
    "CHL004": "iso2_dc_charging_complete_flags",
    "CHL005": "iso2_ac_pnc_receipt_rejected",
    "CHL006": "iso2_dc_tcp_rst",
    "CHL007": "iso2_dc_no_current_evse_stops",
    "CPL001": "cp_no_state_c",
    "CPL002": "cp_stays_c_after_stop",
    "CPL003": "cp_duty_not_5pct",
    "CPL004": "cp_pwm_above_cable",
    "CPL005": "cp_state_e",
    "CPL006": "cp_unplug_without_stop",
    "CPL007": "cp_5pct_without_hlc",
    "CPL008": "cp_noise",
    "CPL009": "cp_no_sleep_in_pause",
    "CPL010": "cp_wakeup_unanswered",
    "CPL011": "cp_contactor_voltage_mismatch",
    "HSK001": "iso2_ac_din_only_ev",
    "HSK002": "iso2_dc_sap_failed_schema_id",
    "HSK003": "din_dc_sap_not_preferred",
    "HSK004": "iso2_dc_sap_version_mismatch",
    "HSK005": "iso2_dc_sap_schema_id_not_echoed",
    "HSK006": "iso2_dc_sap_duplicate_schema_id",
    "HSK007": "iso2_dc_sap_duplicate_priority",
    "HSK008": "iso2_dc_sap_unanswered",
    "LIM001": "iso2_dc_current_above_max",
    "LIM002": "din_dc_precharge_cablecheck_voltage",
    "LIM003": "din_dc_capture_starts_mid_session",
    "LIM004": "din_dc_power_module_failure",
    "LIM005": "din_dc_lamp_load",
    "LIM006": "iso2_dc_current_overshoot",
    "LIM007": "din_dc_voltage_overshoot",
    "LIM008": "din_dc_max_voltage_glitch",
    "LIM009": "din_dc_soc_glitch",
    "LIM010": "iso2_dc_ev_target_above_max",
    "LIM011": "din_dc_limit_flags_fixed",
    "LIM012": "din_dc_min_voltage_multiplier",
    "LIM013": "iso2_dc_negative_ev_limit",
    "LIM014": "iso2_dc_incompatible_voltage",
    "MSG001": "iso2_ac_exi_truncated",
    "MSG002": "iso20_ac_trailing_bytes",
    "MSG003": "din_dc_wrong_schema",
    "MSG004": "iso2_dc_wrong_status_type",
    "MSG005": "iso2_dc_pnc_stale_gen_challenge",
    "MSG006": "iso2_dc_payment_details_without_contract",
    "MSG007": "iso2_ac_pnc_no_tls",
    "MSG008": "iso2_ac_pnc_receipt_not_sent",
    "MSG009": "iso2_ac_receipt_required_eim",
    "MSG010": "iso2_ac_pnc_receipt_session_id",
    "MSG011": "iso2_dc_cpd_without_schedule",
    "MSG012": "din_dc_iso2_service_content",
    "MSG013": "iso2_dc_multiplier_out_of_range",
    "MSG014": "iso2_dc_wrong_unit",
    "MSG015": "iso2_dc_hpc_ratings",
    "MSG016": "iso2_dc_pnc_contract_expired",
    "MSG017": "iso2_ac_pnc_contract_chain_too_long",
    "MSG018": "iso2_dc_pnc_contract_other_root",
    "MSG019": "iso2_ac_pnc_contract_expires_soon_unsignalled",
    "MSG020": "iso2_dc_present_current_counter",
    "MSG021": "iso2_dc_service_scope_nul",
    "MSG022": "din_dc_ev_placeholder_status",
    "MSG023": "iso2_dc_pnc_contract_other_root",
    "MSG024": "iso2_dc_pnc_contract_leaf_ca",
    "PRE001": "din_dc_precharge_never_reaches",
    "PRE002": "iso2_dc_precharge_target_changes",
    "PRE003": "din_dc_precharge_current_high",
    "PRE004": "din_dc_precharge_tolerance_loose",
    "PRE005": "iso2_dc_precharge_overshoot",
    "PRE006": "din_dc_precharge_not_ready_proceed",
    "RSP001": "iso2_ac_failed_response",
    "RSP002": "iso2_ac_pnc_certificate_expires_soon",
    "RSP003": "din_dc_stop_charging_ignored",
    "RSP004": "din_dc_emergency_shutdown",
    "RSP005": "iso2_dc_renegotiation_ignored",
    "RSP006": "iso2_dc_isolation_monitoring_in_loop",
    "RSP007": "din_dc_evse_not_ready_precharge",
    "RSP008": "din_dc_ev_error_code",
    "RSP009": "iso2_ac_rcd_trip",
    "SDP001": "din_dc_no_sdp_response",
    "SDP002": "din_dc_sdp_request_storm",
    "SDP003": "iso2_dc_sdp_requests_too_fast",
    "SDP004": "iso2_dc_sdp_security_mismatch",
    "SDP005": "iso2_dc_sdp_transport_udp",
    "SDP006": "iso2_dc_sdp_wrong_address",
    "SDP007": "din_dc_secc_port_15118",
    "SDP008": "iso2_dc_sdp_late_after_match",
    "SEQ001": "din_dc_missing_response",
    "SEQ002": "iso2_dc_out_of_sequence",
    "SEQ003": "iso2_dc_out_of_sequence",
    "SEQ004": "iso2_dc_cablecheck_sequence_error",
    "SEQ005": "din_dc_duplicate_response",
    "SEQ006": "din_dc_wrong_response_type",
    "SEQ007": "din_dc_missing_response",
    "SEQ008": "din_dc_ev_repeats_request",
    "SEQ009": "iso2_dc_tcp_rst",
    "SES001": "din_dc_stale_session_id",
    "SES002": "iso2_ac_session_id_zero",
    "SES003": "iso2_dc_resume_new_session",
    "SES004": "din_dc_session_id_changed",
    "SES005": "din_dc_session_id_changed",
    "SES006": "iso2_dc_unknown_session",
    "SES007": "iso2_dc_resume_without_session_id",
    "SES008": "iso2_dc_pnc_resume_changes_payment",
    "SES009": "din_dc_fixed_session_id",
    "SES010": "iso2_ac_pnc_receipt_session_id",
    "SES011": "iso20_dc_short_session_id",
    "SES012": "din_dc_evse_stops",
    "SES013": "iso2_dc_failed_then_ev_goes_on",
    "SIG001": "iso2_dc_pnc_signature_invalid",
    "SIG002": "iso2_ac_pnc_receipt_digest_wrong",
    "SIG003": "iso2_dc_pnc_stale_signature_header",
    "SIG004": "iso2_dc_pnc_signature_invalid_accepted",
    "SIG005": "iso2_dc_pnc_valid_signature_refused",
    "SIG006": "iso2_dc_pnc_emaid_mismatch",
    "SIG007": "iso2_ac_pnc_capture_starts_at_authorization",
    "SLC001": "slac_incomplete",
    "SLC002": "iso2_dc_capture_starts_in_slac",
    "SLC003": "iso2_dc_wrong_run_id",
    "SLC004": "iso2_dc_slac_parm_off_nominal",
    "SLC005": "iso2_dc_slac_start_atten_mismatch",
    "SLC006": "din_dc_slac_parm_repeated",
    "SLC007": "iso2_dc_slac_restart",
    "SLC008": "iso2_dc_slac_timer",
    "SLC009": "iso2_dc_slac_sounding_late",
    "SLC010": "iso2_dc_slac_atten_late",
    "SLC011": "iso2_dc_slac_atten_late",
    "SLC012": "iso2_dc_slac_sounds_lost",
    "SLC013": "iso2_dc_slac_atten_late",
    "SLC014": "iso2_dc_slac_attenuation_high",
    "SLC015": "iso2_dc_slac_empty_profile",
    "SLC016": "iso2_dc_cross_talk",
    "SLC017": "iso2_dc_slac_match_late",
    "SLC018": "din_dc_slac_match_slow",
    "SLC019": "din_dc_atten_char_after_match",
    "SLC020": "slac_evse_reset_after_match",
    "SLC021": "slac_set_key_failed",
    "TIM001": "iso2_dc_late_response",
    "TIM002": "iso20_dc_late_loop_request",
    "TIM003": "din_dc_slow_setup",
    "TIM004": "iso2_dc_cablecheck_too_long",
    "TIM005": "iso2_dc_slow_precharge_ramp",
    "TIM006": "din_dc_authorization_ongoing",
    "TIM007": "din_dc_no_output_discharge",
    "TLS001": "iso2_dc_tls_handshake_failure",
    "TLS002": "iso20_dc_tls12_not_allowed",
    "TLS003": "iso20_ac_tls_cipher_group",
    "TLS004": "iso20_dc_tls_cert_rejected",
    "TLS005": "iso20_dc_tls_cert_profile",
    "TLS006": "iso2_ac_pnc_tls_chain_incomplete",
    "TLS007": "iso20_ac_tls_no_client_auth",
    "TLS008": "iso2_dc_tls_sdp_ignored",
    "TLS009": "din_dc_over_tls",
    "TLS010": "iso20_ac_no_tls",
    "TLS011": "iso2_ac_pnc_tls_chain_incomplete",
    "TLS012": "iso20_dc_ocsp_revoked",
    "TLS013": "iso2_dc_pnc_trusted_ca_mismatch",
    "TLS014": "iso2_dc_pnc_secc_certificate_operator",
    "TRN001": "din_dc_tcp_connect_refused",
    "TRN002": "din_dc_secc_resets_on_request",
    "TRN003": "iso2_dc_retransmission_storm",
    "TRN004": "din_dc_v2gtp_header_error",
    "TRN005": "iso2_dc_v2gtp_payload_type",
    "TRN006": "iso2_ac_empty_payload",
    "TRN007": "din_dc_secc_resets_on_request",
    "TRN008": "din_dc_ev_fixed_port",
    "TRN009": "iso2_dc_half_open_port_reuse",
}

#: Most trace lines an example shows (longer evidence keeps its first and last lines).
MAX_LINES = 4
#: Widest trace line (characters) before a response goes on a line of its own.
WIDTH = 92
#: Most values shown per message.
MAX_VALUES = 3

_ARROW = {"EV->EVSE": "EV→EVSE", "EVSE->EV": "EVSE→EV"}
#: Tree elements that are parts of a value, never a value the finding speaks of.
_PARTS = {"Value", "Multiplier", "Unit", "Exponent", "Header", "Body"}
#: TLS fields never shown (ClientHello's legacy_version is TLS 1.2 whatever it offers).
_TLS_SKIP = {"legacy_version", "level_name", "description_name", "sender", "kind"}
#: Values every example shows of these messages (the control pilot's state is their point).
_ALWAYS = {"VS_CP_STATE.IND": ("State", "DutyCycle_pct", "Voltage_V"),
           "MS_SCS_DIAG.IND": ("CP State", "HV Contactor", "Present Voltage [V]")}


def fixture_note(code: str) -> str | None:
    """The line that names a rule's fixture (``rules explain``, docs/rules.md), or None for a
    rule without one (a third party's)."""
    name = EXAMPLE_SCENARIOS.get(code)
    if name is None:
        return None
    return (f"Example capture: samples/captures/{name}.pcapng "
            f"(`ccs-analyzer simulate {name} -o {name}.pcapng`).")


@lru_cache(maxsize=None)
def fixture_analysis(scenario: str):
    """The :class:`~ccs_analyzer.analyzer.analysis.Analysis` of a sample capture with every
    rule enabled (opt-in ones too) and the simulator's roots of the scenario's seed as trust
    anchors (as tests/samples/test_rule_coverage.py analyses the samples). Raises KeyError
    for an unknown scenario, OSError when its capture is missing."""
    from cryptography import x509

    from ccs_analyzer.analyzer.analysis import analyze_capture
    from ccs_analyzer.analyzer.profile import Profile
    from ccs_analyzer.dissectors.x509trust import TrustStore
    from ccs_analyzer.rules import all_rules
    from ccs_analyzer.samples.build import capture_path
    from ccs_analyzer.samples.pki_data import roots
    from ccs_analyzer.samples.scenario import load_scenario

    seed = load_scenario(scenario).seed
    trust = TrustStore([x509.load_der_x509_certificate(d) for d in roots(seed)])
    return analyze_capture(capture_path(scenario), trust=trust,
                           profile=Profile(enable={r.code for r in all_rules()}))


@lru_cache(maxsize=None)
def fixture_events(scenario: str) -> tuple:
    """Every event of a sample capture (every layer, capture problems included), in frame
    order, as ``ccs-analyzer decode --layers all`` gives them."""
    from ccs_analyzer.dissectors.pipeline import Dissector
    from ccs_analyzer.samples.build import capture_path

    return tuple(Dissector(capture_path(scenario)).events())


def findings_of(code: str, scenario: str | None = None) -> list:
    """The findings of rule ``code`` on its fixture (or on sample ``scenario``)."""
    a = fixture_analysis(scenario or EXAMPLE_SCENARIOS[code])
    return [f for f in a.findings if f.rule == code]


def example(code: str, scenario: str | None = None, *, every: bool = False) -> str:
    """The trace lines of rule ``code``'s first finding on its fixture (``every``: of each
    finding, separated by a blank line), without indentation. Raises KeyError for a code
    without a fixture, ValueError when the rule does not fire there."""
    scenario = scenario or EXAMPLE_SCENARIOS[code]
    found = findings_of(code, scenario)
    if not found:
        raise ValueError(f"{code} does not fire on sample {scenario}")
    events = fixture_events(scenario)
    blocks = ["\n".join(_wrap(trace_lines(f, events))) for f in (found if every else found[:1])]
    return "\n\n".join(blocks)


def _wrap(lines: list[str]) -> list[str]:
    """Lines wider than :data:`WIDTH` with the response (``→ …``) on a line of its own, and
    values that still do not fit on a further line."""
    out = []
    for line in lines:
        head, arrow, tail = line.partition(" → ")
        if len(line) > WIDTH and arrow:
            out += _fold(head, "    ") + _fold("  → " + tail, "      ")
        else:
            out += _fold(line, "    ")
    return out


def _fold(line: str, indent: str) -> list[str]:
    """``line`` cut before a value (``name=…``, ``(+… s)``) wherever it passes
    :data:`WIDTH`, the rest indented by ``indent``."""
    out = [""]
    for part in re.split(r" (?=[\w.\-]+=|\(\+)", line):
        if out[-1] and len(out[-1]) + 1 + len(part) > WIDTH:
            out.append(indent + part)
        else:
            out[-1] = f"{out[-1]} {part}" if out[-1] else part
    return out


def trace_lines(finding, events, max_lines: int = MAX_LINES) -> list[str]:
    """The trace of one finding: a line per evidence message (``#frame name values``), a
    request and its response on one line (``→``), the TLS handshake messages of one frame on
    one line, at most ``max_lines`` (the first and the last ones, ``…`` between); a finding
    without evidence frames in the trace gets its synopsis. ``events``: the capture's events
    in frame order."""
    frames = set(finding.frames)
    text = _spoken_of(finding)
    at = [e for e in events if e.frame in frames]
    messages = {e.frame for e in at if e.layer != "tcp"}
    at = [e for e in at if e.layer != "tcp" or e.frame not in messages]
    items: list[tuple] = []
    used: set[int] = set()
    for e in at:
        if id(e) in used:
            continue
        req, res = _pair(e, events)
        if req is e:
            pair, open_ = ((e, res) if res is not None else (e,)), res is None
        elif res is e:
            pair, open_ = (req, e), False
        else:
            pair, open_ = (e,), False
            if items and e.layer == "tls" and _joins(items[-1][0], e):
                items[-1] = ((*items[-1][0], e), False)
                used.add(id(e))
                continue
        used.update(id(x) for x in pair)
        items.append((pair, open_))
    if not items:
        where = f"frames {', '.join(map(str, finding.frames))}: " if finding.frames else ""
        return textwrap.wrap(f"({where}{finding.synopsis})", WIDTH)
    timed = finding.unit == "s"
    lines, last_time = [], None
    for pair, open_ in items:
        if pair[0].layer == "tls":
            lines.append(_tls_line(pair, text))
        else:
            lines.append(_line(pair, open_, text, timed, last_time))
        last_time = pair[-1].time
    if len(lines) > max_lines:
        head, tail = (max_lines - 1) // 2, max_lines - 1 - (max_lines - 1) // 2
        lines = lines[:head] + [f"… ({len(lines) - head - tail} more)"] + lines[-tail:]
    return lines


def _joins(group: tuple, e) -> bool:
    """Whether TLS event ``e`` goes on the line of ``group`` (TLS messages of one frame and
    direction)."""
    return all(x.layer == "tls" and x.frame == e.frame and x.direction == e.direction
               for x in group)


def _spoken_of(finding) -> str:
    """What the finding speaks of: its synopsis, expected and actual values and the names of
    its evidence (not the whole messages it quotes)."""
    ev = finding.evidence or {}
    parts = [finding.synopsis, " ".join(map(str, ev))]
    for k in ("expected", "actual"):
        if k in ev:
            parts.append(json.dumps(ev[k], default=str))
    return " ".join(parts)


def _response_name(name: str) -> str | None:
    for a, b in (("Req", "Res"), (".REQ", ".CNF"), (" request", " response")):
        if name.endswith(a):
            return name[: -len(a)] + b
    return None


def _request_name(name: str) -> str | None:
    for a, b in (("Res", "Req"), (".CNF", ".REQ"), (" response", " request")):
        if name.endswith(a):
            return name[: -len(a)] + b
    return None


def _same_channel(a, b) -> bool:
    if a.layer != b.layer:
        return False
    if a.layer == "v2gtp":
        return a.conn == b.conn
    return True


def _pair(e, events) -> tuple:
    """(request, response) around ``e``: its response when ``e`` is a request (None when
    it got none before the next such request), its request when ``e`` is a response;
    (None, None) for other events."""
    if e.layer not in ("v2gtp", "slac", "sdp"):
        return None, None
    res_name = _response_name(e.name)
    if res_name is not None:
        later = [x for x in events if x.frame > e.frame and _same_channel(x, e)]
        for x in later:
            if x.name == e.name:
                break
            if x.name == res_name:
                return e, x
        return e, None
    req_name = _request_name(e.name)
    if req_name is not None:
        for x in reversed([x for x in events if x.frame < e.frame and _same_channel(x, e)]):
            if x.name == req_name:
                return x, e
            if x.name == e.name:
                break
    return None, None


def _line(pair, unanswered: bool, text: str, timed: bool, before: float | None) -> str:
    """One trace line; ``timed``: with the time since the line ``before`` ended (after a
    single event, or after a request that came more than 1 s later) and the response's
    latency (a pair)."""
    parts = [_describe(pair[0], text)]
    if timed and before is not None and (len(pair) == 1 or pair[0].time - before > 1.0):
        parts.append(f"(+{pair[0].time - before:.3f} s)")
    if len(pair) == 2:
        gap = pair[1].time - pair[0].time
        parts.append("→ " + _describe(pair[1], text) + (f" (+{gap:.3f} s)" if timed else ""))
    elif unanswered:
        parts.append("→ (no response)")
    return " ".join(parts)


def _tls_line(events, text: str) -> str:
    """The TLS handshake messages of one frame: ``#41 ServerHello, Certificate … EVSE→EV``."""
    e = events[0]
    out = f"#{e.frame} " + ", ".join(x.name for x in events)
    if e.direction:
        out += f" {_ARROW.get(e.direction, e.direction)}"
    values = [v for x in events for v in _values(x, text)]
    if values:
        out += " " + " ".join(f"{k}={v}" for k, v in dict(values).items())
    return out


def _describe(e, text: str) -> str:
    out = f"#{e.frame} {e.name}"
    if e.layer in ("tcp", "tls", "capture") and e.direction:
        out += f" {_ARROW.get(e.direction, e.direction)}"
    values = _values(e, text)
    if values:
        out += " " + " ".join(f"{k}={v}" for k, v in values)
    if e.error:
        out += f" ({_short(str(e.error), 60)})"
    return out


def _values(e, text: str) -> list[tuple[str, str]]:
    """The message's values whose names the finding's synopsis or evidence speaks of, in
    the order it names them; a response's ResponseCode when it is not OK."""
    fields: dict[str, str] = {}
    if e.layer == "v2gtp" and isinstance(e.message, dict):
        _, body = message_body(e.message)
        scalars, phys = extract(body)
        root = next(iter(e.message.values()), None)
        header = root.get("Header") if isinstance(root, dict) else None
        if isinstance(header, dict) and "SessionID" in header:
            fields["SessionID"] = _short(str(header["SessionID"]))
        for k, v in scalars.items():
            fields.setdefault(k, _short(str(v)))
        for k, (x, unit) in phys.items():
            fields[k] = f"{x:g} {unit}" if unit else f"{x:g}"
        facts = event_facts(e)
        if "SoC_pct" in facts:
            fields.setdefault("SoC", f"{facts['SoC_pct']:g} %")
    elif isinstance(e.message, dict):
        flat = {**e.message, **(e.message.get("JSON") or {})}
        for k, v in flat.items():
            if isinstance(v, (str, int, float, bool)) and k != "Text":
                fields[k] = _short(str(v))
    always = _ALWAYS.get(e.name.split("(")[0], ())
    hits = [(-1 - len(always) + i, k, fields[k]) for i, k in enumerate(always) if k in fields]
    for k, v in fields.items():
        if k in _PARTS:
            continue
        m = None
        if e.layer != "tls":
            m = re.search(r"(?<![A-Za-z0-9_])" + re.escape(k) + r"(?![A-Za-z0-9])", text)
        if m is None and _named_value(v) and k not in _TLS_SKIP and v not in e.name:
            # a status, code or TLS suite the finding names by its value (EVSE_Shutdown)
            m = re.search(r"(?<![A-Za-z0-9_])" + re.escape(v) + r"(?![A-Za-z0-9_])", text)
        if m and k not in always:
            hits.append((m.start(), k, v))
    hits.sort()
    out = [(k, v) for _, k, v in hits[:MAX_VALUES]]
    rc = fields.get("ResponseCode")
    if rc and not rc.startswith("OK") and "ResponseCode" not in dict(out):
        out.insert(0, ("ResponseCode", rc))
    return out[:MAX_VALUES + 1]


def _named_value(v: str) -> bool:
    """Whether a value is a name worth finding in a finding's text (``EVSE_Shutdown``,
    ``TLS 1.2``), not a number, a flag or a hex identifier."""
    return (len(v) >= 5 and v not in ("False", "None") and not re.fullmatch(r"[0-9a-f.…]+", v)
            and not re.fullmatch(r"-?[0-9.]+( \w+)?", v))


def _short(s: str, n: int = 40) -> str:
    """``s`` cut to ``n`` characters; a long hex string (an identifier, a digest) to 12."""
    if len(s) > 16 and re.fullmatch(r"[0-9a-f]+", s):
        n = 12
    if not s.isprintable():     # control characters as their pictures (U+2400 …): ␀
        n = 12
        s = "".join(chr(0x2400 + ord(c)) if ord(c) < 0x20 else "␡" if c == "\x7f" else c
                    for c in s)
    return s if len(s) <= n else s[: n - 1] + "…"


def main(argv: list[str] | None = None) -> int:
    """``python -m ccs_analyzer.analyzer.rule_examples [--all] [--scenario NAME] CODE …``:
    print each rule's trace on its fixture. Exit 2 for an unknown code."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m ccs_analyzer.analyzer.rule_examples",
                                 description="Print the trace of each rule's finding on its fixture.")
    ap.add_argument("codes", nargs="+", help="rule codes, e.g. SEQ007")
    ap.add_argument("--all", action="store_true", help="every finding of the rule, not only the first")
    ap.add_argument("--scenario", help="another sample scenario than the rule's fixture")
    args = ap.parse_args(argv)
    for code in args.codes:
        code = code.upper()
        if code not in EXAMPLE_SCENARIOS and not args.scenario:
            print(f"error: no fixture for {code}", file=sys.stderr)
            return 2
        print(f"{code} on {args.scenario or EXAMPLE_SCENARIOS[code]}:")
        print("\n".join("    " + x if x else "" for x in example(code, args.scenario, every=args.all)
                        .split("\n")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
