"""A real OpenLDAP server for the LDAP sign-in tests: Debian's slapd on a loopback port with a small directory.

dc=example,dc=gov
  cn=search            the service account the assistant searches with
  ou=people
    ou=办公室          uid=alice (cn 王丽), uid=twin
    ou=数据资源处      uid=bob (cn 李博), uid=carol (employeeType: disabled), uid=twin (a second twin: ambiguous)
  ou=groups
    cn=admins      ← alice
    cn=data-team   ← bob
    cn=editors     ← cn=data-team                 (nested: bob via data-team)
    cn=all-staff   ← cn=editors, cn=admins        (two levels: bob via editors via data-team)
    cn=loop-a      ← bob, cn=loop-b; cn=loop-b ← cn=loop-a   (a cycle: resolution must end)

Values with Chinese text go into the LDIF base64-encoded (RFC 2849), loaded with ldapadd — the directory is built
without the library under test. Passwords are hashed with slappasswd. Anonymous users may bind (auth) and read the
rootDSE, nothing else; bound users read everything but userPassword.
"""
from __future__ import annotations

import base64
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = "/usr/sbin/slapd"
SUFFIX = "dc=example,dc=gov"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PW = "root-Secret-1"
SEARCH_DN = f"cn=search,{SUFFIX}"
SEARCH_PW = "search-Secret-1"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
OFFICE, DATA = "办公室", "数据资源处"
PASSWORDS = {"alice": "alice-Pw-1", "bob": "bob-Pw-1", "carol": "carol-Pw-1", "twin": "twin-Pw-1"}
SCHEMAS = ("core", "cosine", "inetorgperson", "nis")


def user_dn(uid: str, department: str) -> str:
    return f"uid={uid},ou={department},{PEOPLE}"


def group_dn(cn: str) -> str:
    return f"cn={cn},{GROUPS}"


ALICE, BOB, CAROL = user_dn("alice", OFFICE), user_dn("bob", DATA), user_dn("carol", DATA)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _line(attr: str, value: str) -> str:
    if value.isascii() and not value.startswith((" ", ":", "<")):
        return f"{attr}: {value}"
    return f"{attr}:: {base64.b64encode(value.encode('utf-8')).decode('ascii')}"


def _entry(dn: str, attrs: list[tuple[str, str]]) -> str:
    return "\n".join([_line("dn", dn), *(_line(a, v) for a, v in attrs)]) + "\n"


def _hash(password: str) -> str:
    return subprocess.run(["slappasswd", "-s", password], check=True, capture_output=True, text=True).stdout.strip()


def directory_ldif() -> str:
    def person(uid: str, dept: str, cn: str, *extra: tuple[str, str]) -> str:
        return _entry(user_dn(uid, dept), [("objectClass", "inetOrgPerson"), ("uid", uid), ("cn", cn),
                                           ("sn", cn[:1]), ("ou", dept), ("userPassword", _hash(PASSWORDS[uid])),
                                           *extra])

    def group(cn: str, *members: str) -> str:
        return _entry(group_dn(cn), [("objectClass", "groupOfNames"), ("cn", cn), *(("member", m) for m in members)])

    entries = [
        _entry(SUFFIX, [("objectClass", "dcObject"), ("objectClass", "organization"), ("dc", "example"),
                        ("o", "示例市人民政府")]),
        _entry(SEARCH_DN, [("objectClass", "organizationalRole"), ("objectClass", "simpleSecurityObject"),
                           ("cn", "search"), ("userPassword", _hash(SEARCH_PW))]),
        _entry(PEOPLE, [("objectClass", "organizationalUnit"), ("ou", "people")]),
        _entry(f"ou={OFFICE},{PEOPLE}", [("objectClass", "organizationalUnit"), ("ou", OFFICE)]),
        _entry(f"ou={DATA},{PEOPLE}", [("objectClass", "organizationalUnit"), ("ou", DATA)]),
        person("alice", OFFICE, "王丽"),
        person("bob", DATA, "李博"),
        person("carol", DATA, "陈可", ("employeeType", "disabled")),
        person("twin", OFFICE, "双一"),
        person("twin", DATA, "双二"),
        _entry(GROUPS, [("objectClass", "organizationalUnit"), ("ou", "groups")]),
        group("admins", ALICE),
        group("data-team", BOB),
        group("editors", group_dn("data-team")),
        group("all-staff", group_dn("editors"), group_dn("admins")),
        group("loop-a", BOB, group_dn("loop-b")),
        group("loop-b", group_dn("loop-a")),
    ]
    return "\n".join(entries)


SLAPD_CONF = """\
{includes}
pidfile {root}/slapd.pid
argsfile {root}/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb

database mdb
suffix "{suffix}"
rootdn "{rootdn}"
rootpw {rootpw}
directory {root}/db
maxsize 33554432
index objectClass,uid,member eq
access to attrs=userPassword
  by anonymous auth
  by self auth
  by * none
access to *
  by users read
  by * none
"""


def make_certificates(where: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate for 127.0.0.1 it signed: (ca.pem, server.pem, server.key)."""
    where.mkdir(parents=True, exist_ok=True)
    ca, ca_key = where / "ca.pem", where / "ca.key"
    cert, key, csr, ext = where / "server.pem", where / "server.key", where / "server.csr", where / "san.ext"

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=gov-assistant test CA",
            "-keyout", str(ca_key), "-out", str(ca))
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(csr))
    ext.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n", encoding="ascii")
    openssl("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey", str(ca_key), "-CAcreateserial", "-days", "2",
            "-extfile", str(ext), "-out", str(cert))
    return ca, cert, key


@dataclass
class Slapd:
    root: Path
    port: int = field(default_factory=free_port)
    tls: bool = False                 # a test CA's certificate: start_tls on `url`, ldaps:// on `ldaps_url`
    ldaps_port: int = field(default_factory=free_port)
    proc: subprocess.Popen | None = None
    ca_file: Path | None = None

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    @property
    def ldaps_url(self) -> str:
        return f"ldaps://127.0.0.1:{self.ldaps_port}"

    def start(self) -> "Slapd":
        (self.root / "db").mkdir(parents=True, exist_ok=True)
        conf = self.root / "slapd.conf"
        text = SLAPD_CONF.format(
            includes="\n".join(f"include /etc/ldap/schema/{s}.schema" for s in SCHEMAS), root=self.root,
            suffix=SUFFIX, rootdn=ROOT_DN, rootpw=_hash(ROOT_PW))
        listen = f"{self.url}/"
        if self.tls:
            self.ca_file, cert, key = make_certificates(self.root / "tls")
            text = (f"TLSCACertificateFile {self.ca_file}\nTLSCertificateFile {cert}\n"
                    f"TLSCertificateKeyFile {key}\n") + text
            listen += f" {self.ldaps_url}/"
        conf.write_text(text, encoding="utf-8")
        log = open(self.root / "slapd.log", "wb")
        # -d 0: stay in the foreground (no fork), no debug output; its own process group for the teardown
        self.proc = subprocess.Popen([SLAPD, "-h", listen, "-f", str(conf), "-d", "0"],
                                     stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"slapd exited {self.proc.returncode}: {(self.root / 'slapd.log').read_text()}")
            r = subprocess.run(["ldapsearch", "-x", "-H", self.url, "-b", "", "-s", "base", "-LLL", "objectClass"],
                               capture_output=True, text=True)
            if r.returncode == 0:
                break
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"slapd did not answer on {self.url}: {r.stderr}")
            time.sleep(0.1)
        ldif = self.root / "directory.ldif"
        ldif.write_text(directory_ldif(), encoding="utf-8")
        r = subprocess.run(["ldapadd", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW, "-f", str(ldif)],
                           capture_output=True, text=True)
        if r.returncode != 0:
            self.stop()
            raise RuntimeError(f"ldapadd failed: {r.stderr}")
        return self

    def modify(self, *changes: str) -> None:
        """Change the directory as its administrator would (ldapmodify as the root DN, not the library under
        test). Each change is an LDIF change record: change(BOB, "changetype: delete")."""
        r = subprocess.run(["ldapmodify", "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PW],
                           input="\n".join(changes), capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"ldapmodify failed: {r.stderr}")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)


def change(dn: str, *lines: str | tuple[str, str]) -> str:
    """One LDIF change record for Slapd.modify; an (attribute, value) line is base64-encoded where it has
    Chinese text, as the DN is."""
    return "\n".join([_line("dn", dn), *(_line(*x) if isinstance(x, tuple) else x for x in lines)]) + "\n"


def slapd_available() -> bool:
    return Path(SLAPD).exists() and all(shutil.which(t) for t in ("ldapadd", "ldapsearch", "slappasswd", "openssl"))


def ldap_env(url: str, **extra: str) -> dict[str, str]:
    """Settings (as GOV_ASSISTANT_* environment) for an assistant that signs in against this directory."""
    env = {"GOV_ASSISTANT_IDENTITY__LDAP__ENABLED": "true", "GOV_ASSISTANT_IDENTITY__LDAP__URL": url,
           "GOV_ASSISTANT_IDENTITY__LDAP__BIND_DN": SEARCH_DN,
           "GOV_ASSISTANT_IDENTITY__LDAP__BIND_PASSWORD": SEARCH_PW,
           "GOV_ASSISTANT_IDENTITY__LDAP__USER_BASE": PEOPLE,
           "GOV_ASSISTANT_IDENTITY__LDAP__GROUP_BASE": GROUPS,
           "GOV_ASSISTANT_IDENTITY__LDAP__DISABLED_FILTER": "(employeeType=disabled)",
           "GOV_ASSISTANT_IDENTITY__LDAP__TIMEOUT_S": "3"}
    env.update({f"GOV_ASSISTANT_IDENTITY__LDAP__{k.upper()}": v for k, v in extra.items()})
    return env
