"""MAC address → vendor, from Wireshark's ``manuf`` file when it is installed.

The file lists IEEE assignments as ``00:1B:C5<TAB>ShortName<TAB>Long Name`` lines, some with
a mask (``00:1B:C5:09:00/36``) for MA-M / MA-S blocks. Without the file (or for an address
it does not list) the vendor is the OUI itself (``dc:0e:a1``); locally administered
addresses (second bit of the first octet set, as most simulators and some EVs use) say so.
"""
from __future__ import annotations

import os
from functools import lru_cache

MANUF_PATHS = ("/usr/share/wireshark/manuf", "/usr/local/share/wireshark/manuf",
               "/opt/homebrew/share/wireshark/manuf")


@lru_cache(maxsize=1)
def _text() -> str:
    """The manuf file's text (read once; "" without the file). Its prefixes are upper-case
    hex, which is how :func:`_lookup` searches them."""
    path = next((p for p in MANUF_PATHS if os.path.isfile(p)), None)
    if path is None:
        return ""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return "\n" + f.read()
    except OSError:
        return ""


def _name_of(line: str) -> str:
    parts = line.split("\t")
    name = parts[2] if len(parts) > 2 and parts[2].strip() else parts[1] if len(parts) > 1 else ""
    return name.strip()


@lru_cache(maxsize=4096)
def _lookup(hexd: str) -> str | None:
    """The manuf entry for 12 hex digits: the longest matching block (MA-S /36, MA-M /28,
    then the MA-L OUI). Searches the file's text instead of parsing all of it (a lookup
    costs microseconds; parsing the whole file costs ~0.3 s)."""
    text = _text()
    if not text:
        return None
    pretty = ":".join(hexd[i:i + 2] for i in range(0, 12, 2)).upper()
    # masked blocks: lines "XX:XX:XX:XX:X0:00/36" — try the two block sizes IEEE uses
    for nbits in (36, 28):
        digits = nbits // 4
        block = hexd[:digits].upper() + "0" * (12 - digits)
        key = "\n" + ":".join(block[i:i + 2] for i in range(0, 12, 2)) + f"/{nbits}\t"
        i = text.find(key)
        if i >= 0:
            end = text.find("\n", i + 1)
            return _name_of(text[i + 1:end])
    i = text.find("\n" + pretty[:8] + "\t")
    if i >= 0:
        end = text.find("\n", i + 1)
        return _name_of(text[i + 1:end])
    return None


def vendor(mac: str | None) -> str | None:
    """The vendor of a MAC address (Wireshark's manuf), else its OUI ``aa:bb:cc``; None for
    no address."""
    if not mac:
        return None
    hexd = mac.replace(":", "").replace("-", "").lower()
    if len(hexd) != 12:
        return mac
    try:
        value = int(hexd, 16)
    except ValueError:
        return mac
    name = _lookup(hexd)
    if name:
        return name
    oui = ":".join(hexd[i:i + 2] for i in (0, 2, 4))
    if int(hexd[:2], 16) & 0x02:
        return f"{oui} (locally administered)"
    return oui
