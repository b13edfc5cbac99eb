"""Handler numbers of decoded instructions and the layout of a decoded entry.

A decoded instruction is three int64 words: ``info`` (packed fields below),
``disp`` (memory displacement, or the absolute address of a moffs form) and
``imm`` (immediate / branch displacement, sign-extended).  Handlers below
``HOT_LIMIT`` run inside the interpreter loop; the rest go to the general
executor (execute.py).
"""

# -- info word fields ---------------------------------------------------------
I_OP_MASK = 0xFF          # bits 0-7 handler
I_LEN_SHIFT = 8           # bits 8-11 length in bytes
I_SZ_SHIFT = 12           # bits 12-13 operand size code (0:1 1:2 2:4 3:8 bytes)
I_R_SHIFT = 14            # bits 14-18 reg operand (0-15; 16-19 = AH CH DH BH)
I_M_SHIFT = 19            # bits 19-23 rm register, or base of a memory operand
I_X_SHIFT = 24            # bits 24-28 index register (16 = none)
I_SC_SHIFT = 29           # bits 29-30 scale (log2)
I_MEM = 1 << 31           # the r/m operand is memory
I_SUB_SHIFT = 32          # bits 32-35 sub-operation (ALU op, condition, ...)
I_SEG_SHIFT = 36          # bits 36-37 0 none, 1 FS, 2 GS
I_REP_SHIFT = 38          # bits 38-39 1 REP/REPE (F3), 2 REPNE (F2)
I_LOCK = 1 << 40
I_A32 = 1 << 41           # address-size prefix: 32-bit effective address
I_SZ2_SHIFT = 42          # bits 42-43 second size code (MOVZX/MOVSX source)
I_X1 = 1 << 44            # per-handler flag: signed (MOVSX), count in CL (shifts)
I_W = 1 << 45             # REX.W
I_X2 = 1 << 46            # per-handler flag: shift by 1, imm form of BT
I_OPC_SHIFT = 48          # bits 48-55 opcode byte (diagnostics)
I_MACC_SHIFT = 56         # bits 56-57 memory access: 0 address only, 1 read, 2 write, 3 rmw
I_TWO = 1 << 58           # 0F opcode map

REG_NONE = 16             # in the index / base field
REG_RIP = 17              # base field: RIP-relative

MACC_NONE, MACC_READ, MACC_WRITE, MACC_RMW = range(4)

# -- handlers -----------------------------------------------------------------
(UNDECODED, MOV_RM_R, MOV_R_RM, MOV_RM_I, ALU_RM_R, ALU_R_RM, ALU_RM_I, INCDEC, LEA,
 MOVX, JCC, JMP_REL, CALL_REL, RET, PUSH_R, POP_R, PUSH_I, NOP, CMOV, SETCC, JMP_RM,
 CALL_RM) = range(22)
HOT_LIMIT = 40
(XCHG, CMPXCHG, XADD, PUSH_RM, POP_RM, PUSHF, POPF, CBW, CWD, NEGNOT, MULDIV, IMUL2,
 IMUL3, SHIFT, LEAVE, RET_I, LOOP, STRING, IN, OUT, CLI, STI, HLT, PAUSE, FLAGOP,
 INT3, INTN, IRET, MOV_CR_R, MOV_R_CR, INVLPG, LGDT, LIDT, SGDT, SIDT, SWAPGS, RDMSR,
 WRMSR, CPUID, RDTSC, SYSCALL, SYSRET, LTR, STR, MOV_SREG_RM, MOV_RM_SREG, UD,
 LJMP_M, LJMP_PTR, LRET, BT, BSF, BSR, LAHF, SAHF, CLTS, WBINVD, FENCE, BSWAP,
 SHXD, INTO, PUSH_SREG, POP_SREG, ENTER, CMPXCHG16B) = range(40, 105)

# ALU sub-operations (the /reg of opcodes 80-83, SDM Vol. 2 Table A-6), plus TEST.
ADD, OR, ADC, SBB, AND, SUB, XOR, CMP, TEST = range(9)
# STRING sub-operations.
S_MOVS, S_CMPS, S_STOS, S_LODS, S_SCAS, S_INS, S_OUTS = range(7)
# FLAGOP sub-operations.
F_CLC, F_STC, F_CMC, F_CLD, F_STD = range(5)

NAMES = {v: k for k, v in list(globals().items())
         if k.isupper() and isinstance(v, int) and not k.startswith(("I_", "MACC", "REG_"))
         and k not in ("HOT_LIMIT", "ADD", "OR", "ADC", "SBB", "AND", "SUB", "XOR", "CMP",
                       "TEST") and not k.startswith(("S_", "F_"))}

# -- the hot loop's pre-decoded entries ------------------------------------------
# The code cache holds blocks of straight-line instructions (cache.py).  Each
# instruction has a *hot word* with everything the interpreter loop needs,
# already taken apart: handler, register slots, sizes, how to find its memory
# operand.  Handlers below are the ones the loop runs itself; H_SLOW sends the
# instruction to the general executor (with the ``info`` word above).
W_OFF_SHIFT = 8           # bits 8-19 page offset of the instruction
W_LEN_SHIFT = 20          # bits 20-23 length
W_SZ_SHIFT = 24           # bits 24-25 operand size code
W_D_SHIFT = 26            # bits 26-32 destination slot (a GPR, or TMP for memory)
W_S_SHIFT = 33            # bits 33-39 source slot
W_SUB_SHIFT = 40          # bits 40-43 condition code
W_MEM = 1 << 44           # compute the memory operand before the handler
W_MACC_SHIFT = 45         # bits 45-46 MACC_*: address only (into TMP), read, write, rmw
W_MSZ_SHIFT = 47          # bits 47-48 memory size code (source size of MOVZX/MOVSX)
W_WB = 1 << 49            # store TMP back to the memory operand after the handler
W_IMM = 1 << 50           # the source operand is the immediate (word 1), not a slot
W_IMMS = 1 << 51          # copy the immediate (word 1) into the IMM slot before the
                          # handler, which reads it as its source slot like a register
# word 1: immediate, or a branch target as an offset from the code page's start
# word 2: displacement (RIP-relative: plus the offset of the next instruction)
# word 3: base slot | index slot << 7 | scale << 14 | segment-base slot << 16
# word 4: the operand-size mask (0xFF .. -1); word 5: the bits of the destination
# register a write keeps (~mask for 8- and 16-bit operands, 0 otherwise);
# words 6 and 7: the destination and source slots (as in word 0, ready to use)
A_INDEX_SHIFT = 7
A_SCALE_SHIFT = 14
A_SEG_SHIFT = 16

(H_SLOW, H_ADD, H_OR, H_ADC, H_SBB, H_AND, H_SUB, H_XOR, H_CMP, H_TEST, H_MOV, H_MOVZX,
 H_MOVSX, H_INC, H_DEC, H_NEG, H_NOT, H_SHIFT, H_IMUL, H_XCHG, H_CMOV, H_SETCC, H_PUSH,
 H_POP, H_NOP, H_IO, H_ADD_NF, H_OR_NF, H_AND_NF, H_SUB_NF, H_XOR_NF, H_INC_NF, H_DEC_NF,
 H_NEG_NF, H_JCC, H_JMP, H_CALL, H_RET, H_CMP_J, H_TEST_J, H_DEC_J) = range(41)
# H_*_NF: the same operation when no later instruction reads the flags it writes
# (translate.py finds these per block), so the loop skips recording them.
# H_CMP_J, H_TEST_J, H_DEC_J: the instruction and the Jcc right after it in one
# step (sub holds the Jcc's condition; the Jcc's entry follows, for its target).
# H_SHIFT: sub 0 SHL, 1 SHR, 2 SAR; H_IO: sub 0 IN, 1 OUT; H_JMP / H_CALL: to
# page start + word 1 with W_IMM (relative), else to the source slot (indirect).
H_BRANCH_FIRST = H_JCC    # H_JCC..H_RET end a block
H_BRANCH_LAST = H_RET
NHOT = 64                 # handler numbers are 6 bits
