"""The schema namespaces V2G EXI streams are encoded with, and their grammar modules."""
from __future__ import annotations

NS_APP_PROTOCOL = "urn:iso:15118:2:2010:AppProtocol"
NS_DIN = "urn:din:70121:2012:MsgDef"
NS_ISO2 = "urn:iso:15118:2:2013:MsgDef"
NS_ISO20_CM = "urn:iso:std:iso:15118:-20:CommonMessages"
NS_ISO20_AC = "urn:iso:std:iso:15118:-20:AC"
NS_ISO20_DC = "urn:iso:std:iso:15118:-20:DC"
NS_ISO20_ACDP = "urn:iso:std:iso:15118:-20:ACDP"
NS_ISO20_WPT = "urn:iso:std:iso:15118:-20:WPT"
#: W3C XML Signature (xmldsig-core-schema.xsd): imported by every V2G schema; SignedInfo is
#: encoded against it alone when signing (ISO 15118-2 §7.9.2.4.2, encoder.encode_fragment)
NS_XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"

#: every namespace the codec has grammars for
NAMESPACES = (NS_APP_PROTOCOL, NS_DIN, NS_ISO2, NS_ISO20_CM, NS_ISO20_AC, NS_ISO20_DC,
              NS_ISO20_ACDP, NS_ISO20_WPT)

#: namespace -> generated module in ccs_analyzer.dissectors.exi.grammars
GRAMMAR_MODULES = {
    NS_APP_PROTOCOL: "app_protocol",
    NS_DIN: "din70121",
    NS_ISO2: "iso15118_2",
    NS_ISO20_CM: "iso15118_20_cm",
    NS_ISO20_AC: "iso15118_20_ac",
    NS_ISO20_DC: "iso15118_20_dc",
    NS_ISO20_ACDP: "iso15118_20_acdp",
    NS_ISO20_WPT: "iso15118_20_wpt",
}
