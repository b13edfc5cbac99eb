"""AHCI 1.3.1 at register level: HBA capabilities, port state, command lists whose
PRDT entries hold machine addresses."""

import pytest

from xenlab.machine import Machine
from xenlab.machine.devices import ahci as A
from xenlab.machine.devices.disk import SECTOR


@pytest.fixture
def r630():
    m = Machine.from_profile("dell-poweredge-r630", memory="4G", seed=4)
    ctrl = next(c for c in m.ahci if c.bdf == "00:1f.2")
    return m, ctrl, ctrl.function.bars[5].decoded


def rd(m, abar, off):
    return m.mmio.read(abar + off, 4)


def wr(m, abar, off, v):
    m.mmio.write(abar + off, 4, v)


def port_reg(reg, port=0):
    return A.PORT0 + A.PORT_SIZE * port + reg


def start_port(m, abar, clb=0x10000, fb=0x11000):
    wr(m, abar, port_reg(A.PxCLB), clb)
    wr(m, abar, port_reg(A.PxFB), fb)
    wr(m, abar, port_reg(A.PxCMD), A.CMD_FRE | A.CMD_ST)


def issue(m, abar, cmd, lba, count, prds, slot=0, write=False, clb=0x10000, ctba=0x12000):
    mem = m.memory
    mem.write32(clb + 32 * slot, 5 | (0x40 if write else 0) | len(prds) << 16)
    mem.write32(clb + 32 * slot + 4, 0)
    mem.write32(clb + 32 * slot + 8, ctba)
    mem.write32(clb + 32 * slot + 12, 0)
    fis = bytes([A.FIS_H2D, 0x80, cmd, 0]) + (lba & 0xFFFFFF).to_bytes(3, "little") + b"\x40" + \
        (lba >> 24).to_bytes(3, "little") + b"\x00" + count.to_bytes(2, "little") + bytes(6)
    mem.write_bytes(ctba, fis)
    for i, (addr, n) in enumerate(prds):
        e = ctba + 0x80 + 16 * i
        mem.write32(e, addr & 0xFFFFFFFF)
        mem.write32(e + 4, addr >> 32)
        mem.write32(e + 12, (n - 1) | (1 << 31 if i == len(prds) - 1 else 0))
    wr(m, abar, port_reg(A.PxCI), 1 << slot)
    return mem.read32(clb + 32 * slot + 4)


def test_hba_registers(r630):
    m, ctrl, abar = r630
    cap = rd(m, abar, A.CAP)
    assert cap & 0x1F == len(ctrl.ports) - 1 and cap >> 31 and (cap >> 8) & 0x1F == 31
    assert rd(m, abar, A.VS) == 0x00010300
    assert rd(m, abar, A.PI) == (1 << len(ctrl.ports)) - 1
    assert rd(m, abar, A.GHC) & A.GHC_AE
    assert rd(m, abar, port_reg(A.PxSIG)) == A.SIG_ATA
    assert rd(m, abar, port_reg(A.PxSSTS)) & 0xF == 3          # device present, phy up
    assert rd(m, abar, port_reg(A.PxSSTS, 1)) == 0             # nothing on port 1
    wr(m, abar, port_reg(A.PxCLB), 0x12345)                    # 1 KiB aligned field
    assert rd(m, abar, port_reg(A.PxCLB)) == 0x12000


def test_identify_and_scattered_read(r630):
    m, ctrl, abar = r630
    start_port(m, abar)
    assert rd(m, abar, port_reg(A.PxCMD)) & (A.CMD_CR | A.CMD_FR) == A.CMD_CR | A.CMD_FR
    n = issue(m, abar, 0xEC, 0, 0, [(0x20000, 512)])
    assert n == 512 and m.memory.read16(0x20000) == 0x0040
    assert m.memory.read8(0x11040) == A.FIS_D2H                # D2H FIS received
    frames = [0x300, 0x120, 0x555]
    n = issue(m, abar, 0x25, 16, 24, [(f << 12, 4096) for f in frames])
    assert n == 3 * 4096
    disk = m.disks[0]
    for i, f in enumerate(frames):
        assert m.memory.read_bytes(f << 12, 4096) == disk.read(16 + 8 * i, 8)
    assert rd(m, abar, port_reg(A.PxCI)) == 0
    assert rd(m, abar, port_reg(A.PxTFD)) & 0xFF == 0x50
    assert rd(m, abar, port_reg(A.PxIS)) & A.IS_DHRS


def test_write_then_read_back(r630):
    m, ctrl, abar = r630
    start_port(m, abar)
    m.memory.write_bytes(0x30000, b"xenlab!!" * 64)
    assert issue(m, abar, 0x35, 7, 1, [(0x30000, 512)], write=True) == 512
    assert m.disks[0].read(7) == b"xenlab!!" * 64


def test_errors_and_not_started(r630):
    m, ctrl, abar = r630
    wr(m, abar, port_reg(A.PxCLB), 0x10000)
    issue(m, abar, 0x25, 0, 1, [(0x40000, 512)])
    assert rd(m, abar, port_reg(A.PxCI)) == 0                  # ST clear: not accepted
    start_port(m, abar)
    issue(m, abar, 0x25, m.disks[0].sectors, 1, [(0x40000, 512)])
    tfd = rd(m, abar, port_reg(A.PxTFD))
    assert tfd & 1 and rd(m, abar, port_reg(A.PxIS)) & A.IS_TFES
    issue(m, abar, 0x99, 0, 1, [(0x40000, 512)])
    assert (rd(m, abar, port_reg(A.PxTFD)) >> 8) & 0x04        # ABRT


def test_interrupt_needs_ghc_ie_and_pxie(r630):
    m, ctrl, abar = r630
    fn = ctrl.function
    start_port(m, abar)
    issue(m, abar, 0x25, 0, 1, [(0x40000, 512)])
    assert not fn.intx_asserted
    wr(m, abar, port_reg(A.PxIE), A.IS_DHRS)
    wr(m, abar, A.GHC, A.GHC_IE)
    assert fn.intx_asserted                                     # the status was already set
    assert rd(m, abar, A.IS) == 1
    wr(m, abar, port_reg(A.PxIS), 0xFFFFFFFF)
    assert not fn.intx_asserted
