"""Runs ``python -m bench --quick`` end to end so the harness never rots (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.report import WAN_MARKER_END, WAN_MARKER_START

REPO = Path(__file__).resolve().parents[2]
CONTENDERS = {"cp -r", "rsync -a", "rclone copy", "rclone copy --checksum"}
ARCTERN = {"Arctern verify on", "Arctern verify off"}


@pytest.mark.slow
# Generous limits: the quick run takes ~1 min alone and several times that on a busy 2-core
# machine; the test guards the harness, not its speed.
@pytest.mark.timeout(1260)
def test_quick_benchmark_writes_table_json_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "results"
    out.mkdir()
    # A WAN run's section from an earlier `--wan` run: the local run must keep it.
    wan_part = f"{WAN_MARKER_START}\n## Across a WAN link\n\n| kept |\n{WAN_MARKER_END}\n"
    (out / "RESULTS.md").write_text("# old local results\n\n" + wan_part)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench",
            "--quick",
            "--workdir",
            str(tmp_path / "work"),
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    assert done.returncode == 0, done.stderr[-4000:]

    results = json.loads((out / "results.json").read_text())
    assert set(results["datasets"]) == {"A", "B", "C"}
    assert set(results["contenders"]) >= CONTENDERS | ARCTERN, results["skipped"]
    runs = results["runs"]
    # Every contender copied every dataset twice, and every copy arrived complete.
    assert len(runs) == 2 * 3 * len(results["contenders"])
    failed = [r for r in runs if not r["ok"]]
    assert not failed, failed
    for key, rows in results["summary"].items():
        assert set(rows) == set(results["contenders"]), key
        for row in rows.values():
            assert row["median_s"] > 0 and row["ok_runs"] == 2
        assert rows["rsync -a"]["arctern_ratio"] > 0
    assert results["disk"] and all(d["write_mib_s"] > 0 for d in results["disk"])

    service = results["service"]
    assert not service.get("errors"), service.get("errors")
    assert service["latency"]["runs"] == 5 and service["latency"]["median_ms"] > 0
    assert service["get_task"]["requests"] > 0 and service["get_task"]["errors"] == 0
    assert service["task_list"]["total_reported"] >= 2000
    assert service["task_list"]["p95_ms"] >= service["task_list"]["p50_ms"] > 0
    assert service["tree"]["completed"] is True and service["tree"]["peak_rss_mib"] > 0
    assert {t["id"] for t in results["targets"]} >= {"latency", "get_task", "task_list"}
    assert all(t["met"] is not None for t in results["targets"]), results["targets"]

    markdown = (out / "RESULTS.md").read_text()
    assert "| Contender |" in markdown and "## Targets" in markdown
    assert "old local results" not in markdown and markdown.endswith("\n\n" + wan_part)
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
