"""Message content rules on conditional and forbidden elements: MSG011, MSG012."""
from __future__ import annotations

from ccs_analyzer.analyzer.views.index import session_index

from ..base import Rule
from ..helpers import culprit_of
from .common import Groups, _lower, _options, _span, _times, body_of, failed


class ConditionalElement(Rule):
    """An element that the context makes mandatory is missing, or a forbidden one present.

    What it checks: supportedAppProtocolRes carries SchemaID with an OK_* ResponseCode (a
    SchemaID with Failed_NoNegotiation is HSK002's); an ISO 15118-2 ChargeParameterDiscoveryRes with
    EVSEProcessing = Finished carries SAScheduleList; an ISO 15118-2 CurrentDemandRes
    carries EVSEID and SAScheduleTupleID. FAILED responses are not judged (they only carry
    mandatory elements, [V2G2-736]).
    Why it matters: without SchemaID the EV cannot know which protocol was chosen; without
    SAScheduleList the EV has no schedule for PowerDeliveryReq's SAScheduleTupleID.
    Fix (SECC): send the element the context requires.
    Source: supportedAppProtocolRes (E-SRV; HOTWIRE [V2G-DC-226] ⚠); SAScheduleList when
    Finished (R-SECC-CPD, J-BODY2 ⚠); CurrentDemandRes (J-XSD-2); PROTOCOL_FACTS §5. The ⚠
    conditions are warnings.

    Example:

        #59 ChargeParameterDiscoveryReq → #61 ChargeParameterDiscoveryRes EVSEProcessing=Finished
    """

    code = "MSG011"
    title = "Conditional element missing or present against its condition"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "ev-abort")
    requirement = "ISO 15118-2 conditional elements (Table 104 idea)"
    culprit = "SECC"
    failure_modes = ("UC2 107", "UC2 111")

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        groups = Groups()
        for e in idx.named("supportedAppProtocolRes"):
            b = body_of(e)
            rc = str(b.get("ResponseCode", ""))
            if rc.startswith("OK") and "SchemaID" not in b:
                groups.add(("SchemaID missing", e.name), e, expected="SchemaID with " + rc,
                           actual="no SchemaID", warn=True)
        for e in idx.named("ChargeParameterDiscoveryRes"):
            if e.protocol != "ISO 15118-2" or failed(e):
                continue
            b = body_of(e)
            if b.get("EVSEProcessing") == "Finished" and "SAScheduleList" not in b:
                groups.add(("SAScheduleList missing", e.name), e, warn=True,
                           expected="SAScheduleList with EVSEProcessing Finished",
                           actual="no SAScheduleList")
        for e in idx.named("CurrentDemandRes"):
            if e.protocol != "ISO 15118-2" or failed(e):
                continue
            b = body_of(e)
            missing = [k for k in ("EVSEID", "SAScheduleTupleID") if k not in b]
            if missing:
                groups.add((f"{' and '.join(missing)} missing", e.name), e, warn=False,
                           expected="EVSEID and SAScheduleTupleID", actual=f"missing {missing}")
        for (what, name), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}): {what}",
                               time=first.time, culprit=culprit_of(first),
                               severity=_lower(self.severity) if f["warn"] else None,
                               evidence={"expected": f["expected"], "actual": f["actual"],
                                         "messages": n})


def _din_service_tags(b: dict):
    cs = b.get("ChargeService")
    if isinstance(cs, dict):
        yield cs.get("ServiceTag") if isinstance(cs.get("ServiceTag"), dict) else cs
    sl = b.get("ServiceList")
    services = sl.get("Service", []) if isinstance(sl, dict) else []
    for s in services if isinstance(services, list) else [services]:
        if isinstance(s, dict):
            yield s.get("ServiceTag") if isinstance(s.get("ServiceTag"), dict) else s
    for k in ("ServiceTag",):
        if isinstance(b.get(k), dict):
            yield b[k]


def _tuples(b: dict) -> list:
    sl = b.get("SAScheduleList")
    if not isinstance(sl, dict):
        return []
    t = sl.get("SAScheduleTuple", [])
    return [x for x in (t if isinstance(t, list) else [t]) if isinstance(x, dict)]


class DinForbiddenContent(Rule):
    """DIN 70121 content the standard does not allow.

    What it checks: in a DIN 70121 session: ServiceName and ServiceScope in service tags
    ([V2G-DC-628], [V2G-DC-629]); SalesTariff in SAScheduleTuple ([V2G-DC-554]); a payment
    option other than ExternalPayment, offered or selected ([V2G-DC-252]); more than 12
    PMaxScheduleEntry in a PMaxSchedule ([V2G-DC-329], single source ⚠ → warning).
    Why it matters: DIN 70121 EVs implement EIM only and parse these elements as errors; an
    EV selecting Contract gets FAILED_PaymentSelectionInvalid ([V2G-DC-395]).
    Fix: the sender (SECC for responses, EVCC for requests): leave these elements out in
    DIN 70121; offer and select ExternalPayment only.
    Source: DIN SPEC 70121 [V2G-DC-252], [V2G-DC-329], [V2G-DC-554], [V2G-DC-628],
    [V2G-DC-629] (J-DIN-DT, E-DIN); PROTOCOL_FACTS §4A "DIN-specific content rules".

    Example:

        #47 ServiceDiscoveryReq → #49 ServiceDiscoveryRes ServiceName=DC_Charging
    """

    code = "MSG012"
    title = "DIN 70121 content the standard forbids"
    severity = "error"
    category = "message-content"
    kinds = ("bad-content",)
    explains = ("failed-response", "evse-refused", "ev-abort")
    culprit = "SECC"
    protocols = ("DIN 70121",)
    requirement = "DIN 70121 [V2G-DC-252], [V2G-DC-554], [V2G-DC-628], [V2G-DC-629]"
    failure_modes = ("UC2 107", "UC2 159")
    params = {"max_pmax_entries": 12}

    def check(self, session, ctx):
        idx = session_index(session, ctx)
        groups = Groups()
        limit = self.p["max_pmax_entries"]
        for e in idx.v2g:
            if e.protocol != "DIN 70121":
                continue
            name = e.name
            if name in ("ServiceDiscoveryRes", "ServiceDetailRes"):
                if failed(e):
                    continue
                b = body_of(e)
                for tag in _din_service_tags(b):
                    for k in ("ServiceName", "ServiceScope"):
                        if isinstance(tag, dict) and k in tag:
                            groups.add((name, k), e, req="[V2G-DC-628]" if k == "ServiceName"
                                       else "[V2G-DC-629]", actual=f"{k} {tag[k]!r}")
                bad = [o for o in _options(b) if o != "ExternalPayment"]
                if bad:
                    groups.add((name, "PaymentOption"), e, req="[V2G-DC-252]",
                               actual=f"PaymentOption {', '.join(bad)}")
            elif name == "ServicePaymentSelectionReq":
                opt = body_of(e).get("SelectedPaymentOption")
                if opt is not None and opt != "ExternalPayment":
                    groups.add((name, "SelectedPaymentOption"), e, req="[V2G-DC-252]",
                               actual=f"SelectedPaymentOption {opt}")
            elif name == "ChargeParameterDiscoveryRes" and not failed(e):
                for t in _tuples(body_of(e)):
                    if "SalesTariff" in t:
                        groups.add((name, "SalesTariff"), e, req="[V2G-DC-554]", actual="SalesTariff")
                    ps = t.get("PMaxSchedule")
                    entries = ps.get("PMaxScheduleEntry", []) if isinstance(ps, dict) else []
                    if isinstance(entries, list) and len(entries) > limit:
                        groups.add((name, "PMaxScheduleEntry"), e, req="[V2G-DC-329]", warn=True,
                                   actual=f"{len(entries)} PMaxScheduleEntry (limit {limit})")
        for (name, what), first, last, n, f in groups.items():
            yield self.finding(session, [first.frame, last.frame],
                               f"{name}{_times(n)} ({_span(first, last, n)}) carries {f['actual']}, "
                               f"which DIN 70121 does not allow {f['req']}", time=first.time,
                               culprit=culprit_of(first),
                               severity=_lower(self.severity) if f.get("warn") else None,
                               evidence={"expected": f"no {what} in DIN 70121 {f['req']}",
                                         "actual": f["actual"], "messages": n})
