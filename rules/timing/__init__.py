"""Timing: message and sequence timers, communication setup, and the timers of the DC loops
(CableCheck, PreCharge, EVSEProcessing=Ongoing, WeldingDetection).

Every rule reads one shared view of the session (analyzer/views/timing.py, built once, in
one pass over its events): the request/response exchanges grouped into *runs* — consecutive
exchanges of the same request on one TCP connection; the charge loop (CurrentDemand /
ChargingStatus / AC_/DC_ChargeLoop with their MeteringReceipt / MeteringConfirmation) is one
run — so that a loop of thousands of messages yields at most one finding per rule and
message type, with its count, worst value and first / worst / last frames. The timer
values, their sources and their ✅/⚠ status are in :mod:`.timing_tables`.

What belongs elsewhere: a response that never came (sequence rules), SDP retry spacing (SDP
rules), SLAC timers (SLAC rules), reaching the PreCharge target voltage (PRE001).
"""
