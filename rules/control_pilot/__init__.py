"""Control-pilot rules: the IEC 61851-1 pilot against the session it carries.

The pilot is read from the vendor messages test systems and modems put on the wire
(analyzer/control_pilot.py: VS_CP_STATE.IND of ST/IoTecha and SPiDCOM modems, dSPACE SCS
diagnostics) through the session's CP view (analyzer/views/control_pilot.py). A session
without CP readings is not judged here. The readings arrive when the reporter sees a change
(or every ~250 ms), so every time limit below gets :data:`REPORT_LAG_S` of slack.

Sources: IEC 61851-1:2017 Annex A (states Table A.3 / A.4, duty cycle Table A.8), Annex B
(PP, Table B.2); ISO 15118-2 [V2G2-847] [V2G2-848] (CP coupling of PowerDelivery), ISO
15118-20 [V2G20-847] [V2G20-848] [V2G20-849]; ISO 15118-3 Table A.1 (TT_EVSE_SLAC_init),
[V2G3-M06-05..09] (E/F toggle); PROTOCOL_FACTS §2.4, §4 "CP coupling"; ChargeX PFMEA
(../shared/FAILURE_MODES.md) UC1 215-216, 230-231, UC2 183-185, 192-195.
"""
