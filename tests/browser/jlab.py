"""JupyterLab page helpers (the recipe's, proven on JupyterLab 4.6)."""

from __future__ import annotations

import re

KERNEL_IDLE = (".jp-NotebookPanel:not(.lm-mod-hidden) "
               ".jp-Notebook-ExecutionIndicator[data-status='idle']")


def open_notebook(page, srv, name: str):
    """Open ``name`` in a workspace of its own, so tabs another test left open
    (JupyterLab restores a workspace's tabs) never take the menu's commands."""
    import secrets
    ws = f"t{secrets.token_hex(4)}"
    page.goto(f"{srv['base']}/lab/workspaces/{ws}/tree/{name}?token={srv['token']}")
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("async () => { await window.jupyterapp.started;"
                  " await window.jupyterapp.restored; }")
    page.locator(".jp-NotebookPanel .jp-Notebook").first.wait_for(state="visible")
    page.evaluate("async () => { await window.jupyterapp.shell.currentWidget"
                  ".sessionContext.ready; }")
    page.locator(KERNEL_IDLE).wait_for()


def menu(page, top: str, command: str):
    """Click a main-menu item by its menu command id; reopen if a click is lost."""
    from playwright.sync_api import TimeoutError as PWTimeout
    item = page.locator(f".lm-Menu-item[data-command='{command}']")
    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(f"^{top}$")).click()
        try:
            item.wait_for(state="visible", timeout=5_000)
            break
        except PWTimeout:
            page.keyboard.press("Escape")
    item.click()
    item.wait_for(state="hidden")


def run_all(page):
    menu(page, "Edit", "editmenu:clear-all")
    menu(page, "Run", "runmenu:run-all")
    page.wait_for_function("""() => {
        const panel = window.jupyterapp.shell.currentWidget;
        const cells = panel.content.model.toJSON().cells;
        if (cells.some(c => (c.outputs || []).some(o => o.output_type === 'error')))
            return true;
        const p = [...panel.node.querySelectorAll('.jp-CodeCell .jp-InputArea-prompt')];
        return p.length > 0 && p.every(e => /^\\[\\d+\\]:$/.test(e.textContent.trim()));
    }""", polling=250)
    page.locator(KERNEL_IDLE).wait_for()


def error_outputs(page) -> list[dict]:
    return page.evaluate("""() => {
        const nb = window.jupyterapp.shell.currentWidget.content.model.toJSON();
        return nb.cells.flatMap(c => c.outputs || []).filter(o => o.output_type === 'error');
    }""")
