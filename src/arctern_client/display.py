"""Readable text and HTML renderings of task documents, task lists and directory listings."""

from __future__ import annotations

import html
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, overload

_STATUS_COLOURS = {
    "ACTIVE": "#1f6feb",
    "INACTIVE": "#9a6700",
    "SUCCEEDED": "#1a7f37",
    "FAILED": "#cf222e",
}
_TABLE_STYLE = "border-collapse:collapse;font-size:0.9em"
_CELL_STYLE = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left"


def human_bytes(count: float | int | None) -> str:
    """1536 -> '1.5 KiB' (binary units, like tqdm's progress bar in this package)."""
    if count is None:
        return "-"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def parse_time(value: Any) -> datetime | None:
    """Globus task times are ISO-8601 strings (sometimes with a space separator)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def short_time(value: Any) -> str:
    parsed = parse_time(value)
    return parsed.strftime("%Y-%m-%d %H:%M:%S") if parsed else "-"


def _status_badge(status: str) -> str:
    colour = _STATUS_COLOURS.get(status, "#57606a")
    return (
        f'<span style="color:white;background:{colour};border-radius:4px;'
        f'padding:0 6px;font-weight:600">{html.escape(status)}</span>'
    )


def _html_table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, raw: bool) -> str:
    """``raw`` cells are trusted HTML built here; others are escaped."""
    head = "".join(f'<th style="{_CELL_STYLE}">{html.escape(h)}</th>' for h in headers)
    body = "".join(
        "<tr>"
        + "".join(f'<td style="{_CELL_STYLE}">{c if raw else html.escape(c)}</td>' for c in row)
        + "</tr>"
        for row in rows
    )
    return (
        f'<table style="{_TABLE_STYLE}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'
    )


def _text_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [" | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


class TaskView(Mapping[str, Any]):
    """A task document (``get_task`` / ``task_list`` element) that displays itself readably."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self._doc = dict(document)

    def __getitem__(self, key: str) -> Any:
        return self._doc[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._doc)

    def __len__(self) -> int:
        return len(self._doc)

    @property
    def task_id(self) -> str:
        return str(self._doc.get("task_id", ""))

    @property
    def status(self) -> str:
        return str(self._doc.get("status", "UNKNOWN"))

    @property
    def is_done(self) -> bool:
        return self.status in ("SUCCEEDED", "FAILED")

    @property
    def details(self) -> str:
        """Why the task is where it is: the fatal error when failed, else the nice status."""
        fatal = self._doc.get("fatal_error")
        if isinstance(fatal, Mapping) and fatal.get("code"):
            description = fatal.get("description") or ""
            return f"{fatal['code']}: {description}".rstrip(": ")
        nice = self._doc.get("nice_status")
        return str(nice) if nice else ""

    def endpoints(self) -> str:
        source = self._doc.get("source_endpoint_display_name") or self._doc.get(
            "source_endpoint_id"
        )
        destination = self._doc.get("destination_endpoint_display_name") or self._doc.get(
            "destination_endpoint_id"
        )
        if destination:
            return f"{source} → {destination}"
        return str(source or "-")

    def files_progress(self) -> str:
        files = self._doc.get("files") or 0
        done = self._doc.get("files_transferred") or 0
        skipped = self._doc.get("files_skipped") or 0
        text = f"{done}/{files}"
        return f"{text} ({skipped} skipped)" if skipped else text

    def summary(self) -> str:
        """One line: what happened to the task."""
        parts = [f"Task {self.task_id} {self.status}"]
        if self._doc.get("label"):
            parts.append(f"'{self._doc['label']}'")
        parts.append(
            f"- {self.files_progress()} files, "
            f"{human_bytes(self._doc.get('bytes_transferred') or 0)}"
        )
        started = parse_time(self._doc.get("request_time"))
        ended = parse_time(self._doc.get("completion_time"))
        if started and ended:
            seconds = (ended - started).total_seconds()
            # Task times have whole seconds, so a quick task can show no duration at all.
            parts.append(f"in {seconds:.0f} s" if seconds >= 1 else "in under 1 s")
            rate = self._doc.get("effective_bytes_per_second")
            if rate:
                parts.append(f"({human_bytes(rate)}/s)")
        if self.details:
            parts.append(f"[{self.details}]")
        return " ".join(parts)

    def _rows(self) -> list[tuple[str, str]]:
        doc = self._doc
        rows = [
            ("Task ID", self.task_id),
            ("Label", str(doc.get("label") or "-")),
            ("Type", str(doc.get("type") or "-")),
            ("Details", self.details or "-"),
            ("Collections", self.endpoints()),
            ("Requested", short_time(doc.get("request_time"))),
            ("Completed", short_time(doc.get("completion_time"))),
            ("Deadline", short_time(doc.get("deadline"))),
            ("Files", self.files_progress()),
            ("Directories", str(doc.get("directories") or 0)),
            ("Bytes transferred", human_bytes(doc.get("bytes_transferred") or 0)),
            ("Rate", f"{human_bytes(doc.get('effective_bytes_per_second') or 0)}/s"),
            ("Faults", str(doc.get("faults") or 0)),
        ]
        return rows

    def __repr__(self) -> str:
        width = max(len(k) for k, _ in self._rows())
        lines = [f"{'Status'.ljust(width)} : {self.status}"]
        lines += [f"{k.ljust(width)} : {v}" for k, v in self._rows()]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        cells = [("Status", _status_badge(self.status))]
        cells += [(k, html.escape(v)) for k, v in self._rows()]
        body = "".join(
            f'<tr><th style="{_CELL_STYLE}">{html.escape(k)}</th>'
            f'<td style="{_CELL_STYLE}">{v}</td></tr>'
            for k, v in cells
        )
        return f'<table style="{_TABLE_STYLE}">{body}</table>'


TASK_COLUMNS = (
    "task_id",
    "label",
    "status",
    "details",
    "source",
    "destination",
    "request_time",
    "completion_time",
    "files_transferred",
    "bytes_transferred",
)


class TaskTable(Sequence[TaskView]):
    """Recent tasks: a table in notebooks, plain text elsewhere, pandas on request."""

    def __init__(self, documents: Iterable[Mapping[str, Any]]) -> None:
        self._tasks = [d if isinstance(d, TaskView) else TaskView(d) for d in documents]

    @overload
    def __getitem__(self, index: int) -> TaskView: ...

    @overload
    def __getitem__(self, index: slice) -> TaskTable: ...

    def __getitem__(self, index: int | slice) -> TaskView | TaskTable:
        if isinstance(index, slice):
            return TaskTable(self._tasks[index])
        return self._tasks[index]

    def __len__(self) -> int:
        return len(self._tasks)

    def records(self) -> list[dict[str, Any]]:
        """One flat dict per task with the columns of :data:`TASK_COLUMNS`."""
        return [
            {
                "task_id": t.task_id,
                "label": t.get("label"),
                "status": t.status,
                "details": t.details or None,
                "source": t.get("source_endpoint_display_name") or t.get("source_endpoint_id"),
                "destination": t.get("destination_endpoint_display_name")
                or t.get("destination_endpoint_id"),
                "request_time": t.get("request_time"),
                "completion_time": t.get("completion_time"),
                "files_transferred": t.get("files_transferred") or 0,
                "bytes_transferred": t.get("bytes_transferred") or 0,
            }
            for t in self._tasks
        ]

    def to_dataframe(self) -> Any:
        """A pandas DataFrame indexed by task ID, with real timestamps (needs pandas)."""
        import pandas as pd

        frame = pd.DataFrame.from_records(self.records(), columns=list(TASK_COLUMNS))
        for column in ("request_time", "completion_time"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame.set_index("task_id")

    def _display_rows(self) -> list[list[str]]:
        return [
            [
                t.task_id,
                str(t.get("label") or ""),
                t.status,
                t.details,
                t.endpoints(),
                short_time(t.get("request_time")),
                short_time(t.get("completion_time")),
                t.files_progress(),
                human_bytes(t.get("bytes_transferred") or 0),
            ]
            for t in self._tasks
        ]

    _HEADERS = (
        "Task ID",
        "Label",
        "Status",
        "Details",
        "Collections",
        "Requested",
        "Completed",
        "Files",
        "Bytes",
    )

    def __repr__(self) -> str:
        if not self._tasks:
            return "(no tasks)"
        return _text_table(self._HEADERS, self._display_rows())

    def _repr_html_(self) -> str:
        if not self._tasks:
            return "<p><em>No tasks.</em></p>"
        rows = []
        for row in self._display_rows():
            escaped = [html.escape(c) for c in row]
            escaped[2] = _status_badge(row[2])
            rows.append(escaped)
        return _html_table(self._HEADERS, rows, raw=True)


class FileListing(Sequence[Mapping[str, Any]]):
    """The entries of one directory (``operation_ls``), displayed like ``ls -l``."""

    def __init__(self, collection: str, path: str, entries: Iterable[Mapping[str, Any]]) -> None:
        self.collection = collection
        self.path = path
        self._entries = [dict(e) for e in entries]

    @overload
    def __getitem__(self, index: int) -> Mapping[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Mapping[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Mapping[str, Any] | Sequence[Mapping[str, Any]]:
        return self._entries[index]

    def __len__(self) -> int:
        return len(self._entries)

    def names(self) -> list[str]:
        """Entry names, directories with a trailing ``/`` (as ``globus ls`` prints them)."""
        return [e["name"] + ("/" if e.get("type") == "dir" else "") for e in self._entries]

    def _display_rows(self) -> list[list[str]]:
        return [
            [
                name,
                str(e.get("type") or ""),
                "" if e.get("type") == "dir" else human_bytes(e.get("size")),
                short_time(e.get("last_modified")),
                str(e.get("permissions") or ""),
            ]
            for name, e in zip(self.names(), self._entries, strict=True)
        ]

    _HEADERS = ("Name", "Type", "Size", "Last modified", "Permissions")

    def __repr__(self) -> str:
        title = f"{self.collection}:{self.path}"
        if not self._entries:
            return f"{title} (empty)"
        return f"{title}\n{_text_table(self._HEADERS, self._display_rows())}"

    def _repr_html_(self) -> str:
        title = f"<p><strong>{html.escape(self.collection)}</strong>:{html.escape(self.path)}</p>"
        if not self._entries:
            return title + "<p><em>Empty directory.</em></p>"
        return title + _html_table(self._HEADERS, self._display_rows(), raw=False)
