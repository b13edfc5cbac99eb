"""``::vtop``, ``::pte``, ``::pfntomfn``, ``::mfntopfn``, ``::msgbuf`` against the
machine layer's walker, Xen's own P2M/M2P and the kernel object."""

import numpy as np
import pytest

from xenlab.machine.mmu import walk
from xenlab.machine.pte import decode_flags
from xenlab.xen import abi

from .oracle import hw, sym, vread64


def _vas(stage):
    """Addresses worth walking: text, data, stack, and (under Xen) start_info,
    the P2M list, the page tables, the M2P."""
    k = stage.kernel
    out = [sym(stage, "kpy_return"), sym(stage, "msgbuf") + 0x123, sym(stage, "kstack_top") - 8,
           sym(stage, "hcall_args")]
    if k.plat.name == "i86xen":
        si = k.plat.xen_info
        out += [k.plat.start_info_va, int(si["mfn_list"]) + 8 * 12345, int(si["pt_base"]),
                k.plat.shared_info_va, abi.MACH2PHYS_VIRT_START + 8 * 0x21C001]
    return out


def test_vtop_levels_match_the_machine_walker(k_any, any_stage):
    v = hw(any_stage)
    for va in _vas(any_stage):
        r = k_any.cmd(f"{va:#x}::vtop")
        assert r.ok, r.error
        w = walk(v.memory, v.get("cr3"), va, state=v.state)
        assert w.ok
        got = [(lv["level"], lv["index"], lv["entry"], lv["raw"]) for lv in r.data["levels"]]
        want = [(s.level, s.index, s.entry_maddr, s.raw & ((1 << 64) - 1)) for s in w.steps]
        assert got == want, hex(va)
        assert r.data["ma"] == w.maddr and r.data["page_size"] == w.page_size
        for lv, s in zip(r.data["levels"], w.steps):      # the flags name the same bits
            names = {"P": "present", "RW": "write", "US": "user", "A": "ref", "D": "dirty",
                     "G": "global", "NX": "noexec", "PCD": "nocache", "PWT": "writethrough"}
            for f in decode_flags(s.raw, s.level):
                if f in names:
                    assert names[f] in lv["flags"], (hex(va), f)


def test_vtop_under_xen_names_pfns_from_xens_own_tables(kx, xen_stage):
    xen, d = xen_stage.xen, xen_stage.dom0
    for va in _vas(xen_stage):
        data = kx.cmd(f"{va:#x}::vtop").data
        mfn = data["mfn"]
        m2p = xen.m2p.get(mfn)
        mine = 0 <= m2p < len(d.p2m) and d.p2m[m2p] == mfn
        assert data["pfn"] == (m2p if mine else None), hex(va)
        for lv in data["levels"]:
            tmfn = lv["table"] >> 12
            t = xen.m2p.get(tmfn)
            assert lv["table_pfn"] == (t if 0 <= t < len(d.p2m) and d.p2m[t] == tmfn else None)
    # kernel text is dom0's own memory; the M2P chunk is Xen's (no pfn)
    assert kx.cmd("kpy_return::vtop").data["pfn"] is not None
    assert kx.cmd(f"{abi.MACH2PHYS_VIRT_START:#x}::vtop").data["pfn"] is None
    text = kx.run("kpy_return::vtop")
    assert "mapped to pfn" in text.splitlines()[-1] and "PML4E" in text


def test_vtop_natively_reports_physical(kn, native_stage):
    va = sym(native_stage, "kpy_return")
    v = hw(native_stage)
    w = walk(v.memory, v.get("cr3"), va, state=v.state)
    text = kn.run(f"{va:#x}::vtop")
    assert text.splitlines()[-1] == f"virtual {va:x} mapped to physical {w.maddr:x}"


def test_vtop_of_an_unmapped_address(k_any):
    r = k_any.cmd("0x700000000000::vtop")
    assert r.ok and not r.data["ok"] and r.data["why"] == "no mapping for address"
    assert "mdb: failed to get physical mapping for 0x700000000000" in r.text
    assert r.data["levels"] and not r.data["levels"][-1]["raw"] & 1


def test_pte_decodes_bits():
    from xenlab.kmdb.commands.vm import pte_words
    raw = (1 << 63) | (0x1234 << 12) | 0x600 | 0x100 | 0x67
    assert pte_words(raw) == ["noexec", "global", "foreign", "dirty", "ref", "user", "write",
                              "present"]
    assert "large" in pte_words(0x200083, level=2) and "pat" in pte_words(0x80, level=1)
    assert pte_words(0x800) == ["sw=0x800", "not-present"]


def test_pte_command(k_any, any_stage):
    raw = (1 << 63) | (0x1A2B3 << 12) | 0x267
    r = k_any.cmd(f"{raw:#x}::pte")
    assert r.data["frame"] == 0x1A2B3 and r.data["software"] == 0x200
    assert "nosync" in r.data["flags"] and r.text.startswith(f"PTE={raw:x}: noexec ")
    assert k_any.cmd("::pte -l 9 1").error.startswith("mdb: ::pte -l 9")


def test_pte_of_a_real_entry_under_xen(kx, xen_stage):
    data = kx.cmd("kpy_return::vtop").data
    leaf = data["levels"][-1]["raw"]
    r = kx.cmd(f"{leaf:#x}::pte")
    assert r.data["mfn"] == data["mfn"] and r.data["pfn"] == data["pfn"]
    assert "guestkernel" in r.data["flags"]          # Xen's _PAGE_GUEST_KERNEL (bit 52)


def test_pfntomfn_and_mfntopfn_against_xens_p2m(kx, xen_stage, rng):
    d, xen = xen_stage.dom0, xen_stage.xen
    n = int(xen_stage.kernel.plat.xen_info["nr_pages"])
    for pfn in [0, 1, n - 1] + list(rng.integers(0, n, 20)):
        pfn = int(pfn)
        mfn = d.pfn_to_mfn(pfn)
        r = kx.cmd(f"{pfn:#x}::pfntomfn")
        assert r.data == {"pfn": pfn, "mfn": mfn} and r.text == f"{mfn:x}\n"
        r = kx.cmd(f"::mfntopfn {mfn:#x}")
        assert r.data["pfn"] == pfn == xen.m2p.get(mfn) and r.text == f"{pfn:x}\n"
    e = kx.cmd(f"{n:#x}::pfntomfn").error
    assert e.startswith("mdb: pfn ") and "beyond this domain's mfn_list" in e


def test_mfntopfn_refuses_frames_that_are_not_the_domains(kx, xen_stage):
    d = xen_stage.dom0
    owned = set(int(x) for x in d.p2m[d.p2m >= 0])
    xen_frame = next(m for m in (0x301, 0x302, 0x10, 0x100) if m not in owned)
    e = kx.cmd(f"{xen_frame:#x}::mfntopfn").error
    assert e.startswith(f"mdb: mfn {xen_frame:#x} has no pfn in this domain")


def test_p2m_commands_are_xen_only(kn):
    for c in ("0::pfntomfn", "0::mfntopfn", "::evtchn", "::print start_info"):
        e = kn.cmd(c).error
        assert e.startswith("mdb: ") and "i86pc on bare metal" in e


def test_msgbuf_is_the_kernels_message_buffer(k_any, any_stage):
    r = k_any.cmd("::msgbuf")
    assert r.data["text"] == any_stage.kernel.messages
    assert "Welcome to kmdb" in r.text and r.data["base"] == sym(any_stage, "msgbuf")


def test_msgbuf_shows_what_the_2007_console_lost():
    """boot_kmdb with i86pc's early console under Xen: the console shows nothing
    of kmdb, the message buffer in guest memory has all of it."""
    from xenlab.kmdb import Kmdb

    from .conftest import booted
    st, res = booted("boot_kmdb", fix=["toolchain", "platforms"])
    assert res.failed == "boot_kmdb" and res.kind == "hang"
    k = Kmdb(st)
    text = k.cmd("::msgbuf").data["text"]
    assert "Welcome to kmdb" in text and "Welcome to kmdb" not in st.console
    assert text == st.kernel.messages


def test_print_start_info_is_what_the_kernel_read(kx, xen_stage):
    r = kx.cmd("::print start_info")
    want = xen_stage.kernel.xen_info()
    got = r.data["value"]
    for name in ("magic", "nr_pages", "shared_info", "flags", "pt_base", "nr_pt_frames",
                 "mfn_list", "mod_start", "mod_len", "cmd_line"):
        assert got[name] == want[name], name
    assert r.data["addr"] == xen_stage.kernel.plat.start_info_va
    assert f"mfn_list = {want['mfn_list']:#x}" in r.text
    assert f'magic = [ "{want["magic"]}" ]' in r.text
    r = kx.cmd("::print start_info mfn_list nr_pages")
    assert r.data == {"mfn_list": want["mfn_list"], "nr_pages": want["nr_pages"]}
    assert r.text.splitlines() == [f"mfn_list = {want['mfn_list']:#x}",
                                   f"nr_pages = {want['nr_pages']:#x}"]


def test_print_shared_info_and_vcpu_info_match_xen(kx, xen_stage):
    xen, d = xen_stage.xen, xen_stage.dom0
    si = xen.shared_info(d)
    r = kx.cmd("::print shared_info")
    assert r.data["value"]["evtchn_mask"] == [int(x) for x in si["evtchn_mask"]]
    assert r.data["value"]["wc_sec"] == int(si["wc_sec"])
    r = kx.cmd("::print vcpu_info")
    for f in ("evtchn_upcall_pending", "evtchn_upcall_mask", "evtchn_pending_sel"):
        assert r.data["value"][f] == xen.read_vcpu_info(d, 0, f)
    assert kx.cmd("::print struct vcpu_info arch.cr2").data == {
        "arch.cr2": xen.read_vcpu_info(d, 0, "arch")}
    one = kx.cmd("1::switch; ::print vcpu_info evtchn_upcall_mask")
    assert one.data == {"evtchn_upcall_mask": xen.read_vcpu_info(d, 1, "evtchn_upcall_mask")}
    kx.run("0::switch")


def test_print_needs_a_known_type_and_address(kx):
    assert "unknown type" in kx.cmd("::print nosuch").error
    assert "needs an address" in kx.cmd("::print trap_info").error
    hb = kx.cmd("trap_table::print trap_info")
    assert hb.ok and hb.data["value"]["vector"] == 0


def test_evtchn_against_xens_channel_table():
    """Bind a VIRQ and an unbound port, make one pending and mask another (through
    Xen's own event-channel code), then compare with Xen's channels_frame."""
    from xenlab.kmdb import Kmdb
    from xenlab.xen import evtchn as E

    from .conftest import booted
    st, res = booted("boot_kmdb")
    xen, d = st.xen, st.dom0
    v0 = d.vcpus[0]
    rec = np.zeros((), dtype=abi.evtchn_bind_virq)
    rec["virq"], rec["vcpu"] = abi.VIRQ_TIMER, 0
    rc, out = E.evtchn_op(xen, v0, abi.EVTCHNOP_bind_virq, rec)
    assert rc == 0
    virq_port = int(out["port"])
    rec = np.zeros((), dtype=abi.evtchn_alloc_unbound)
    rec["dom"], rec["remote_dom"] = abi.DOMID_SELF, 0
    rc, out = E.evtchn_op(xen, v0, abi.EVTCHNOP_alloc_unbound, rec)
    assert rc == 0
    unbound = int(out["port"])
    E._set_bit(xen, d, "evtchn_mask", unbound, True)
    E.evtchn_set_pending(xen, d, 0, virq_port)
    r = Kmdb(st).cmd("::evtchn")
    frame = E.channels_frame(xen, d)
    frame = frame[frame["state"] != "reserved"]          # port 0
    got = {p["port"]: p for p in r.data["ports"]}
    assert set(got) == set(frame["port"])
    for row in frame.itertuples():
        p = got[row.port]
        assert (p["type"], p["vcpu"], p["pending"], p["masked"]) == \
            (row.state, row.vcpu, bool(row.pending), bool(row.masked))
    assert got[virq_port]["detail"] == f"virq {abi.VIRQ_TIMER}"
    assert got[virq_port]["pending"] and got[unbound]["masked"]
    v = r.data["vcpus"][0]
    assert v["upcall_pending"] == xen.read_vcpu_info(d, 0, "evtchn_upcall_pending") == 1
    assert v["pending_sel"] == xen.read_vcpu_info(d, 0, "evtchn_pending_sel")
    assert f"{virq_port:>5} virq" in r.text


def test_evtchn_with_nothing_bound(kx):
    r = kx.cmd("::evtchn")
    assert r.data["ports"] == [] and "no event channel is bound" in r.text
    assert len(r.data["vcpus"]) == 2


def test_deref_and_registers_in_expressions(kx, xen_stage):
    si = xen_stage.kernel.plat.start_info_va
    assert kx.cmd("*boot_info=K").data == [si]
    assert kx.cmd("<rip=K").data == [hw(xen_stage).get("rip")]
    assert kx.cmd("*boot_info+0t104/K").data == [vread64(xen_stage, si + 104)]
    assert kx.cmd("<rsp>saved; <saved=K").data == [hw(xen_stage).get("rsp")]


@pytest.mark.parametrize("bad", ["::vtop", "::pfntomfn", "::mfntopfn", "::pte", "::print",
                                 "::sym", "::bp", "::delete", "::nosuch", "$x", ":e",
                                 "::dis 0x700000000000", "::switch 7", "::nm -t bogus",
                                 "::help nosuch", "::cpuregs -c 9", "0t5::delete"])
def test_errors_are_one_liners_never_tracebacks(kx, bad):
    r = kx.cmd(bad)
    assert not r.ok, bad
    assert r.error.startswith("mdb: ") and "\n" not in r.error, r.error
    assert "internal error" not in r.error and "Traceback" not in r.error
