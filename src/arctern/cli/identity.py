"""Admin commands for users and identity providers."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, TypeVar

import typer

from arctern.context import AppContext
from arctern.errors import ArcternError

user_app = typer.Typer(help="Manage user accounts.", no_args_is_help=True)
idp_app = typer.Typer(help="Manage identity providers (institutions).", no_args_is_help=True)

T = TypeVar("T")

HomeOption = Annotated[
    Path | None,
    typer.Option("--home", envvar="ARCTERN_HOME", help="State directory (default ~/.arctern)."),
]
DatabaseOption = Annotated[
    str | None,
    typer.Option("--database", envvar="ARCTERN_DATABASE_URL", help="SQLAlchemy database URL."),
]


def run_admin(
    home: Path | None, database: str | None, action: Callable[[AppContext], Awaitable[T]]
) -> T:
    """Run one async admin action against the home's database; errors exit 1 with a message."""
    from arctern.cli.main import prepare

    settings = prepare(home, database)

    async def go() -> T:
        ctx = AppContext.from_settings(settings)
        try:
            return await action(ctx)
        finally:
            await ctx.db.dispose()

    try:
        return asyncio.run(go())
    except ArcternError as exc:
        typer.echo(f"Error: {exc.message}", err=True)
        raise typer.Exit(1) from None


def read_password(password_stdin: bool) -> str:
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    if not password:
        typer.echo("Error: the password must not be empty", err=True)
        raise typer.Exit(1)
    return password


@idp_app.command("create")
def idp_create(
    name: Annotated[str, typer.Argument(help="Display name, e.g. 'Example University'.")],
    domain: Annotated[str, typer.Option("--domain", help="Username domain, e.g. example.edu.")],
    ldap: Annotated[
        str | None,
        typer.Option(
            "--ldap",
            metavar="URL",
            help="Check passwords against this LDAP directory (ldap:// or ldaps://) instead of "
            "local accounts; passwords are never stored.",
        ),
    ] = None,
    user_dn_template: Annotated[
        str | None,
        typer.Option(
            "--user-dn-template",
            help="The user's DN, e.g. 'uid={username},ou=people,dc=campus,dc=edu'.",
        ),
    ] = None,
    bind_dn: Annotated[
        str | None, typer.Option("--bind-dn", help="Service account for search-then-bind.")
    ] = None,
    bind_password_stdin: Annotated[
        bool, typer.Option("--bind-password-stdin", help="Read its password from stdin.")
    ] = False,
    search_base: Annotated[
        str | None, typer.Option("--search-base", help="Where to search for users.")
    ] = None,
    search_filter: Annotated[
        str, typer.Option("--search-filter", help="How to find a user (search-then-bind).")
    ] = "(uid={username})",
    starttls: Annotated[bool, typer.Option("--starttls", help="Upgrade ldap:// with StartTLS.")] = (
        False
    ),
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per directory call.")] = 10.0,
    oidc_issuer: Annotated[
        str | None,
        typer.Option(
            "--oidc-issuer",
            metavar="URL",
            help="Log users in at this OpenID Connect provider (its issuer URL; discovery and "
            "keys are read from it). Register Arctern there with the redirect URI "
            "<public URL>/auth/login/oidc/callback.",
        ),
    ] = None,
    client_id: Annotated[
        str | None, typer.Option("--client-id", help="Arctern's client id at the provider.")
    ] = None,
    client_secret_stdin: Annotated[
        bool,
        typer.Option("--client-secret-stdin", help="Read the client secret from stdin."),
    ] = False,
    username_claim: Annotated[
        str,
        typer.Option(
            "--username-claim",
            help="The id_token claim holding the username (its part before '@' becomes "
            "NAME@DOMAIN; a different domain is refused).",
        ),
    ] = "preferred_username",
    scopes: Annotated[
        str, typer.Option("--scopes", help="Scopes asked of the provider.")
    ] = "openid profile email",
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Create an identity provider (shown in the login page's Institution list): local
    accounts (`arctern user create`), an LDAP / Active Directory with --ldap and either
    --user-dn-template or --search-base (search-then-bind), or an OpenID Connect provider
    with --oidc-issuer, --client-id and --client-secret-stdin."""
    from arctern.auth.admin import create_identity_provider
    from arctern.auth.ldap import LdapSettings
    from arctern.auth.upstream import OIDC_KIND, OidcSettings
    from arctern.db.models.auth import IdentityProvider

    if ldap is not None and oidc_issuer is not None:
        typer.echo("Error: --ldap and --oidc-issuer exclude each other", err=True)
        raise typer.Exit(2)
    client_secret = ""
    if oidc_issuer is not None:
        if not oidc_issuer.startswith(("https://", "http://")):
            typer.echo("Error: --oidc-issuer must be an https:// URL", err=True)
            raise typer.Exit(2)
        if not client_id or not client_secret_stdin:
            typer.echo("Error: --oidc-issuer needs --client-id and --client-secret-stdin", err=True)
            raise typer.Exit(2)
        if "openid" not in scopes.split():
            typer.echo("Error: --scopes must include openid", err=True)
            raise typer.Exit(2)
        client_secret = read_password(True)
    bind_password = ""
    if ldap is not None:
        if not ldap.startswith(("ldap://", "ldaps://")):
            typer.echo("Error: --ldap must be an ldap:// or ldaps:// URL", err=True)
            raise typer.Exit(2)
        if not user_dn_template and not search_base:
            typer.echo("Error: give --user-dn-template or --search-base with --ldap", err=True)
            raise typer.Exit(2)
        if user_dn_template and "{username}" not in user_dn_template:
            typer.echo("Error: --user-dn-template must contain {username}", err=True)
            raise typer.Exit(2)
        bind_password = read_password(True) if bind_password_stdin else ""

    def action(ctx: AppContext) -> Awaitable[IdentityProvider]:
        stored = None
        if oidc_issuer is not None:
            assert client_id is not None
            stored = OidcSettings(
                issuer=oidc_issuer.rstrip("/"),
                client_id=client_id,
                client_secret_encrypted=OidcSettings.encrypt(
                    ctx.settings.secret_key or "", client_secret
                ),
                username_claim=username_claim,
                scopes=scopes,
            ).stored()
            return create_identity_provider(ctx, name, domain, kind=OIDC_KIND, settings=stored)
        if ldap is not None:
            stored = LdapSettings(
                url=ldap,
                user_dn_template=user_dn_template,
                bind_dn=bind_dn,
                bind_password_encrypted=(
                    LdapSettings.encrypt(ctx.settings.secret_key or "", bind_password)
                    if bind_password
                    else None
                ),
                search_base=search_base,
                search_filter=search_filter,
                starttls=starttls,
                timeout=timeout,
            ).stored()
        return create_identity_provider(
            ctx, name, domain, kind="ldap" if ldap else "local", settings=stored
        )

    provider = run_admin(home, database, action)
    typer.echo(str(provider.id))


@idp_app.command("list")
def idp_list(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """List identity providers."""
    from sqlalchemy import select

    from arctern.db.models.auth import IdentityProvider

    async def action(ctx: AppContext) -> list[IdentityProvider]:
        async with ctx.db.session() as session:
            return list(await session.scalars(select(IdentityProvider).order_by("name")))

    for provider in run_admin(home, database, action):
        state = "" if provider.enabled else "  (disabled)"
        typer.echo(
            f"{provider.id}  {provider.domain:<24} {provider.kind:<6} {provider.name}{state}"
        )


@idp_app.command("disable")
def idp_disable(
    name: Annotated[str, typer.Argument(help="Provider name or domain.")],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Disable a provider: off the login page; its users' sessions and tokens end at once."""
    from arctern.auth.admin import set_provider_enabled

    provider = run_admin(home, database, lambda ctx: set_provider_enabled(ctx, name, False))
    typer.echo(f"Disabled {provider.name}; its users' sessions and tokens are revoked")


@idp_app.command("enable")
def idp_enable(
    name: Annotated[str, typer.Argument(help="Provider name or domain.")],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Enable a disabled provider again (its users log in again; old tokens stay revoked)."""
    from arctern.auth.admin import set_provider_enabled

    provider = run_admin(home, database, lambda ctx: set_provider_enabled(ctx, name, True))
    typer.echo(f"Enabled {provider.name}")


@user_app.command("create")
def user_create(
    username: Annotated[str, typer.Argument(help="name@domain, or a bare name with --idp.")],
    idp: Annotated[str | None, typer.Option("--idp", help="Identity provider name.")] = None,
    name: Annotated[str, typer.Option("--name", help="Full name.")] = "",
    email: Annotated[str | None, typer.Option("--email", help="Email address.")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Create a local user account; prints the identity id."""
    from arctern.auth.admin import create_user

    password = read_password(password_stdin)
    identity = run_admin(
        home,
        database,
        lambda ctx: create_user(ctx, username, password, idp_name=idp, name=name, email=email),
    )
    typer.echo(str(identity.id))


@user_app.command("set-password")
def user_set_password(
    username: Annotated[str, typer.Argument(help="name@domain")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Change a user's password."""
    from arctern.auth.admin import set_password

    password = read_password(password_stdin)
    run_admin(home, database, lambda ctx: set_password(ctx, username, password))
    typer.echo(f"Password changed for {username}")


@user_app.command("disable")
def user_disable(
    username: Annotated[str, typer.Argument(help="name@domain")],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Disable an account: ends its web sessions and revokes its tokens on every host."""
    from arctern.auth.admin import set_disabled

    run_admin(home, database, lambda ctx: set_disabled(ctx, username, True))
    typer.echo(f"Disabled {username}; its sessions and tokens are revoked")


@user_app.command("enable")
def user_enable(
    username: Annotated[str, typer.Argument(help="name@domain")],
    home: HomeOption = None,
    database: DatabaseOption = None,
) -> None:
    """Re-enable a disabled account (it logs in again; old tokens stay revoked)."""
    from arctern.auth.admin import set_disabled

    run_admin(home, database, lambda ctx: set_disabled(ctx, username, False))
    typer.echo(f"Enabled {username}")


@user_app.command("list")
def user_list(home: HomeOption = None, database: DatabaseOption = None) -> None:
    """List user accounts."""
    from sqlalchemy import select

    from arctern.db.models.auth import Identity

    async def action(ctx: AppContext) -> list[Identity]:
        async with ctx.db.session() as session:
            return list(await session.scalars(select(Identity).order_by(Identity.username)))

    for identity in run_admin(home, database, action):
        status = "" if identity.status in ("used", "unused") else f"  ({identity.status})"
        typer.echo(f"{identity.id}  {identity.username}{status}")
