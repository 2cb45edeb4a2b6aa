"""The server's background embedding worker: when knowledge bases hold chunks without vectors (ingest --no-wait,
the demo's whole law corpus, a crash mid-way), `gov-assistant kb embed --all` runs beside the server until they
are filled. A child process, not a thread: its encoder is its own (a query never waits behind a batch of 64
chunks), it runs at a lower CPU priority so answers stay responsive on two cores, and it can be stopped at
shutdown — the work is resumable, the next start goes on where it stopped."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from assistant.settings import dump_settings

log = logging.getLogger("gov_assistant.vectors")


class BackgroundVectors:
    def __init__(self, container, nice: int = 10):
        self.container, self.nice = container, nice
        self.proc: subprocess.Popen | None = None
        self._settings_file: Path | None = None

    def start(self) -> bool:
        """Start the worker when some knowledge base lacks vectors; False when there is nothing to do."""
        pending = self.container.knowledge_bases.pending_kbs()
        if not pending or self.running:
            return False
        run = Path(self.container.settings.data_dir) / "run"
        run.mkdir(parents=True, exist_ok=True)
        # the child reads exactly this server's settings (profiles, config file and environment all resolved)
        self._settings_file = dump_settings(self.container.settings, run / f"vectors-settings-{os.getpid()}.yaml")
        log_file = open(run / "vectors.log", "ab")    # noqa: SIM115 - the child writes it; closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOV_ASSISTANT_")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "assistant.cli", "--config", str(self._settings_file), "kb", "embed", "--all"],
            stdout=log_file, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            preexec_fn=(lambda: os.nice(self.nice)) if self.nice and hasattr(os, "nice") else None)
        self._log_file = log_file
        log.info("filling vectors of %s in the background (pid %d, log %s)", ", ".join(pending), self.proc.pid,
                 run / "vectors.log")
        return True

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self._log_file.close()
        if self._settings_file is not None:
            self._settings_file.unlink(missing_ok=True)
