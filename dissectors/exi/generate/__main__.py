"""Command line: ``python -m ccs_analyzer.dissectors.exi.generate [--schemas DIR] [--out DIR]``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import GeneratorError, default_out_dir, generate


def main(argv: list[str] | None = None) -> int:
    """Regenerate the grammar tables; exit status 0 on success, 1 on failure."""
    ap = argparse.ArgumentParser(
        prog="python -m ccs_analyzer.dissectors.exi.generate",
        description="Generate the EXI grammar tables from the V2G XSDs.")
    ap.add_argument("--schemas", type=Path, default=None,
                    help="folder with the XSDs (default: download the iso15118==0.31.2 wheel)")
    ap.add_argument("--out", type=Path, default=None,
                    help=f"output folder (default: {default_out_dir()})")
    a = ap.parse_args(argv)
    try:
        for path in generate(a.schemas, a.out):
            print(path)
    except (GeneratorError, RuntimeError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
