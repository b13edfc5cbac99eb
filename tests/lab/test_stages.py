"""The stage runner: the 2007 hooks fail where the story says, the reference
fixes pass, the native boot passes with no fixes; boots are deterministic."""

import pytest

from xenlab.lab import STAGE_NAMES, Stage
from xenlab.lab.stages import stage_index
from xenlab.lab.stages.iopl import set_io_privilege_boot_cpu_only, set_io_privilege_iopl3

PROFILE = "qemu-i440fx"

# stage -> (kind, text in the one-line why)
STORY = {
    "toolchain": ("xen panic", "(XEN) Panic on CPU 0: Could not set up DOM0 guest OS"),
    "platforms": ("panic", "krtld: unable to load primary module"),
    "boot_kmdb": ("hang", "no progress"),
    "pci_config": ("panic", "BAD TRAP: type=e (#pf Page fault)"),
    "iopl": ("panic", "BAD TRAP: type=d (#gp General protection)"),
}


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_the_2007_hooks_fail_as_the_story_says(name):
    r = Stage(name, profile=PROFILE).boot()
    kind, text = STORY[name]
    assert (r.failed, r.kind) == (name, kind), r.summary()
    assert text in r.why
    i = stage_index(name)
    assert r.reached == (STAGE_NAMES[i - 1] if i else None)


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_the_reference_fix_passes(name):
    r = Stage(name, profile=PROFILE).apply_reference_fix().boot()
    assert r.ok and r.reached == name, r.summary()


@pytest.mark.parametrize("name", STAGE_NAMES)
def test_the_native_boot_passes_with_the_2007_hooks(name):
    s = Stage(name, profile=PROFILE, native=True)
    r = s.boot()
    assert r.ok and r.reached == name, r.summary()
    assert all(v == "default" for v in s.hooks.which().values())
    assert s.xen is None


def test_the_story_in_detail():
    s = Stage("pci_config", profile=PROFILE)
    r = s.boot()
    assert "due to a NULL pointer dereference" in r.why
    assert r.panic in r.console, "the panic went to Xen's console"
    assert "unix:bios_pci_call" in r.panic and "unix:mlsetup" in r.panic
    s = Stage("iopl", profile=PROFILE)
    r = s.boot()
    assert s.kernel.panicked.trap.rip == s.kernel.sym("pci_mech1_addr") + 0x23
    assert "pci_mech1_getl" in r.panic, "the OUT to 0xCF8 of mechanism #1"
    s = Stage("boot_kmdb", profile=PROFILE)
    r = s.boot()
    assert "last line on the console is 'Loading kmdb...'" in r.why


def test_the_2007_first_tries_at_iopl():
    s = Stage("iopl", profile=PROFILE)
    s.hooks.set_io_privilege = set_io_privilege_boot_cpu_only
    r = s.boot()
    assert r.failed == "iopl" and r.panic.lstrip().startswith("panic[cpu1]")
    assert [v.iopl for v in s.dom0.vcpus] == [1, 0]
    s.hooks.set_io_privilege = set_io_privilege_iopl3
    r = s.boot()
    assert r.ok and [v.iopl for v in s.dom0.vcpus] == [3, 3]
    assert s.kernel.user_io_probe()[0] == "syscall", "IOPL 3 opens port I/O to user mode"


def test_earlier_stages_are_fixed_unless_the_student_replaced_them():
    s = Stage("pci_config", profile=PROFILE)
    eff = s.effective_hooks().which()
    assert eff["gas_options"] == "reference" and eff["set_io_privilege"] == "default"
    assert eff["pci_config_mechanism"] == "default"
    s.hooks.gas_options = lambda: []                # the student's own, broken, toolchain
    r = s.boot()
    assert r.failed == "toolchain"


def test_a_students_mistake_names_the_hook():
    s = Stage("pci_config", profile=PROFILE)
    s.hooks.pci_config_mechanism = lambda platform, probe: "one"
    r = s.boot()
    assert (r.failed, r.kind) == ("pci_config", "hook error")
    assert "hook 'pci_config_mechanism': returned 'one'" in r.why
    s = Stage("platforms", profile=PROFILE)
    s.hooks.driver_platform = lambda d: "intel"       # everything common: ld refuses
    r = s.boot()
    assert (r.failed, r.kind) == ("platforms", "build")
    assert r.why.startswith("ld: fatal: symbol referencing errors")


def test_boots_are_deterministic():
    def run(seed):
        s = Stage("iopl", profile="sun-x4200", seed=seed).fix("all")
        r = s.boot()
        assert r.ok
        return r.console, s.state_hash()
    a, b = run(3), run(3)
    assert a == b
    assert run(4)[1] != a[1]


def test_native_boots_are_deterministic():
    def run():
        s = Stage("iopl", profile=PROFILE, seed=2, native=True)
        s.boot()
        return s.console, s.state_hash()
    assert run() == run()


def test_seeds_vary_the_variant_not_the_lesson():
    whys, bss = set(), set()
    for seed in range(6):
        s = Stage("platforms", profile=PROFILE, seed=seed)
        r = s.boot()
        assert r.failed == "platforms"
        whys.add(r.why)
        bss.add(s.state.variant.xen_bss)
    assert len(whys) > 1 and len(bss) > 1


def test_snapshot_and_restore():
    s = Stage("iopl", profile=PROFILE).fix("all")
    s.boot()
    h = s.state_hash()
    snap = s.snapshot()
    k = s.kernel
    k.kcpu.write(k.sym("msgbuf") + 100, b"scribbled")
    k.printf("more text\n")
    assert s.state_hash() != h
    s.restore(snap)
    assert s.state_hash() == h
    assert "more text" not in s.kernel.messages
    s.kernel.printf("after the restore\n")          # the restored model still runs
    assert "after the restore" in s.console
    s.restore(snap)
    assert s.state_hash() == h


def test_names_and_callbacks():
    with pytest.raises(ValueError, match="no stage 'nope'; the stages are: toolchain"):
        Stage("nope")
    with pytest.raises(ValueError, match="'dma' is not implemented yet"):
        Stage("dma")
    with pytest.raises(RuntimeError, match="has not been booted"):
        Stage("toolchain").machine
    s = Stage("toolchain", profile=PROFILE)
    seen = []
    s.on_boot(lambda: seen.append(1))
    s.boot()
    s.boot()
    assert seen == [1, 1]


@pytest.mark.slow
@pytest.mark.parametrize("native", [False, True])
def test_every_profile_boots_to_iopl(native):
    from xenlab.machine.profile import list_profiles
    for p in list_profiles():
        r = Stage("iopl", profile=p, native=native).fix("all").boot()
        assert r.ok, f"{p}: {r.summary()}"


def test_determinism_holds_across_processes_and_hash_seeds():
    import os
    import subprocess
    import sys
    code = ("from xenlab.lab import Stage\n"
            "s = Stage('iopl', profile='qemu-i440fx', seed=9).fix('all'); s.boot()\n"
            "print(s.state_hash())\n")
    outs = []
    for hs in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=hs)
        outs.append(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                   capture_output=True, text=True).stdout.strip())
    assert outs[0] == outs[1] and len(outs[0]) == 64
