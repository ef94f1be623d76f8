"""Where the Auth and Transfer services of a deployment live, discovered from one base URL."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

import globus_sdk
import requests
from globus_sdk import config as sdk_config
from globus_sdk.config.environments import EnvConfig

from arctern_client.errors import ConnectError

#: The environment name globus-sdk uses for an Arctern deployment (also its token namespace).
ARCTERN_ENVIRONMENT = "arctern"
_ENV_VARS = (
    "GLOBUS_SDK_ENVIRONMENT",
    "GLOBUS_SDK_SERVICE_URL_AUTH",
    "GLOBUS_SDK_SERVICE_URL_TRANSFER",
)


def _with_slash(url: str) -> str:
    return url if url.endswith("/") else url + "/"


def _normalise_transfer_url(url: str) -> str:
    # The SDK prepends /v0.10/ to every Transfer path itself, so a pasted API URL must lose it.
    url = _with_slash(url)
    if url.endswith("/v0.10/"):
        url = url[: -len("v0.10/")]
    return url


@dataclass(frozen=True)
class Deployment:
    """The service URLs of one Arctern (or Globus) deployment.

    ``auth_url`` keeps its trailing slash: globus-sdk builds the native-app redirect URI by
    string concatenation and would otherwise produce ``…/authv2/web/auth-code``.
    """

    auth_url: str
    transfer_url: str
    environment: str = ARCTERN_ENVIRONMENT
    base_url: str | None = None
    version: str | None = None

    @classmethod
    def globus(cls) -> Deployment:
        """Globus itself (production), with the URLs globus-sdk uses by default."""
        # Read the built-in table, not get_service_url(): that would honour GLOBUS_SDK_* overrides.
        production = EnvConfig.get_by_name("production")
        assert production is not None
        return cls(
            auth_url=production.get_service_url("auth"),
            transfer_url=production.get_service_url("transfer"),
            environment="production",
        )

    @classmethod
    def from_sdk_environment(cls) -> Deployment:
        """Whatever globus-sdk would use right now (GLOBUS_SDK_* variables, else Globus)."""
        environment = sdk_config.get_environment_name()
        return cls(
            auth_url=_with_slash(sdk_config.get_service_url("auth", environment)),
            transfer_url=_normalise_transfer_url(
                sdk_config.get_service_url("transfer", environment)
            ),
            environment=environment,
        )

    @property
    def key(self) -> str:
        """Identifies the deployment in token storage, so two servers never share tokens."""
        return self.auth_url

    @property
    def is_globus(self) -> bool:
        return self.environment != ARCTERN_ENVIRONMENT

    def environment_variables(self) -> dict[str, str]:
        """The GLOBUS_SDK_* variables that point globus-sdk and globus-cli at this deployment."""
        return {
            "GLOBUS_SDK_ENVIRONMENT": self.environment,
            "GLOBUS_SDK_SERVICE_URL_AUTH": self.auth_url,
            "GLOBUS_SDK_SERVICE_URL_TRANSFER": self.transfer_url,
        }

    def export(self, environ: MutableMapping[str, str] | None = None) -> None:
        """Point clients constructed later (plain globus-sdk ones too) at this deployment."""
        target = os.environ if environ is None else environ
        if self.is_globus:
            for name in _ENV_VARS:
                target.pop(name, None)
            return
        target.update(self.environment_variables())

    def native_auth_client(self, client_id: str) -> globus_sdk.NativeAppAuthClient:
        return globus_sdk.NativeAppAuthClient(
            client_id, environment=self.environment, base_url=self.auth_url
        )

    def transfer_client(
        self, authorizer: globus_sdk.authorizers.GlobusAuthorizer
    ) -> globus_sdk.TransferClient:
        return globus_sdk.TransferClient(
            authorizer=authorizer, environment=self.environment, base_url=self.transfer_url
        )

    def login(self, client_id: str, **kwargs: Any) -> Any:
        """Log in to this deployment; see :func:`arctern_client.login`."""
        from arctern_client.login import login

        return login(client_id, deployment=self, **kwargs)

    def __repr__(self) -> str:
        where = self.base_url or self.environment
        return f"Deployment({where}: auth={self.auth_url} transfer={self.transfer_url})"


def connect(
    url: str | None = None,
    *,
    export_environment: bool = True,
    timeout: float = 10.0,
    http: requests.Session | None = None,
) -> Deployment:
    """Set up globus-sdk for the Arctern server at ``url`` (``None`` or ``"globus"``: Globus).

    The service URLs come from ``<url>/.well-known/arctern.json``; a URL without it (a page
    of the web UI, a service URL, another server) is refused at once with a hint. With
    ``export_environment`` (the default) the GLOBUS_SDK_* variables are set as well, so plain
    ``globus_sdk`` clients built afterwards in this kernel talk to the same server.
    """
    if url is None or url.strip().lower() == "globus":
        deployment = Deployment.globus()
    else:
        deployment = _discover(url.strip().rstrip("/"), timeout, http or requests.Session())
    if export_environment:
        deployment.export()
    return deployment


def _discover(base: str, timeout: float, http: requests.Session) -> Deployment:
    if not base.startswith(("http://", "https://")):
        raise ConnectError(f"{base!r} is not a URL; expected e.g. https://arctern.example.org")
    try:
        response = http.get(f"{base}/.well-known/arctern.json", timeout=timeout)
    except requests.RequestException as exc:
        raise ConnectError(f"Cannot reach the Arctern server at {base}: {exc}") from exc
    document: Any = None
    if response.status_code == 200:
        try:
            document = response.json()
        except ValueError:
            document = None
    auth_url = document.get("auth_url") if isinstance(document, dict) else None
    transfer_url = document.get("transfer_url") if isinstance(document, dict) else None
    if not isinstance(auth_url, str) or not isinstance(transfer_url, str):
        # Checked now rather than at the first call: a page of the web UI (…/files) or a
        # service URL (…/auth/) answers too, and would fail later with a puzzling error.
        hint = ""
        for suffix in _PAGE_SUFFIXES:
            if base.endswith(suffix):
                hint = f" Did you mean {base[: -len(suffix)]!r}?"
                break
        raise ConnectError(
            f"{base} is not an Arctern server's address: it has no "
            f"/.well-known/arctern.json (HTTP {response.status_code}). Use the address "
            f"the server printed when it started, e.g. http://127.0.0.1:8765.{hint}"
        )
    version = document.get("version")
    return Deployment(
        auth_url=_with_slash(auth_url),
        transfer_url=_normalise_transfer_url(transfer_url),
        base_url=base,
        version=version if isinstance(version, str) else None,
    )


# Paths of an Arctern server people copy from the browser instead of its base address.
_PAGE_SUFFIXES = ("/files", "/activity", "/developers", "/auth", "/transfer", "/tasks")
