"""Independent ways to read the model, for checking what kmdb prints."""

from xenlab.machine.mmu import walk


def hw(stage, cpu=0):
    return stage.kernel.cpus[cpu].vcpu


def vread(stage, va, n, cpu=0):
    """Guest virtual memory through the machine layer's own (side-effect-free) walker."""
    v = hw(stage, cpu)
    out = b""
    while n > 0:
        chunk = min(n, 4096 - (va & 0xFFF))
        w = walk(v.memory, v.get("cr3"), va, state=v.state)
        assert w.ok, w
        out += v.memory.read_bytes(w.maddr, chunk)
        va += chunk
        n -= chunk
    return out


def vread64(stage, va, cpu=0):
    return int.from_bytes(vread(stage, va, 8, cpu), "little")


def sym(stage, name):
    return stage.kernel.unix.sym(name)
