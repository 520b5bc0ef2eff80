"""The per-session views several rules share, computed once per analysis.

A view reads the analyzer's sessions and events (decoded trees, never bytes) and shapes them
for the rules: the SLAC runs, the request / response exchanges, the sequence walk, the runs
of repeated messages and the charge-loop table, connection activity, the timing view. Rules
import the views from here; no rule module imports another's machinery (DESIGN.md "Causes,
outcomes, verdicts": shared per-session views live in the analyzer, computed once).

Every view is a function ``view(session, ctx)`` (``ctx``: the
:class:`~ccs_analyzer.analyzer.analysis.Analysis`) that builds its value through the one
cache of the analysis, :meth:`Analysis.view(name, session, build)
<ccs_analyzer.analyzer.analysis.Analysis.view>`, so that the first rule that asks builds it
and the others get the same object; the views go with the analysis. Views are read-only
for the rules.

Modules (one per view; docs/architecture.md "Views"):

* :mod:`.events` — reading one event: body, header, SI facts, ResponseCode, base name.
* :mod:`.index` — the session's events by kind (:func:`~.index.session_index`).
* :mod:`.exchanges` — request / response pairs and each response with its request.
* :mod:`.walk` — the sequence walk over the state tables of rules/state_machines.py.
* :mod:`.loops` — runs of one repeated message pair (charge loop, PreCharge, CableCheck).
* :mod:`.loop_table` — the charge loop's rows and the values derived from them (allowed
  current, implausible present values, no-current stretches, PreCharge rows, battery
  voltage).
* :mod:`.slac` — the SLAC runs of a session (:func:`~.slac.slac_view`).
* :mod:`.connections` — TCP connection activity: lost bytes, one-sided capture,
  retransmissions, half-open retries.
* :mod:`.timing` — the exchanges grouped for the timers (:func:`~.timing.timing_view`).
* :mod:`.control_pilot` — the session's IEC 61851-1 pilot: readings, state sequence, PWM,
  contactor (:func:`~.control_pilot.cp_view`).
* :mod:`.tree_memo` — values computed from one decoded tree, kept by the tree's identity
  (identical payloads share a tree): per analysis through the cache, or per process.

The analyzer may read the rules' data tables (rules/state_machines.py,
rules/timing_tables.py); data still flows one way: dissectors → analyzer (sessions, views)
→ rules → reports.
"""
