"""Saves files as legacy Office files with a password to open, through LibreOffice's UNO API (the command line
cannot set one). Run by a Python that imports uno (Debian: python3-uno, the system python3):

    python3 lo_save_password.py SOFFICE PASSWORD SRC DST FILTER [SRC DST FILTER ...]

FILTER: "MS Word 97", "MS Excel 97" (LibreOffice 7.4 writes no encrypted .ppt)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import uno
from com.sun.star.beans import PropertyValue


def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p


def main(soffice: str, password: str, *triples: str) -> None:
    with tempfile.TemporaryDirectory(prefix="lo-pw-") as profile:
        pipe = f"lo_pw_{os.getpid()}"
        proc = subprocess.Popen([soffice, f"-env:UserInstallation={uno.systemPathToFileUrl(profile)}",
                                 "--headless", "--norestore", "--nologo", "--nodefault",
                                 f"--accept=pipe,name={pipe};urp;"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                                env={**os.environ, "HOME": profile})
        try:
            local = uno.getComponentContext()
            resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver",
                                                                      local)
            for _ in range(600):                       # soffice takes a few seconds to listen
                try:
                    ctx = resolver.resolve(f"uno:pipe,name={pipe};urp;StarOffice.ComponentContext")
                    break
                except Exception:  # noqa: BLE001 - NoConnectException until it listens
                    time.sleep(0.1)
            else:
                raise SystemExit("soffice did not listen")
            desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
            for i in range(0, len(triples), 3):
                src, dst, filter_name = triples[i:i + 3]
                doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(os.path.abspath(src)), "_blank", 0,
                                                   (prop("Hidden", True),))
                doc.storeToURL(uno.systemPathToFileUrl(os.path.abspath(dst)),
                               (prop("FilterName", filter_name), prop("Password", password)))
                doc.close(True)
        finally:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.wait()


if __name__ == "__main__":
    main(*sys.argv[1:])
