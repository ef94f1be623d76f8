"""``arctern connect``: the agent that serves a data host's directories to a deployment.

It needs only the deployment's URL and its own home directory (never the database).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Annotated, Any

import httpx
import typer

from arctern.connect.agent.client import (
    AgentApiError,
    AgentClient,
    CredentialRefused,
    exchange_setup_key,
    register_endpoint,
)
from arctern.connect.agent.daemon import EXIT_CREDENTIAL_REFUSED, read_status, run_agent
from arctern.connect.agent.home import AgentConfig, AgentConfigError, AgentHome, LocalCollection
from arctern.connect.agent.login import LoginFailed, LoginLink

app = typer.Typer(
    help="Arctern Connect agent: serve this host's directories as collections of a deployment.",
    no_args_is_help=True,
)
collection_app = typer.Typer(help="Collections this agent serves.", no_args_is_help=True)
app.add_typer(collection_app, name="collection")

AgentHomeOption = Annotated[
    Path,
    typer.Option(
        "--home",
        envvar="ARCTERN_CONNECT_HOME",
        help="The agent's state directory (configuration and credential).",
    ),
]


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.echo(f"Error: {message}", err=True)
    return typer.Exit(code)


def _register_with_login(url: str, name: str) -> dict[str, Any]:
    """The login-link flow (as `globus login --no-local-server`): PKCE, the code pasted back,
    then a new endpoint registered with the user's token."""
    login = LoginLink.start(url)
    typer.echo("Log in to register this host, at:\n")
    typer.echo(f"  {login.authorize_url}\n")
    code = typer.prompt("Then paste the authorization code here").strip()
    try:
        token = login.exchange(code)
    except LoginFailed as exc:
        raise _fail(str(exc)) from None
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the deployment at {url}: {exc}") from None
    try:
        return register_endpoint(url, token, name)
    except CredentialRefused as exc:
        raise _fail(f"the deployment refused the login: {exc}") from None
    except (httpx.HTTPError, AgentApiError) as exc:
        raise _fail(f"could not register the endpoint: {exc}") from None


@app.command("setup")
def setup(
    url: Annotated[
        str, typer.Argument(help="The deployment's URL, e.g. https://transfer.example.edu")
    ],
    home: AgentHomeOption,
    name: Annotated[
        str | None, typer.Option("--name", help="Expected endpoint name (checked).")
    ] = None,
    setup_key_stdin: Annotated[
        bool,
        typer.Option(
            "--setup-key-stdin",
            help="Read the setup key printed by `arctern endpoint create` from standard input.",
        ),
    ] = False,
) -> None:
    """Register this host as an endpoint and store its credential.

    Without --setup-key-stdin: prints a login link; log in on any browser, paste the
    authorization code back, and a new endpoint named --name is registered for you. With
    --setup-key-stdin (automation): exchange the key an administrator printed with `arctern
    endpoint create NAME --owner USER`."""
    agent_home = AgentHome(home)
    previous: AgentConfig | None = None
    if agent_home.config_path.exists():
        try:
            previous = agent_home.load_config()
        except AgentConfigError:
            previous = None
    if setup_key_stdin:
        key = sys.stdin.readline().strip()
        if not key:
            raise _fail("no setup key on standard input", 2)
        try:
            info = exchange_setup_key(url, key)
        except CredentialRefused as exc:
            raise _fail(f"the deployment refused the setup key: {exc}") from None
        except (httpx.HTTPError, AgentApiError) as exc:
            raise _fail(f"cannot reach the deployment at {url}: {exc}") from None
    else:
        if not name:
            raise _fail("--name is required to register a new endpoint", 2)
        info = _register_with_login(url, name)
    collections: list[LocalCollection] = []
    if previous is not None and previous.endpoint_id == info["endpoint_id"]:
        # New credentials for the same endpoint: the collections configured here stay.
        collections = previous.collections
    agent_home.create()
    agent_home.save_credential(str(info["credential"]))
    agent_home.save_config(
        AgentConfig(
            deployment_url=url.rstrip("/"),
            endpoint_id=str(info["endpoint_id"]),
            display_name=str(info["display_name"]),
            owner=str(info.get("owner", "")),
            collections=collections,
        )
    )
    if setup_key_stdin and name is not None and name != info["display_name"]:
        typer.echo(
            f"Warning: the setup key belongs to endpoint '{info['display_name']}', not '{name}'",
            err=True,
        )
    typer.echo(f"Endpoint '{info['display_name']}' ({info['endpoint_id']}), owner {info['owner']}")
    typer.echo(f"Credential stored in {agent_home.credential_path} (mode 0600)")


def _load(home: Path) -> tuple[AgentHome, AgentConfig, str]:
    agent_home = AgentHome(home)
    try:
        return agent_home, agent_home.load_config(), agent_home.load_credential()
    except AgentConfigError as exc:
        raise _fail(str(exc)) from None


@collection_app.command("create")
def collection_create(
    name: Annotated[str, typer.Option("--name", help="Display name users see.")],
    posix: Annotated[Path, typer.Option("--posix", help="Local directory to export.")],
    home: AgentHomeOption,
    description: Annotated[str, typer.Option("--description", help="Shown in search.")] = "",
) -> None:
    """Export a local directory as a collection. The root stays in this host's
    configuration; the deployment learns only the collection's name, id and owner."""
    agent_home, config, credential = _load(home)
    root = posix.expanduser().absolute()
    if not root.is_dir():
        raise _fail(f"{root} is not a directory")
    root_text = os.path.realpath(root)
    if any(c.name == name for c in config.collections):
        raise _fail(f"this agent already has a collection named '{name}'")
    try:
        created = AgentClient(config.deployment_url, credential).add_collection(name, description)
    except CredentialRefused as exc:
        raise _fail(
            f"the endpoint credential was refused: {exc}", EXIT_CREDENTIAL_REFUSED
        ) from None
    except (httpx.HTTPError, AgentApiError) as exc:
        raise _fail(str(exc)) from None
    config.collections.append(LocalCollection(id=str(created["id"]), name=name, root=root_text))
    agent_home.save_config(config)
    typer.echo(f"{created['id']}\t{name}\t{root_text}")


@collection_app.command("list")
def collection_list(home: AgentHomeOption) -> None:
    """The collections this agent serves: id, name, local root."""
    _, config, _ = _load(home)
    for c in config.collections:
        typer.echo(f"{c.id}\t{c.name}\t{c.root}")


@app.command("run")
def run(
    home: AgentHomeOption,
    poll_hold: Annotated[
        float,
        typer.Option("--poll-hold", help="Seconds the deployment may hold each long poll."),
    ] = 20.0,
    listen: Annotated[
        str | None,
        typer.Option(
            "--listen",
            metavar="HOST:PORT",
            help="Accept data connections from other agents here (TLS, pinned certificate). "
            "Without it (--no-listen, the default) this agent only connects out: it can send "
            "to and receive from agents that listen.",
        ),
    ] = None,
    no_listen: Annotated[
        bool, typer.Option("--no-listen", help="Do not accept data connections (default).")
    ] = False,
    data_address: Annotated[
        str | None,
        typer.Option(
            "--data-address",
            metavar="HOST:PORT",
            help="The address peers should connect to, if not the --listen address "
            "(e.g. behind NAT or when listening on 0.0.0.0).",
        ),
    ] = None,
) -> None:
    """Run the agent: connect out to the deployment, answer relayed file operations and run
    transfers of this endpoint's collections."""
    agent_home, _config, _credential = _load(home)
    if listen and no_listen:
        raise typer.BadParameter("--listen and --no-listen exclude each other")
    if listen and not re.fullmatch(r"\[?[A-Za-z0-9.:\-]*\]?:[0-9]{1,5}", listen):
        raise typer.BadParameter(f"--listen must be HOST:PORT, not {listen!r}")

    def say(message: str) -> None:
        typer.echo(f"arctern-connect: {message}", err=True)

    raise typer.Exit(
        run_agent(
            agent_home,
            poll_hold=poll_hold,
            say=say,
            listen=None if no_listen else listen,
            data_address=data_address,
        )
    )


@app.command("status")
def status(home: AgentHomeOption) -> None:
    """Connected?, endpoint, collections, and the agent's last recorded state."""
    agent_home, config, credential = _load(home)
    typer.echo(f"Deployment:  {config.deployment_url}")
    typer.echo(f"Endpoint:    {config.display_name} ({config.endpoint_id})")
    local = read_status(agent_home)
    if local is not None:
        typer.echo(f"Agent:       {local.get('state')}: {local.get('message')}")
    else:
        typer.echo("Agent:       has not run yet")
    code = 0
    remote: dict[str, Any] = {}
    try:
        remote = AgentClient(config.deployment_url, credential).endpoint()
        typer.echo(f"Connected:   {'yes' if remote.get('connected') else 'no'}")
        address = remote.get("data_address")
        typer.echo(
            f"Data:        accepting connections at {address}"
            if address
            else "Data:        not listening (--no-listen): exchanges data with agents that listen"
        )
    except CredentialRefused as exc:
        typer.echo(f"Connected:   no: the credential is refused ({exc})")
        code = EXIT_CREDENTIAL_REFUSED
    except (httpx.HTTPError, AgentApiError) as exc:
        typer.echo(f"Connected:   unknown: the deployment is unreachable ({exc})")
        code = 1
    typer.echo("Collections:")
    for c in config.collections:
        typer.echo(f"  {c.id}\t{c.name}\t{c.root}")
    active = remote.get("active_transfers") or []
    typer.echo(f"Active transfers: {len(active) if remote else 'unknown'}")
    for task in active:
        done = f"{task['files_transferred']}/{task['files']} files, {task['bytes_transferred']} B"
        label = f" {task['label']!r}" if task.get("label") else ""
        typer.echo(f"  {task['task_id']}{label}\t{task.get('nice_status') or ''}\t{done}")
    raise typer.Exit(code)
