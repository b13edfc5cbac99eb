"""Stage 1, ``toolchain``: building Xen with the Solaris GNU assembler.

On Solaris in 2007 the GNU assembler treated ``/`` as a comment character, as
the native Solaris assembler did.  Xen's sources are written for GNU as on
Linux, where ``/`` divides.  Xen's boot stub computes how many quadwords of BSS
to clear as ``(__bss_end - __bss_start) / 8``; without ``--divide`` the ``/ 8``
silently becomes a comment, ``rep stosq`` clears eight times the BSS, and the
boot modules the boot loader put right after Xen's BSS (dom0's kernel) are
wiped before Xen reads them: "(XEN) Panic on CPU 0: Could not set up DOM0
guest OS".  John L added ``--divide`` to gas.
"""

from __future__ import annotations

from ..hooks import hook

GAS_OPTIONS = ("--divide",)


def _valid(opts):
    if not isinstance(opts, (list, tuple)) or not all(isinstance(o, str) for o in opts):
        return "expected a list of option strings, e.g. ['--divide']"
    bad = [o for o in opts if o not in GAS_OPTIONS]
    if bad:
        return f"gas: unrecognized option {bad[0]!r} (options this gas knows: {', '.join(GAS_OPTIONS)})"
    return None


def gas_options_fixed():
    return ["--divide"]


@hook("gas_options", stage="toolchain", reference=gas_options_fixed, validate=_valid)
def gas_options():
    """The options Xen's build passes to the GNU assembler (gas).

    Takes nothing; returns a list of option strings, e.g. ``["--divide"]``.
    Options this gas knows: ``--divide`` (``/`` is division, not a comment).
    2007 default: no options -- so ``/`` starts a comment, as on Solaris.
    """
    return []
