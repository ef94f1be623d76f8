"""The agent's home directory: its configuration and its endpoint credential.

The home is mode 0700 and both files 0600; they are written atomically (temporary file,
then rename). The collection roots live only here: the local administrator decides what is
exported, and nothing the deployment sends can add a root.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONFIG_FILE = "agent.json"
CREDENTIAL_FILE = "credential.json"
DATA_CERT_FILE = "data-cert.pem"
DATA_KEY_FILE = "data-key.pem"


class AgentConfigError(Exception):
    """The home is missing, incomplete or unsafe."""


@dataclass
class LocalCollection:
    id: str
    name: str
    root: str


@dataclass
class AgentConfig:
    deployment_url: str
    endpoint_id: str
    display_name: str
    owner: str
    collections: list[LocalCollection] = field(default_factory=list)

    def root_of(self, reference: str) -> str | None:
        """The local directory a deployment's reference opens: one of this agent's
        collections (its id), or a folder in one (``ID/folder``, a guest collection). A
        folder must be a real directory inside the collection, reached through no symbolic
        link, checked at every use: a link swapped in later leads nowhere."""
        collection_id, _, folder = reference.partition("/")
        root = next((c.root for c in self.collections if c.id == collection_id), None)
        if root is None or not folder:
            return root
        parts = [p for p in folder.split("/") if p]
        if any(p in (".", "..") for p in parts):
            return None
        real_root = os.path.realpath(root)
        target = os.path.join(real_root, *parts)
        if os.path.realpath(target) != target or not os.path.isdir(target):
            return None
        return target


class AgentHome:
    def __init__(self, path: Path) -> None:
        self.path = path.expanduser().absolute()

    @property
    def config_path(self) -> Path:
        return self.path / CONFIG_FILE

    @property
    def credential_path(self) -> Path:
        return self.path / CREDENTIAL_FILE

    def create(self) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        os.chmod(self.path, 0o700)

    def _write(self, target: Path, data: dict[str, Any]) -> None:
        self.create()
        fd, temp = tempfile.mkstemp(dir=self.path, prefix=".tmp-")
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w") as handle:
                json.dump(data, handle, indent=2)
                handle.write("\n")
            os.replace(temp, target)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise

    def _read(self, target: Path) -> dict[str, Any]:
        try:
            data = json.loads(target.read_text())
        except FileNotFoundError:
            raise AgentConfigError(
                f"{target} does not exist: run `arctern connect setup` with --home {self.path}"
            ) from None
        except (OSError, ValueError) as exc:
            raise AgentConfigError(f"{target} cannot be read: {exc}") from None
        if not isinstance(data, dict):
            raise AgentConfigError(f"{target} is not a JSON object")
        return data

    def save_config(self, config: AgentConfig) -> None:
        self._write(self.config_path, asdict(config))

    def load_config(self) -> AgentConfig:
        data = self._read(self.config_path)
        try:
            collections = [LocalCollection(**c) for c in data.get("collections", [])]
            return AgentConfig(
                deployment_url=data["deployment_url"],
                endpoint_id=data["endpoint_id"],
                display_name=data["display_name"],
                owner=data.get("owner", ""),
                collections=collections,
            )
        except (KeyError, TypeError) as exc:
            raise AgentConfigError(f"{self.config_path} is incomplete: {exc}") from None

    def save_credential(self, credential: str) -> None:
        self._write(self.credential_path, {"credential": credential})

    def load_credential(self) -> str:
        mode = self.credential_path.stat().st_mode & 0o777 if self.credential_path.exists() else 0
        if mode & 0o077:
            raise AgentConfigError(
                f"{self.credential_path} is readable by others (mode {mode:04o}); it must be 0600"
            )
        credential = self._read(self.credential_path).get("credential")
        if not isinstance(credential, str) or not credential:
            raise AgentConfigError(f"{self.credential_path} holds no credential")
        return credential

    def data_certificate(self) -> tuple[Path, Path]:
        """The certificate and key this agent's data channel listens with (made once, mode
        0600): kept across restarts, so peers can keep pinning the same fingerprint."""
        from arctern.connect.dataserver import make_certificate

        cert_path, key_path = self.path / DATA_CERT_FILE, self.path / DATA_KEY_FILE
        if not cert_path.exists() or not key_path.exists():
            self.create()
            cert, key = make_certificate()
            for path, data in ((key_path, key), (cert_path, cert)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
        return cert_path, key_path
