"""The schema namespaces V2G EXI streams are encoded with, and their grammar modules.

The one home of every namespace URI in the project (the targetNamespace of each XSD the
grammars are generated from, PROTOCOL_FACTS §1.2 / §3): other modules import these names
instead of spelling the URIs out.
"""
from __future__ import annotations

NS_APP_PROTOCOL = "urn:iso:15118:2:2010:AppProtocol"
NS_DIN = "urn:din:70121:2012:MsgDef"
NS_ISO2 = "urn:iso:15118:2:2013:MsgDef"
#: what every ISO 15118-2 namespace starts with (the 2010 draft's, the 2013 edition's and
#: SupportedAppProtocol's)
NS_ISO2_PREFIX = "urn:iso:15118:2:"
#: the ISO 15118-2 draft namespace some early stacks still offer in supportedAppProtocolReq;
#: no grammar is generated for it
NS_ISO2_DRAFT_2010 = "urn:iso:15118:2:2010:MsgDef"
#: what every ISO 15118-20 namespace starts with (``startswith`` tests: "is this -20?")
NS_ISO20_PREFIX = "urn:iso:std:iso:15118:-20"
NS_ISO20_CM = NS_ISO20_PREFIX + ":CommonMessages"
NS_ISO20_AC = NS_ISO20_PREFIX + ":AC"
NS_ISO20_DC = NS_ISO20_PREFIX + ":DC"
NS_ISO20_ACDP = NS_ISO20_PREFIX + ":ACDP"
NS_ISO20_WPT = NS_ISO20_PREFIX + ":WPT"
#: W3C XML Signature (xmldsig-core-schema.xsd): imported by every V2G schema; SignedInfo is
#: encoded against it alone when signing (ISO 15118-2 §7.9.2.4.2, encoder.encode_fragment)
NS_XMLDSIG = "http://www.w3.org/2000/09/xmldsig#"

#: namespace -> the protocol label events and sessions carry (``Event.protocol``)
PROTOCOL_BY_NAMESPACE = {
    NS_APP_PROTOCOL: "SupportedAppProtocol",
    NS_DIN: "DIN 70121",
    NS_ISO2: "ISO 15118-2",
    NS_ISO2_DRAFT_2010: "ISO 15118-2 (2010 draft)",
    NS_ISO20_CM: "ISO 15118-20",
    NS_ISO20_AC: "ISO 15118-20",
    NS_ISO20_DC: "ISO 15118-20",
    NS_ISO20_ACDP: "ISO 15118-20",
    NS_ISO20_WPT: "ISO 15118-20",
}

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
