"""The example deployment files of docs/deploy are valid and run: settings they name exist,
units use real flags, and the example config file drives ``arctern serve`` and ``arctern worker``
on PostgreSQL without any command-line option."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import typer

from arctern.cli.main import app
from arctern.config import Settings
from tests.support.postgres import PostgresCluster
from tests.support.server import ARCTERN, free_port

DEPLOY = Path(__file__).resolve().parents[2] / "docs" / "deploy"

pytestmark = pytest.mark.timeout(120)


def example_settings() -> dict[str, object]:
    data = tomllib.loads((DEPLOY / "arctern.toml").read_text())
    return dict(data["arctern"])


def test_example_config_and_secrets_name_only_real_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    values = example_settings()
    # Settings ignore unknown keys, so a typo would silently do nothing.
    assert set(values) <= set(Settings.model_fields), set(values) - set(Settings.model_fields)
    for line in (DEPLOY / "secrets.env").read_text().splitlines():
        if line and not line.startswith("#"):
            name = line.split("=", 1)[0]
            assert name.startswith("ARCTERN_")
            assert name.removeprefix("ARCTERN_").lower() in Settings.model_fields, name
    for name in [n for n in os.environ if n.startswith("ARCTERN_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("ARCTERN_CONFIG", str(DEPLOY / "arctern.toml"))
    settings = Settings()
    assert settings.embedded_worker is False
    assert settings.resolved_database_url.startswith("postgresql+asyncpg://")
    assert settings.base_url == "https://transfer.example.edu"
    assert settings.auth_url == "https://transfer.example.edu/auth/"
    assert settings.max_active_batches_per_user == values["max_active_batches_per_user"]


def test_systemd_units_run_real_commands_with_real_flags() -> None:
    root = typer.main.get_command(app)
    commands = root.commands  # type: ignore[attr-defined]
    for unit in ("arctern-api.service", "arctern-worker.service"):
        text = (DEPLOY / unit).read_text()
        exec_start = re.search(r"^ExecStart=(.+)$", text, re.M)
        assert exec_start, unit
        argv = shlex.split(exec_start.group(1))
        assert argv[0].endswith("/arctern")
        command = commands[argv[1]]
        known = {opt for param in command.params for opt in (*param.opts, *param.secondary_opts)}
        flags = [arg for arg in argv[2:] if arg.startswith("--")]
        assert set(flags) <= known, (unit, set(flags) - known)
        assert "ARCTERN_CONFIG=/etc/arctern/arctern.toml" in text
        assert "EnvironmentFile=/etc/arctern/secrets.env" in text


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_systemd_units_pass_systemd_analyze_verify(tmp_path: Path) -> None:
    units = []
    for unit in ("arctern-api.service", "arctern-worker.service"):
        text = (DEPLOY / unit).read_text().replace("/opt/arctern/venv/bin/arctern", ARCTERN)
        (tmp_path / unit).write_text(text)
        units.append(str(tmp_path / unit))
    result = subprocess.run(
        ["systemd-analyze", "verify", *units], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


def test_example_config_runs_an_api_process_and_a_worker(
    postgres: PostgresCluster, tmp_path: Path
) -> None:
    port = free_port()
    public = f"http://127.0.0.1:{port}"
    config = (DEPLOY / "arctern.toml").read_text()
    config = re.sub(
        r'^database_url = ".*"$',
        f'database_url = "{postgres.create_database()}"',
        config,
        flags=re.M,
    )
    config = re.sub(r"^port = \d+$", f"port = {port}", config, flags=re.M)
    config = re.sub(r'^public_url = ".*"$', f'public_url = "{public}"', config, flags=re.M)
    path = tmp_path / "arctern.toml"
    path.write_text(config)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARCTERN_")}
    env.update(ARCTERN_CONFIG=str(path), ARCTERN_SECRET_KEY="example-secret-key-for-tests")

    api_log = (tmp_path / "api.log").open("wb")
    api = subprocess.Popen(
        [ARCTERN, "serve"],
        env={**env, "ARCTERN_HOME": str(tmp_path / "api")},
        stdout=api_log,
        stderr=subprocess.STDOUT,
    )
    worker = subprocess.Popen(
        [ARCTERN, "worker", "--name", "example-host"],
        env={**env, "ARCTERN_HOME": str(tmp_path / "worker")},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        end = time.monotonic() + 60
        while True:
            assert api.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(f"{public}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < end, (tmp_path / "api.log").read_text()
            time.sleep(0.1)
        discovery = httpx.get(f"{public}/auth/.well-known/openid-configuration").json()
        assert discovery["issuer"] == f"{public}/auth"
        time.sleep(1)
        assert worker.poll() is None
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0, output
        assert "Worker example-host running 8 job(s)" in output
        assert "postgresql+asyncpg://" in output and "Worker stopped." in output
    finally:
        for process in (api, worker):
            if process.poll() is None:
                process.terminate()
                process.wait(15)
        api_log.close()
