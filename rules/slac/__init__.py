"""SLAC matching (ISO 15118-3 §9 and Annex A; PROTOCOL_FACTS §2).

Every rule here reads the session's SLAC view (analyzer/views/slac.py :func:`slac_view`):
its ISO 15118-3 SLAC messages with identical copies removed (a tester that sees several
VLANs captures each broadcast once per VLAN), cut into matching *runs* (a run begins with a
CM_SLAC_PARM.REQ that carries a new RunID, or with one sent after the previous run got past
CM_SLAC_PARM.CNF), plus the HomePlug CM_SET_KEY exchanges. The ISO 15118-3 timers, counters
and limits the rules' parameters default to are the sourced table of rules/slac_timers.py.

Partial captures: a sniffer often sees one side only (listen mode, a modem that forwards
only broadcasts, a capture started late). A message that answers another proves the other
was sent: CM_SLAC_PARM.CNF proves a CM_SLAC_PARM.REQ, CM_ATTEN_CHAR.IND with sounds proves
the EV's sounding, CM_ATTEN_CHAR.RSP and CM_SLAC_MATCH.REQ prove a CM_ATTEN_CHAR.IND,
CM_SLAC_MATCH.CNF proves CM_SLAC_MATCH.REQ, and SDP / TCP traffic proves a match. When the
capture lacks what such evidence proves, the view is ``partial``: SLC002 says so (culprit
capture; a capture of one side only is CAP003's) and the rules that need both sides stay
silent instead of blaming the EV or the EVSE for what the capture cannot show.
"""
