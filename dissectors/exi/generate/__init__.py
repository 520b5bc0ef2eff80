"""Generator of the EXI grammar tables from the V2G XSDs (run ``python -m`` on this package).

Reads each schema set with ``xmlschema`` (model.py), builds its schema-informed EXI grammars
(builder.py, automaton.py), flattens and minimises them (tables.py) and writes one Python
module per namespace into ``dissectors/exi/grammars/`` (writer.py). The runtime codec only
imports those modules; it never needs xmlschema.

`build_module(schema_set, schema_dir)` → module text; `generate(schema_dir, out_dir)` writes
every module and returns their paths. Both raise GeneratorError / RuntimeError on failure.
"""
from __future__ import annotations

from pathlib import Path

from .builder import GrammarSet
from .model import GeneratorError, load_schema_set
from .sources import SCHEMA_SETS, SchemaSet, wheel_schemas, xmldsig_mapper
from .tables import Tables
from .writer import render

__all__ = ["GeneratorError", "SCHEMA_SETS", "build_module", "generate", "default_out_dir"]


def default_out_dir() -> Path:
    """The package's ``grammars`` folder."""
    return Path(__file__).resolve().parent.parent / "grammars"


def build_module(ss: SchemaSet, schema_dir: Path) -> str:
    """Generated module text of one schema set read from ``schema_dir``."""
    model = load_schema_set(schema_dir / ss.root, xmldsig_mapper(schema_dir))
    gs = GrammarSet(model)
    gs.build()
    return render(ss, schema_dir, Tables(gs), model.documents)


def generate(schema_dir: Path | None = None, out_dir: Path | None = None) -> list[Path]:
    """Write every schema set's module; ``schema_dir`` None fetches the iso15118 wheel."""
    schema_dir = Path(schema_dir) if schema_dir else wheel_schemas()
    out_dir = Path(out_dir) if out_dir else default_out_dir()
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for ss in SCHEMA_SETS:
        path = out_dir / f"{ss.module}.py"
        path.write_text(build_module(ss, schema_dir), encoding="utf-8")
        written.append(path)
    return written
