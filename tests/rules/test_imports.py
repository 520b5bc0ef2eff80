"""The rule pack's import structure (DESIGN.md "One-way data flow", "Causes, outcomes,
verdicts"): the per-session views several rules share live in analyzer/views/, so a rule
module imports nothing private from another rule family and no other family's module at all —
only its own family's modules (a package such as rules/slac/ shares code through its
common.py), the pack's support modules (base, helpers), its data tables and the analyzer's
views.
The views read the rules' data tables, never a rule module. Checked on the source with ast
(imports inside functions count too)."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from ccs_analyzer.rules import RULE_MODULES

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "rules"
VIEWS = REPO / "analyzer" / "views"
#: rules/ modules that are not rule modules: the base classes, the helpers, the data tables.
SUPPORT = {"base", "helpers"}
DATA_TABLES = {"state_machines", "timing_tables", "slac_timers", "causes", "failure_modes"}


def imports(path: Path, package: str) -> list[tuple[str, str, int]]:
    """(imported module, imported name — "" for ``import module`` —, line) of a source file;
    relative imports resolved against ``package`` (``ccs_analyzer.rules``)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out += [(a.name, "", node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                mod = f"{base}.{node.module}" if node.module else base
            else:
                mod = node.module or ""
            for a in node.names:
                if node.module is None:          # from . import x: x is a module
                    out.append((f"{mod}.{a.name}", "", node.lineno))
                else:
                    out.append((mod, a.name, node.lineno))
    return out


def rules_module(mod: str) -> str | None:
    """The rule family (module or package of rules/) of a module: ``helpers`` for
    ``ccs_analyzer.rules.helpers``, ``slac`` for ``ccs_analyzer.rules.slac.timers`` (None
    outside the rule pack)."""
    prefix = "ccs_analyzer.rules."
    return mod[len(prefix):].split(".")[0] if mod.startswith(prefix) else None


#: Every module of rules/ by dotted name (``sdp``, ``slac.timers``, ``slac.common``).
MODULES = sorted(".".join(p.relative_to(RULES).with_suffix("").parts)
                 for p in RULES.rglob("*.py") if p.name != "__init__.py")
#: The rule families: rules/ modules and packages that hold rules.
FAMILIES = {name.split(".")[0] for name in RULE_MODULES}


def _path(name: str) -> Path:
    return RULES.joinpath(*name.split(".")).with_suffix(".py")


def _package(name: str) -> str:
    """The package relative imports of module ``name`` resolve against."""
    return ".".join(["ccs_analyzer.rules", *name.split(".")[:-1]])


def test_the_pack_is_what_the_checks_assume():
    present = set(MODULES)
    assert set(RULE_MODULES) <= present
    packaged = {m for m in present - set(RULE_MODULES) if "." in m}
    assert {m.rsplit(".", 1)[1] for m in packaged} <= {"common"}, \
        "a new module in a rule package: a rule module (RULE_MODULES) or its common.py?"
    assert {m.split(".")[0] for m in packaged} <= FAMILIES
    assert present - set(RULE_MODULES) - packaged == SUPPORT | DATA_TABLES, \
        "a new module in rules/: a rule module (RULE_MODULES), support or a data table?"


@pytest.mark.parametrize("name", MODULES)
def test_no_private_name_from_another_rule_module(name):
    family = name.split(".")[0]
    bad = [f"line {line}: {name2} from {mod}"
           for mod, name2, line in imports(_path(name), _package(name))
           if rules_module(mod) not in (None, family) and name2.startswith("_")
           and not name2.startswith("__")]
    assert not bad, f"rules/{name}.py imports private names of other rule modules: {bad}"


@pytest.mark.parametrize("name", RULE_MODULES)
def test_rule_modules_import_no_other_rule_module(name):
    family = name.split(".")[0]
    bad = [f"line {line}: {mod}" for mod, _, line in imports(_path(name), _package(name))
           if rules_module(mod) in FAMILIES - {family}]
    assert not bad, (f"rules/{name}.py imports another rule family's module (shared machinery "
                     f"belongs in analyzer/views/): {bad}")


@pytest.mark.parametrize("path", sorted(VIEWS.glob("*.py")), ids=lambda p: p.name)
def test_views_read_only_the_rules_data_tables(path):
    used = {rules_module(mod) for mod, _, _ in imports(path, "ccs_analyzer.analyzer.views")}
    used.discard(None)
    assert used <= DATA_TABLES, f"analyzer/views/{path.name} imports rule modules {used - DATA_TABLES}"


def test_the_checks_see_what_they_look_for(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("from .charging_loop import _cached, excerpt\nfrom . import slac\n"
                     "def f():\n    from ccs_analyzer.rules.limits import loop_table\n",
                     encoding="utf-8")
    got = imports(probe, "ccs_analyzer.rules")
    assert ("ccs_analyzer.rules.charging_loop", "_cached", 1) in got
    assert ("ccs_analyzer.rules.slac", "", 2) in got
    assert ("ccs_analyzer.rules.limits", "loop_table", 4) in got
