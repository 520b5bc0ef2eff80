"""The grammar generator: regenerating the committed tables changes nothing, and the
construction rules of EXI 1.0 §8.5.4 on small schemas written for the tests."""
from __future__ import annotations

import types
from pathlib import Path

import pytest

from ccs_analyzer.dissectors.exi.grammar import next_state
from ccs_analyzer.dissectors.exi.generate import SCHEMA_SETS, build_module
from ccs_analyzer.dissectors.exi.generate.__main__ import main
from ccs_analyzer.dissectors.exi.generate.builder import GrammarSet
from ccs_analyzer.dissectors.exi.generate.model import load_schema_set
from ccs_analyzer.dissectors.exi.generate.sources import SchemaSet
from ccs_analyzer.dissectors.exi.generate.tables import Tables
from ccs_analyzer.dissectors.exi.generate.writer import render
from ccs_analyzer.dissectors.exi.grammar import (K_ELEM, K_FIRST, K_START, OP_AT, OP_CH_ANY,
                                                 OP_EE, P_CHILD, P_DATATYPE, P_KEY, P_OP,
                                                 Grammar)

COMMITTED = Path(__file__).resolve().parents[2] / "dissectors" / "exi" / "grammars"


@pytest.mark.parametrize("ss", SCHEMA_SETS, ids=[s.module for s in SCHEMA_SETS])
def test_regenerating_changes_nothing(ss, schema_dir):
    assert build_module(ss, schema_dir) == (COMMITTED / f"{ss.module}.py").read_text(encoding="utf-8")


def test_command_line(tmp_path, schema_dir, capsys):
    assert main(["--schemas", str(schema_dir), "--out", str(tmp_path)]) == 0
    assert sorted(p.name for p in tmp_path.glob("*.py")) == sorted(f"{s.module}.py" for s in SCHEMA_SETS)
    head = (tmp_path / "din70121.py").read_text().splitlines()[:12]
    assert head[0].startswith("# GENERATED FILE")
    assert any("python -m ccs_analyzer.dissectors.exi.generate" in line for line in head)
    assert any("din_spec/V2G_CI_MsgBody.xsd" in line and len(line.split()[-1]) == 64 for line in head)
    assert main(["--schemas", str(tmp_path / "missing"), "--out", str(tmp_path)]) == 1


# -- construction rules on small schemas ---------------------------------------------------
NS = "urn:test"


def module_text(tmp_path: Path, body: str) -> str:
    """Generated module text of a one-file schema in namespace urn:test."""
    xsd = tmp_path / "t.xsd"
    xsd.write_text(f'<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns="{NS}" '
                   f'targetNamespace="{NS}" elementFormDefault="qualified">{body}</xs:schema>')
    model = load_schema_set(xsd, lambda url: url)
    gs = GrammarSet(model)
    gs.build()
    return render(SchemaSet("t", NS, "t.xsd", "test"), tmp_path, Tables(gs), model.documents)


def grammar(tmp_path: Path, body: str) -> Grammar:
    """Runtime grammar of a one-file schema in namespace urn:test."""
    module = types.ModuleType("generated")
    exec(compile(module_text(tmp_path, body), "generated", "exec"), module.__dict__)
    return Grammar(module)


def events(state) -> list[str]:
    out = []
    for p in state.prods:
        if p[P_OP] == OP_EE:
            out.append("EE")
        elif p[P_OP] == OP_AT:
            out.append("@" + p[P_KEY])
        elif p[P_OP] == OP_CH_ANY:
            out.append("CH*")
        else:
            out.append(p[P_KEY])
    return out


def root_state(g: Grammar, name: str):
    return next(p for p in g.document.prods if p[P_KEY] == name)[P_CHILD]


def follow(state, name, cnt=0):
    return next_state(state.prods[events(state).index(name)], cnt)


def test_document_grammar_sorts_globals(tmp_path):
    """§8.5.4.1.2: DocContent lists every global element by local name, then SE(*)."""
    g = grammar(tmp_path, '<xs:element name="b" type="xs:int"/><xs:element name="a" type="xs:int"/>'
                          '<xs:element name="B" type="xs:int"/>')
    assert events(g.document) == ["B", "a", "b", None]
    assert g.document.width == 2  # four productions, no second level


def test_attributes_sorted_optional_ones_skippable(tmp_path):
    """§8.5.4.1.3.2: attribute uses sorted by local name; after an optional one's state
    everything that may follow is offered too; then the content."""
    g = grammar(tmp_path, '<xs:element name="r"><xs:complexType><xs:sequence>'
                          '<xs:element name="x" type="xs:int"/></xs:sequence>'
                          '<xs:attribute name="c" type="xs:int"/>'
                          '<xs:attribute name="a" type="xs:int"/>'
                          '<xs:attribute name="b" type="xs:int" use="required"/>'
                          '</xs:complexType></xs:element>')
    s0 = root_state(g, "r")
    assert (s0.kind, events(s0), s0.width) == (K_FIRST, ["@a", "@b"], 2)
    s1, _ = follow(s0, "@a")
    assert (s1.kind, events(s1)) == (K_START, ["@b"])
    s2, _ = follow(s1, "@b")
    assert events(s2) == ["@c", "x"]
    s3, _ = follow(s2, "x")
    assert (s3.kind, events(s3)) == (K_ELEM, ["EE"])
    # non-strict second level: first start tag [EE] xsi:type xsi:nil AT(*) AT(untyped) SE(*) CH
    assert len(s0.sl_codes) == 7 and s0.sl_width == 3
    assert len(s3.sl_codes) == 2


def test_state_comments_name_each_state(tmp_path):
    """Each STATES row follows a comment naming the state (index: label, place in its
    grammar), as cbexigen's generated C does; the comments match STATE_LABELS."""
    text = module_text(tmp_path, '<xs:element name="r"><xs:complexType><xs:sequence>'
                                 '<xs:element name="e" type="xs:int" minOccurs="2" maxOccurs="4"/>'
                                 '<xs:element name="f" type="xs:int"/></xs:sequence>'
                                 '<xs:attribute name="b" type="xs:int"/>'
                                 '<xs:attribute name="a" type="xs:int"/>'
                                 '</xs:complexType></xs:element>')
    lines = text.splitlines()
    body = lines[lines.index("STATES = (") + 1:lines.index(")", lines.index("STATES = ("))]
    comments, rows = body[0::2], body[1::2]
    assert all(c.startswith("    # ") for c in comments) and all(r.startswith("    (") for r in rows)
    module = types.ModuleType("generated")
    exec(compile(text, "generated", "exec"), module.__dict__)
    assert len(comments) == len(module.STATES)
    notes = {}
    for i, c in enumerate(comments):
        index, rest = c.strip()[2:].split(": ", 1)
        label, note = rest.split(", ", 1)
        assert (int(index), label) == (i, module.STATE_LABELS[i])
        notes.setdefault(label.split("[")[0], []).append(note)
    assert notes["DocContent"] == ["document start"]
    assert sorted(notes["rType"]) == ["after @a", "after @b", "after e, count 2..3",
                                      "after e, count < minOccurs 2",
                                      "after e, count = maxOccurs 4", "first child", "start"]
    assert sorted(notes["int"]) == ["start", "value"]


def test_schema_order_is_first_appearance(tmp_path):
    """SE productions of a state come in the order their particles first appear in the
    content model (Xerces' element map, as EXIficient builds it), not in follow order."""
    g = grammar(tmp_path, '<xs:element name="r"><xs:complexType>'
                          '<xs:sequence maxOccurs="unbounded"><xs:element name="a" type="xs:int"/>'
                          '<xs:element name="b" type="xs:int" minOccurs="0"/>'
                          '<xs:element name="c" type="xs:int" minOccurs="0"/></xs:sequence>'
                          '</xs:complexType></xs:element>')
    s0 = root_state(g, "r")
    sa, _ = follow(s0, "a")
    assert events(sa) == ["a", "b", "c", "EE"]
    sb, _ = follow(sa, "b")
    assert events(sb) == ["a", "c", "EE"]


def test_substitution_group_head_and_members_sorted(tmp_path):
    """§8.5.4.1.6: an element particle stands for its substitution group; the members and
    the head (abstract or not: the reference codec keeps it) are sorted by local name."""
    g = grammar(tmp_path, '<xs:element name="H" type="xs:string" abstract="true"/>'
                          '<xs:element name="Z" type="xs:string" substitutionGroup="H"/>'
                          '<xs:element name="M" type="xs:string" substitutionGroup="H"/>'
                          '<xs:element name="r"><xs:complexType><xs:sequence>'
                          '<xs:element ref="H"/></xs:sequence></xs:complexType></xs:element>')
    assert events(root_state(g, "r")) == ["H", "M", "Z"]


def test_counted_repetition(tmp_path):
    """minOccurs 2 maxOccurs 4: one counted state class per 'below min', 'between', 'at max'."""
    g = grammar(tmp_path, '<xs:element name="r"><xs:complexType><xs:sequence>'
                          '<xs:element name="e" type="xs:int" minOccurs="2" maxOccurs="4"/>'
                          '<xs:element name="f" type="xs:int"/></xs:sequence></xs:complexType>'
                          '</xs:element>')
    st, cnt = root_state(g, "r"), 0
    seen = []
    for _ in range(4):
        st, cnt = follow(st, "e", cnt)
        seen.append(events(st))
    assert seen == [["e"], ["e", "f"], ["e", "f"], ["f"]]
    big = grammar(tmp_path, '<xs:element name="r"><xs:complexType><xs:sequence>'
                            '<xs:element name="e" type="xs:int" minOccurs="2" maxOccurs="4000"/>'
                            '<xs:element name="f" type="xs:int"/></xs:sequence></xs:complexType>'
                            '</xs:element>')
    assert len(big.states) == len(g.states)  # the bound is a number, not 4000 states


def test_repeated_group_is_expanded(tmp_path):
    """A bounded repeated group becomes nested optional copies (deterministic)."""
    g = grammar(tmp_path, '<xs:element name="r"><xs:complexType>'
                          '<xs:sequence minOccurs="0" maxOccurs="2"><xs:element name="g" type="xs:int"/>'
                          '<xs:element name="h" type="xs:int"/></xs:sequence>'
                          '</xs:complexType></xs:element>')
    st = root_state(g, "r")
    trail = [events(st)]
    for name in ("g", "h", "g", "h"):
        st, _ = follow(st, name)
        trail.append(events(st))
    assert trail == [["g", "EE"], ["h"], ["g", "EE"], ["h"], ["EE"]]


def test_all_group_and_mixed_content(tmp_path):
    g = grammar(tmp_path, '<xs:element name="r"><xs:complexType mixed="true"><xs:all>'
                          '<xs:element name="y" type="xs:int"/><xs:element name="x" type="xs:int"/>'
                          '</xs:all></xs:complexType></xs:element>')
    s0 = root_state(g, "r")
    assert events(s0) == ["y", "x", "EE", "CH*"]
    s1, _ = follow(s0, "x")
    assert events(s1) == ["y", "x", "EE", "CH*"]


@pytest.mark.parametrize("facets, dt", [
    ('<xs:minInclusive value="0"/><xs:maxInclusive value="4095"/>', ("nbit", 12)),
    ('<xs:minInclusive value="-1"/><xs:maxInclusive value="4094"/>', ("nbit", 12)),
    ('<xs:minInclusive value="0"/><xs:maxInclusive value="4096"/>', ("uint",)),
    ('<xs:minExclusive value="-1"/>', ("uint",)),
    ('<xs:minInclusive value="-5"/><xs:maxInclusive value="5000"/>', ("int",)),
])
def test_integer_representation(tmp_path, facets, dt):
    """§7.1.9 / §7.1.6 / §7.1.5: n-bit when the bounded range has at most 4096 values,
    unsigned when the lower bound is >= 0, else signed."""
    g = grammar(tmp_path, f'<xs:simpleType name="T"><xs:restriction base="xs:long">{facets}'
                          f'</xs:restriction></xs:simpleType><xs:element name="v" type="T"/>')
    p = next(p for p in g.document.prods if p[P_KEY] == "v")
    got = p[P_DATATYPE]
    from ccs_analyzer.dissectors.exi.datatypes import DT_INT, DT_NBIT, DT_UINT
    kind = {DT_NBIT: "nbit", DT_UINT: "uint", DT_INT: "int"}[got[0]]
    assert (kind,) + ((got[1],) if kind == "nbit" else ()) == dt
