"""Cross-checks with the reference codec itself (EXIficient in the iso15118 wheel's
EXICodec.jar). Opt-in — they start a JVM — and skipped unless the reference is set up:

    eval "$(bash ../shared/tools/reference_setup.sh)"   # exports REF_PY, EXICODEC_JAR
    CCS_EXI_REFERENCE=1 pytest tests/exi/test_reference_codec.py

1. Grammars: every state reachable from the document grammar, ours and EXIficient's, walked
   in step — kind (first start tag / start tag / element content), productions in event-
   code order with their qnames and datatypes (n-bit bounds, enumeration values), next
   states, element grammars, the content2 and TypeEmpty grammars of the undeclared
   productions. Against the grammars EXIficient builds from the same XSDs there must be no
   difference at all. The codec's own pre-generated grammar classes differ only where
   `CLASS_DIFFERENCES` says (they were evidently built from XSD versions in which those
   lists were unbounded): after the last allowed item, the codec still offers the element.
2. Encoder: random valid trees → our EXI → EXIficient decodes it to XML → EXIficient encodes
   that XML → the same bytes.
"""
from __future__ import annotations

import collections
import glob
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from ccs_analyzer.dissectors.exi import NAMESPACES, encode
from ccs_analyzer.dissectors.exi import grammar as G
from ccs_analyzer.dissectors.exi.datatypes import (D_FORM, D_ITEM, D_KIND, D_MAX, D_MIN,
                                                   D_NAMES, DT_B64, DT_BOOL, DT_DATETIME,
                                                   DT_DECIMAL, DT_ENUM, DT_FLOAT, DT_HEX, DT_INT,
                                                   DT_LIST, DT_NBIT, DT_STRING, DT_UINT)
from ccs_analyzer.dissectors.exi.generate.sources import SCHEMA_SETS

from .exi_strategies import trees

JAR = Path(os.environ.get("EXICODEC_JAR", Path.home() / ".cache/ccs-reference/iso15118/shared/EXICodec.jar"))
HERE = Path(__file__).resolve().parent

pytestmark = pytest.mark.skipif(
    os.environ.get("CCS_EXI_REFERENCE") != "1" or not JAR.is_file() or not shutil.which("java"),
    reason="opt-in: set CCS_EXI_REFERENCE=1 with the reference codec set up (see module docstring)")

GENERATED_CLASS = {
    "urn:iso:15118:2:2010:AppProtocol": "CommonAppProtocol",
    "urn:din:70121:2012:MsgDef": "DINSpec_70121",
    "urn:iso:15118:2:2013:MsgDef": "ISO15118_2Grammar",
    "urn:iso:std:iso:15118:-20:CommonMessages": "ISO15118_20_V2G_CI_CommonMessages",
    "urn:iso:std:iso:15118:-20:AC": "ISO15118_20_V2G_CI_AC",
    "urn:iso:std:iso:15118:-20:DC": "ISO15118_20_V2G_CI_DC",
    "urn:iso:std:iso:15118:-20:ACDP": "ISO15118_20_V2G_CI_ACDP",
    "urn:iso:std:iso:15118:-20:WPT": "ISO15118_20_V2G_CI_WPT",
}

#: where the codec's pre-generated grammar classes differ from the XSDs' grammars (the
#: element whose content differs): a list element still offered after its maxOccurs-th
#: item — ISO 15118-2 SelectedService (16), Parameter (16), ParameterSet (255),
#: RootCertificateID (20), ProfileEntry (24), PMaxScheduleEntry / SalesTariffEntry (1024);
#: ISO 15118-20 the 1024/2048-entry schedules and WPT's 2..255 spec data — and the kind of
#: the undeclared-content grammar of two ISO 15118-2 simple-content types
CLASS_DIFFERENCES = {
    "urn:iso:15118:2:2013:MsgDef": {
        "SelectedServiceList", "ParameterSet", "ServiceParameterList", "ListOfRootCertificateIDs",
        "ChargingProfile", "PMaxSchedule", "SalesTariff", "SignatureValue (content2)",
        "eMAID (content2)"},
    "urn:iso:std:iso:15118:-20:CommonMessages": {
        "EVPowerProfileEntries", "EVPowerScheduleEntries", "EVPriceRuleStacks",
        "PowerScheduleEntries", "PriceLevelScheduleEntries", "PriceRuleStacks"},
    "urn:iso:std:iso:15118:-20:WPT": {
        "LF_ReceiverSetupData", "LF_TransmitterSetupData", "TxPackageSpecData"},
}

KINDS = {G.K_FIRST: "SCHEMA_INFORMED_FIRST_START_TAG_CONTENT",
         G.K_START: "SCHEMA_INFORMED_START_TAG_CONTENT",
         G.K_ELEM: "SCHEMA_INFORMED_ELEMENT_CONTENT", G.K_DOC: "SCHEMA_INFORMED_DOC_CONTENT",
         G.K_DOCEND: "DOC_END"}


# -- grammars ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def java_schemas(tmp_path_factory, schema_dir) -> Path:
    """The XSDs as Xerces reads them offline: xmldsig without its DOCTYPE, copied next to
    every schema that imports it (as ../shared/tools/reference_decode.py prepares them)."""
    xsd = tmp_path_factory.mktemp("xsd") / "schemas"
    shutil.copytree(schema_dir, xsd)
    dsig = (xsd / "xmldsig-core-schema.xsd").read_text()
    dsig = re.sub(r"<!DOCTYPE schema.*?\]>", "", dsig, flags=re.S)
    for sub in ("", "din_spec", "iso15118_2", "iso15118_20"):
        (xsd / sub / "xmldsig-core-schema.xsd").write_text(dsig)
    return xsd


@pytest.fixture(scope="module")
def dumps(tmp_path_factory, java_schemas):
    """The reference grammars as text: {("xsd" | "class", namespace): rows}."""
    if not shutil.which("javac"):
        pytest.skip("javac not available")
    tmp = tmp_path_factory.mktemp("reference")
    xsd = java_schemas
    subprocess.run(["javac", "-cp", str(JAR), "-d", str(tmp), str(HERE / "reference" / "GrammarDump.java")],
                   check=True, capture_output=True)
    args, keys = [], []
    for ss in SCHEMA_SETS:
        for kind, source in (("xsd", str(xsd / ss.root)), ("class", GENERATED_CLASS[ss.namespace])):
            out = tmp / f"{kind}-{ss.module}.tsv"
            args += [source, str(out)]
            keys.append(((kind, ss.namespace), out))
    subprocess.run(["java", "-Xmx2g", "-cp", f"{JAR}{os.pathsep}{tmp}", "GrammarDump", *args],
                   check=True, capture_output=True, timeout=600)
    result = {}
    for key, path in keys:
        rows = {}
        for line in path.read_text().splitlines():
            f = line.split("\t")
            rows[int(f[0])] = f
        result[key] = rows
    return result


def _dt(dt: tuple) -> str:
    k = dt[D_KIND]
    if k == DT_NBIT:
        return f"nbit,{dt[D_MIN]},{dt[D_MAX]}"
    if k == DT_ENUM:
        return "enum," + ",".join(dt[D_NAMES])
    if k == DT_LIST:
        return f"list({_dt(dt[D_ITEM])})"
    if k == DT_DATETIME:
        return f"datetime,{dt[D_FORM]}"
    return {DT_BOOL: "BooleanDatatype", DT_UINT: "UnsignedIntegerDatatype",
            DT_INT: "IntegerDatatype", DT_STRING: "StringDatatype", DT_HEX: "BinaryHexDatatype",
            DT_B64: "BinaryBase64Datatype", DT_DECIMAL: "DecimalDatatype",
            DT_FLOAT: "FloatDatatype"}[k]


def _event(g: G.Grammar, p: tuple) -> str:
    op = p[G.P_OP]
    if op in (G.OP_SE, G.OP_SE_SIMPLE, G.OP_AT):
        uri = g.uris[p[G.P_URI]]
        qn = f"{{{uri}}}{p[G.P_KEY]}" if uri else p[G.P_KEY]
        return f"SE:{qn}" if op != G.OP_AT else f"AT:{qn}:{_dt(p[G.P_DATATYPE])}"
    if op == G.OP_CH:
        return "CH:" + _dt(p[G.P_DATATYPE])
    if op == G.OP_SE_NS:
        return "SE_NS:" + g.uris[p[G.P_URI]]
    if op == G.OP_AT_NS:
        return "AT_NS:" + g.uris[p[G.P_URI]]
    return {G.OP_EE: "END_ELEMENT", G.OP_SE_ANY: "START_ELEMENT_GENERIC",
            G.OP_AT_ANY: "ATTRIBUTE_GENERIC", G.OP_CH_ANY: "CHARACTERS_GENERIC",
            G.OP_ED: "END_DOCUMENT"}[op]


def compare(g: G.Grammar, rows: dict) -> list[tuple[str, str]]:
    """Walk both grammars from DocContent; [(element where they differ, what)]."""
    todo = collections.deque([(0, g.document, 0, "DocContent")])
    seen, diffs = set(), []
    while todo:
        j, state, cnt, where = todo.popleft()
        if (j, state.index, cnt) in seen:
            continue
        seen.add((j, state.index, cnt))
        f = rows[j]
        if KINDS.get(state.kind) != f[1]:
            diffs.append((f"{where} (content2)", f"kind {f[1]}"))
        theirs = [e.split("|") for e in f[5:]]
        ours = [_event(g, p) for p in state.prods]
        if [e[0] for e in theirs] != ours:
            diffs.append((where, f"{[e[0] for e in theirs]} != {ours} after {cnt}"))
            continue
        for (ev, nxt, elem), p in zip(theirs, state.prods):
            if p[G.P_OP] in (G.OP_EE, G.OP_ED):
                continue
            nst, ncnt = G.next_state(p, cnt)
            if p[G.P_OP] in (G.OP_SE, G.OP_SE_SIMPLE):
                todo.append((int(elem), p[G.P_CHILD], 0, p[G.P_KEY]))
            if nst is not None and int(nxt) >= 0:
                todo.append((int(nxt), nst, ncnt, where))
        if state.kind in (G.K_FIRST, G.K_START) and int(f[3]) >= 0 and state.content2:
            todo.append((int(f[3]), state.content2, 0, where))
        if state.kind == G.K_FIRST and int(f[4]) >= 0 and state.empty:
            todo.append((int(f[4]), state.empty, 0, where))
    return diffs


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_grammars_equal_what_exificient_builds_from_the_xsds(namespace, dumps):
    assert compare(G.load(namespace), dumps[("xsd", namespace)]) == []


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_grammars_differ_from_the_codec_classes_only_where_known(namespace, dumps):
    found = {name for name, _ in compare(G.load(namespace), dumps[("class", namespace)])}
    assert found == CLASS_DIFFERENCES.get(namespace, set())


# -- encoder -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def exificient(java_schemas):
    """(to_xml, to_exi) through py4j with the corpus' EXI options."""
    if importlib.util.find_spec("py4j") is None:
        ref_py = os.environ.get("REF_PY")
        site = glob.glob(str(Path(ref_py).parent.parent / "lib/python3*/site-packages")) if ref_py else []
        if not site:
            pytest.skip("py4j not available (run reference_setup.sh)")
        sys.path.append(site[0])
    from py4j.java_gateway import JavaGateway

    gw = JavaGateway.launch_gateway(classpath=str(JAR), die_on_exit=True,
                                    javaopts=["--add-opens", "java.base/java.lang=ALL-UNNAMED"])
    jvm = gw.jvm
    factories = {}

    def factory(ns):
        if ns not in factories:
            ss = next(s for s in SCHEMA_SETS if s.namespace == ns)
            f = jvm.com.siemens.ct.exi.core.helpers.DefaultEXIFactory.newInstance()
            f.setGrammars(jvm.com.siemens.ct.exi.grammars.GrammarFactory.newInstance()
                          .createGrammars(str(java_schemas / ss.root)))
            f.setValueMaxLength(0)
            f.setValuePartitionCapacity(0)
            f.setMaximumNumberOfBuiltInElementGrammars(0)
            f.setMaximumNumberOfBuiltInProductions(0)
            factories[ns] = f
        return factories[ns]

    def to_xml(data: bytes, ns: str) -> str:
        src = jvm.com.siemens.ct.exi.main.api.sax.EXISource(factory(ns))
        src.setInputSource(jvm.org.xml.sax.InputSource(jvm.java.io.ByteArrayInputStream(data)))
        out = jvm.java.io.StringWriter()
        jvm.javax.xml.transform.TransformerFactory.newInstance().newTransformer().transform(
            src, jvm.javax.xml.transform.stream.StreamResult(out))
        return str(out.toString())

    def to_exi(xml: str, ns: str) -> bytes:
        bos = jvm.java.io.ByteArrayOutputStream()
        res = jvm.com.siemens.ct.exi.main.api.sax.EXIResult(factory(ns))
        res.setOutputStream(bos)
        spf = jvm.javax.xml.parsers.SAXParserFactory.newInstance()
        spf.setNamespaceAware(True)
        reader = spf.newSAXParser().getXMLReader()
        reader.setContentHandler(res.getHandler())
        reader.parse(jvm.org.xml.sax.InputSource(jvm.java.io.StringReader(xml)))
        return bytes(bos.toByteArray())

    yield to_xml, to_exi
    gw.shutdown()


#: text XML 1.0 can carry unchanged through a parse (no controls, markup, whitespace)
XML_TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x10FFFF,
                                 blacklist_categories=("Cs", "Co", "Cn"),
                                 blacklist_characters="&<>\"'"), min_size=1, max_size=20)


def _has_empty(x) -> bool:
    if isinstance(x, dict):
        return any(_has_empty(v) for v in x.values())
    if isinstance(x, list):
        return any(_has_empty(v) for v in x)
    return x == ""  # XML cannot tell an empty value from no characters


@pytest.mark.parametrize("namespace", NAMESPACES)
def test_encoder_output_survives_the_reference(namespace, exificient):
    to_xml, to_exi = exificient

    @settings(max_examples=40, deadline=None, derandomize=True, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(trees(namespace, text=XML_TEXT))
    def check(tree):
        if _has_empty(tree):
            return
        data = encode(tree, namespace)
        assert to_exi(to_xml(data, namespace), namespace) == data
    check()
