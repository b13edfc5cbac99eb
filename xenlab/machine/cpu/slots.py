"""The CPU's own slots in the vCPU state vector, exit reasons and options.

Slots from :data:`regs.FIRST_FREE` up belong to the CPU: lazy arithmetic
flags, the pending-event and exit-completion bookkeeping, and the per-vCPU
switches (intercepted vectors, SYSCALL exits) the Python ``Vcpu`` sets.
"""

from .. import regs as R

_F = R.FIRST_FREE
# Lazy flags: the last flag-setting operation, its operands and result.
# LF_KIND == 0 means RFLAGS holds every flag (see flags.py).
LF_KIND = _F + 0
LF_RES = _F + 1
LF_A = _F + 2
LF_B = _F + 3
LF_C = _F + 4          # carry-in (ADC/SBB) or preserved CF (INC/DEC)
STATUS = _F + 5        # slow-path status: 0 ok, > 0 exit reason, < 0 fault
FAULT_ADDR = _F + 6    # linear address of the last #PF
OPTIONS = _F + 7       # OPT_* bits
INTERCEPT0 = _F + 8    # 4 words: bit v set = vector v exits instead of delivery
IRQ_PENDING = _F + 12  # set by the platform: an external interrupt waits
INT_SHADOW = _F + 13   # STI / MOV SS interrupt shadow: the next instruction has not retired
PEND_EVENT = _F + 14   # injected event: 0 none, else EV_* << 8 | vector
PEND_ERROR = _F + 15   # its error code, or -1
X_PENDING = _F + 16    # an io/mmio exit waits to be completed by the next run
X_NDONE = _F + 17      # external accesses already performed for this instruction
X_SEEN = _F + 18       # external accesses met while (re)executing it
X_RIP = _F + 19        # the instruction they belong to
X_VAL0 = _F + 20       # 4 words: values of those accesses (reads)
BP_SKIP = _F + 24      # RIP whose breakpoint is stepped over once on resume
CODE_GEN_SEEN = _F + 25
APIC_BASE = _F + 26    # IA32_APIC_BASE (MSR 0x1B)
CUR_EXC = _F + 27      # vector being delivered (double-fault logic), -1 none
MEM_GEN_SEEN = _F + 28
EXC_RIP = _F + 29      # RIP of the instruction that faulted
LAST_ICOUNT = _F + 30  # instructions executed by the last run() call
CS_DPL = _F + 31       # unused by the hot path; descriptor facts of CS
SOFT_INT = _F + 32     # the pending fault in STATUS is a software INT n / INT3 / INTO
SOFT_NEXT = _F + 33    # ... whose return address is this
STEP_N = _F + 34       # instructions a slow-path call retired (REP elements count one each)
ZERO = _F + 35         # always 0: the "no register" slot of a decoded address
TMP = _F + 36          # a memory operand, loaded or to be stored, in the hot loop
PAGEVA = _F + 37       # linear address of the code page the hot loop runs on
APIC_ID = _F + 38      # initial APIC id (CPUID 01H:EBX[31:24], 0BH:EDX)
UACC = _F + 39         # the hot loop's copy of ACC_USER-if-CPL-3 (mmu access kinds)
IOFAST = _F + 40       # 1: port I/O may be answered in the hot loop (run.io_fast)
HOT_PB = _F + 41       # where the current code page's block map starts in the cache array
HOT_STOP = _F + 42     # why hot.run_blocks returned (HOT_*)
HOT_SJ = _F + 43       # ... and the entry that needs the general path
HOT_HH = _F + 44       # the hot loop's pool index of the memory operand (for the store)
X_FAST = _F + 45       # a port exit the hot loop took: how the next run completes it
                       # without executing the IN/OUT again (0: it re-executes);
                       # XF_* fields below
IMM = _F + 46          # the hot loop's copy of an ALU/MOV immediate (ops.W_IMMS)
HOT_NRIP = _F + 47     # where the hot loop's current block goes next (kept out of
                       # registers: a variable there cost the loop a register)
XI = _F + 48           # 16 words: details of the last exit (XI_* below)
X_MAX = 4
# X_FAST fields: the instruction's length, OUT (else IN), its operand size code.
XF_LEN_MASK = 15
XF_OUT = 1 << 4
XF_SZ_SHIFT = 5
XF_VALID = 1 << 7
# OPTIONS bits.
OPT_SYSCALL_EXIT = 1   # SYSCALL exits to the hypervisor instead of LSTAR
OPT_IO_EXIT_ALL = 2    # every port access exits, claimed or not

# Injected event kinds (PEND_EVENT >> 8).
EV_EXCEPTION = 1
EV_INTERRUPT = 2

# Exit reasons (exit[0]); EXIT_NAMES gives the names the Python side uses.
EXIT_NONE = 0
EXIT_IO = 1
EXIT_MMIO = 2
EXIT_HLT = 3
EXIT_SYSCALL = 4
EXIT_EXCEPTION = 5
EXIT_BREAKPOINT = 6
EXIT_BUDGET = 7
EXIT_IRQ = 8
EXIT_SHUTDOWN = 9
EXIT_INTERNAL = 10
EXIT_POOL = 11         # memory pool full: Python grows it and resumes (never seen)
EXIT_NAMES = ("none", "io", "mmio", "hlt", "syscall", "exception", "breakpoint",
              "budget", "irq", "shutdown", "internal", "pool")

# Exit details, ``state[XI + XI_*]`` (``Vcpu.xi`` is a view of them).
XI_REASON = 0
XI_A = 1   # io: port; mmio: machine address; exception: vector; breakpoint: rip
XI_B = 2   # io/mmio: size; exception: error code (-1 none)
XI_C = 3   # io/mmio: 1 write/out, 0 read/in; exception: CR2 / faulting address
XI_D = 4   # io/mmio: value written (out/write)
XI_E = 5   # io: 1 for INS/OUTS; mmio: linear address; exception: RIP of the instruction
XI_F = 6   # io: REP prefix
XI_COUNT = 7   # instructions executed in this run() call
XI_SLOT = 8    # io/mmio read: the state slot its value goes in (X_VAL0 + accesses done)
NEXIT = 16

# Internal-error codes (exit[1] of EXIT_INTERNAL / EXIT_SHUTDOWN).
SHUT_TRIPLE_FAULT = 1
INTERNAL_FETCH_MMIO = 1
NSAVE = 69             # state words 0..68 are restored when an instruction faults
