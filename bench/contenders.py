"""The tools being compared, each copying a source directory to a fresh destination directory."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class Contender(Protocol):
    """Copies the tree at ``src`` to ``dst`` (which does not exist yet), raising on failure."""

    @property
    def name(self) -> str: ...

    @property
    def verifies(self) -> bool:
        """True when the tool checks every file's content with a checksum as part of the copy."""

    @property
    def note(self) -> str: ...

    def copy(self, src: Path, dst: Path) -> None: ...


@dataclass
class CommandContender:
    name: str
    argv: list[str]
    verifies: bool
    note: str
    env: dict[str, str] | None = None
    # Arguments after the fixed argv: how this tool names "the contents of src into dst".
    src_suffix: str = ""
    dst_suffix: str = ""
    timeout: float = 3600.0

    def copy(self, src: Path, dst: Path) -> None:
        args = [*self.argv, f"{src}{self.src_suffix}", f"{dst}{self.dst_suffix}"]
        done = subprocess.run(
            args, capture_output=True, text=True, env=self.env, timeout=self.timeout
        )
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")


def command_contenders(rclone_config: Path, env: dict[str, str]) -> list[CommandContender]:
    """cp, rsync and rclone exactly as a user would type them."""
    rclone = ["rclone", "copy", "--config", str(rclone_config)]
    return [
        CommandContender(
            name="cp -r",
            argv=["cp", "-r"],
            verifies=False,
            note="no integrity check",
        ),
        CommandContender(
            name="rsync -a",
            argv=["rsync", "-a"],
            src_suffix="/",
            dst_suffix="/",
            verifies=True,
            note="whole-file checksum computed while transferring, checked by the receiver",
        ),
        CommandContender(
            name="rclone copy",
            argv=rclone,
            verifies=True,
            note="MD5 of source and destination compared after each file (local backend)",
            env=env,
        ),
        CommandContender(
            name="rclone copy --checksum",
            argv=[*rclone, "--checksum"],
            verifies=True,
            note="as above, and compares by hash instead of mtime when deciding what to copy",
            env=env,
        ),
    ]
