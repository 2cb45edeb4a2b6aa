"""Time and peak memory of the ingest guards' cases (issue #14), for the checkout in the current directory:

    python benchmarks/ingest_guards.py bomb --mb 1024        # a .docx whose document.xml inflates to 1 GiB
    python benchmarks/ingest_guards.py large-txt --mb 30     # one N MiB .txt ingested (unit profile: hash embedder)
    python benchmarks/ingest_guards.py overhead              # per-file parse time of small .txt .docx .html .pdf
    python benchmarks/ingest_guards.py tiny-files -n 10000   # a folder of N one-line .txt files

Run it from another checkout (cd /tmp/before && python /work/main/benchmarks/ingest_guards.py ...) to measure the
code there: the cases' files come from this repository's tests/security/ingest_fixtures.py. Peak RSS is sampled
every 50 ms over this process and all its descendants (parse workers included); --timeout stops a case.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]
sys.path.insert(0, os.getcwd())                          # the code under test
sys.path.insert(1, str(HERE / "tests" / "security"))    # the inputs


class PeakRss:
    def __init__(self) -> None:
        import psutil
        self.me, self.peak, self._stop = psutil.Process(), 0, threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            total = 0
            for p in [self.me, *self.me.children(recursive=True)]:
                try:
                    total += p.memory_info().rss
                except Exception:  # noqa: BLE001 - a worker that just exited
                    pass
            self.peak = max(self.peak, total)

    def mib(self) -> int:
        return self.peak // 2**20


def watchdog(seconds: float, peak: PeakRss, started: float) -> None:
    def fire() -> None:
        print(json.dumps({"timeout_s": seconds, "seconds": round(time.perf_counter() - started, 1),
                          "peak_rss_mib": peak.mib(), "result": "still running: stopped"}), flush=True)
        os._exit(3)
    threading.Timer(seconds, fire).start()


def container(data: Path, **env: str):
    from assistant.container import Container
    from assistant.settings import load_settings
    return Container(load_settings("unit", environ={"GOV_ASSISTANT_DATA_DIR": str(data), **env}))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("case", choices=["bomb", "large-txt", "overhead", "tiny-files"])
    ap.add_argument("--mb", type=int, default=30)
    ap.add_argument("-n", type=int, default=10000)
    ap.add_argument("--timeout", type=float, default=600)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="ingest-guards-"))
    import ingest_fixtures as fx

    from assistant.services.access import LOCAL_ADMIN

    peak = PeakRss()

    def ingest_watched(path):
        """One file into a fresh KB under the watchdog → (report, start time)."""
        c = container(tmp / "data")
        t0 = time.perf_counter()
        watchdog(args.timeout, peak, t0)
        return c.knowledge_bases.ingest_paths("bench", [path], principal=LOCAL_ADMIN), t0

    if args.case == "bomb":
        path = fx.bomb_docx(tmp / "bomb.docx", args.mb)
        report, t0 = ingest_watched(path)
        out = {"file_mib": round(path.stat().st_size / 2**20, 2), "declared_mib": args.mb,
               "result": [(r.status, r.message) for r in report.results]}
    elif args.case == "large-txt":
        line = "第{}条 示范市人民政府关于推进公共数据开放的通知，各区县应当按照本办法的规定做好数据开放工作，确保数据安全。\n"
        path = tmp / "large.txt"
        with open(path, "w", encoding="utf-8") as f:
            i = 0
            while f.tell() < args.mb * 2**20:
                f.write("".join(line.format(i + k) for k in range(1000)))
                i += 1000
        report, t0 = ingest_watched(path)
        out = {"file_mib": round(path.stat().st_size / 2**20, 1), "chunks": report.chunks,
               "result": [(r.status, r.message) for r in report.results]}
    elif args.case == "overhead":
        from ingest.loaders import load_file
        files = {"small.txt": tmp / "small.txt", "small.docx": fx.docx_file(tmp / "small.docx", ["示范市通知。"]),
                 "small.html": tmp / "small.html", "small.pdf": tmp / "small.pdf"}
        files["small.txt"].write_text("示范市通知\n第一条 正文。", encoding="utf-8")
        files["small.html"].write_text("<h1>示范市通知</h1><p>正文。</p>", encoding="utf-8")
        files["small.pdf"].write_bytes(fx.pdf_bytes(["Notice", "Article 1"]))
        t0 = time.perf_counter()
        watchdog(args.timeout, peak, t0)
        out = {}
        for name, path in files.items():
            first = time.perf_counter()
            list(load_file(path))
            first = time.perf_counter() - first
            times = []
            for _ in range(10):
                s = time.perf_counter()
                list(load_file(path))
                times.append(time.perf_counter() - s)
            out[name] = {"first_s": round(first, 3), "median_ms": round(sorted(times)[5] * 1000, 1)}
    else:
        folder = tmp / "tiny"
        folder.mkdir()
        for i in range(args.n):
            (folder / f"f{i:05d}.txt").write_text(f"第一条 示范市第{i}号事项。", encoding="utf-8")
        c = container(tmp / "data")
        t0 = time.perf_counter()
        watchdog(args.timeout, peak, t0)
        try:
            report = c.knowledge_bases.ingest_paths("bench", [folder], principal=LOCAL_ADMIN)
            out = {"files": args.n, "counts": report.counts}
        except Exception as exc:  # noqa: BLE001 - a refusal is a result here
            out = {"files": args.n, "refused": str(exc)}
    out.update(seconds=round(time.perf_counter() - t0, 2), peak_rss_mib=peak.mib())
    print(json.dumps(out, ensure_ascii=False), flush=True)
    os._exit(0)


if __name__ == "__main__":
    main()
