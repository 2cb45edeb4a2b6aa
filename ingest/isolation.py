"""Run one parse in a worker process bounded in time and address space, so a hostile or pathological file
(a zip bomb past the archive checks, a PDF that sends the parser into a loop) costs its own error line, never the
batch or the server.

Workers are forked by a forkserver that imported the parsers once (ingest/parse_worker.py: unstructured with its
PDF stack takes ~6 s to import), so a worker starts in milliseconds and the calling process, possibly a threaded
server, never forks itself. Each worker gets RLIMIT_AS = its size at start + ingest.parse_memory_mb and its own
process group (killed whole on timeout: LibreOffice for .doc runs as a child).
"""
from __future__ import annotations

import multiprocessing
import os
import resource
import signal
import threading
from multiprocessing import spawn
from typing import Any, Callable

_ctx = None
_ctx_lock = threading.Lock()


class WorkerFailed(Exception):
    """The reason the worker gave no result, without the file name."""


MAIN_PATH_ENV = "GOV_ASSISTANT_PARSE_WORKER_MAIN"


def _context():
    global _ctx
    with _ctx_lock:
        if _ctx is None:
            # Each forkserver child would re-run the parent's main script (CPython 3.11 never hands it to the
            # forkserver: the gov-assistant script means importing the whole CLI per file); parse_worker gives
            # the forkserver's __main__ that path, so children find it already "imported"
            main_path = spawn.get_preparation_data("parse").get("init_main_from_path")
            if main_path:
                os.environ[MAIN_PATH_ENV] = main_path
            ctx = multiprocessing.get_context("forkserver")
            ctx.set_forkserver_preload(["ingest.parse_worker"])
            _ctx = ctx
    return _ctx


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _peak_address_space() -> int:
    with open("/proc/self/status") as f:
        line = next(ln for ln in f if ln.startswith("VmPeak:"))
    return int(line.split()[1]) * 1024


def _child(conn, fn: Callable[..., Any], args: tuple, memory_mb: int) -> None:
    os.setpgid(0, 0)
    limit = _address_space() + memory_mb * 2**20
    # "ran out": the peak came within a margin of the limit, and above what the forkserver's peak handed down
    ran_out_above = max(limit - min(64, memory_mb // 4) * 2**20, _peak_address_space())
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    # C parsers report a failed allocation as their own error (lxml: "unknown error"), and some parsers swallow
    # MemoryError and return what they had: a peak at the limit means the memory ran out, whatever came back
    try:
        result = ("ok", fn(*args))
    except MemoryError:
        result = ("memory", None)
    except BaseException as exc:  # noqa: BLE001 - everything is reported to the parent as this file's error
        result = ("error", str(exc) or type(exc).__name__)
    if _peak_address_space() > ran_out_above:
        result = ("memory", None)
    try:
        conn.send(result)
    except MemoryError:
        conn.send(("memory", None))
    conn.close()


def run_bounded(fn: Callable[..., Any], args: tuple, timeout_s: float, memory_mb: int,
                timeout_setting: str = "ingest.parse_timeout_s") -> Any:
    """fn(*args) in a worker; its return value, or WorkerFailed naming the limit that stopped it (timeout_setting:
    the setting that gave timeout_s). fn must be importable (a module-level function) and its exceptions' messages
    are the error text."""
    ctx = _context()
    recv, send = ctx.Pipe(duplex=False)
    proc = ctx.Process(target=_child, args=(send, fn, args, memory_mb), daemon=True)
    proc.start()
    send.close()
    try:
        if not recv.poll(timeout_s):
            raise WorkerFailed(f"parsing took longer than {timeout_s:g} s ({timeout_setting}); stopped")
        try:
            status, payload = recv.recv()
        except EOFError:
            proc.join(5)
            code = proc.exitcode
            how = f"signal {signal.Signals(-code).name}" if code and code < 0 else f"exit status {code}"
            raise WorkerFailed(f"the parser crashed ({how}); the file may need more than "
                               f"{memory_mb} MiB (ingest.parse_memory_mb) or be damaged") from None
    finally:
        recv.close()
        if proc.is_alive():
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
        proc.join()
    if status == "memory":
        raise WorkerFailed(f"parsing needed more than {memory_mb} MiB (ingest.parse_memory_mb); stopped")
    if status == "error":
        raise WorkerFailed(payload)
    return payload
