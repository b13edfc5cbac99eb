"""Disk images for the storage controllers: sparse, in memory or in a file.

An in-memory image stores only the sectors written.  A sector never written
reads as a fixed pattern (each 64-bit word holds ``seed << 48 | lba << 6 | word``)
rather than zeros, so a DMA that lands in the wrong machine frame leaves
visible, attributable bytes.  A file-backed image is a sparse file: the host
file system stores only what was written.
"""

from __future__ import annotations

import os

import numpy as np

SECTOR = 512


class DiskImage:
    def __init__(self, size: int, *, path: str | os.PathLike | None = None, seed: int = 0):
        if size <= 0 or size % SECTOR:
            raise ValueError(f"disk size {size}: must be a positive multiple of {SECTOR} bytes")
        self.size, self.seed, self.path = size, seed, path
        self.sectors = size // SECTOR
        self._mem: dict[int, bytes] = {}
        self._file = None
        if path is not None:
            exists = os.path.exists(path)
            self._file = open(path, "r+b" if exists else "w+b")
            if not exists or os.path.getsize(path) < size:
                self._file.truncate(size)          # a hole: costs nothing on disk

    def pattern(self, lba: int) -> bytes:
        words = (np.uint64(self.seed & 0xFFFF) << np.uint64(48)) | (
            np.uint64(lba) << np.uint64(6)) | np.arange(64, dtype=np.uint64)
        return words.astype("<u8").tobytes()

    def _check(self, lba, count):
        if lba < 0 or count < 0 or lba + count > self.sectors:
            raise ValueError(f"sectors {lba}+{count}: beyond the end of a "
                             f"{self.sectors}-sector disk")

    def read(self, lba: int, count: int = 1) -> bytes:
        self._check(lba, count)
        if self._file is not None:
            self._file.seek(lba * SECTOR)
            return self._file.read(count * SECTOR)
        return b"".join(self._mem.get(l) or self.pattern(l) for l in range(lba, lba + count))

    def write(self, lba: int, data: bytes):
        data = bytes(data)
        if len(data) % SECTOR:
            raise ValueError(f"{len(data)} bytes: writes are whole {SECTOR}-byte sectors")
        count = len(data) // SECTOR
        self._check(lba, count)
        if self._file is not None:
            self._file.seek(lba * SECTOR)
            self._file.write(data)
            return
        for i in range(count):
            self._mem[lba + i] = data[i * SECTOR:(i + 1) * SECTOR]

    @property
    def written_sectors(self) -> int:
        return len(self._mem)

    def state(self) -> bytes:
        return self.seed.to_bytes(8, "little") + self.size.to_bytes(8, "little") + b"".join(
            l.to_bytes(8, "little") + d for l, d in sorted(self._mem.items()))
