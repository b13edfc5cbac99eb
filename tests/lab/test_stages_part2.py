"""Stages 6-13 in detail: the story's failures, the first tries that go
wrong in other ways, what each fix changes in the model."""

import pytest

import xenlab.checks  # noqa: F401  (Stage.check)
from xenlab.kernel.intel.psm import pcplusmp_route_intr, rte_low
from xenlab.kernel.intel.rootnex import cookies_by_frame
from xenlab.lab import STAGE_NAMES, Stage

QEMU = "qemu-i440fx"


def cards(stage):
    return {c.name: c for c in stage.check()}


def test_foreign_pfn_on_a_big_machine_maps_ram_and_runs_on_a_release_xen():
    s = Stage("foreign_pfn", profile="sun-x4200")
    r = s.boot()
    assert (r.failed, r.kind) == ("foreign_pfn", "attach")
    assert "reads 0x00000000, expected the device's ID" in r.why
    assert not s.xen.debug, "foreign_pfn runs on Xen without the debug build's bit 11"
    # the driver's 'registers' were one of dom0's own RAM pages
    e1000 = next(d for d in s.kernel.devinfo.walk() if d.instname == "e1000g0")
    w = s.kernel.cpus[0].vcpu.mmu.walk(e1000.maps[0].va)
    assert s.xen.frametable.owner_of(w.maddr >> 12) == 0


def test_a_debug_xen_defers_the_attach_to_pte_swbits():
    s = Stage("foreign_pfn", profile=QEMU, xen_debug=True).apply_reference_fix()
    r = s.boot()
    assert r.ok, "the foreign PFNs were right: Xen's refusal is the next stage's problem"
    assert [d.state for d in s.kernel.devinfo.walk() if d.driver == "e1000g"] == ["deferred"]
    assert "Bad L1 flags 800" in s.xen.console
    s = Stage("pte_swbits", profile=QEMU)
    r = s.boot()
    assert r.failed == "pte_swbits" and "DOMID_IO) failed: -22" in r.why


def test_pte_swbits_a_bit_test_of_the_encoded_value_frees_what_is_not_ours():
    s = Stage("pte_swbits", profile=QEMU)
    s.hooks.pte_software_bits = lambda: {"nosync": 0x200, "noconsist": 0x400, "foreign": 0x600}
    s.hooks.pte_is_foreign = lambda pte: bool(pte & 0x600)
    r = s.boot()
    assert (r.failed, r.kind) == ("pte_swbits", "panic")
    assert "page_free: pfn 0x8000000" in r.why


def test_dma_in_two_steps_and_a_wrong_first_try():
    s = Stage("dma", profile=QEMU)
    s.hooks.dma_cookies = lambda pfns, off, n, p2m: cookies_by_frame(pfns, off, n, p2m)
    r = s.boot()
    assert r.failed == "dma" and "could not allocate rx descriptor ring" in r.why
    assert "cannot allocate 16 pages of DMA memory" in r.why

    def mfn_but_merged_by_pfn(pfns, off, n, p2m):
        runs = cookies_by_frame(pfns, off, n, lambda p: p)
        return [((p2m(a >> 12) << 12) | (a & 0xFFF), size) for a, size in runs]
    s = Stage("dma", profile=QEMU)
    s.hooks.dma_cookies = mfn_but_merged_by_pfn
    r = s.boot()
    assert r.failed == "dma" and "corrupt label" in r.why
    c = cards(s)
    assert not c["dma_cookies_are_machine"].passed and not c["dma_data_in_buffer"].passed


@pytest.mark.parametrize("seed", range(4))
def test_the_label_buffer_straddles_a_machine_discontinuity(seed):
    s = Stage("dma", profile=QEMU, seed=seed).apply_reference_fix()
    assert s.boot().ok
    cookies = s.kernel.label_read["cookies"]
    assert len(cookies) == 2, "split where dom0's 2 MiB machine chunks meet"
    assert cookies[0].size == 4096 * s.state.variant.bio_skew


def test_lowmem_only_bites_above_4_gib_and_the_pool_serves_it():
    assert Stage("lowmem", profile=QEMU).boot().ok, "Xen ignores a 32-bit limit at 1 GiB"
    s = Stage("lowmem", profile="sun-x4200").apply_reference_fix()
    assert s.boot().ok
    k = s.kernel
    usb = [(o, how) for o, how, n, _ in k.contig_log if o.startswith("ohci")]
    assert usb and all(how == "io pool" for _, how in usb)
    assert not [q for q in k.xenmem.requests if q["address_bits"]], "never asked Xen"


def test_interrupts_pcplusmp_falls_back_to_uppc_and_a_bind_alone_is_not_enough():
    s = Stage("interrupts", profile=QEMU)
    r = s.boot()
    assert "using uppc (8259 PIC)" in r.console and "ata0: timeout" in r.console

    def bind_only(intr, psm):
        if psm.platform != "i86xen":
            return pcplusmp_route_intr(intr, psm)
        return ("evtchn", psm.bind_pirq(intr.resolve(psm.acpi)[0]))
    s.hooks.psm_route_intr = bind_only
    r = s.boot()
    assert r.failed == "interrupts" and "timeout" in r.why
    c = cards(s)
    assert not c["interrupts_rte"].passed, "no vector: Xen never programmed the pin"


def test_interrupts_the_wrong_polarity_on_a_pci_line_storms():
    def active_high(intr, psm):
        gsi, pol, trig = intr.resolve(psm.acpi)
        io, pin = psm.ioapic_for(gsi)
        v = psm.alloc_irq_vector(gsi)
        psm.apic_write(io.address, 0x10 + 2 * pin, rte_low(v, "high", trig))
        return ("evtchn", psm.bind_pirq(gsi))
    s = Stage("interrupts", profile="dell-optiplex755").apply_reference_fix()
    s.hooks.psm_route_intr = active_high
    r = s.boot()
    assert "interrupt storm" in r.console
    assert not cards(s)["interrupts_rte"].passed


def test_console_keeping_the_early_console_prints_everything_twice():
    s = Stage("console", profile=QEMU).apply_reference_fix()
    s.hooks.consconfig = lambda platform, props, xen_info: ["hypervisor", "xencons"]
    assert s.boot().ok
    c = cards(s)
    assert not c["console_once"].passed and "x2" in c["console_once"].found
    assert not c["console_device"].passed


def test_multiuser_each_half_of_the_fix_alone():
    from xenlab.lab.stages.multiuser import isa_probe_fixed, psm_map_phys_pfn_fixed
    s = Stage("multiuser", profile="sun-x4200")
    s.hooks.isa_probe = isa_probe_fixed
    r = s.boot()
    assert r.failed == "multiuser" and "system/power" in r.why and "acpi" in r.why
    s = Stage("multiuser", profile="sun-x4200")
    s.hooks.psm_map_phys_pfn = psm_map_phys_pfn_fixed
    r = s.boot()
    assert r.failed == "multiuser" and "devfsadm: asy at port 0x3f8" in r.why


def test_multiuser_an_absent_8042_hangs_kb8042():
    r = Stage("multiuser", profile="dell-optiplex755").boot()
    assert (r.failed, r.kind) == ("multiuser", "hang")
    assert "kb8042" in r.why


def test_the_64_bit_dom0_boots_through_every_stage_with_the_same_fixes():
    s = Stage("dom0_64", profile=QEMU).apply_reference_fix()
    r = s.boot()
    assert r.ok and s.state.passed == list(STAGE_NAMES)
    assert s.kernel.plat.ring == 3 and not s.dom0.pv32
    assert "SunOS Release 5.11 Version xenlab 64-bit" in r.console
    s32 = Stage("multiuser", profile=QEMU).fix(STAGE_NAMES[:STAGE_NAMES.index("multiuser") + 1])
    assert s32.boot().ok and s32.kernel.plat.ring == 1 and s32.dom0.pv32
    assert "Version xenlab 32-bit" in s32.console


def test_multiuser_boots_are_deterministic_and_restorable():
    def run():
        s = Stage("multiuser", profile=QEMU, seed=5).fix("all")
        assert s.boot().ok
        return s
    a, b = run(), run()
    assert a.console == b.console and a.state_hash() == b.state_hash()
    snap = a.snapshot()
    a.kernel.printf("scribble\n")
    a.restore(snap)
    assert a.state_hash() == b.state_hash()
    # the restored kernel still takes interrupts, with its own handlers
    k = a.kernel
    dip, drv, disk = k.rootdisk
    before = {key: rec.count for key, rec in k.intrs.items()}
    drv.read(k, dip, disk, k.label["start"] + 16, 16, k.bufcache, interrupt=True)
    assert sum(r.count for r in k.intrs.values()) > sum(before.values())
    assert k.lbolt >= b.kernel.lbolt


@pytest.mark.parametrize("profile", ["sun-x4200", "dell-optiplex755"])
def test_native_boots_reach_multiuser_with_the_2007_hooks(profile):
    s = Stage("dom0_64", profile=profile, native=True)
    r = s.boot()
    assert r.ok, r.summary()
    assert "console login:" in r.console
