"""Passwords checked against an institution's LDAP directory (OpenLDAP, Active Directory).

The password is sent to the directory in a bind and never stored. Two ways to find the
user's entry: a DN template (``uid={username},ou=people,dc=campus,dc=edu``), or
search-then-bind (bind as a service account, search the base with a filter such as
``(uid={username})``, then bind as the entry found). The username is escaped for the DN or
the filter (no LDAP injection); an empty password is refused before any bind, since many
directories treat it as an anonymous bind that succeeds. StartTLS and timeouts are settings.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import Any

import ldap3
from ldap3.core.exceptions import LDAPException, LDAPSocketOpenError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn

from arctern.secretbox import fernet_for

_SECRET_PURPOSE = b"arctern-ldap-bind-password"
# What a directory username may look like: no spaces, no DN or filter syntax left unescaped.
USERNAME = re.compile(r"[A-Za-z0-9._-]{1,128}")


class DirectoryUnavailable(Exception):
    """The directory could not be reached or answered with an error (not a wrong password)."""


@dataclass(frozen=True)
class LdapSettings:
    url: str
    user_dn_template: str | None = None
    bind_dn: str | None = None
    bind_password_encrypted: str | None = None
    search_base: str | None = None
    search_filter: str = "(uid={username})"
    starttls: bool = False
    timeout: float = 10.0

    def stored(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_stored(cls, raw: dict[str, Any]) -> LdapSettings:
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})

    @staticmethod
    def encrypt(secret_key: str, password: str) -> str:
        return fernet_for(secret_key, _SECRET_PURPOSE).encrypt(password.encode()).decode()

    def bind_password(self, secret_key: str) -> str:
        if not self.bind_password_encrypted:
            return ""
        raw = self.bind_password_encrypted.encode()
        return fernet_for(secret_key, _SECRET_PURPOSE).decrypt(raw).decode()


@dataclass(frozen=True)
class DirectoryUser:
    dn: str
    name: str
    email: str | None


def _connection(settings: LdapSettings, user: str | None, password: str | None) -> Any:
    # ldap3 packs timeouts into socket options as whole seconds.
    seconds = max(1, math.ceil(settings.timeout))
    server = ldap3.Server(settings.url, connect_timeout=seconds, get_info=ldap3.NONE)
    connection = ldap3.Connection(
        server, user=user, password=password, receive_timeout=seconds, read_only=True
    )
    try:
        connection.open()
        if settings.starttls:
            connection.start_tls()
    except LDAPSocketOpenError as exc:
        raise DirectoryUnavailable(f"cannot reach {settings.url}: {exc}") from None
    except LDAPException as exc:
        raise DirectoryUnavailable(f"{settings.url}: {exc}") from None
    return connection


def authenticate(
    settings: LdapSettings, secret_key: str, username: str, password: str
) -> DirectoryUser | None:
    """The directory entry of ``username`` if ``password`` is right; None if not.
    Blocking (run it in a thread)."""
    if not password or not USERNAME.fullmatch(username):
        return None
    try:
        dn = _find(settings, secret_key, username)
        if dn is None:
            return None
        connection = _connection(settings, dn, password)
        try:
            if not connection.bind():
                return None
            found = connection.search(
                dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["cn", "mail"]
            )
            name, email = "", None
            if found and connection.entries:
                entry = connection.entries[0]
                name = str(entry.cn.value or "") if "cn" in entry else ""
                email = str(entry.mail.value) if "mail" in entry and entry.mail.value else None
            return DirectoryUser(dn, name, email)
        finally:
            connection.unbind()
    except DirectoryUnavailable:
        raise
    except LDAPException as exc:
        raise DirectoryUnavailable(f"{settings.url}: {exc}") from None


def _find(settings: LdapSettings, secret_key: str, username: str) -> str | None:
    """The user's DN: from the template, or by a search as the service account."""
    if settings.user_dn_template:
        return settings.user_dn_template.replace("{username}", escape_rdn(username))
    if not settings.search_base:
        raise DirectoryUnavailable("the provider has neither a DN template nor a search base")
    connection = _connection(
        settings, settings.bind_dn or None, settings.bind_password(secret_key) or None
    )
    try:
        if settings.bind_dn and not connection.bind():
            raise DirectoryUnavailable("the directory refused the service account's bind")
        query = settings.search_filter.replace("{username}", escape_filter_chars(username))
        connection.search(settings.search_base, query, search_scope=ldap3.SUBTREE, attributes=[])
        if len(connection.entries) != 1:
            return None
        return str(connection.entries[0].entry_dn)
    finally:
        connection.unbind()
