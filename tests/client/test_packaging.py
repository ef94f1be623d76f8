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


def test_the_wheel_make_dist_builds_installs_server_and_client(tmp_path: Path) -> None:
    """The README's install route for machines without the checkout: ``make dist``'s wheel,
    installed with the ``client`` extra into an empty environment, brings the command, the
    server's pages and migrations, and the notebook client."""
    project = Path(__file__).resolve().parents[2]
    uv = Path(sys.executable).parent / "uv"
    built = subprocess.run(
        [uv, "build", "--wheel", "--out-dir", tmp_path / "dist", project],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("arctern-*-py3-none-any.whl")
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "-q", venv, "--python", sys.executable], check=True, timeout=120)
    python = venv / "bin" / "python"
    installed = subprocess.run(
        [uv, "pip", "install", "-q", "--python", python,
         "--constraint", project / "requirements.lock", f"{wheel}[client]"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stderr
    check = """
import importlib.resources as r
import arctern_client, globus_sdk
assert r.files("arctern.web").joinpath("static/arctern.css").is_file()
assert r.files("arctern.db.migrations").joinpath("versions/0001_initial.py").is_file()
print(arctern_client.connect.__doc__.split()[0])
"""
    ran = subprocess.run([python, "-c", check], capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip()
    helped = subprocess.run(
        [venv / "bin" / "arctern", "--help"], capture_output=True, text=True, timeout=120
    )
    assert helped.returncode == 0, helped.stderr
    assert "serve" in helped.stdout
