"""``:c``, ``:s`` and breakpoints over a live boot, checked against the vCPU
state, the kernel's own progress, and a boot run straight through."""

import capstone
import pytest

from .conftest import REFERENCE_UP_TO_IOPL, booted
from .oracle import hw, sym, vread


def _insn_len(stage, addr):
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    return next(md.disasm(vread(stage, addr, 16), addr)).size


@pytest.mark.parametrize("native", [True, False])
def test_breakpoint_stops_the_boot_inside_a_stage(native, kmdb_of):
    st, _ = booted("pci_config", native=native)
    k = kmdb_of(st)
    assert k.run("::bp pci_mech1_getl") == ""
    r = k.cmd(":c")                      # iopl: pci_check scans bus 0 through mechanism #1
    assert r.data["kind"] == "breakpoint"
    getl = sym(st, "pci_mech1_getl")
    v = hw(st)
    assert v.get("rip") == getl == r.data["rip"]
    assert r.text.startswith("kmdb: stop at pci_mech1_getl\nkmdb: target stopped at:\n"
                             "pci_mech1_getl:")
    assert v.get("rdi") == 0 and v.get("rsi") == 0     # bus 0, device 0 (pci_probe_bus)
    assert "pci_check" not in st.kernel.milestones       # still inside the stage
    assert k.cmd("$b").data[0]["hits"] == 1
    # the stack: pci_getl jumped here, so the return address is pci_probe_bus's
    frames = k.cmd("$c").data
    assert [f["pc"] for f in frames["frames"]][0] == getl
    assert frames["python"][0]["function"] == "Kernel.pci_check"
    r = k.cmd(":c")
    assert r.data["kind"] == "breakpoint" and v.get("rsi") == 1     # the next device
    assert k.cmd("$b").data[0]["hits"] == 2


def test_step_executes_one_instruction(kmdb_of):
    st, _ = booted("pci_config", native=True)
    k = kmdb_of(st)
    k.run("::bp pci_mech1_getl")
    k.run(":c")
    v = hw(st)
    getl = sym(st, "pci_mech1_getl")
    icount, rsp = v.get("icount"), v.get("rsp")
    r = k.cmd(":s")                      # call pci_mech1_addr
    assert r.data["kind"] == "step"
    assert v.get("rip") == sym(st, "pci_mech1_addr") == r.data["rip"]
    assert v.get("icount") == icount + 1 and v.get("rsp") == rsp - 8
    ret = int.from_bytes(vread(st, v.get("rsp"), 8), "little")
    assert ret == getl + _insn_len(st, getl)
    a = v.get("rip")
    k.run(":s")
    assert v.get("rip") == a + _insn_len(st, a) and v.get("icount") == icount + 2
    assert k.dot == v.get("rip")
    assert "kmdb: target stopped at:" in k.run(":s")


def test_step_at_a_stage_boundary_stops_at_the_first_instruction(kmdb_of):
    st, _ = booted("pci_config", native=True)
    k = kmdb_of(st)
    r = k.cmd(":s")
    assert r.data["kind"] == "step"
    assert hw(st).get("rip") == sym(st, "pci_probe_bus")      # pci_check's first stub call
    assert "pci_probe_bus:" in r.text


def test_delete_and_continue_to_the_end_of_the_stage(kmdb_of):
    st, _ = booted("pci_config", native=True)
    k = kmdb_of(st)
    k.run("::bp pci_mech1_getl; pci_mech1_addr:b")
    assert [b["desc"] for b in k.cmd("$b").data] == ["pci_mech1_getl", "pci_mech1_addr"]
    k.run(":c")
    assert k.run("::delete 1; :d 2") == ""
    assert k.cmd("$b").data == []
    r = k.cmd(":c")
    assert r.data["kind"] == "stage" and r.data["stage"] == "iopl"
    assert "kmdb: stage 'iopl' passed" in r.text and "last stage" in r.text
    assert st.state.passed[-1] == "iopl" and "pci_check" in st.kernel.milestones
    assert k.control.thread is None
    assert k.cmd(":c").error.startswith("kmdb: the boot has passed every stage")
    # breakpoints are off the vCPU once the stage is over
    assert sym(st, "pci_mech1_getl") not in hw(st).breakpoints


@pytest.mark.parametrize("native", [True, False])
def test_a_boot_continued_under_the_debugger_is_identical(native, kmdb_of):
    """Stopping at breakpoints, stepping and reading memory change nothing: the
    state hash equals that of a boot run straight to the same stage."""
    straight, res = booted("iopl", native=native)
    assert res.ok
    st, _ = booted("boot_kmdb", native=native)
    k = kmdb_of(st)
    k.run("::bp pci_mech1_getl")
    for _ in range(8):                  # pci_config, then into iopl's scan
        k.run(":c; $r; $c; ::msgbuf; <rip::vtop")
    k.run(":s; :s; :s; ::delete all")
    while k.cmd(":c").data["kind"] != "stage" or st.state.passed[-1] != "iopl":
        pass
    assert st.state_hash() == straight.state_hash()
    assert st.console == straight.console


def test_the_kernels_own_kmdb_prompt_stops_the_boot(kmdb_of):
    """boot -kd: the kernel prints kmdb's [0]> and waits; under the debugger that
    is where the boot stops, and :c is what the developer typed."""
    st, _ = booted("platforms")
    k = kmdb_of(st)
    r = k.cmd(":c")
    assert r.data["kind"] == "kmdb"
    assert st.console.rstrip().endswith("[0]>")
    assert "own kmdb prompt" in r.text
    assert "startup_kmdb" not in st.kernel.milestones
    r = k.cmd(":c")
    assert r.data["kind"] == "stage" and r.data["stage"] == "boot_kmdb"
    assert "[0]> :c" in st.console


def test_continuing_into_a_failing_stage_reports_the_panic(kmdb_of):
    st, _ = booted("boot_kmdb", fix=["toolchain", "platforms", "boot_kmdb"])
    k = kmdb_of(st)
    r = k.cmd(":c")
    assert r.data["kind"] == "failed" and r.data["stage"] == "pci_config"
    assert "BAD TRAP: type=e (#pf Page fault)" in r.text
    assert "kmdb: stage 'pci_config' failed: panic:" in r.text
    c = k.cmd("$c").data
    assert [p["function"] for p in c["python"]][:3] == ["Kernel.panic", "Kernel.trap",
                                                        "Kernel.pci_bios_probe"]
    assert k.cmd("$r").data["source"] == "trap"
    assert k.cmd(":c").error.startswith("kmdb: target has terminated: stage 'pci_config'")
    assert "stopped in stage 'pci_config'" in k.run("::status")


def test_booting_again_lets_go_of_a_paused_boot(kmdb_of):
    st, _ = booted("pci_config", native=True)
    k = kmdb_of(st)
    k.run("::bp pci_mech1_getl")
    k.run(":c")
    worker = k.control.thread
    assert worker is not None and worker.is_alive()
    st.boot()                            # a new machine; the paused one is abandoned
    r = k.cmd("$b")
    assert not worker.is_alive()
    assert [b["desc"] for b in r.data] == ["pci_mech1_getl"]      # breakpoints stay
    assert k.cmd(":c").data["kind"] == "breakpoint"
    assert hw(st).get("rip") == sym(st, "pci_mech1_getl")
    worker = k.control.thread
    k.close()
    assert not worker.is_alive() and k.control.thread is None


def test_snapshot_of_a_boot_the_debugger_armed(kmdb_of):
    st, _ = booted("pci_config", native=True)
    k = kmdb_of(st)
    k.run("::bp pci_mech1_getl")
    snap = st.snapshot()
    st.restore(snap)
    assert k.cmd(":c").data["kind"] == "breakpoint"       # follows the restored boot


def test_a_kernel_target_runs_its_vcpu(kmdb_of):
    """Kmdb(kcpu): no boot behind it; :s and :c run that vCPU through its runner."""
    st, _ = booted("pci_config", native=True)
    kc = st.kernel.kcpu
    kc.set_reg("rip", sym(st, "kdelay"))
    kc.set_reg("rdi", 3)
    rsp = kc.reg("rsp") - 8                          # as KCpu.call would: return to Python
    kc.write64(rsp, sym(st, "kpy_return"))
    kc.set_reg("rsp", rsp)
    k = kmdb_of(kc)
    r = k.cmd(":s")
    assert r.data["kind"] == "step" and kc.reg("rip") == sym(st, "kdelay") + 3
    ret = k.cmd("kdelay::dis").data[-1]
    assert ret["mnemonic"].startswith("ret")
    k.run(f"::bp {ret['addr']:#x}")
    r = k.cmd(":c")
    assert r.data["kind"] == "breakpoint" and kc.reg("rip") == ret["addr"]
    assert kc.reg("rcx") == 0                        # the loop ran down
    r = k.cmd(":c")                                  # ret to kpy_return: a kernel stop
    assert r.data["kind"] == "stopped" and kc.reg("rip") == sym(st, "kpy_return")


def test_iopl_failure_of_2007_under_the_debugger_shows_the_trapping_out(gp_stage, kmdb_of):
    """The lesson of stage iopl, as a developer would find it with kmdb."""
    k = kmdb_of(gp_stage)
    text = k.run("::status; $c; ::dis -n 1 <rip")
    assert "#gp General protection" in text
    assert "pci_mech1_addr+0x23()" in text and "outl   %eax,%dx" in text
    assert REFERENCE_UP_TO_IOPL[-1] in k.cmd("::status").data["passed"]
