"""Where the XSDs come from and which schema sets are generated.

The schemas travel in the PyPI wheel ``iso15118==0.31.2`` (folder
``iso15118/shared/schemas``); `wheel_schemas()` fetches it with ``pip download`` into a cache
directory and unpacks the schema folder. A local copy can be used instead (``--schemas``).

`SCHEMA_SETS`: one generated grammar module per namespace the V2G streams are encoded with.
"""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ..namespaces import (NS_APP_PROTOCOL, NS_DIN, NS_ISO2, NS_ISO20_AC, NS_ISO20_ACDP, NS_ISO20_CM,
                          NS_ISO20_DC, NS_ISO20_WPT)
from ..namespaces import NS_XMLDSIG as XMLDSIG_NS

WHEEL = "iso15118==0.31.2"
WHEEL_SCHEMA_DIR = "iso15118/shared/schemas/"
XMLDSIG_FILE = "xmldsig-core-schema.xsd"


@dataclass(frozen=True)
class SchemaSet:
    """One schema set: generated module name, the namespace streams name, root XSD."""

    module: str
    namespace: str
    root: str
    title: str


SCHEMA_SETS = (
    SchemaSet("app_protocol", NS_APP_PROTOCOL, "V2G_CI_AppProtocol.xsd",
              "SupportedAppProtocol"),
    SchemaSet("din70121", NS_DIN, "din_spec/V2G_CI_MsgDef.xsd",
              "DIN SPEC 70121"),
    SchemaSet("iso15118_2", NS_ISO2, "iso15118_2/V2G_CI_MsgDef.xsd",
              "ISO 15118-2"),
    SchemaSet("iso15118_20_cm", NS_ISO20_CM,
              "iso15118_20/V2G_CI_CommonMessages.xsd", "ISO 15118-20 CommonMessages"),
    SchemaSet("iso15118_20_ac", NS_ISO20_AC, "iso15118_20/V2G_CI_AC.xsd",
              "ISO 15118-20 AC"),
    SchemaSet("iso15118_20_dc", NS_ISO20_DC, "iso15118_20/V2G_CI_DC.xsd",
              "ISO 15118-20 DC"),
    SchemaSet("iso15118_20_acdp", NS_ISO20_ACDP,
              "iso15118_20/V2G_CI_ACDP.xsd", "ISO 15118-20 ACDP"),
    SchemaSet("iso15118_20_wpt", NS_ISO20_WPT, "iso15118_20/V2G_CI_WPT.xsd",
              "ISO 15118-20 WPT"),
)


def default_cache() -> Path:
    """~/.cache/ccs-analyzer (or $XDG_CACHE_HOME/ccs-analyzer)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ccs-analyzer"


def wheel_schemas(cache: Path | None = None) -> Path:
    """The schema folder of the iso15118 wheel, downloaded once into ``cache``.

    Raises RuntimeError when pip cannot fetch the wheel.
    """
    cache = cache or default_cache()
    target = cache / "iso15118-0.31.2-schemas"
    if (target / "V2G_CI_AppProtocol.xsd").is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", tmp, WHEEL]
        done = subprocess.run(cmd, capture_output=True, text=True)
        wheels = list(Path(tmp).glob("iso15118-*.whl"))
        if done.returncode != 0 or not wheels:
            raise RuntimeError(f"pip download {WHEEL} failed: {done.stderr.strip()[-500:]}")
        staging = Path(tmp) / "schemas"
        with zipfile.ZipFile(wheels[0]) as zf:
            for name in zf.namelist():
                if name.startswith(WHEEL_SCHEMA_DIR) and name.endswith(".xsd"):
                    dest = staging / name[len(WHEEL_SCHEMA_DIR):]
                    dest.parent.mkdir(parents=True, exist_ok=True)
                    dest.write_bytes(zf.read(name))
        staging.rename(target)
    return target


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def xmldsig_mapper(schema_dir: Path):
    """URI mapper for xmlschema: the DIN and ISO-20 folders import the xmldsig schema from
    their own folder, where the wheel has no copy; point them at the top-level file."""
    target = (schema_dir / XMLDSIG_FILE).resolve()

    def mapper(url: str) -> str:
        path = url[7:] if url.startswith("file://") else url
        if path.endswith("/" + XMLDSIG_FILE) and not Path(path).is_file():
            return str(target)
        return url
    return mapper
