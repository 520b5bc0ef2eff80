"""What a rule is and what it yields.

A rule (DESIGN.md "Rules", STYLE.md "ruff") is a small self-documenting class: a stable
``code``, a ``title``, ``severity`` (error / warning / info), ``category``, the
``protocols`` it applies to, the ``requirement`` it checks, the ``failure_modes`` it reveals
(ChargeX PFMEA IDs, ../shared/FAILURE_MODES.md), the likely ``culprit`` (EVCC, SECC, link,
capture), tunable ``params`` with the standard's values as defaults, and a docstring with the
sections "What it checks", "Why it matters", "Fix", "Source" that ``ccs-analyzer rules
explain CODE`` prints. ``check(session, ctx)`` reads one session and yields findings. A rule
with ``scope = "segment"`` reads ``ctx`` once per segment of the capture instead (session
None; ``ctx.sessions`` are the segment's sessions, ``ctx.capture_problems`` its problems,
``ctx.leftovers`` its leftovers — a segment is the whole capture unless a long capture is
cut at quiet gaps, analyzer/segments.py); one with ``scope = "capture"`` reads the whole
capture's metadata once at the end (``capture``, ``accounting``, ``connections``; not the
sessions, which a long capture has already let go).

Rules never parse bytes: they read the analyzer's sessions and events (decoded trees).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Iterable

from ccs_analyzer.analyzer.physical import find_first
from ccs_analyzer.analyzer.views.events import body

SEVERITIES = ("error", "warning", "info")
CATEGORIES = ("slac", "sdp", "handshake", "sequence", "timing", "session", "limits",
              "precharge", "cablecheck", "charging-loop", "response-code", "message-content",
              "tls", "transport", "capture-quality", "control-pilot")
CULPRITS = ("EVCC", "SECC", "link", "capture", "unknown")


@dataclass
class Finding:
    """One finding: which rule, where (session, frames — all the evidence frames), when,
    what was measured against which limit, a one-line ``synopsis`` a person can act on, and
    the decoded ``evidence`` (expected vs actual), and the ``values`` it judges (see
    :func:`judged`: the report marks exactly those in the decoded payloads). ``id`` and
    ``caused_by`` are set by the engine."""

    rule: str
    title: str
    category: str
    severity: str
    culprit: str
    session: str | None
    frames: list[int]
    time: float | None
    synopsis: str
    measured: Any = None
    limit: Any = None
    unit: str | None = None
    requirement: str | None = None
    failure_modes: list[str] = field(default_factory=list)
    evidence: dict = field(default_factory=dict)
    #: the values the finding judges, each a :func:`judged` dict (report.json
    #: ``findings[].values``)
    values: list[dict] = field(default_factory=list)
    count: int = 1
    #: the problem's identity within its rule: the engine merges the findings of one rule and
    #: session that have the same culprit, severity and key into one (count, all frames).
    #: None: the synopsis with its numbers blanked (frames, values, SessionIDs differ between
    #: occurrences of one problem; different wording means a different problem).
    key: str | None = None
    id: str | None = None
    caused_by: str | None = None
    #: what this finding is and what it can explain (rules/causes.py); None: the rule's
    #: class-level ``kinds`` / ``explains``. A rule sets them per finding where the facts
    #: decide (e.g. a late response explains the EV giving up only beyond the EV's timeout).
    kinds: tuple[str, ...] | None = None
    explains: tuple[str, ...] | None = None
    #: set by the engine: ``root-cause`` (the session's root cause), ``consequence``
    #: (``caused_by`` names its cause) or ``independent``; and the ids of the findings it
    #: caused (its direct consequences)
    role: str | None = None
    consequences: list[str] = field(default_factory=list)
    #: set by the engine: the message (or event) at the first evidence frame, and its phase
    message: str | None = None
    phase: str | None = None

    def renumber(self, mapping: dict[str, str]) -> None:
        """Give the finding, its cause and its consequences the ids ``mapping`` assigns
        (provisional → final, analyzer/engine.py ``finish_capture``)."""
        self.id = mapping.get(self.id, self.id)
        if self.caused_by is not None:
            self.caused_by = mapping.get(self.caused_by, self.caused_by)
        if self.consequences:
            self.consequences = [mapping.get(x, x) for x in self.consequences]

    def to_json(self) -> dict:
        """JSON form (report.json ``findings`` items)."""
        return {
            "id": self.id, "rule": self.rule, "title": self.title, "category": self.category,
            "severity": self.severity, "culprit": self.culprit, "session": self.session,
            "frames": list(self.frames), "time": self.time, "synopsis": self.synopsis,
            "measured": self.measured, "limit": self.limit, "unit": self.unit,
            "requirement": self.requirement, "failure_modes": self.failure_modes,
            "evidence": self.evidence, "values": [dict(v) for v in self.values],
            "count": self.count, "caused_by": self.caused_by,
            "role": self.role, "consequences": list(self.consequences),
            "message": self.message, "phase": self.phase,
        }


_NO = object()


def judged(event, element: str | tuple[str, ...], actual: Any = _NO, *, expected: Any = _NO,
           limit: Any = _NO, unit: str | None = None) -> dict | None:
    """One value a finding judges (``Finding.values``), where the report marks it: ``{"path":
    "PreChargeRes.EVSEPresentVoltage", "frame": 97, "actual": 347.0, "expected" or "limit":
    …, "unit": "V"}``. ``event``: the event whose decoded payload holds the value (its name
    is the path's first part, its frame the frame); ``element``: the element's name in the
    standard's words, or a dotted path below the message ("DC_EVSEStatus.EVSEStatusCode")
    — the report marks every element of that name below the message; a tuple of names (the
    same value in DIN 70121 / ISO 15118-2 / -20 words): the first the message holds;
    ``actual``: the value
    as the finding reads it (SI float for a physical value, the enumeration name …; left
    out: every element of that name is marked); ``expected`` (what the standard or the other
    side's value says it should be) or ``limit`` (the bound it crossed), ``unit`` (V, A, W,
    s, % …) only when given. None when ``event`` is None or a message of an earlier segment
    that was let go (rules/session/common.py ``Past``: no name, no payload)."""
    if event is None or getattr(event, "name", None) is None:
        return None
    if not isinstance(element, str):
        tree = body(event) if event.message is not None else {}
        element = next((n for n in element if find_first(tree, n.rsplit(".", 1)[-1]) is not None),
                       element[0])
    v: dict = {"path": f"{event.name}.{element}", "frame": event.frame}
    for k, x in (("actual", actual), ("expected", expected), ("limit", limit)):
        if x is not _NO:
            v[k] = x
    if unit is not None:
        v["unit"] = unit
    return v


class Rule:
    """Base class of every rule (see module docstring)."""

    code: ClassVar[str] = ""
    title: ClassVar[str] = ""
    severity: ClassVar[str] = "warning"
    category: ClassVar[str] = ""
    protocols: ClassVar[tuple[str, ...]] = ()
    requirement: ClassVar[str | None] = None
    failure_modes: ClassVar[tuple[str, ...]] = ()
    culprit: ClassVar[str] = "unknown"
    scope: ClassVar[str] = "session"
    params: ClassVar[dict[str, Any]] = {}
    #: Former names of parameters (old name → name in ``params``), still accepted by the
    #: constructor and in profiles (docs/profiles.md "Renamed parameters").
    renamed_params: ClassVar[dict[str, str]] = {}
    #: What a finding of this rule is, and which kinds of findings and session ends it can
    #: cause, in the words of rules/causes.py KINDS (DESIGN.md "Causes, outcomes,
    #: verdicts"). A finding may override both (``Finding.kinds`` / ``Finding.explains``).
    kinds: ClassVar[tuple[str, ...]] = ()
    explains: ClassVar[tuple[str, ...]] = ()
    #: How long (s) after its last evidence a finding of this rule can still explain what
    #: follows (a late response explains the EV closing the connection a moment later, not a
    #: minute later). A defect that persists until the end is live by its own evidence.
    horizon_s: ClassVar[float] = 10.0
    #: False for opt-in rules (a profile enables them).
    default_enabled: ClassVar[bool] = True

    def __init__(self, **overrides: Any):
        overrides = {self.renamed_params.get(k, k): v for k, v in overrides.items()}
        unknown = set(overrides) - set(self.params)
        if unknown:
            raise ValueError(f"{self.code}: unknown parameter(s) {sorted(unknown)}")
        self.p = {**self.params, **overrides}

    def check(self, session, ctx) -> Iterable[Finding]:
        """Yield findings for one session (or, with scope "segment" / "capture", for ``ctx``).

        ``session``: an :class:`ccs_analyzer.analyzer.sessions.Session` (None for segment
        and capture scope); ``ctx``: the :class:`ccs_analyzer.analyzer.analysis.Analysis` (capture
        metadata, ``connections``, ``summaries`` by session id, ``capture_events``, and the
        shared views of analyzer/views/, built once through ``ctx.view``)."""
        raise NotImplementedError

    def applies(self, protocol: str | None) -> bool:
        """Whether the rule applies to a session of this protocol (``protocols`` empty: all).
        "SLAC" and "SDP" rules apply to every session."""
        if not self.protocols:
            return True
        if protocol in self.protocols:
            return True
        return bool({"SLAC", "SDP"} & set(self.protocols))

    def finding(self, session, frames, synopsis: str, *, time=None, measured=None, limit=None,
                unit=None, evidence=None, culprit=None, severity=None,
                requirement=None, key=None, values=None) -> Finding:
        """A :class:`Finding` of this rule with its class-level facts filled in
        (``requirement`` overrides the class's one for this finding; ``values``: the
        :func:`judged` values, None entries and repeats left out)."""
        kept: list[dict] = []
        for v in values or ():
            if v is not None and v not in kept:
                kept.append(v)
        return Finding(rule=self.code, title=self.title, category=self.category,
                       severity=severity or self.severity, culprit=culprit or self.culprit,
                       session=session.id if session is not None else None,
                       frames=sorted(set(int(f) for f in frames if f is not None)), time=time,
                       synopsis=synopsis, measured=measured, limit=limit, unit=unit,
                       requirement=requirement or self.requirement,
                       failure_modes=list(self.failure_modes), evidence=evidence or {}, key=key,
                       values=kept)

    @classmethod
    def explain(cls) -> str:
        """The rule's page: header facts and its docstring."""
        lines = [f"{cls.code}: {cls.title}",
                 f"  severity: {cls.severity}   category: {cls.category}   culprit: {cls.culprit}",
                 f"  protocols: {', '.join(cls.protocols) or 'all'}",
                 f"  requirement: {cls.requirement or '-'}"]
        if cls.failure_modes:
            lines.append(f"  failure modes (ChargeX PFMEA): {', '.join(cls.failure_modes)}")
        if cls.params:
            lines.append("  parameters: " + ", ".join(f"{k} = {v!r}" for k, v in cls.params.items()))
        if cls.renamed_params:
            lines.append("  renamed parameters: " + ", ".join(
                f"{old} → {new}" for old, new in cls.renamed_params.items()))
        if cls.kinds or cls.explains:
            lines.append(f"  is: {', '.join(cls.kinds) or '-'}   can explain: "
                         f"{', '.join(cls.explains) or '-'}   (docs/root-cause.md)")
        import inspect
        doc = inspect.cleandoc(cls.__doc__ or "")
        return "\n".join(lines) + "\n\n" + doc + "\n"


class LoopRule(Rule):
    """Base of the rules that aggregate a loop's occurrences into one finding (precharge,
    cable check, limits, charge loop; no code: not a rule itself): a finding that
    aggregates several occurrences carries their number in ``count`` (from ``count=`` or
    the evidence's ``count``)."""

    def finding(self, *args, count=None, **kw):
        f = super().finding(*args, **kw)
        n = count if count is not None else f.evidence.get("count")
        if isinstance(n, int) and not isinstance(n, bool) and n > 1:
            f.count = n
        return f
