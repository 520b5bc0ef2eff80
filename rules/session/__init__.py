"""V2G SessionIDs: new sessions, resume after a pause, the ID every message carries.

SessionID rules (PROTOCOL_FACTS §4.0 "SessionID rules", §4C "-20 rules"): the first
SessionSetupReq of a new session carries SessionID 0 (any all-zero value); the SECC answers
OK_NewSessionEstablished with a new, non-zero ID; to resume a paused session the EV offers
that session's ID and the SECC answers OK_OldSessionJoined with the same ID ([V2G2-463]);
an unknown non-zero ID gets a new ID ≠ 0 and ≠ the offered one ([V2G2-756]); every later
message in both directions carries the ID of SessionSetupRes ([V2G2-460], [V2G-DC-391]),
a request with another ID is answered FAILED_UnknownSession.

:func:`setups` indexes every SessionSetup exchange of the capture in frame order with what
the offered ID was at that moment (new, a paused session's, a terminated or running
session's, unknown); the rules read it. A long capture judged segment by segment
(analyzer/segments.py) hands on what its earlier segments issued (``ctx.carry``: each
SessionID's status and its last issue, as :class:`Past` stand-ins for the sessions and
messages already let go), so that an ID issued again an hour later is still seen.

How a session ends, as far as it concerns the session as a whole: an EVSE that stops the
charge on its own (EVSE_Shutdown / StopCharging, SES012 — the reason is in the charger, not
in the traffic) and an SECC that goes on after its own FAILED response instead of ending the
session (SES013).
"""
