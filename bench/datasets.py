"""Dataset shapes (parsed from compact specs) and their creation on disk."""

# The multiplication sign is meant: descriptions end up in the report.
# ruff: noqa: RUF001

from __future__ import annotations

import json
import os
import random
import re
import shutil
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

KiB = 1024
MiB = 1024 * KiB
GiB = 1024 * MiB

_UNITS = {"": 1, "B": 1, "K": KiB, "KIB": KiB, "M": MiB, "MIB": MiB, "G": GiB, "GIB": GiB}
_GROUP = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*(?:@\s*(\d+))?\s*$")

# Written once and sliced per file: random bytes so no layer can compress or deduplicate,
# without paying for a fresh random stream per byte.
_POOL_SIZE = 16 * MiB


def parse_size(text: str) -> int:
    """``4KiB`` -> 4096; plain numbers are bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([A-Za-z]*)\s*", text)
    if not match or match.group(2).upper() not in _UNITS:
        raise ValueError(f"not a size: {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def format_size(n: float) -> str:
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", KiB)):
        if n >= factor:
            value = n / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{n:.0f} B"


@dataclass(frozen=True)
class FileGroup:
    """``count`` files of ``size`` bytes spread evenly over ``dirs`` directories."""

    count: int
    size: int
    dirs: int = 1

    def describe(self) -> str:
        where = f" in {self.dirs} dirs" if self.dirs > 1 else ""
        return f"{self.count:,} × {format_size(self.size)}{where}"


@dataclass(frozen=True)
class Dataset:
    key: str
    groups: tuple[FileGroup, ...]

    @classmethod
    def parse(cls, key: str, spec: str) -> Dataset:
        """``20000x4KiB@20`` or ``1000x1MiB+10x100MiB+10000x1KiB`` (``@N``: directories)."""
        groups = []
        for part in spec.split("+"):
            match = _GROUP.match(part)
            if not match:
                raise ValueError(f"dataset {key}: cannot parse {part!r} (want COUNTxSIZE[@DIRS])")
            count, size_text, unit, dirs = match.groups()
            groups.append(
                FileGroup(count=int(count), size=parse_size(size_text + unit), dirs=int(dirs or 1))
            )
        return cls(key=key, groups=tuple(groups))

    @property
    def files(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def bytes(self) -> int:
        return sum(g.count * g.size for g in self.groups)

    def describe(self) -> str:
        return " + ".join(g.describe() for g in self.groups)

    def layout(self) -> Iterator[tuple[str, int, int]]:
        """(relative path, size, file number) for every file, in a stable order."""
        number = 0
        for gi, group in enumerate(self.groups):
            per_dir = -(-group.count // group.dirs)
            for i in range(group.count):
                folder = f"g{gi}" if group.dirs == 1 else f"g{gi}/d{i // per_dir:04d}"
                yield f"{folder}/f{i:07d}.dat", group.size, number
                number += 1

    def manifest(self) -> dict[str, object]:
        return {"key": self.key, "groups": [asdict(g) for g in self.groups], "format": 1}


def _pool() -> bytes:
    return random.Random(20261126).randbytes(_POOL_SIZE)


def _write_file(path: Path, size: int, number: int, pool: memoryview) -> None:
    # Each file starts with its own number and takes the pool from a different offset,
    # so no two files are identical.
    header = f"{number:016d}".encode()
    offset = (number * 4099) % (_POOL_SIZE // 2)
    with path.open("wb", buffering=0) as out:
        remaining = size
        first = header[:remaining]
        out.write(first)
        remaining -= len(first)
        while remaining > 0:
            chunk = min(remaining, _POOL_SIZE - offset, 8 * MiB)
            out.write(pool[offset : offset + chunk])
            remaining -= chunk
            offset = 0 if offset + chunk >= _POOL_SIZE else offset + chunk


def ensure_dataset(dataset: Dataset, root: Path) -> Path:
    """Create ``root/<key>`` unless an identical one exists (its manifest sits beside it)."""
    target = root / dataset.key
    manifest = root / f"{dataset.key}.manifest.json"
    wanted = json.dumps(dataset.manifest(), sort_keys=True)
    if target.is_dir() and manifest.exists() and manifest.read_text() == wanted:
        return target
    if target.exists():
        shutil.rmtree(target)
    manifest.unlink(missing_ok=True)
    pool = memoryview(_pool())
    made: set[str] = set()
    for rel, size, number in dataset.layout():
        path = target / rel
        parent = str(path.parent)
        if parent not in made:
            path.parent.mkdir(parents=True, exist_ok=True)
            made.add(parent)
        _write_file(path, size, number, pool)
    manifest.write_text(wanted)
    return target


def ensure_empty_tree(root: Path, files: int, per_dir: int = 1000) -> Path:
    """A tree of ``files`` empty files, ``per_dir`` per directory (for the memory test)."""
    target = root / f"tree-{files}"
    marker = root / f"tree-{files}.done"
    if target.is_dir() and marker.exists():
        return target
    if target.exists():
        shutil.rmtree(target)
    made = -1
    for i in range(files):
        d = i // per_dir
        if d != made:
            os.makedirs(target / f"d{d:05d}", exist_ok=True)
            made = d
        # os.open/close is the cheapest way to make an empty file from Python.
        os.close(os.open(target / f"d{d:05d}" / f"e{i:07d}", os.O_CREAT | os.O_WRONLY, 0o644))
    marker.write_text(str(files))
    return target


def tree_stats(root: Path) -> tuple[int, int]:
    """(regular files, total bytes) beneath ``root``."""
    files = total = 0
    stack = [str(root)]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
                elif entry.is_file(follow_symlinks=False):
                    files += 1
                    total += entry.stat(follow_symlinks=False).st_size
    return files, total
