"""``$r``, ``::cpuregs``, ``$c``, ``::panicinfo``, ``::dis`` against the vCPU
state, the kernel's trap frame and capstone."""

import re

import capstone

from xenlab.machine import regs as R

from .oracle import hw, sym, vread

GPRS = R.GPR_NAMES


def _parse_regs(text):
    return {m.group(1): int(m.group(2), 16)
            for m in re.finditer(r"%(\w+)\s+= 0x([0-9a-f]+)", text)}


def test_dollar_r_is_the_vcpu_state(k_any, any_stage):
    v = hw(any_stage)
    r = k_any.cmd("$r")
    for n in GPRS + ("rip",):
        assert r.data[n] == v.get(n), n
    shown = _parse_regs(r.text)
    for n in GPRS + ("rip", "rflags", "cs", "ds", "es", "fs", "gs"):
        assert shown[n] == v.get(n), n
    lines = r.text.splitlines()
    assert lines[0].startswith("%rax = 0x") and "%r9  = 0x" in lines[0]
    assert lines[8].startswith("%rip = 0x") and lines[8].endswith("kpy_return")
    assert re.fullmatch(r"  status=<(of|OF),(df|DF),(if|IF),(tf|TF),(sf|SF),(zf|ZF),(af|AF),"
                        r"(pf|PF),(cf|CF)>", lines[13])
    iopl = (v.get("rflags") >> 12) & 3
    assert f"iopl={iopl:#x}" in lines[12]


def test_rflags_bits_are_named_from_the_value(kx, xen_stage):
    fl = hw(xen_stage).get("rflags")
    status = kx.run("$r").splitlines()[13]
    for name, bit in (("IF", R.FLAG_IF), ("ZF", R.FLAG_ZF), ("CF", R.FLAG_CF),
                      ("SF", R.FLAG_SF)):
        assert (name in status) == bool(fl & bit), name


def test_cpuregs_shows_every_cpu_and_control_registers(kx, xen_stage):
    for cpu, kc in enumerate(xen_stage.kernel.cpus):
        r = kx.cmd(f"::cpuregs -c {cpu}")
        for n in ("rip", "rsp", "cr3", "cr0", "cpl"):
            assert r.data[n] == kc.vcpu.get(n), (cpu, n)
        assert f"%cr3 = 0x{kc.vcpu.get('cr3'):016x}" in r.text
    assert "invalid cpu id 5" in kx.cmd("::cpuregs -c 5").error


def test_registers_in_the_panic_are_the_trap_frames(gp_stage):
    """After BAD TRAP #gp, $r shows the trapped context (the kernel's TrapFrame),
    ::cpuregs the vCPU (which went on to run the panic's own stubs)."""
    from xenlab.kmdb import Kmdb
    k = Kmdb(gp_stage)
    trap = gp_stage.kernel.panicked.trap
    r = k.cmd("$r")
    assert r.data["source"] == "trap"
    for n in GPRS:
        want = trap.rsp if n == "rsp" else trap.regs[n]
        assert r.data[n] == want, n
    assert r.data["rip"] == trap.rip and r.data["trapno"] == 13
    shown = _parse_regs(r.text)
    assert shown["rip"] == trap.rip and "%trapno = 0xd" in r.text
    assert k.cmd("::cpuregs").data["rip"] == hw(gp_stage).get("rip") != trap.rip
    p = k.cmd("::panicinfo").data
    assert p["trapno"] == 13 and p["rip"] == trap.rip
    assert p["message"] == gp_stage.kernel.panicked.message


def test_panicinfo_without_a_panic(kx):
    assert kx.cmd("::panicinfo").error == "mdb: the kernel has not panicked"


def _call_return(stage, caller, callee):
    """The address after the CALL in ``caller`` whose target is ``callee`` (by capstone)."""
    a = sym(stage, caller)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    for i in md.disasm(vread(stage, a, 64), a):
        if i.mnemonic == "call" and int(i.op_str, 16) == sym(stage, callee):
            return i.address + i.size
    raise AssertionError(f"no call from {caller} to {callee}")


def test_stack_of_the_gp_panic_follows_the_calls(gp_stage):
    """outl in pci_mech1_addr, called by pci_mech1_getl (reached by pci_getl's jmp),
    called by pci_probe_bus, called from Python through kpy_return."""
    from xenlab.kmdb import Kmdb
    k = Kmdb(gp_stage)
    r = k.cmd("$c")
    pcs = [f["pc"] for f in r.data["frames"]]
    trap = gp_stage.kernel.panicked.trap
    assert pcs == [trap.rip, _call_return(gp_stage, "pci_mech1_getl", "pci_mech1_addr"),
                   _call_return(gp_stage, "pci_probe_bus", "pci_getl"),
                   sym(gp_stage, "kpy_return")]
    names = [ln.split("+")[0].rstrip("()") for ln in r.text.splitlines()]
    assert names == ["pci_mech1_addr", "pci_mech1_getl", "pci_probe_bus", "kpy_return"]
    # the return addresses are on the stack where $C says
    for f in r.data["frames"][1:]:
        assert int.from_bytes(vread(gp_stage, f["fp"], 8), "little") == f["pc"]
    v = k.cmd("$C").text.splitlines()[1]
    assert re.fullmatch(r"[0-9a-f]{16} pci_mech1_getl\+5\(\)", v)
    assert k.cmd("$c 2").text == r.text           # mdb's count limits arguments (none here)


def test_stack_follows_an_rbp_chain():
    """Frames that keep a frame pointer: a chain written on the kernel's stack."""
    from xenlab.kmdb import Kmdb

    from .conftest import booted
    st, _ = booted(native=True)
    kc = st.kernel.kcpu
    top = sym(st, "kstack_top")
    fr2, fr1 = top - 0x100, top - 0x200              # outer and inner frames
    ret1 = _call_return(st, "pci_mech1_getl", "pci_mech1_addr")
    ret2 = _call_return(st, "pci_probe_bus", "pci_getl")
    kc.write64(fr1, fr2)
    kc.write64(fr1 + 8, ret1)
    kc.write64(fr2, 0)
    kc.write64(fr2 + 8, ret2)
    kc.set_reg("rbp", fr1)
    kc.set_reg("rsp", fr1 - 0x40)
    kc.set_reg("rip", sym(st, "pci_mech1_addr") + 3)
    data = Kmdb(st).cmd("$c").data
    got = [(f["pc"], f["how"]) for f in data["frames"]]
    assert got[:3] == [(sym(st, "pci_mech1_addr") + 3, "pc"), (ret1, "rbp"), (ret2, "rbp")]


def test_dis_is_capstone_with_symbols(k_any, any_stage):
    a = sym(any_stage, "pci_probe_bus")
    end = sym(any_stage, "pci_mech1_addr")
    code = vread(any_stage, a, end - a)
    md = capstone.Cs(capstone.CS_ARCH_X86, capstone.CS_MODE_64)
    md.syntax = capstone.CS_OPT_SYNTAX_ATT
    want = [(i.address, i.mnemonic, i.op_str) for i in md.disasm(code, a)]
    r = k_any.cmd("pci_probe_bus::dis")
    got = [(x["addr"], x["mnemonic"], x["operands"]) for x in r.data]
    assert got == want
    call = next(x for x in r.data if x["mnemonic"].startswith("call"))
    assert call["target"] == sym(any_stage, "pci_getl")
    line = next(ln for ln in r.text.splitlines() if "call" in ln)
    assert line.endswith("<pci_getl>") and line.startswith("pci_probe_bus+0x")
    assert r.text.splitlines()[0].startswith("pci_probe_bus:")
    n = k_any.cmd("pci_probe_bus::dis -n 3")
    assert [x["addr"] for x in n.data] == [w[0] for w in want[:3]]
    rip_rel = k_any.cmd("pci_getl::dis -n 1").data[0]
    assert rip_rel["target"] == sym(any_stage, "pci_getl_func")   # movq pci_getl_func(%rip)


def test_dis_defaults_to_where_the_target_stopped(gp_stage):
    from xenlab.kmdb import Kmdb
    k = Kmdb(gp_stage)
    r = k.cmd("::dis")
    trap = gp_stage.kernel.panicked.trap
    cur = [x for x in r.data if x["current"]]
    assert len(cur) == 1 and cur[0]["addr"] == trap.rip and cur[0]["mnemonic"] == "outl"


def test_a_panic_on_the_second_cpu_is_where_kmdb_starts():
    """The story's 'slightly wrong' fix: IOPL asked for on the boot CPU only; Xen
    keeps it per vCPU, so CPU 1's first OUTL traps.  kmdb comes up on CPU 1."""
    from xenlab.kmdb import Kmdb
    from xenlab.lab.stages.iopl import set_io_privilege_boot_cpu_only

    from xenlab.lab import Stage

    from .conftest import REFERENCE_UP_TO_IOPL
    st = Stage("iopl").fix(REFERENCE_UP_TO_IOPL)
    st.hooks.set_io_privilege = set_io_privilege_boot_cpu_only
    res = st.boot()
    assert res.failed == "iopl" and "panic[cpu1]" in res.panic
    k = Kmdb(st)
    assert k.prompt == "[1]> "
    trap = st.kernel.panicked.trap
    assert k.cmd("$r").data["rip"] == trap.rip
    names = [ln.split("+")[0].rstrip("()") for ln in k.run("$c").splitlines()]
    assert names[:2] == ["pci_mech1_addr", "pci_mech1_getl"]
    assert k.cmd("::cpuregs -c 0").data["rip"] == sym(st, "kpy_return")
    assert k.cmd("0::switch; $r").data["source"] == "vcpu"     # CPU 0 did not trap
