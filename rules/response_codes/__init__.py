"""Response codes: FAILED_* answers, warning codes, EVSE status and notifications, EV error
codes — what each code means and who it points at.

Code tables: DIN 70121, ISO 15118-2 and ISO 15118-20 responseCodeType, DC_EVSEStatusCode,
DC_EVErrorCode, EVSENotification (PROTOCOL_FACTS §4.0, §4A, §4B, §4C code tables and
"Status semantics").
"""
