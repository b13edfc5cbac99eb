"""The one error a debugger command raises: an mdb-style one-liner."""

from __future__ import annotations


class MdbError(Exception):
    """A command failed; ``str(e)`` is the line mdb would print (``mdb: ...``)."""

    def __init__(self, message: str):
        if not message.startswith(("mdb: ", "kmdb: ")):
            message = "mdb: " + message
        super().__init__(message)


class ReadError(MdbError):
    """Memory the debugger could not read (no mapping, device memory, outside the image)."""

    def __init__(self, n: int, addr: int, why: str, space: str = ""):
        self.n, self.addr, self.why = n, addr, why
        where = f"{space} " if space else ""
        super().__init__(f"failed to read {n} byte{'s' if n != 1 else ''} at {where}"
                         f"{addr:#x}: {why}")
