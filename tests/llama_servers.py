"""Real llama.cpp HTTP servers on loopback, each in its own process (so a test can kill one mid-answer): the
packaged 0.5B model behind xllamacpp's listener, with a random API key."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

_CHILD = """
import json, os, sys
from assistant.components.llm.local import ChatXLlamaCpp
llm = ChatXLlamaCpp(model_path=sys.argv[1], model_name="qwen2.5-coder-0.5b", n_ctx=2048, n_parallel=2, n_threads=1)
llm._api_key = os.environ["LLAMA_SERVER_API_KEY"]
print(json.dumps({"url": llm.listening_address + "/v1", "api_key": llm.api_key}), flush=True)
sys.stdin.read()          # until the test closes stdin (or kills the process)
"""


@dataclass
class LlamaServer:
    url: str
    api_key: str
    process: subprocess.Popen

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()


def start_llama_server(model_path: Path, api_key: str) -> LlamaServer:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "LLAMA_SERVER_API_KEY": api_key}
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(model_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"llama.cpp server process exited ({proc.wait()}) before listening")
    info = json.loads(line)
    return LlamaServer(info["url"], info["api_key"], proc)
