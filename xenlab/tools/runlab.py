"""Start JupyterLab on the student's working folder and print where to open it."""

from __future__ import annotations

import os
import secrets
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    root, port = argv[0], int(argv[1])
    token = os.environ.get("XENLAB_TOKEN") or secrets.token_hex(16)
    args = [sys.executable, "-m", "jupyterlab", "--no-browser",
            f"--ServerApp.root_dir={os.path.abspath(root)}",
            f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={token}"]
    ip = os.environ.get("XENLAB_IP")
    if ip:
        args.append(f"--ServerApp.ip={ip}")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--allow-root")
    host = ip if ip and ip != "0.0.0.0" else "127.0.0.1"
    print(f"\n  xenlab: open  http://{host}:{port}/lab?token={token}\n", flush=True)
    os.execv(sys.executable, args)


if __name__ == "__main__":
    main()
