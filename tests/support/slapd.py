"""A private OpenLDAP ``slapd`` on loopback for directory-login tests (Debian's slapd).

It runs in the foreground from its own configuration file and database directory under the
test's temporary directory, loaded with ``slapadd`` before it starts: an ``ou=people`` with
the users given, passwords hashed ({SSHA}) by ``slappasswd``.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.support.server import free_port

SUFFIX = "dc=campus,dc=edu"
ADMIN_DN = f"cn=admin,{SUFFIX}"
ADMIN_PASSWORD = "directory-admin-secret"


def available() -> str | None:
    for tool in ("slapd", "slapadd", "slappasswd"):
        if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists():
            return f"{tool} is not installed (Debian package slapd)"
    return None


def _tool(name: str) -> str:
    return shutil.which(name) or f"/usr/sbin/{name}"


def _hash(password: str) -> str:
    return subprocess.check_output([_tool("slappasswd"), "-s", password], text=True).strip()


@dataclass
class Slapd:
    url: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_slapd(workdir: Path, users: dict[str, tuple[str, str]]) -> Slapd:
    """``users``: uid -> (full name, password)."""
    workdir.mkdir(parents=True, exist_ok=True)
    data = workdir / "db"
    data.mkdir(exist_ok=True)
    conf = workdir / "slapd.conf"
    conf.write_text(
        "\n".join(
            [
                *(
                    f"include /etc/ldap/schema/{s}.schema"
                    for s in ("core", "cosine", "nis", "inetorgperson")
                ),
                "modulepath /usr/lib/ldap",
                "moduleload back_mdb",
                f"pidfile {workdir / 'slapd.pid'}",
                "database mdb",
                "maxsize 10485760",
                f'suffix "{SUFFIX}"',
                f'rootdn "{ADMIN_DN}"',
                f"rootpw {_hash(ADMIN_PASSWORD)}",
                f"directory {data}",
                "access to attrs=userPassword by anonymous auth by * none",
                "access to * by * read",
                "",
            ]
        )
    )
    entries = [
        f"dn: {SUFFIX}\nobjectClass: dcObject\nobjectClass: organization\no: Campus\ndc: campus",
        f"dn: ou=people,{SUFFIX}\nobjectClass: organizationalUnit\nou: people",
    ]
    for uid, (name, password) in users.items():
        surname = name.split()[-1]
        entries.append(
            f"dn: uid={uid},ou=people,{SUFFIX}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
            f"cn: {name}\nsn: {surname}\nmail: {uid}@campus.edu\n"
            f"userPassword: {_hash(password)}"
        )
    ldif = workdir / "people.ldif"
    ldif.write_text("\n\n".join(entries) + "\n")
    subprocess.run(
        [_tool("slapadd"), "-f", str(conf), "-l", str(ldif)], check=True, capture_output=True
    )
    port = free_port()
    url = f"ldap://127.0.0.1:{port}"
    process = subprocess.Popen(
        [_tool("slapd"), "-f", str(conf), "-h", f"{url}/", "-d", "0"],
        stdout=subprocess.DEVNULL,
        stderr=(workdir / "slapd.log").open("wb"),
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError((workdir / "slapd.log").read_text())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return Slapd(url, process)
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("slapd did not start")
