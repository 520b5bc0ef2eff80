"""The fleet page: ``ccs-analyzer fleet STORE --format html`` — one self-contained, offline
HTML file (no CDN, no script; the report's CSS inline, allowed by hash) with the answers of
:func:`ccs_analyzer.analyzer.fleet.fleet_summary`. Its sections (templates/fleet_body.html.j2)
are the report browser's batch summary when the served folder has a store.
"""
from __future__ import annotations

import os

from .html_report import _ENV, asset, csp_hash

#: The stylesheets of the page, in order (templates/).
CSS = ("report.css", "fleet.css")


def fleet_css() -> str:
    """The page's CSS: the report's look (report.css) and the fleet tables' (fleet.css)."""
    return "".join(asset(name) for name in CSS)


def render_fleet_html(summary: dict) -> str:
    """The fleet page of a :func:`fleet_summary` dict, as a string. The
    Content-Security-Policy allows only the page's own inline style (by hash)."""
    from ccs_analyzer.analyzer import __version__

    css = fleet_css()
    csp = f"default-src 'none'; style-src {csp_hash(css)}; img-src data:; base-uri 'none'; form-action 'none'"
    return _ENV.get_template("fleet.html.j2").render(s=summary, css=css, csp=csp, version=__version__)


def write_fleet_html(summary: dict, path: str | os.PathLike) -> str:
    """Write the fleet page to ``path`` (UTF-8); return the path."""
    text = render_fleet_html(summary)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return os.fspath(path)


__all__ = ["render_fleet_html", "write_fleet_html", "fleet_css"]
