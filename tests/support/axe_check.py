"""Accessibility checks in the browser tests: axe-core (pinned in ``tests/support/axe``)
injected into the page by Playwright.

``serious_violations(page)`` runs axe on the page as it is and returns the violations of
impact "serious" or "critical" (id, help text and the offending elements), for assertions
that list what is wrong.
"""

from __future__ import annotations

import fcntl
import subprocess
from pathlib import Path
from typing import Any

from playwright.sync_api import Page

HERE = Path(__file__).parent / "axe"
SCRIPT = HERE / "node_modules" / "axe-core" / "axe.min.js"


def install() -> None:
    """``npm ci`` once (``scripts/system-deps`` does it too)."""
    with (HERE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not SCRIPT.exists():
            subprocess.run(
                ["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"],
                cwd=HERE,
                check=True,
                timeout=600,
            )


def serious_violations(page: Page) -> list[dict[str, Any]]:
    install()
    page.add_script_tag(path=str(SCRIPT))
    result = page.evaluate(
        """async () => {
            const found = await axe.run(document, {resultTypes: ["violations"]});
            return found.violations.map(v => ({
                id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.slice(0, 5).map(n => n.target.join(" ") + " :: " + n.failureSummary),
            }));
        }"""
    )
    return [v for v in result if v["impact"] in ("serious", "critical")]
