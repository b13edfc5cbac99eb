"""bootadm: pack a kernel build into a boot archive (a ustar file).

The archive holds every module a build produced, at the path krtld searches
(``kernel/drv/amd64/NAME`` for the common ``intel`` part,
``platform/PLAT/kernel/drv/amd64/NAME`` for a platform build), and
``etc/system`` with a ``forceload:`` line per primary module, in the order
krtld loads them.  The boot loader hands it to the kernel as a module (Xen: the
initrd, ``start_info.mod_start``).
"""

from __future__ import annotations

import io
import tarfile

from .build import KernelBuild
from .intel.startup import module_path


def module_file(name: str, place: str, references) -> bytes:
    """A module's contents: a small text header krtld checks (which platform
    it was built for and what it references)."""
    return (f"xenlab-module\nname={name}\nplatform={place}\n"
            f"refs={','.join(references)}\n").encode()


def boot_archive(kb: KernelBuild, forceload: list[str]) -> bytes:
    """The archive for a build; ``forceload`` names modules (``rootnex``...)."""
    out = io.BytesIO()
    seen = set()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        def add(path: str, data: bytes):
            info = tarfile.TarInfo(path)
            info.size = len(data)
            info.mtime = 0                     # deterministic archives
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))

        for plat, mods in sorted(kb.modules.items()):
            for m in mods:
                cls, _, name = module_path(m.name).partition("/")
                where = "kernel" if m.place == "intel" else f"platform/{m.place}/kernel"
                path = f"{where}/{cls}/amd64/{name}"
                if path in seen:
                    continue
                seen.add(path)
                add(path, module_file(m.name, m.place, m.references))
        system = "* etc/system written by bootadm\n" + "".join(
            f"forceload: {module_path(n)}\n" for n in forceload)
        add("etc/system", system.encode())
    return out.getvalue()
