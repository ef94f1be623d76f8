"""Turns raw runs into medians, ratios and target checks, written as Markdown, JSON and a PNG."""

# Typographic signs are meant (this is the report's text); table rows read best unwrapped.
# ruff: noqa: RUF001, RUF002, E501

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.datasets import MiB, format_size

ARCTERN_ON = "Arctern verify on"
# verify_checksum with checksum_algorithm CRC32C (S3's own checksum), asked for per item.
ARCTERN_CRC32C = "Arctern verify on (CRC32C)"
ARCTERN_OFF = "Arctern verify off"
# A contender whose slowest repetition took this many times its fastest ran on a noisy disk:
# the report says so beside the ratios measured against it.
NOISY_SPREAD = 1.5


def summarize(results: dict[str, Any]) -> dict[str, Any]:
    """Per dataset and contender: median seconds over successful runs and ratios to Arctern."""
    summary: dict[str, Any] = {}
    for key, dataset in results["datasets"].items():
        rows: dict[str, Any] = {}
        for name, meta in results["contenders"].items():
            runs = [r for r in results["runs"] if r["dataset"] == key and r["contender"] == name]
            if not runs:
                continue
            good = [r["seconds"] for r in runs if r["ok"]]
            cpu = [r["cpu_s"] for r in runs if r["ok"] and r.get("cpu_s") is not None]
            row: dict[str, Any] = {
                "verifies": meta["verifies"],
                "runs": len(runs),
                "ok_runs": len(good),
                "errors": sorted({r["error"] for r in runs if not r["ok"] and r.get("error")}),
            }
            if good:
                median = statistics.median(good)
                row.update(
                    median_s=median,
                    min_s=min(good),
                    max_s=max(good),
                    mib_s=dataset["bytes"] / MiB / median if median > 0 else None,
                    files_s=dataset["files"] / median if median > 0 else None,
                    cpu_s=statistics.median(cpu) if cpu else None,
                )
            rows[name] = row
        for name, row in rows.items():
            # How many times this contender's time Arctern (verify on) needed: < 1 is faster.
            paired = paired_ratio(results["runs"], key, ARCTERN_ON, name)
            if paired is not None:
                row["arctern_ratio"] = paired.median
        summary[key] = rows
    return summary


@dataclass(frozen=True)
class PairedRatio:
    """One contender's time over another's, repetition by repetition."""

    median: float
    low: float
    high: float
    pairs: int


def paired_ratio(
    runs: list[dict[str, Any]], dataset: str, mine: str, other: str
) -> PairedRatio | None:
    """The median over repetitions of ``mine``'s time ÷ ``other``'s in the same repetition.

    The two ran minutes apart at most, so a slow spell of the shared disk weighs on both;
    a ratio of medians can pair one contender's quiet runs with the other's slow ones (A
    once read 0.79× that way, while its repetitions read 1.78×, 1.86× and 0.78×)."""
    times: dict[tuple[str, int], float] = {
        (r["contender"], r["rep"]): r["seconds"]
        for r in runs
        if r["dataset"] == dataset and r["ok"] and r.get("seconds")
    }
    ratios = [
        seconds / times[(other, rep)]
        for (name, rep), seconds in times.items()
        if name == mine and (other, rep) in times
    ]
    if not ratios:
        return None
    return PairedRatio(statistics.median(ratios), min(ratios), max(ratios), len(ratios))


def _best(rows: dict[str, Any], *, verifying_only: bool = False) -> tuple[str, float] | None:
    candidates = [
        (name, row["median_s"])
        for name, row in rows.items()
        if not name.startswith("Arctern")
        and row.get("median_s")
        and (row["verifies"] or not verifying_only)
    ]
    return min(candidates, key=lambda c: c[1]) if candidates else None


def _target(
    ident: str,
    description: str,
    target: str,
    measured: float | None,
    limit: float,
    unit: str,
    *,
    higher_is_better: bool = False,
    detail: str = "",
) -> dict[str, Any]:
    if measured is None:
        return {
            "id": ident,
            "description": description,
            "target": target,
            "measured": None,
            "met": None,
            "gap": "not measured",
            "detail": detail,
        }
    met = measured >= limit if higher_is_better else measured <= limit
    if met:
        gap = "met"
    elif higher_is_better:
        gap = f"{limit / measured:.2f}× short" if measured else "nothing measured"
    else:
        gap = f"{measured / limit:.2f}× over"
    return {
        "id": ident,
        "description": description,
        "target": target,
        # Three significant digits, but never in exponent form (2,455 req/s, not 2.46e+03).
        "measured": (f"{measured:,.0f}" if measured >= 1000 else f"{measured:.3g}") + unit,
        "value": measured,
        "met": met,
        "gap": gap,
        "detail": detail,
    }


def _short(name: str) -> str:
    """A key for a contender's target row: "on", "off" or "on-crc32c"."""
    rest = name.removeprefix("Arctern verify ")
    return rest.replace(" (", "-").rstrip(")").lower()


def evaluate_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets, computed from ratios within this run (reported, never asserted)."""
    summary = results["summary"]
    service = results.get("service", {})
    targets: list[dict[str, Any]] = []

    def median(key: str, name: str) -> float | None:
        value = summary.get(key, {}).get(name, {}).get("median_s")
        return float(value) if value else None

    def versus(key: str, mine: str, other: str) -> tuple[float | None, str]:
        """``mine`` ÷ ``other`` on dataset ``key``, repetition by repetition, and how the
        repetitions spread (and whether ``other`` itself did: a noisy disk)."""
        paired = paired_ratio(results["runs"], key, mine, other)
        if paired is None:
            return None, ""
        detail = f"{paired.pairs} repetitions: {paired.low:.2f}–{paired.high:.2f}×"
        row = summary.get(key, {}).get(other, {})
        if row.get("min_s") and row["max_s"] > NOISY_SPREAD * row["min_s"]:
            detail += (
                f"; {other} itself took {row['min_s']:.2f}–{row['max_s']:.2f} s (a noisy disk)"
            )
        return paired.median, detail

    for other, limit in (("rsync -a", 1.0), ("rclone copy", 0.5)):
        ratio, detail = versus("A", ARCTERN_ON, other)
        targets.append(
            _target(
                f"A-{other.split()[0]}",
                f"A: Arctern (verify on) ÷ {other}",
                f"≤ {limit}×",
                ratio,
                limit,
                "×",
                detail=detail,
            )
        )
    fastest = _best(summary.get("B", {}))
    disk = results.get("disk_limit_mib_s")
    b_bytes = results["datasets"].get("B", {}).get("bytes")
    for name in (ARCTERN_OFF, ARCTERN_ON, ARCTERN_CRC32C):
        mine = median("B", name)
        ratio, detail = versus("B", name, fastest[0]) if fastest else (None, "")
        targets.append(
            _target(
                f"B-fastest-{_short(name)}",
                f"B: {name} ÷ fastest ({fastest[0] if fastest else '-'})",
                "≤ 1.1×",
                ratio,
                1.1,
                "×",
                detail=detail,
            )
        )
        if disk and b_bytes:
            floor = b_bytes / MiB / disk
            targets.append(
                _target(
                    f"B-disk-{_short(name)}",
                    f"B: {name} ÷ disk-write time ({floor:.1f} s)",
                    "≤ 1.2×",
                    mine / floor if mine else None,
                    1.2,
                    "×",
                )
            )
    for key in ("B", "C"):
        fastest_verifying = _best(summary.get(key, {}), verifying_only=True)
        ratio, detail = (
            versus(key, ARCTERN_ON, fastest_verifying[0]) if fastest_verifying else (None, "")
        )
        targets.append(
            _target(
                f"{key}-verifying",
                f"{key}: Arctern (verify on) ÷ fastest verifying ({fastest_verifying[0] if fastest_verifying else '-'})",
                "≤ 1.0×",
                ratio,
                1.0,
                "×",
                detail=detail,
            )
        )
    latency = service.get("latency", {}).get("median_ms")
    targets.append(
        _target(
            "latency", "One-file task, submit → SUCCEEDED, median", "≤ 150 ms", latency, 150, " ms"
        )
    )
    get_task = service.get("get_task", {})
    rps = get_task.get("requests_per_second")
    target = _target(
        "get_task",
        "get_task with 32 concurrent clients",
        "≥ 1,500 req/s",
        rps,
        1500,
        " req/s",
        higher_is_better=True,
    )
    if get_task.get("errors"):
        # Only 200 answers are counted, but a run with failed requests does not meet it.
        target.update(met=False, gap=f"{get_task['errors']} requests failed")
    targets.append(target)
    tl = service.get("task_list", {})
    targets.append(
        _target(
            "task_list",
            f"task_list first page, p95, {tl.get('tasks_inserted', 0):,} tasks",
            "≤ 50 ms",
            tl.get("p95_ms"),
            50,
            " ms",
        )
    )
    tree = service.get("tree", {})
    peak = tree.get("peak_rss_mib")
    if not tree:
        detail = "not run"
    elif tree.get("completed"):
        detail = ""
    else:
        detail = (
            f"did not complete within {tree.get('timeout_s', 0):.0f} s "
            f"({tree.get('files_transferred') or 0:,} files done)"
        )
    row = _target(
        "tree-rss",
        f"{tree.get('files', 0):,}-file tree: completes, server peak RSS",
        "completes, ≤ 400 MiB",
        peak,
        400,
        " MiB",
        detail=detail,
    )
    if peak is not None and not tree.get("completed"):
        row["met"], row["gap"] = False, "did not complete"
    targets.append(row)
    return targets


def _fmt(value: float | None, spec: str) -> str:
    return "–" if value is None else format(value, spec)


def _small_file_reps(meta: dict[str, Any]) -> str:
    reps = meta.get("small_file_reps")
    return f" ({reps} for A)" if reps and reps != meta["reps"] else ""


def markdown(results: dict[str, Any], plot_name: str) -> str:
    meta = results["meta"]
    lines = [
        "# Arctern benchmark results",
        "",
        f"Generated by `{meta['command']}` on {meta['started']} (UTC), {meta['elapsed_s']:.0f} s in all"
        f"{' — **quick mode** (tiny sizes, harness smoke test)' if meta['quick'] else ''}.",
        "",
        f"Machine: {meta['cpus']} CPUs, {meta['memory_gib']:.1f} GiB RAM, {meta['kernel']}, "
        f"work dir on {meta['filesystem']}. Commit `{meta['commit']}`. "
        f"{meta['reps']} repetitions per contender and dataset{_small_file_reps(meta)}, order alternated "
        "between repetitions; every timed copy ends with `sync -f` on the destination file system "
        "(time to durable data). Ratios are medians of per-repetition ratios (Arctern's time ÷ the "
        "other's in the same repetition).",
        "",
        "Tools: " + "; ".join(f"{k}: {v}" for k, v in meta["tools"].items()) + ".",
        "",
        "## Disk limit (same run)",
        "",
        "| Method | When | Write MiB/s | Read MiB/s |",
        "|---|---|---:|---:|",
    ]
    for d in results["disk"]:
        lines.append(
            f"| {d['method']} | {d['when']} | {d['write_mib_s']:.0f} | {_fmt(d['read_mib_s'], '.0f')} |"
        )
    lines += [
        "",
        f"Disk-write limit used below: **{_fmt(results.get('disk_limit_mib_s'), '.0f')} MiB/s** "
        "(best write bandwidth measured in this run).",
        "",
    ]
    lines += ["## Copies", "", f"![median copy times]({plot_name})", ""]
    for key, rows in results["summary"].items():
        ds = results["datasets"][key]
        lines += [
            f"### {key}: {ds['description']} ({format_size(ds['bytes'])}, {ds['files']:,} files)",
            "",
            "| Contender | Verifies | Median s | Min–max s | CPU s | MiB/s | Files/s | Arctern (verify on) ÷ this | OK runs |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for name, row in rows.items():
            spread = f"{row['min_s']:.2f}–{row['max_s']:.2f}" if row.get("median_s") else "–"
            lines.append(
                f"| {name} | {'yes' if row['verifies'] else 'no'} | {_fmt(row.get('median_s'), '.2f')} | "
                f"{spread} | {_fmt(row.get('cpu_s'), '.2f')} | {_fmt(row.get('mib_s'), '.0f')} | {_fmt(row.get('files_s'), ',.0f')} | "
                f"{_fmt(row.get('arctern_ratio'), '.2f')} | {row['ok_runs']}/{row['runs']} |"
            )
        errors = [f"{n}: {e}" for n, r in rows.items() for e in r["errors"]]
        lines += [""] + [f"- error: {e[:300]}" for e in errors] + ([""] if errors else [])
    service = results.get("service", {})
    if service:
        lines += ["## Service", "", "| Measurement | Result |", "|---|---|"]
        if lat := service.get("latency"):
            lines.append(
                f"| One-file task submit → SUCCEEDED ({lat['runs']} runs, {lat['poll_interval_ms']} ms poll) | "
                f"median {lat['median_ms']:.0f} ms, p95 {lat['p95_ms']:.0f} ms, min {lat['min_ms']:.0f} ms |"
            )
            for stage, ms in lat.get("breakdown_ms", {}).items():
                lines.append(f"| &nbsp;&nbsp;median stage: {stage} | {ms:.0f} ms |")
        if gt := service.get("get_task"):
            lines.append(
                f"| get_task, {gt['clients']} concurrent keep-alive clients, {gt['seconds']:.0f} s | "
                f"{gt['requests_per_second']:,.0f} req/s ({gt['errors']} errors) |"
            )
        if tl := service.get("task_list"):
            lines.append(
                f"| task_list first page ({tl['page_size']} tasks) with {tl['tasks_inserted']:,} tasks "
                f"inserted (total reported {tl['total_reported']}) | p50 {tl['p50_ms']:.1f} ms, "
                f"p95 {tl['p95_ms']:.1f} ms |"
            )
        if tree := service.get("tree"):
            if tree.get("completed"):
                outcome = f"completed in {_fmt(tree.get('seconds'), '.0f')} s ({_fmt(tree.get('files_per_second'), ',.0f')} files/s)"
            else:
                outcome = (
                    f"NOT completed within {_fmt(tree.get('timeout_s'), '.0f')} s: "
                    f"{tree.get('files_transferred') or 0:,} files transferred "
                    f"({_fmt(tree.get('files_per_second'), ',.0f')} files/s; the whole tree would take "
                    f"≈ {_fmt(tree.get('projected_seconds'), ',.0f')} s)"
                )
            lines.append(
                f"| {tree['files']:,} empty files, fresh server | {outcome}; peak RSS "
                f"{_fmt(tree.get('peak_rss_mib'), '.0f')} MiB (after start: {_fmt(tree.get('rss_before_mib'), '.0f')} MiB) |"
            )
        for name, error in service.get("errors", {}).items():
            lines.append(f"| {name} | failed: {error[:200]} |")
        lines.append("")
    lines += [
        "## Targets (ratios within this run; reported, not asserted)",
        "",
        "| Target | Wanted | Measured | Verdict |",
        "|---|---|---:|---|",
    ]
    for t in results["targets"]:
        verdict = {True: "met", False: f"**missed** ({t['gap']})", None: "not measured"}[t["met"]]
        detail = f" — {t['detail']}" if t.get("detail") else ""
        lines.append(
            f"| {t['description']} | {t['target']} | {t['measured'] or '–'} | {verdict}{detail} |"
        )
    if profiles := results.get("profiles"):
        lines += ["", "## Profiles (py-spy, server process, share of busy samples)", ""]
        for name, prof in profiles.items():
            samples = dict(prof["samples"])
            lines += [
                f"### {name}: {samples.get('busy', 0):.0f} busy samples at 100 Hz",
                "",
                "Threads: " + ", ".join(f"{t} {pct:.0f} %" for t, pct in prof.get("threads", [])),
                "",
                "| Self % | Function (where the CPU is) | | Total % | Arctern function (on the stack) |",
                "|---:|---|---|---:|---|",
            ]
            for (own, own_pct), (tot, tot_pct) in zip(
                prof["self"][:12], prof["total"][:12], strict=False
            ):
                lines.append(f"| {own_pct:.1f} | `{own}` | | {tot_pct:.1f} | `{tot}` |")
            lines.append("")
    phases = results["meta"].get("phases_s", {})
    if phases:
        lines += [
            "",
            "Time per phase: " + ", ".join(f"{k} {v:.0f} s" for k, v in phases.items()) + ".",
        ]
    if results.get("skipped"):
        lines += ["", "Skipped: " + "; ".join(results["skipped"])]
    lines += ["", "Analysis of missed targets and profiles: see `bench/README.md`.", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(results["summary"])
    fig, axes = plt.subplots(
        1, max(1, len(keys)), figsize=(5.2 * max(1, len(keys)), 4.2), squeeze=False
    )
    for ax, key in zip(axes[0], keys, strict=False):
        rows = results["summary"][key]
        names = [n for n, r in rows.items() if r.get("median_s")]
        medians = [rows[n]["median_s"] for n in names]
        low = [rows[n]["median_s"] - rows[n]["min_s"] for n in names]
        high = [rows[n]["max_s"] - rows[n]["median_s"] for n in names]
        colors = ["#1f6fb2" if n.startswith("Arctern") else "#9aa5b1" for n in names]
        ax.barh(names, medians, xerr=[low, high], color=colors, capsize=3)
        ax.invert_yaxis()
        ds = results["datasets"][key]
        ax.set_title(f"{key}: {ds['description']}", fontsize=9)
        ax.set_xlabel("median wall time, s (bars: min–max)")
        disk = results.get("disk_limit_mib_s")
        if disk and key == "B":
            floor = ds["bytes"] / MiB / disk
            ax.axvline(floor, color="#c0392b", linestyle="--", linewidth=1)
            ax.text(floor, -0.6, " disk write limit", color="#c0392b", fontsize=8, va="bottom")
        ax.tick_params(axis="y", labelsize=8)
    fig.suptitle("Median copy time per contender (same run, same data)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# RESULTS.md holds the local run and, between these markers, the last WAN run (`--wan`).
# Each kind of run rewrites only its own part, so one never erases the other's figures.
WAN_MARKER_START = "<!-- wan results: written by python -m bench --wan -->"
WAN_MARKER_END = "<!-- end of wan results -->"


def wan_section(text: str) -> str:
    """The WAN part of a RESULTS.md text, markers included, or "" when it has none."""
    if WAN_MARKER_START not in text or WAN_MARKER_END not in text:
        return ""
    _, _, rest = text.partition(WAN_MARKER_START)
    inner, _, _ = rest.partition(WAN_MARKER_END)
    return WAN_MARKER_START + inner + WAN_MARKER_END + "\n"


def with_wan_section(text: str, section: str) -> str:
    """``text`` with its WAN part replaced by ``section`` (appended when it had none)."""
    if wan_section(text):
        head, _, rest = text.partition(WAN_MARKER_START)
        _, _, tail = rest.partition(WAN_MARKER_END)
        return head + section + tail.removeprefix("\n")
    return text.rstrip("\n") + "\n\n" + section


def write_outputs(
    results: dict[str, Any], out: Path, *, markdown_name: str = "RESULTS.md"
) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "results.json",
        "png": out / "results.png",
        "markdown": out / markdown_name,
    }
    paths["json"].write_text(json.dumps(results, indent=2, default=str) + "\n")
    plot(results, paths["png"])
    text = markdown(results, paths["png"].name)
    previous = paths["markdown"].read_text() if paths["markdown"].exists() else ""
    if kept := wan_section(previous):
        text = with_wan_section(text, kept)
    paths["markdown"].write_text(text)
    return paths
