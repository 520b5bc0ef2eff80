"""Regenerate the captures the project commits: one per scenario in samples/scenarios/, written
to samples/captures/NAME.pcapng — except the DIN 70121 DC scenario ``din_dc``, whose capture is
samples/din_dc_session.pcapng (the README quick start).

    python -m ccs_analyzer.samples.build            # rewrite them
    python -m ccs_analyzer.samples.build --check    # exit 1 if any differs from the committed file
    python -m ccs_analyzer.samples.build --out DIR  # write them elsewhere

Deterministic: the same scenario and seed give byte-identical files (tests/samples checks it).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from .scenario import scenario_names
from .simulate import simulate

HERE = Path(__file__).resolve().parent
CAPTURES = HERE / "captures"
#: Scenarios whose capture has a name of its own (relative to samples/).
SPECIAL = {"din_dc": "din_dc_session.pcapng"}


def capture_path(name: str, root: Path = HERE) -> Path:
    """Where the committed capture of scenario ``name`` lives (under ``root``)."""
    if name in SPECIAL:
        return root / SPECIAL[name]
    return root / "captures" / f"{name}.pcapng"


def build_all(root: Path = HERE, check: bool = False, names: list[str] | None = None, quiet: bool = False) -> list[str]:
    """Write (or with ``check`` compare) every scenario's capture; returns the names that
    differed (check) or were written."""
    out = []
    for name in names or scenario_names():
        data = simulate(name).pcapng
        path = capture_path(name, root)
        if check:
            if not path.exists() or path.read_bytes() != data:
                out.append(name)
                if not quiet:
                    print(f"{path}: differs from the scenario's simulation")
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        out.append(name)
        if not quiet:
            print(f"{path.relative_to(root) if path.is_relative_to(root) else path}: {len(data)} bytes")
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE), help="folder to write to (default: samples/)")
    ap.add_argument("--check", action="store_true", help="compare with the files instead of writing")
    ap.add_argument("names", nargs="*", help="only these scenarios")
    a = ap.parse_args(argv)
    root = Path(a.out)
    os.makedirs(root, exist_ok=True)
    differing = build_all(root, a.check, a.names or None)
    if a.check:
        print(f"{len(differing)} capture(s) differ" if differing else "all captures up to date")
        return 1 if differing else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
