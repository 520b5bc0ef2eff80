"""A neutral model of an XML Schema set, read with the ``xmlschema`` library.

The grammar builder works on these small classes only, so that what EXI needs from a
schema is visible in one place: element declarations (name, type, abstract, substitution
group), complex types (attribute uses, attribute wildcard, content type, particle tree) and
simple types reduced to their EXI datatype representation (EXI 1.0 §7.1, Table 7-1).

`load_schema_set(root_xsd, uri_mapper)` → `SchemaModel`. Raises `GeneratorError` for a
schema feature the generator does not translate (it names the component).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

XSD_NS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
META_NAMESPACES = (XSD_NS, XML_NS, XSI_NS)

#: EXI 1.0 Appendix D.3: local names pre-populated for the XML Schema namespace.
XSD_BUILTIN_NAMES = (
    "ENTITIES", "ENTITY", "ID", "IDREF", "IDREFS", "NCName", "NMTOKEN", "NMTOKENS",
    "NOTATION", "Name", "QName", "anySimpleType", "anyType", "anyURI", "base64Binary",
    "boolean", "byte", "date", "dateTime", "decimal", "double", "duration", "float", "gDay",
    "gMonth", "gMonthDay", "gYear", "gYearMonth", "hexBinary", "int", "integer", "language",
    "long", "negativeInteger", "nonNegativeInteger", "nonPositiveInteger", "normalizedString",
    "positiveInteger", "short", "string", "time", "token", "unsignedByte", "unsignedInt",
    "unsignedLong", "unsignedShort",
)

#: EXI 1.0 §7.1.9: integers with a bounded range of at most this many values are n-bit.
MAX_NBIT_RANGE = 4096

_DATETIME_KINDS = ("dateTime", "time", "date", "gYearMonth", "gYear", "gMonthDay", "gDay", "gMonth")


class GeneratorError(Exception):
    """A schema construct the generator cannot translate (message names it)."""


def split_qname(name: str | None) -> tuple[str, str]:
    """``'{uri}local'`` or ``'local'`` → ``(uri, local)`` (uri ``''`` when absent)."""
    if not name:
        return "", ""
    if name.startswith("{"):
        uri, local = name[1:].split("}", 1)
        return uri, local
    return "", name


@dataclass(eq=False)
class Wildcard:
    """An ``xs:any`` / ``xs:anyAttribute``: ``kind`` 'any' (##any), 'not' (##other) or
    'list' (explicit namespaces, in ``uris``)."""

    kind: str
    uris: tuple = ()


@dataclass(eq=False)
class ElementDecl:
    """An element declaration; global ones are shared by every ``ref`` to them."""

    uri: str
    name: str
    type: "TypeDef"
    abstract: bool = False
    nillable: bool = False
    is_global: bool = False


@dataclass(eq=False)
class Group:
    """A model group: ``compositor`` is 'sequence', 'choice' or 'all'."""

    compositor: str
    particles: list


@dataclass(eq=False)
class Particle:
    """``term`` (ElementDecl, Wildcard or Group) with occurrence bounds (max None = unbounded)."""

    min: int
    max: int | None
    term: object


@dataclass(eq=False)
class AttributeUse:
    """An attribute use of a complex type."""

    uri: str
    name: str
    datatype: tuple
    required: bool


@dataclass(eq=False)
class TypeDef:
    """A type definition. ``content`` is 'simple' for simple types and complex types with
    simple content (``datatype`` set), else 'empty', 'element' or 'mixed' (``particle`` set
    for the last two)."""

    uri: str
    name: str | None
    is_simple: bool
    content: str
    datatype: tuple | None = None
    attributes: list = field(default_factory=list)
    attribute_wildcard: Wildcard | None = None
    particle: Particle | None = None


@dataclass
class SchemaModel:
    """Everything EXI needs from one schema set."""

    namespaces: list            # target namespaces of the loaded schema documents
    global_elements: list       # ElementDecl, in schema order
    named_types: dict           # (uri, name) -> TypeDef, including the XSD built-ins
    all_elements: list          # every ElementDecl (global and local)
    substitutes: dict           # head ElementDecl -> [member ElementDecl] (transitive)
    documents: list             # (path, text bytes) of the XSD files read


def datatype_of(st) -> tuple:
    """EXI datatype representation of an xmlschema simple type (EXI 1.0 §7.1, Table 7-1;
    enumerations §7.2, integers §7.1.5/§7.1.6/§7.1.9).

    Shapes: ('bool',) ('nbit', min, max) ('uint',) ('int',) ('decimal',) ('float',)
    ('datetime', kind) ('hex',) ('base64',) ('string',) ('enum', values) ('list', item).
    """
    if st.is_list():
        t = st
        while getattr(t, "item_type", None) is None:
            t = t.base_type
        return ("list", datatype_of(t.item_type))
    if st.is_union():
        return ("string",)
    if st.enumeration:
        if _primitive_name(st) in ("QName", "NOTATION"):
            return ("string",)
        return ("enum", tuple(_lexical(v) for v in st.enumeration))
    prim = _primitive_name(st)
    if _user_pattern(st):
        # EXI 1.0 §7.1.8 / §7.1.10: a schema pattern turns booleans into 2-bit values and
        # may restrict a string's character set; the V2G schemas use neither.
        raise GeneratorError(f"pattern facet not supported: {st}")
    if prim == "boolean":
        return ("bool",)
    if prim == "decimal":
        if not _derives_from_integer(st):
            return ("decimal",)
        lo, hi = _integer_bounds(st)
        if lo is not None and hi is not None and hi - lo + 1 <= MAX_NBIT_RANGE:
            return ("nbit", int(lo), int(hi))
        if lo is not None and lo >= 0:
            return ("uint",)
        return ("int",)
    if prim in ("float", "double"):
        return ("float",)
    if prim in _DATETIME_KINDS:
        return ("datetime", prim)
    if prim == "hexBinary":
        return ("hex",)
    if prim == "base64Binary":
        return ("base64",)
    return ("string",)


def _lexical(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _primitive_name(st) -> str:
    prim = getattr(st, "primitive_type", None)
    if prim is None:
        return "anySimpleType"
    return split_qname(prim.name)[1]


def _integer_bounds(st) -> tuple:
    """Effective (min, max) of an integer type from the bound facets of its whole
    derivation chain, exclusive bounds made inclusive; None where unbounded."""
    lo = hi = None
    t = st
    while t is not None:
        for name, facet in (getattr(t, "facets", None) or {}).items():
            v = getattr(facet, "value", None)
            if name is None or v is None:
                continue
            kind = split_qname(name)[1]
            if kind == "minInclusive" or kind == "minExclusive":
                v = int(v) + (kind == "minExclusive")
                lo = v if lo is None else max(lo, v)
            elif kind == "maxInclusive" or kind == "maxExclusive":
                v = int(v) - (kind == "maxExclusive")
                hi = v if hi is None else min(hi, v)
        t = getattr(t, "base_type", None)
    return lo, hi


def _user_pattern(st) -> bool:
    t = st
    while t is not None and split_qname(getattr(t, "name", None))[0] != XSD_NS:
        if f"{{{XSD_NS}}}pattern" in (getattr(t, "facets", None) or {}):
            return True
        t = getattr(t, "base_type", None)
    return False


def _derives_from_integer(st) -> bool:
    t = st
    while t is not None:
        uri, local = split_qname(getattr(t, "name", None))
        if uri == XSD_NS and local in ("integer", "nonNegativeInteger"):
            return True
        t = getattr(t, "base_type", None)
    return False


class _Reader:
    """Turns xmlschema components into model objects (memoised by identity)."""

    def __init__(self, schema):
        self.schema = schema
        self.types: dict[int, TypeDef] = {}
        self.elements: dict[int, ElementDecl] = {}
        self.all_elements: list[ElementDecl] = []
        self._keep = []  # keep xmlschema objects alive while their id() is used as a key

    def element(self, xe) -> ElementDecl:
        if getattr(xe, "ref", None) is not None:
            xe = xe.ref
        key = id(xe)
        if key in self.elements:
            return self.elements[key]
        self._keep.append(xe)
        uri, local = split_qname(xe.name)
        decl = ElementDecl(uri, local, None, bool(xe.abstract), bool(xe.nillable))
        self.elements[key] = decl
        self.all_elements.append(decl)
        decl.type = self.type(xe.type)
        return decl

    def type(self, xt) -> TypeDef:
        key = id(xt)
        if key in self.types:
            return self.types[key]
        self._keep.append(xt)
        uri, local = split_qname(xt.name)
        if xt.is_simple():
            td = TypeDef(uri, local or None, True, "simple", datatype_of(xt))
            self.types[key] = td
            return td
        td = TypeDef(uri, local or None, False, "empty")
        self.types[key] = td  # before recursing: types may be recursive
        for name, xa in xt.attributes.items():
            if name is None:
                td.attribute_wildcard = self.wildcard(xa)
                continue
            a_uri, a_local = split_qname(xa.name)
            td.attributes.append(AttributeUse(a_uri, a_local, datatype_of(xa.type),
                                              xa.use == "required"))
        if xt.has_simple_content():
            td.content = "simple"
            td.datatype = datatype_of(xt.content)
        elif xt.is_empty():
            td.content = "mixed" if xt.mixed else "empty"
            td.particle = Particle(1, 1, Group("sequence", [])) if xt.mixed else None
        else:
            td.content = "mixed" if xt.mixed else "element"
            td.particle = self.particle(xt.content)
        return td

    def wildcard(self, xw) -> Wildcard:
        ns = list(xw.namespace)
        if "##any" in ns:
            return Wildcard("any")
        if "##other" in ns or getattr(xw, "not_namespace", ()):
            return Wildcard("not")
        uris = []
        for n in ns:
            if n == "##targetNamespace":
                uris.append(xw.target_namespace or "")
            elif n == "##local":
                uris.append("")
            else:
                uris.append(n)
        return Wildcard("list", tuple(uris))

    def particle(self, x) -> Particle:
        mx = x.max_occurs
        if hasattr(x, "model"):  # XsdGroup
            return Particle(x.min_occurs, mx, Group(x.model, [self.particle(c) for c in x]))
        if type(x).__name__ == "XsdAnyElement":
            return Particle(x.min_occurs, mx, self.wildcard(x))
        return Particle(x.min_occurs, mx, self.element(x))


def load_schema_set(root: Path, uri_mapper) -> SchemaModel:
    """Read the schema set rooted at ``root``; imports are resolved from the XSD files,
    ``uri_mapper(url) -> url`` redirects the ones that point at missing files (xmldsig).

    Raises GeneratorError when xmlschema cannot build the schema.
    """
    import xmlschema

    try:
        schema = xmlschema.XMLSchema10(str(root), uri_mapper=uri_mapper)
    except Exception as e:  # xmlschema raises many kinds
        raise GeneratorError(f"cannot read {root}: {e}") from e
    reader = _Reader(schema)
    maps = schema.maps
    documents = []
    namespaces = []
    for ns, schemas in maps.namespaces.items():
        if ns in META_NAMESPACES:
            continue
        namespaces.append(ns)
        for s in schemas:
            url = s.url or ""
            if url.startswith("file://"):
                url = url[7:]
            documents.append(Path(url))
    global_elements = []
    for qn, xe in maps.elements.items():
        uri, _ = split_qname(qn)
        if uri in META_NAMESPACES:
            continue
        decl = reader.element(xe)
        decl.is_global = True
        global_elements.append(decl)
    named_types = {}
    for qn, xt in maps.types.items():
        uri, local = split_qname(qn)
        if uri == XSD_NS and local not in XSD_BUILTIN_NAMES:
            continue  # the meta-schema's own types (topLevelElement …)
        if uri in (XML_NS, XSI_NS):
            continue
        named_types[(uri, local)] = reader.type(xt)
    substitutes: dict[ElementDecl, list[ElementDecl]] = {}
    direct: dict[int, list] = {}
    for head_qn, members in maps.substitution_groups.items():
        head = reader.element(maps.elements[head_qn])
        direct[id(head)] = (head, [reader.element(m) for m in members])
    for key, (head, members) in direct.items():
        seen: list[ElementDecl] = []
        todo = list(members)
        while todo:
            m = todo.pop(0)
            if m in seen or m is head:
                continue
            seen.append(m)
            todo.extend(direct.get(id(m), (None, []))[1])
        substitutes[head] = seen
    return SchemaModel(namespaces, global_elements, named_types, reader.all_elements,
                       substitutes, sorted(set(documents)))
