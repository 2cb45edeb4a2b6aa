"""A real PostgreSQL server for the scale-out tests: Debian's postgresql (initdb + postgres) on a loopback port in
a temporary folder, stopped at the end of the session. Each test gets its own database, migrated by Alembic as
the owner role, and connects as an app role with the migration's grants (no UPDATE/DELETE on audit)."""
from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

OWNER, OWNER_PW = "gov_owner", "owner-Secret-1"
APP, APP_PW = "gov_app", "app-Secret-1"


def pg_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str], **kw) -> subprocess.CompletedProcess:
    # initdb and postgres refuse to run as root: the Debian package's postgres user runs them
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)


@dataclass
class PgServer:
    port: int
    folder: Path
    process: subprocess.Popen

    def url(self, db: str, role: str = APP, password: str = APP_PW) -> str:
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{db}"

    def admin(self, sql: str, db: str = "postgres") -> None:
        import psycopg

        with psycopg.connect(self.url(db, OWNER, OWNER_PW), autocommit=True) as conn:
            conn.execute(sql)

    def new_database(self) -> str:
        """A fresh database at Alembic's head, owned by the owner role, used by the app role; → the app's URL."""
        from assistant.migrations import upgrade

        name = "t_" + secrets.token_hex(6)
        self.admin(f"CREATE DATABASE {name} OWNER {OWNER}")
        self.admin(f"REVOKE CREATE ON SCHEMA public FROM PUBLIC", db=name)
        upgrade(self.url(name, OWNER, OWNER_PW), app_role=APP)
        return self.url(name)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def start_postgres() -> PgServer:
    bindir = pg_bin()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed: `apt-get install postgresql` (make install-test does it)")
    folder = Path(tempfile.mkdtemp(prefix="gov-pg-"))
    data = folder / "data"
    data.mkdir()
    pwfile = folder / "pw"
    pwfile.write_text(OWNER_PW)
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(data, "postgres")
        shutil.chown(pwfile, "postgres")
    _as_server_user([str(bindir / "initdb"), "-D", str(data), "-U", OWNER, "--pwfile", str(pwfile),
                     "-A", "scram-sha-256", "-E", "UTF8", "--locale", "C.UTF-8"])
    port = _free_port()
    cmd = [str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port), "-k", str(folder),
           "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    process = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    server = PgServer(port, folder, process)
    deadline = time.monotonic() + 30
    while True:
        try:
            server.admin("SELECT 1")
            break
        except Exception:  # noqa: BLE001 - not up yet
            if process.poll() is not None or time.monotonic() > deadline:
                err = process.stderr.read().decode(errors="replace") if process.poll() is not None else ""
                server.stop()
                raise RuntimeError(f"postgres did not start on 127.0.0.1:{port}: {err[-500:]}")
            time.sleep(0.2)
    server.admin(f"CREATE ROLE {APP} LOGIN PASSWORD '{APP_PW}'")
    return server


_session: PgServer | None = None


def session_server() -> PgServer:
    """One server per test session, started on first use and stopped at exit."""
    global _session
    if _session is None:
        import atexit

        _session = start_postgres()
        atexit.register(_session.stop)
    return _session
