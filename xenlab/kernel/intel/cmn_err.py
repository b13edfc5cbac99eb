"""Kernel messages: the message buffer in guest memory, cmn_err, panic.

The message buffer lives in the kernel's data (symbol ``msgbuf``) so a debugger
reading guest memory (kmdb's ``::msgbuf``) sees what the kernel said even when
no console showed it.  Layout (ours, after illumos ``sys/msgbuf.h``): a 32-byte
header -- magic, size of the text area, total bytes ever written, lines -- and
then the text as a ring.
"""

from __future__ import annotations

import struct

from ..kcpu import KernelPanic

MSG_MAGIC = 0x8724786          # illumos sys/msgbuf.h
HEADER = 32

CE_CONT, CE_NOTE, CE_WARN, CE_PANIC = 0, 1, 2, 3     # illumos sys/cmn_err.h
_PREFIX = {CE_CONT: "", CE_NOTE: "NOTICE: ", CE_WARN: "WARNING: "}


class MsgBuf:
    """The ring of kernel messages at ``base`` (size bytes including the header)."""

    def __init__(self, kcpu, base: int, size: int):
        self.kcpu = kcpu
        self.base = base
        self.size = size - HEADER
        self.written = 0
        self.lines = 0
        kcpu.write(base, struct.pack("<IIQQQ", MSG_MAGIC, self.size, 0, 0, 0)[:HEADER])

    def put(self, text: str):
        raw = text.encode("latin-1", "replace")
        k = self.kcpu
        pos = self.written % self.size
        first = raw[:self.size - pos]
        k.write(self.base + HEADER + pos, first)
        rest = raw[len(first):]
        while rest:
            k.write(self.base + HEADER, rest[:self.size])
            rest = rest[self.size:]
        self.written += len(raw)
        self.lines += raw.count(b"\n")
        k.write(self.base + 8, struct.pack("<QQ", self.written, self.lines))


def read_msgbuf(read, base: int) -> str:
    """The text of a message buffer, given a ``read(va, n)`` function (kernel
    or debugger side); oldest first."""
    magic, size, written, _lines = struct.unpack("<IIQQ", read(base, 24))
    if magic != MSG_MAGIC:
        return ""
    if written <= size:
        raw = read(base + HEADER, written)
    else:
        pos = written % size
        raw = read(base + HEADER + pos, size - pos) + read(base + HEADER, pos)
    return raw.decode("latin-1")


def format_panic(cpu: int, thread: int, message: str) -> str:
    return f"\npanic[cpu{cpu}]/thread={thread:x}: {message}\n"


def panic_error(message: str, text: str, trap=None) -> KernelPanic:
    return KernelPanic(message, text, trap)
