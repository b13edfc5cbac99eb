"""``xenlab boot`` and ``xenlab stages`` from the command line."""

import pytest

from xenlab.cli import main


def test_stages_lists_the_stages_and_hooks(capsys):
    assert main(["stages"]) == 0
    out = capsys.readouterr().out
    for name in ("toolchain", "platforms", "boot_kmdb", "pci_config", "iopl",
                 "gas_options", "set_io_privilege"):
        assert name in out
    assert "foreign_pfn" not in out
    assert main(["stages", "--all"]) == 0
    assert "foreign_pfn" in capsys.readouterr().out


@pytest.mark.parametrize("profile", ["qemu-i440fx", "sun-x4200"])
def test_boot_to_iopl_with_every_fix(profile, capsys):
    assert main(["boot", "--profile", profile, "--to", "iopl", "--fix", "all"]) == 0
    out = capsys.readouterr().out
    assert "pci: " in out and "cpu1: online" in out
    assert "i86xen (dom0 on Xen): reached stage 'iopl'" in out


def test_boot_stops_where_the_2007_code_fails(capsys):
    assert main(["boot", "--profile", "sun-x4200", "--to", "iopl", "--fix", "pci_config"]) == 1
    out = capsys.readouterr().out
    assert "panic[cpu0]" in out and "BAD TRAP: type=d (#gp General protection)" in out
    assert "stopped in stage 'iopl' (panic) after 'pci_config'" in out


def test_native_boot_and_quiet(capsys):
    assert main(["boot", "--profile", "qemu-i440fx", "--to", "iopl", "--native", "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "i86pc (native): reached stage 'iopl'" in out[0]


def test_bad_arguments_are_named(capsys):
    assert main(["boot", "--to", "nowhere"]) == 2
    assert "no stage 'nowhere'" in capsys.readouterr().err
    assert main(["boot", "--to", "iopl", "--fix", "toolchain,bogus"]) == 2
    assert "no stage 'bogus'" in capsys.readouterr().err
    assert main(["boot", "--profile", "no-such-box", "--to", "toolchain"]) == 2
    assert "no-such-box" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.parametrize("native", [False, True])
def test_every_profile_boots_to_iopl_from_the_command_line(native, capsys):
    from xenlab.machine.profile import list_profiles
    for p in list_profiles():
        args = ["boot", "--profile", p, "--to", "iopl", "--fix", "all", "--quiet"]
        assert main(args + (["--native"] if native else [])) == 0, p
        assert "reached stage 'iopl'" in capsys.readouterr().out
