"""The scale-out engines and app processes on loopback, for the tests and benchmarks/scale_out.py: a Chroma server
(`chroma run`, the chromadb package's own), `gov-assistant serve` and `worker` processes, free ports, waiting."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from assistant.settings import PROJECT_ROOT

PY = [sys.executable, "-m", "assistant.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_file(what: str):
    """Where a child's output goes: a file, never an unread pipe (a chatty server blocks once a pipe's 64 KiB fill)."""
    import tempfile
    return tempfile.NamedTemporaryFile(prefix=what.replace(" ", "-") + "-", suffix=".log", delete=False)


def _tail(proc: subprocess.Popen) -> str:
    log = getattr(proc, "log_path", None)
    return Path(log).read_text(errors="replace")[-1500:] if log else ""


def wait_http(url: str, proc: subprocess.Popen, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up at {url}: {_tail(proc)}")
        time.sleep(0.3)


def _spawn(args: list[str], what: str, **kwargs) -> subprocess.Popen:
    log = _log_file(what)
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, **kwargs)
    log.close()
    proc.log_path = log.name
    return proc


def stop_process(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if getattr(proc, "log_path", None):
        Path(proc.log_path).unlink(missing_ok=True)


def start_chroma(folder: Path) -> tuple[int, subprocess.Popen]:
    """A Chroma server over `folder` on a free loopback port → (port, process)."""
    port = free_port()
    proc = _spawn([str(Path(sys.executable).parent / "chroma"), "run", "--path", str(folder), "--host", "127.0.0.1",
                   "--port", str(port)], "chroma run", env={**os.environ, "ANONYMIZED_TELEMETRY": "False"})
    wait_http(f"http://127.0.0.1:{port}/api/v2/heartbeat", proc, "chroma run")
    return port, proc


def app_env(data_dir: Path, database_url: str, chroma_port: int, profile: str = "unit", **extra: str) -> dict:
    """The environment every process of one deployment shares (no GOV_ASSISTANT_* leaks in from the caller)."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("GOV_ASSISTANT_")},
            "GOV_ASSISTANT_PROFILE": profile, "GOV_ASSISTANT_DATA_DIR": str(data_dir),
            "GOV_ASSISTANT_DATABASE__URL": database_url, "GOV_ASSISTANT_VECTORSTORE__MODE": "http",
            "GOV_ASSISTANT_VECTORSTORE__HTTP__PORT": str(chroma_port), "PYTHONPATH": str(PROJECT_ROOT), **extra}


def serve(env: dict, *args: str, ui: bool = False) -> tuple[str, subprocess.Popen]:
    """`gov-assistant serve` (`--no-ui` unless ui) on a free port, up and answering → (base URL, process)."""
    port = free_port()
    proc = _spawn([*PY, "serve", *([] if ui else ["--no-ui"]), "--port", str(port), *args], "gov-assistant serve",
                  env=env, cwd=PROJECT_ROOT)
    base = f"http://127.0.0.1:{port}"
    wait_http(base + "/api/v1/healthz", proc, "gov-assistant serve")
    return base, proc


def cli(env: dict, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*PY, *args], env=env, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=timeout)


_chroma: tuple[int, subprocess.Popen] | None = None


def session_chroma() -> int:
    """One Chroma server per test session (a temporary folder), started on first use and stopped at exit → port."""
    global _chroma
    if _chroma is None:
        import atexit
        import shutil
        import tempfile

        folder = Path(tempfile.mkdtemp(prefix="chroma-tests-"))
        _chroma = start_chroma(folder)
        atexit.register(lambda: (stop_process(_chroma[1]), shutil.rmtree(folder, ignore_errors=True)))
    return _chroma[0]
