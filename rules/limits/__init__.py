"""Limits and physics: the charge loop's voltages, currents and powers against the EVSE's and
the EV's own limits, plausibility over consecutive cycles, and the limits exchanged in
ChargeParameterDiscovery.

Every loop rule aggregates over a loop (one finding per condition and loop, with the count,
the worst value, the first / worst / last frames and the decoded excerpt of the worst
message). The rules read the loop table (analyzer/views/loop_table.py): one row per
charge-loop cycle with the values in SI units (``facts(e)``: DIN / ISO-2 PhysicalValue and
ISO 15118-20 RationalNumber alike), the limits in force, and the marks of the judgements
other rules own — implausible present values (MSG020; the limit rules skip them) and
no-current stretches (CHL007; LIM004 / LIM005 stand down on them).

The relations are those of PROTOCOL_FACTS §4D: the CPD rules ([V2G2-477]) are hard facts;
the loop relations are analyst-derived (⚠) — their tolerances are parameters.
"""
