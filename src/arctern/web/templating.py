"""One Jinja2 environment for every page, so auth pages and web pages share the layout."""

from __future__ import annotations

from pathlib import Path

from fastapi.templating import Jinja2Templates
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape

WEB_TEMPLATES = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


def make_templates(*extra_dirs: Path) -> Jinja2Templates:
    """Templates from ``extra_dirs`` first, then the shared web templates (``base.html``)."""
    loader = ChoiceLoader([FileSystemLoader(str(d)) for d in (*extra_dirs, WEB_TEMPLATES)])
    env = Environment(loader=loader, autoescape=select_autoescape(["html"]))
    return Jinja2Templates(env=env)
