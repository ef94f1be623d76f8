"""Path validation, the connector registry and the fault injector, unit by unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from arctern.connectors.errors import InvalidPath, PathOutsideRoot, TransientError
from arctern.connectors.faults import FaultInjectingConnector, parse_fault_spec
from arctern.connectors.memory.connector import MemoryConnector
from arctern.connectors.paths import normalize, split_path
from arctern.connectors.posix.connector import PosixConnector
from arctern.connectors.registry import UnknownConnector, open_connector


@pytest.mark.parametrize(
    ("raw", "parts"),
    [("/", []), ("/a/b", ["a", "b"]), ("//a/./b/", ["a", "b"]), ("/%2e%2e", ["%2e%2e"])],
)
def test_split_path(raw: str, parts: list[str]) -> None:
    assert split_path(raw) == parts


@pytest.mark.parametrize("raw", ["/..", "/a/../b", "a", "", "/a\x00", "/" + "x" * 256, "/\udcff"])
def test_split_path_refuses(raw: str) -> None:
    with pytest.raises(PathOutsideRoot):
        split_path(raw)


def test_invalid_paths_have_a_globus_code() -> None:
    with pytest.raises(InvalidPath) as caught:
        split_path("/a\x00b")
    assert caught.value.code == "INVALID_PATH_NAME"
    assert normalize("/a//b/") == "/a/b"


def test_registry_opens_each_kind(tmp_path: Path) -> None:
    assert isinstance(open_connector("posix", str(tmp_path), {}), PosixConnector)
    first = open_connector("memory", "registry-test", {})
    second = open_connector("memory", "registry-test", {})
    assert isinstance(first, MemoryConnector) and isinstance(second, MemoryConnector)
    assert first.store is second.store  # one named store, as one filesystem
    with pytest.raises(UnknownConnector):
        open_connector("ftp", "/", {})
    wrapped = open_connector("memory", "x", {}, fault_injection="read_error=0.5,seed=1")
    assert isinstance(wrapped, FaultInjectingConnector)


def test_fault_spec_parsing() -> None:
    spec = parse_fault_spec("read_error=0.05, write_error=0.1,flip=0.01,seed=1")
    assert (spec.read_error, spec.write_error, spec.flip, spec.seed) == (0.05, 0.1, 0.01, 1)
    with pytest.raises(ValueError):
        parse_fault_spec("reed_error=0.5")


async def test_fault_injector_is_deterministic_and_counts() -> None:
    inner = MemoryConnector()
    state = await inner.begin_write("/f", 4)
    await inner.write(state, 0, b"data")
    await inner.commit_write(state, "/f")
    outcomes = []
    for _ in range(2):
        faulty = FaultInjectingConnector(inner, parse_fault_spec("read_error=0.5,seed=42"))
        run = []
        for _ in range(20):
            try:
                run.append(await faulty.read("/f", 0, 4))
            except TransientError:
                run.append(b"")
        outcomes.append(run)
        assert faulty.injected_read_errors == run.count(b"")
    assert outcomes[0] == outcomes[1] and b"" in outcomes[0] and b"data" in outcomes[0]


async def test_fault_injector_gives_each_file_the_same_faults_in_any_interleaving() -> None:
    # Concurrent files reach the injector in whatever order they are scheduled; a file's
    # faults must not depend on that order, or a seeded test passes or fails by timing.
    inner = MemoryConnector()
    for name in ("/a", "/b"):
        state = await inner.begin_write(name, 4)
        await inner.write(state, 0, b"data")
        await inner.commit_write(state, name)

    async def faults_per_file(order: list[str]) -> dict[str, list[bool]]:
        faulty = FaultInjectingConnector(inner, parse_fault_spec("read_error=0.5,seed=42"))
        seen: dict[str, list[bool]] = {"/a": [], "/b": []}
        for name in order:
            try:
                await faulty.read(name, 0, 4)
                seen[name].append(False)
            except TransientError:
                seen[name].append(True)
        return seen

    alternating = await faults_per_file(["/a", "/b"] * 10)
    one_after_the_other = await faults_per_file(["/a"] * 10 + ["/b"] * 10)
    assert alternating == one_after_the_other
    assert all(True in runs and False in runs for runs in alternating.values())


async def test_fault_injector_flips_written_bytes() -> None:
    inner = MemoryConnector()
    faulty = FaultInjectingConnector(inner, parse_fault_spec("flip=1,seed=3"))
    state = await faulty.begin_write("/f", 8)
    await faulty.write(state, 0, b"\x00" * 8)
    await faulty.commit_write(state, "/f")
    data = await inner.read("/f", 0, 8)
    assert data != b"\x00" * 8 and sum(1 for b in data if b) == 1
    assert faulty.flipped_writes == 1
