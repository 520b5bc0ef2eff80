"""Generated grammar tables, one module per schema namespace (see ../generate/); do not edit.

Regenerate with ``python -m ccs_analyzer.dissectors.exi.generate``.
"""
