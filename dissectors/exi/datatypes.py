"""Typed values: EXI datatype representations (EXI 1.0 §7.1, §7.2) ↔ decoded-tree values.

A runtime datatype is a tuple whose first item is one of the ``DT_*`` codes:
(DT_NBIT, width, min, max), (DT_BOOL, 1), (DT_ENUM, width, names), (DT_UINT,), (DT_INT,),
(DT_STRING,), (DT_HEX,), (DT_B64,), (DT_DECIMAL,), (DT_FLOAT,), (DT_DATETIME, kind),
(DT_LIST, item). `runtime_datatype` builds it from a generated table entry.

Tree values (docs/architecture.md): int for integer types, bool, the enumeration value's
name, lowercase hex for hexBinary and base64Binary, str for strings; decimal, float,
date-time and list values as their lexical form (str).

`decode_value(big, end, pos, dt)` → (value, pos) and raises bitstream.Malformed;
`encode_value(dt, value, writer, path)` raises ExiEncodeError for a value the type cannot
hold.
"""
from __future__ import annotations

import re

from .bitstream import (BitWriter, Malformed, read_binary, read_bits, read_int, read_uint,
                        read_value_string)
from .errors import ExiEncodeError

# n-bit, boolean and enumeration come first: the decoder reads those (fixed-width) values
# together with their event codes when their code is <= DT_ENUM
DT_NBIT, DT_BOOL, DT_ENUM, DT_UINT, DT_INT, DT_STRING, DT_HEX, DT_B64, DT_DECIMAL, \
    DT_FLOAT, DT_DATETIME, DT_LIST = range(12)

# positions in a runtime datatype tuple (module docstring)
D_KIND = 0          # every datatype: its DT_* code
D_WIDTH = 1         # n-bit, boolean, enumeration: bits of the value
D_MIN, D_MAX = 2, 3  # n-bit: the value's bounds (the bits hold value - min)
D_NAMES = 2         # enumeration: the value names in index order
D_ITEM = 1          # list: the items' datatype
D_FORM = 1          # date-time: which type ("dateTime", "date", "gYear", …)

FLOAT_SPECIAL_EXPONENT = -(1 << 14)   # §7.1.4: exponent -2^14 marks INF, -INF, NaN
TZ_OFFSET = 896                       # §7.1.8: time zone (h*64 + m) + 14*64
YEAR_OFFSET = 2000                    # §7.1.8: Year is stored as year - 2000

#: §7.1.8 Table 7-3: which components each date-time type has
DATETIME_PARTS = {
    "gYear": ("year",), "gYearMonth": ("year", "monthday"), "date": ("year", "monthday"),
    "dateTime": ("year", "monthday", "time", "frac"), "gMonth": ("monthday",),
    "gMonthDay": ("monthday",), "gDay": ("monthday",), "time": ("time", "frac"),
}

#: XML Schema Part 2 §3.2.7-§3.2.14: the lexical form of each date-time type (without its
#: time zone; ``year`` already formatted, ``frac`` "" or "." and the fraction digits)
DATETIME_LEXICAL = {
    "gYear": "{year}", "gYearMonth": "{year}-{month:02d}", "date": "{year}-{month:02d}-{day:02d}",
    "dateTime": "{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{frac}",
    "gMonth": "--{month:02d}", "gMonthDay": "--{month:02d}-{day:02d}", "gDay": "---{day:02d}",
    "time": "{hour:02d}:{minute:02d}:{second:02d}{frac}",
}


def bit_width(n: int) -> int:
    """ceil(log2(n)) bits for n distinct values, 0 when n <= 1 (§7.1.9)."""
    return (n - 1).bit_length() if n > 1 else 0


def runtime_datatype(spec: tuple) -> tuple:
    """Runtime datatype from a generated ``DATATYPES`` entry (generate/model.py shapes)."""
    kind = spec[0]
    if kind == "nbit":
        mn, mx = spec[1], spec[2]
        return (DT_NBIT, bit_width(mx - mn + 1), mn, mx)
    if kind == "enum":
        return (DT_ENUM, bit_width(len(spec[1])), tuple(spec[1]))
    if kind == "list":
        return (DT_LIST, runtime_datatype(spec[1]))
    if kind == "datetime":
        return (DT_DATETIME, spec[1])
    if kind == "bool":
        return (DT_BOOL, 1)
    return ({"uint": DT_UINT, "int": DT_INT, "string": DT_STRING,
             "hex": DT_HEX, "base64": DT_B64, "decimal": DT_DECIMAL,
             "float": DT_FLOAT}[kind],)


# -- decoding ------------------------------------------------------------------------------
def decode_value(big: int, end: int, pos: int, dt: tuple):
    """One value of datatype ``dt`` at ``pos`` → (tree value, new pos)."""
    k = dt[D_KIND]
    if k == DT_NBIT:
        v, pos = read_bits(big, end, pos, dt[D_WIDTH])
        return v + dt[D_MIN], pos
    if k == DT_BOOL:
        pos += 1
        return bool((big >> (end - pos)) & 1), pos
    if k == DT_ENUM:
        start = pos
        names = dt[D_NAMES]
        i, pos = read_bits(big, end, pos, dt[D_WIDTH])
        if i >= len(names):
            raise Malformed(f"enumeration index {i} out of range ({len(names)} values)", start)
        return names[i], pos
    if k == DT_UINT:
        return read_uint(big, end, pos)
    if k == DT_INT:
        return read_int(big, end, pos)
    if k == DT_STRING:
        return read_value_string(big, end, pos)
    if k == DT_HEX or k == DT_B64:
        b, pos = read_binary(big, end, pos)
        return b.hex(), pos
    if k == DT_DECIMAL:
        return _read_decimal(big, end, pos)
    if k == DT_FLOAT:
        return _read_float(big, end, pos)
    if k == DT_DATETIME:
        return _read_datetime(dt[D_FORM], big, end, pos)
    if k == DT_LIST:
        start = pos
        n, pos = read_uint(big, end, pos)
        if n > end - pos:  # every item takes at least one bit
            raise Malformed(f"list of {n} items exceeds the {end - pos} bits left", start, True)
        items = []
        for _ in range(n):
            v, pos = decode_value(big, end, pos, dt[D_ITEM])
            items.append(lexical(dt[D_ITEM], v))
        return " ".join(items), pos
    raise Malformed(f"unknown datatype {dt!r}", pos)


def lexical(dt: tuple, value) -> str:
    """XML Schema lexical form of a tree value (list items, untyped fallbacks)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_decimal(big, end, pos):
    pos += 1
    neg = (big >> (end - pos)) & 1
    integral, pos = read_uint(big, end, pos)
    frac, pos = read_uint(big, end, pos)
    return f"{'-' if neg else ''}{integral}.{str(frac)[::-1]}", pos


def _read_float(big, end, pos):
    mant, pos = read_int(big, end, pos)
    exp, pos = read_int(big, end, pos)
    if exp == FLOAT_SPECIAL_EXPONENT:
        return ("INF" if mant == 1 else "-INF" if mant == -1 else "NaN"), pos
    return f"{mant}E{exp}", pos


def _read_datetime(kind, big, end, pos):
    parts = DATETIME_PARTS[kind]
    year = month = day = hour = minute = second = None
    frac = ""
    if "year" in parts:
        y, pos = read_int(big, end, pos)
        year = y + YEAR_OFFSET
    if "monthday" in parts:
        md, pos = read_bits(big, end, pos, 9)
        month, day = md >> 5, md & 31
    if "time" in parts:
        t, pos = read_bits(big, end, pos, 17)
        hour, minute, second = t >> 12, (t >> 6) & 63, t & 63
        pos += 1
        if (big >> (end - pos)) & 1:
            f, pos = read_uint(big, end, pos)
            frac = "." + str(f)[::-1]
    pos += 1
    tz = ""
    if (big >> (end - pos)) & 1:
        z, pos = read_bits(big, end, pos, 11)
        z -= TZ_OFFSET
        if z == 0:
            tz = "Z"
        else:
            sign = "-" if z < 0 else "+"
            z = abs(z)
            tz = f"{sign}{z >> 6:02d}:{z & 63:02d}"
    ys = ""
    if year is not None:
        ys = f"-{-year:04d}" if year < 0 else f"{year:04d}"
    s = DATETIME_LEXICAL[kind].format(year=ys, month=month, day=day, hour=hour, minute=minute,
                                      second=second, frac=frac)
    return s + tz, pos


# -- encoding ------------------------------------------------------------------------------
def _fail(reason: str, path: str):
    raise ExiEncodeError(reason, path)


def encode_value(dt: tuple, value, w: BitWriter, path: str) -> None:
    """Write ``value`` as datatype ``dt``; ExiEncodeError (naming ``path``) if it cannot."""
    k = dt[D_KIND]
    if k == DT_NBIT:
        if type(value) is not int:
            _fail(f"expected an integer, got {value!r}", path)
        if not dt[D_MIN] <= value <= dt[D_MAX]:
            _fail(f"{value} outside [{dt[D_MIN]}, {dt[D_MAX]}]", path)
        w.bits(value - dt[D_MIN], dt[D_WIDTH])
    elif k == DT_BOOL:
        if not isinstance(value, bool):
            _fail(f"expected a boolean, got {value!r}", path)
        w.bits(1 if value else 0, 1)
    elif k == DT_ENUM:
        try:
            i = dt[D_NAMES].index(value)
        except ValueError:
            _fail(f"{value!r} is not one of {', '.join(dt[D_NAMES])}", path)
        w.bits(i, dt[D_WIDTH])
    elif k == DT_UINT:
        if type(value) is not int or value < 0:
            _fail(f"expected a non-negative integer, got {value!r}", path)
        w.uint(value)
    elif k == DT_INT:
        if type(value) is not int:
            _fail(f"expected an integer, got {value!r}", path)
        w.int(value)
    elif k == DT_STRING:
        if not isinstance(value, str):
            _fail(f"expected a string, got {value!r}", path)
        if any(0xD800 <= ord(c) <= 0xDFFF for c in value):
            _fail("string holds a surrogate code point", path)
        w.value_string(value)
    elif k == DT_HEX or k == DT_B64:
        w.binary(_binary(value, path))
    elif k == DT_DECIMAL:
        _write_decimal(value, w, path)
    elif k == DT_FLOAT:
        _write_float(value, w, path)
    elif k == DT_DATETIME:
        _write_datetime(dt[D_FORM], value, w, path)
    elif k == DT_LIST:
        items = value.split() if isinstance(value, str) else list(value)
        w.uint(len(items))
        for i, item in enumerate(items):
            encode_value(dt[D_ITEM], parse_lexical(dt[D_ITEM], item, f"{path}[{i}]"), w,
                         f"{path}[{i}]")
    else:
        _fail(f"unknown datatype {dt!r}", path)


def parse_lexical(dt: tuple, s, path: str):
    """A list item's lexical form → the tree value `encode_value` expects."""
    if not isinstance(s, str):
        return s
    k = dt[D_KIND]
    try:
        if k in (DT_NBIT, DT_UINT, DT_INT):
            return int(s)
        if k == DT_BOOL:
            return {"true": True, "1": True, "false": False, "0": False}[s]
    except (ValueError, KeyError):
        _fail(f"{s!r} is not a valid list item", path)
    return s


def _binary(value, path: str) -> bytes:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        try:
            return bytes.fromhex(value)
        except ValueError:
            pass
    _fail(f"expected bytes or a hex string, got {value!r}", path)


_DECIMAL_RE = re.compile(r"^\s*([+-]?)(\d*)(?:\.(\d*))?\s*$")


def _write_decimal(value, w: BitWriter, path: str) -> None:
    m = _DECIMAL_RE.match(str(value)) if not isinstance(value, bool) else None
    if not m or not (m.group(2) or m.group(3)):
        _fail(f"{value!r} is not a decimal", path)
    sign, integral, frac = m.group(1), m.group(2) or "0", (m.group(3) or "").rstrip("0")
    w.bits(1 if sign == "-" else 0, 1)
    w.uint(int(integral))
    w.uint(int(frac[::-1]) if frac else 0)


_FLOAT_RE = re.compile(r"^\s*([+-]?\d+)(?:\.(\d*))?(?:[eE]([+-]?\d+))?\s*$")


def _write_float(value, w: BitWriter, path: str) -> None:
    s = str(value).strip() if not isinstance(value, bool) else ""
    if s in ("INF", "-INF", "NaN"):
        w.int({"INF": 1, "-INF": -1, "NaN": 0}[s])
        w.int(FLOAT_SPECIAL_EXPONENT)
        return
    m = _FLOAT_RE.match(s)
    if not m:
        _fail(f"{value!r} is not a float", path)
    ip, fp, ep = m.group(1), (m.group(2) or "").rstrip("0"), int(m.group(3) or 0)
    mant = int(ip + fp) if not ip.startswith("-") else -int(ip[1:] + fp)
    w.int(mant)
    w.int(ep - len(fp))


_DT_RE = re.compile(
    r"^(?P<year>-?\d{4,})?(?:-(?P<month>\d\d))?(?:-(?P<day>\d\d))?"
    r"(?:T?(?P<h>\d\d):(?P<mi>\d\d):(?P<s>\d\d)(?:\.(?P<f>\d+))?)?"
    r"(?P<tz>Z|[+-]\d\d:\d\d)?$")


def _write_datetime(kind: str, value, w: BitWriter, path: str) -> None:
    s = str(value).strip()
    if kind in ("gMonth", "gMonthDay"):
        s = s[1:] if s.startswith("--") else s   # "--MM-DD" → "-MM-DD"
    elif kind == "gDay":
        s = "-00-" + s[3:] if s.startswith("---") else s  # "---DD": month 0
    m = _DT_RE.match(s)
    if not m:
        _fail(f"{value!r} is not a {kind}", path)
    g = m.groupdict()
    parts = DATETIME_PARTS[kind]
    try:
        if "year" in parts:
            w.int(int(g["year"]) - YEAR_OFFSET)
        if "monthday" in parts:
            month = int(g["month"] or 0)
            day = int(g["day"] or 0)
            w.bits(month * 32 + day, 9)
        if "time" in parts:
            w.bits(((int(g["h"]) * 64) + int(g["mi"])) * 64 + int(g["s"]), 17)
            frac = (g["f"] or "").rstrip("0")
            w.bits(1 if frac else 0, 1)
            if frac:
                w.uint(int(frac[::-1]))
    except (TypeError, ValueError):
        _fail(f"{value!r} is not a {kind}", path)
    tz = g["tz"]
    w.bits(1 if tz else 0, 1)
    if tz:
        z = 0 if tz == "Z" else (int(tz[1:3]) * 64 + int(tz[4:6])) * (-1 if tz[0] == "-" else 1)
        w.bits(z + TZ_OFFSET, 11)
