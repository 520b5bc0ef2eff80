"""ccs-analyzer: messages → sessions and timeline; the rule engine; the CLI."""
try:
    from importlib.metadata import version as _version

    __version__ = _version("ccs-analyzer")
except Exception:  # running from a source tree that is not installed
    __version__ = "0+unknown"
