"""arctern_client stands alone: it never imports the server package ``arctern``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import arctern_client

SCRIPT = """
import importlib, pkgutil, sys

class NoServer:
    def find_spec(self, name, path=None, target=None):
        if name == "arctern" or name.startswith("arctern."):
            raise ImportError(f"arctern_client imported the server package: {name}")
        return None

sys.meta_path.insert(0, NoServer())
import arctern_client
for module in pkgutil.iter_modules(arctern_client.__path__):
    importlib.import_module(f"arctern_client.{module.name}")
print("ok")
"""


def test_imports_without_the_server_package() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_every_module_has_a_docstring() -> None:
    package = Path(arctern_client.__file__).parent
    for path in package.glob("*.py"):
        text = path.read_text()
        assert text.startswith('"""'), f"{path.name} lacks a module docstring"
