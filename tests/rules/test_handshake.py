"""Handshake rules (rules/handshake.py): event-level cases that trigger each rule and close
cases that must not, and what the rules say about the real captures (CORPUS.md)."""
from __future__ import annotations

import pytest

from tests.conftest import analyze_testevent
from tests.rules.test_slac import CLEAN, analysis, mine
from tests.rules.util import (EV, EVSE, NS_DIN, NS_ISO2, analyze_events, connection, din, ev,
                              rules_found, script)

NS_TESLA = "urn:tesla:din:2018:MsgDef"
SETUP = (din("SessionSetupReq", {"EVCCID": "01"}, "00"),
         din("SessionSetupRes", {"ResponseCode": "OK_NewSessionEstablished", "EVSEID": "0a"}), 0.05, 0.02)


def entry(ns=NS_DIN, major=2, minor=0, sid=1, prio=1):
    return {"ProtocolNamespace": ns, "VersionNumberMajor": major, "VersionNumberMinor": minor,
            "SchemaID": sid, "Priority": prio}


def sap(entries, code="OK_SuccessfulNegotiation", sid=1, *, answered=True):
    res = {"ResponseCode": code}
    if sid is not None:
        res["SchemaID"] = sid
    return ({"supportedAppProtocolReq": {"AppProtocol": list(entries)}},
            {"supportedAppProtocolRes": res} if answered else None, 0.05, 0.02)


def run(exchanges, *, end=None, conn=0, t0=0.0, frame0=1, extra=(), connections=None):
    evs = script(exchanges, handshake=False, conn=conn, t0=t0, frame0=frame0)
    evs += list(extra)
    if end is not None:
        evs.append(ev(max(e.frame for e in evs) + 1, end, "capture", "capture end"))
    return analyze_events(evs, connections=connections)


def only(a, code):
    fs = rules_found(a, code)
    assert len(fs) == 1, [f.synopsis for f in a.findings]
    return fs[0]


def hsk(a):
    return [f for f in a.findings if f.category == "handshake"]


def test_plain_din_handshake_is_clean():
    assert hsk(run([sap([entry()]), SETUP], end=5.0)) == []


# --------------------------------------------------------------------------- HSK001 / HSK002
def test_no_negotiation_names_the_offer():
    f = only(run([sap([entry(), entry(NS_ISO2, sid=2, prio=2)], "Failed_NoNegotiation", None)],
                 end=5.0), "HSK001")
    assert f.severity == "error"
    assert f"{NS_DIN} 2.0 (SchemaID 1, priority 1)" in f.synopsis and NS_ISO2 in f.synopsis


def test_no_negotiation_of_an_iso2_offer_blames_the_secc():
    f = only(run([sap([entry(), entry(NS_ISO2, sid=2, prio=2)], "Failed_NoNegotiation", None)],
                 end=5.0), "HSK001")
    assert f.culprit == "SECC" and "ISO 15118-2 2.0" in f.synopsis


@pytest.mark.parametrize("entries", [
    [entry()],                                                        # DIN 70121 only
    [entry(NS_TESLA, 0, 7, sid=2, prio=1), entry(prio=2)],            # proprietary + DIN
    [entry(NS_TESLA, 0, 7)] + [entry("urn:example:v2g", 1, 0, sid=3, prio=2)],
])
def test_no_negotiation_without_any_iso15118_namespace_blames_the_ev(entries):
    f = only(run([sap(entries, "Failed_NoNegotiation", None)], end=5.0), "HSK001")
    assert f.culprit == "EVCC"


def test_no_negotiation_of_an_iso20_only_offer_is_unknown():
    ns20 = "urn:iso:std:iso:15118:-20:DC"
    f = only(run([sap([entry(ns20, 1, 0)], "Failed_NoNegotiation", None)], end=5.0), "HSK001")
    assert f.culprit == "unknown"


def test_no_negotiation_of_a_non_standard_offer_blames_the_ev():
    f = only(run([sap([entry("urn:example:v2g", 1, 0)], "Failed_NoNegotiation", None)], end=5.0), "HSK001")
    assert f.culprit == "EVCC"


def test_no_negotiation_of_what_the_secc_negotiated_before_blames_the_secc():
    first = script([sap([entry()]), SETUP], handshake=False)
    second = script([sap([entry()], "Failed_NoNegotiation", None)], handshake=False, conn=1,
                    t0=10.0, frame0=50)
    a = analyze_events(first + second + [ev(99, 20.0, "capture", "end")])
    f = only(a, "HSK001")
    assert f.culprit == "SECC" and "elsewhere" in f.synopsis


def test_successful_negotiation_is_no_failure():
    assert not rules_found(run([sap([entry()]), SETUP], end=5.0), "HSK001")


def test_no_schema_id_on_failure():
    assert not rules_found(run([sap([entry()], "Failed_NoNegotiation", None)], end=5.0), "HSK002")


# --------------------------------------------------------------------------- HSK003
def test_lower_priority_chosen_although_supported_is_a_warning():
    offer = [entry(NS_ISO2, sid=1, prio=1), entry(NS_DIN, sid=2, prio=2)]
    iso = script([sap(offer, sid=1)], handshake=False)
    dinc = script([sap(offer, sid=2)], handshake=False, conn=1, t0=10.0, frame0=50)
    f = only(analyze_events(iso + dinc + [ev(99, 20.0, "capture", "end")]), "HSK003")
    assert f.severity == "warning" and f.culprit == "SECC"


def test_highest_priority_chosen():
    assert not rules_found(run([sap([entry(NS_ISO2, sid=1, prio=1), entry(NS_DIN, sid=2, prio=2)],
                                    sid=1), SETUP], end=5.0), "HSK003")


def test_proprietary_preferred_entry_is_not_expected():
    a = run([sap([entry(NS_DIN, sid=1, prio=2), entry(NS_TESLA, 0, 7, sid=2, prio=1)], sid=1), SETUP],
            end=5.0)
    assert not rules_found(a, "HSK003")


# --------------------------------------------------------------------------- HSK004 / HSK005
def test_minor_deviation_is_info():
    f = only(run([sap([entry(minor=1)], "OK_SuccessfulNegotiationWithMinorDeviation"), SETUP], end=5.0),
             "HSK004")
    assert f.severity == "info" and "2.1" in f.synopsis


def test_exact_version_is_fine():
    assert not rules_found(run([sap([entry()]), SETUP], end=5.0), "HSK004")


def test_schema_id_not_offered():
    f = only(run([sap([entry(sid=1)], sid=7), SETUP], end=5.0), "HSK005")
    assert f.severity == "error" and f.culprit == "SECC" and "SchemaID 7" in f.synopsis


def test_schema_id_missing_on_success():
    f = only(run([sap([entry(sid=1)], sid=None), SETUP], end=5.0), "HSK005")
    assert "no SchemaID" in f.synopsis


def test_schema_id_offered():
    assert not rules_found(run([sap([entry(sid=3)], sid=3), SETUP], end=5.0), "HSK005")


# --------------------------------------------------------------------------- HSK006 / HSK007
def test_duplicate_identical_entries_are_a_warning():
    f = only(run([sap([entry(sid=1, prio=1), entry(sid=1, prio=2)]), SETUP], end=5.0), "HSK006")
    assert f.severity == "warning"


def test_unique_schema_ids():
    assert not rules_found(run([sap([entry(NS_DIN, sid=1), entry(NS_ISO2, sid=2, prio=2)]), SETUP],
                               end=5.0), "HSK006")


def test_unique_priorities():
    assert not rules_found(run([sap([entry(NS_DIN, sid=1, prio=1), entry(NS_ISO2, sid=2, prio=2)]),
                                SETUP], end=5.0), "HSK007")


# --------------------------------------------------------------------------- HSK008
def test_unanswered_handshake_reset_by_the_secc():
    fin = ev(10, 1.2, "tcp", "FIN", EV, conn=0)
    rst = ev(11, 3.0, "tcp", "RST", EVSE, conn=0)
    a = run([sap([entry()], answered=False)], extra=[fin, rst])
    f = only(a, "HSK008")
    assert f.severity == "error" and f.culprit == "SECC"
    assert {3, 10, 11} <= set(f.frames) and "before its V2G_EVCC_Msg_Timeout" in f.synopsis


def test_unanswered_handshake_silent_secc():
    f = only(run([sap([entry()], answered=False)], end=4.0), "HSK008")
    assert "silent" in f.synopsis


def test_unanswered_handshake_at_capture_end_is_not_blamed():
    assert not rules_found(run([sap([entry()], answered=False)], end=0.5), "HSK008")


def test_unanswered_handshake_with_lost_bytes_is_a_warning():
    a = run([sap([entry()], answered=False)], end=4.0,
            connections=[connection(0, lost_bytes=[0, 120])])
    assert only(a, "HSK008").severity == "warning"


def test_answered_handshake():
    assert not rules_found(run([sap([entry()]), SETUP], end=5.0), "HSK008")


# --------------------------------------------------------------------------- corpus
def test_corpus_westpark_reconnects_get_no_handshake(corpus):
    a = analysis(corpus, "2023-04-19_westparkAlpi_pyPlc_lightbulb_1fail_1ok.pcapng")
    (f,) = mine(a, "HSK008")
    assert f.culprit == "SECC" and f.severity == "error"
    assert {12720, 12749, 12786, 12794, 12795, 12807} <= set(f.frames)
    # the reconnects are the EV's retries after its charging session (frames 1033-12700),
    # whose own end — the EV ignoring the EVSE's stop request — stays the root cause
    s = next(s for s in a.sessions if s.id == f.session)
    assert {11, 12, 13} <= set(s.retry_connections) and s.own_end_frame < 12714
    root = next(x for x in a.findings if x.id == a.summaries[f.session]["root_cause"])
    assert root.rule == "RSP003"


@pytest.mark.parametrize("name", ["2024-04-20_ModelY_pyPLC_stop_in_precharge.pcapng",
                                  "2024-06-18_Griffigroen_pyPLC_polestar2_discharging_with_additional_prechargeCircuit.pcapng"])
def test_corpus_multi_protocol_offers_are_fine(corpus, name):
    assert [f for f in mine(analysis(corpus, name)) if f.category == "handshake"] == []


@pytest.mark.parametrize("name", CLEAN)
def test_corpus_clean_references_have_no_handshake_findings(corpus, name):
    assert [f for f in mine(analysis(corpus, name)) if f.category == "handshake"] == []


@pytest.mark.parametrize("name,frames", [
    ("logfiles__Tesla__Model_Y_11.1__iso15118-2__2023-03-30T11-11-20.331Z-tesla_y-iso-not-supported__"
     "ethernet-traffic.dump", (40, 42)),
    ("logfiles__Tesla__Model_Y_11.1__iso15118-2__ac-iso__1_telsa_model_y.dump", (46, 48)),
    ("logfiles__Opel__Ampera-E__2023-01-13-iso-15118-2-AC_not_supported__opelampera_ac_iso.dump", (44, 46)),
])
def test_testevents_ev_without_iso15118_is_the_culprit(testevents, name, frames):
    a = analyze_testevent(testevents, name)
    (f,) = rules_found(a, "HSK001")
    assert f.culprit == "EVCC" and set(frames) <= set(f.frames)
    assert "no ISO 15118 namespace" in f.synopsis
