"""JupyterLab + headless Chromium fixtures (the recipe in shared/recipes,
browser-testing.md, adapted): a session-scoped server on a temp copy of the
notebooks, Debian's chromium driven by Playwright (never `playwright install`),
a fresh page per test that leaves a screenshot on failure.

Skips, saying why, when Playwright or a Chromium binary is missing
(``tools/sysdeps.sh`` installs Debian's ``chromium`` where it can).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("XENLAB_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]   # Playwright adds --headless and a fresh profile dir


def chromium_path() -> str | None:
    if os.environ.get("CHROMIUM"):        # asked for one: that one or none
        return os.environ["CHROMIUM"] if os.access(os.environ["CHROMIUM"], os.X_OK) else None
    for cand in ("/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if cand and os.access(cand, os.X_OK):
            return cand
    return None


def pytest_collection_modifyitems(config, items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def chromium_browser():
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="the browser test needs the 'playwright' Python package "
        "(pip install -e '.[test]'); never run `playwright install`")
    exe = chromium_path()
    if exe is None:
        pytest.skip(f"no Chromium binary ({os.environ.get('CHROMIUM') or '/usr/bin/chromium'}"
                    "): run tools/sysdeps.sh as root, or set CHROMIUM=/path/to/chromium")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_json(path: Path, data: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))


REAL_LABS = [ROOT / "labs" / "00_tour.ipynb", ROOT / "labs" / "04_pci_config.ipynb"]


def browser_notebooks() -> list[Path]:
    """What the server serves: the fixture lab, the real labs the tests open (as
    students get them), plus XENLAB_BROWSER_NOTEBOOK if set."""
    nbs = [ROOT / "tests" / "labs" / "fixtures" / "viz_lab.ipynb"]
    nbs += [p for p in REAL_LABS if p.exists()]
    extra = os.environ.get("XENLAB_BROWSER_NOTEBOOK")
    if extra:
        nbs.append(Path(extra))
    return nbs


def serve_copy(nb: Path, root: Path):
    """Copy a notebook into the served folder; a lab of labs/ as `make lab` gives it."""
    if nb.parent == ROOT / "labs":
        import nbformat

        from xenlab.tools.release import strip_solutions
        nbformat.write(strip_solutions(nbformat.read(nb, as_version=4)), root / nb.name)
    else:
        shutil.copy(nb, root / nb.name)


@pytest.fixture(scope="session")
def jupyter_server(tmp_path_factory, chromium_browser):
    base = tmp_path_factory.mktemp("jlab")
    root = base / "root"                # served copy: JupyterLab autosaves into it
    root.mkdir()
    for nb in browser_notebooks():
        serve_copy(nb, root)
    env = dict(os.environ)
    for var, sub in [("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython"),
                     ("MPLCONFIGDIR", "mpl"), ("JUPYTERLAB_SETTINGS_DIR", "lab-settings"),
                     ("JUPYTERLAB_WORKSPACES_DIR", "lab-workspaces")]:
        env[var] = str(base / sub)
        (base / sub).mkdir()
    env.pop("JUPYTER_TOKEN", None)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    settings = base / "lab-settings"
    _write_json(settings / "@jupyterlab/notebook-extension/tracker.jupyterlab-settings",
                {"windowingMode": "none"})       # render off-screen cells too
    _write_json(settings / "@jupyterlab/apputils-extension/notification.jupyterlab-settings",
                {"fetchNews": "false", "checkForUpdates": False})
    port, token = _free_port(), secrets.token_hex(24)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}",
           f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
           "--ServerApp.open_browser=False"]
    if os.geteuid() == 0:
        cmd.append("--allow-root")
    log_path = base / "server.log"
    log = open(log_path, "wb")
    proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited rc={proc.returncode}:\n"
                                   + log_path.read_text())
            try:
                req = urllib.request.Request(f"{url}/api/status",
                                             headers={"Authorization": f"token {token}"})
                with urllib.request.urlopen(req, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("jupyter lab did not come up:\n" + log_path.read_text())
            time.sleep(0.2)
        yield {"base": url, "token": token, "root": root, "log": log_path}
    finally:
        _shutdown(proc, url, token)
        log.close()


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True,
                         text=True).stdout
    return [int(x) for x in out.split()]


def _shutdown(proc, url, token):
    """REST shutdown (stops kernels), then TERM, then KILL: this server's PID only."""
    if proc.poll() is not None:
        return
    kernels = _children(proc.pid)
    try:
        req = urllib.request.Request(f"{url}/api/shutdown", method="POST", data=b"",
                                     headers={"Authorization": f"token {token}"})
        urllib.request.urlopen(req, timeout=5).close()
        proc.wait(timeout=30)
    except Exception:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(0.5)
    for k in kernels:                      # kernels this server started, by PID
        if Path(f"/proc/{k}").exists():
            os.kill(k, signal.SIGTERM)


@pytest.fixture
def lab_page(chromium_browser, jupyter_server, request):
    context = chromium_browser.new_context(viewport={"width": 1400, "height": 1600})
    page = context.new_page()
    page.set_default_timeout(60_000)
    console: list[str] = []
    page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
    failed_before = request.session.testsfailed
    yield page
    if request.session.testsfailed > failed_before:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-failure.png"))
        print("\n".join(console[-50:]))
    context.close()
