"""The questions of the tour (labs/00_tour.ipynb): a booted dom0 read three
ways -- start_info, a page walk of start_info's own address, the M2P -- each
answer checked against a boot of the student's machine with every fix in place."""

from __future__ import annotations

from . import question
from ._model import boot_of, guest_u64, shipped_boot

LAB = "00_tour"


def _fixed(stage):
    return boot_of(shipped_boot(stage, fixed=True))


def start_info_va(stage) -> int:
    """Where dom0's kernel keeps start_info: the address saved at ``boot_info``."""
    s = shipped_boot(stage, fixed=True)
    return guest_u64(s, boot_of(s).kernel.sym("boot_info"))


def start_info_maddr(stage) -> int:
    """The machine address of start_info, walked in the fixed boot."""
    b = _fixed(stage)
    va = start_info_va(stage)
    w = b.kernel.cpus[0].vcpu.mmu.walk(va)
    if not w.ok:
        raise RuntimeError(f"start_info ({va:#x}) does not walk in dom0's page tables: "
                           f"{w.fault}")
    return w.maddr


@question("tour_nr_pages", lab=LAB, points=1, answer="ANSWER_NR_PAGES",
          title="how much memory Xen gave dom0",
          asks="start_info.nr_pages: the number of 4 KiB pages Xen gave domain 0",
          looked_at="domain 0's page count in Xen (its start_info says the same)",
          hint="%kmdb ::print start_info nr_pages")
def q_tour_nr_pages(stage):
    return int(_fixed(stage).dom0.tot_pages)


@question("tour_si_mfn", lab=LAB, points=1, answer="ANSWER_SI_MFN",
          title="the machine frame behind a kernel address",
          asks="the MFN the walk of start_info's address ends in",
          looked_at="a walk of start_info's address through dom0's page tables (the CPU's "
                    "walker)",
          hint="The explorer's last line (PTE) names the frame; so does ::vtop.")
def q_tour_si_mfn(stage):
    return start_info_maddr(stage) >> 12


@question("tour_si_pfn", lab=LAB, points=1, answer="ANSWER_SI_PFN",
          title="the same frame as dom0 numbers it",
          asks="the pseudo-physical frame number (PFN) dom0 knows that machine frame by",
          looked_at="Xen's machine-to-physical table (M2P) for that MFN",
          hint="mfn::mfntopfn, or the pfn the explorer prints next to the mfn.")
def q_tour_si_pfn(stage):
    b = _fixed(stage)
    return int(b.xen.m2p.get(start_info_maddr(stage) >> 12))
