"""The Xen ABI seen from the guest: ``::print`` (start_info, shared_info,
vcpu_info and the other public structures) and ``::evtchn``."""

from __future__ import annotations

import numpy as np

from ...xen import abi
from ..errors import MdbError
from ..session import dcmd, getopts

# Where each well-known structure lives when ::print gets no address.
INSTANCES = {
    "start_info": "the start_info page (the pointer _start saved in boot_info)",
    "shared_info": "the kernel's mapping of its shared_info page",
    "vcpu_info": "shared_info->vcpu_info[current cpu]",
    "arch_shared_info": "shared_info->arch",
    "arch_vcpu_info": "shared_info->vcpu_info[current cpu].arch",
}
STATE_NAMES = {abi.EVTCHNSTAT_closed: "closed", abi.EVTCHNSTAT_unbound: "unbound",
               abi.EVTCHNSTAT_interdomain: "interdomain", abi.EVTCHNSTAT_pirq: "pirq",
               abi.EVTCHNSTAT_virq: "virq", abi.EVTCHNSTAT_ipi: "ipi", -1: "reserved"}


def type_name(word: str) -> str:
    """``struct start_info``, ``start_info_t`` and ``start_info`` are one type."""
    name = word.strip()
    if name.startswith("struct "):
        name = name[7:].strip()
    if name.endswith("_t") and name[:-2] in abi.STRUCTS:
        name = name[:-2]
    if name not in abi.STRUCTS:
        raise MdbError(f"failed to look up type {word}: unknown type; the Xen ABI types "
                       f"are: {', '.join(sorted(abi.STRUCTS))}")
    return name


def default_address(k, name: str) -> int:
    t = k.target
    if name == "start_info":
        return t.start_info_va(k.cpu)
    si = t.shared_info_va()
    if name == "shared_info":
        return si
    if name == "arch_shared_info":
        return si + abi.shared_info.fields["arch"][1]
    vi = si + abi.vcpu_info.itemsize * k.cpu
    if name == "vcpu_info":
        return vi
    if name == "arch_vcpu_info":
        return vi + abi.vcpu_info.fields["arch"][1]
    raise MdbError(f"::print {name} needs an address: addr::print {name}")


def to_python(v):
    """A numpy field value as plain Python (bytes strings, ints, lists, dicts)."""
    if isinstance(v, np.void) and v.dtype.names:
        return {n: to_python(v[n]) for n in v.dtype.names}
    if isinstance(v, np.ndarray):
        return [to_python(x) for x in v]
    if isinstance(v, (bytes, np.bytes_)):
        return bytes(v).split(b"\0")[0].decode("latin-1")
    if isinstance(v, np.void):
        return bytes(v)
    return int(v)


def _fmt_value(v, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(v, dict):
        out = ["{"]
        for n, x in v.items():
            sub = _fmt_value(x, indent + 4)
            out.append(f"{pad}    {n} = {sub[0]}")
            out += sub[1:]
        out.append(pad + "}")
        return out
    if isinstance(v, list):
        if v and isinstance(v[0], dict):
            out = ["["]
            for x in v:
                sub = _fmt_value(x, indent + 4)
                out.append(pad + "    " + sub[0])
                out += sub[1:-1] + [sub[-1] + ","]
            out.append(pad + "]")
            return out
        return ["[ " + ", ".join(_num(x) for x in v) + " ]"]
    if isinstance(v, str):
        return [f'[ "{v}" ]']
    if isinstance(v, bytes):
        return ["[ " + ", ".join(f"{b:#x}" if b else "0" for b in v) + " ]"]
    return [_num(v)]


def _num(x) -> str:
    return f"{x:#x}" if isinstance(x, int) and x else str(x)


def _member(rec, path: str):
    v = rec
    for part in path.split("."):
        names = v.dtype.names or ()
        if part not in names:
            raise MdbError(f"failed to find member {part} of {v.dtype.name or 'the type'}: "
                           f"the members are {', '.join(names)}")
        v = v[part]
    return v


@dcmd("print", "[addr]::print type [member ...]", "print a Xen ABI structure",
      help="""
Reads the structure from guest memory and prints its members (numbers in hex,
strings quoted), like mdb's ::print over CTF types.  The types are Xen's public
structures (xen/include/public: start_info, shared_info, vcpu_info,
arch_vcpu_info, trap_info, vcpu_guest_context, evtchn_*, physdev_* ...).
Without an address, start_info, shared_info, vcpu_info (of the current CPU)
and their arch parts are found where the kernel keeps them.  Members may be
named (::print start_info mfn_list nr_pages; dotted: arch.cr2).""")
def print_(k, cmd):
    o = getopts(cmd.args, flags="t")
    if not o.words:
        raise MdbError("::print: a type is required (::print start_info)")
    words = list(o.words)
    if words[0] == "struct" and len(words) > 1:
        words = [words[0] + " " + words[1]] + words[2:]
    name = type_name(words[0])
    dt = abi.STRUCTS[name]
    addr = cmd.addr if cmd.has_addr else default_address(k, name)
    raw = k.target.vread(addr, dt.itemsize, k.cpu)
    rec = np.frombuffer(raw, dtype=dt)[0]
    members = words[1:]
    if members:
        lines, data = [], {}
        for m in members:
            v = to_python(_member(rec, m))
            data[m] = v
            body = _fmt_value(v, 0)
            lines.append(f"{m} = {body[0]}")
            lines += body[1:]
        return "\n".join(lines) + "\n", data
    data = to_python(rec)
    head = f"struct {name} " if "t" in o.flags else ""
    body = _fmt_value(data, 0)
    return head + "\n".join(body) + "\n", {"type": name, "addr": addr, "value": data}


def _bit(words, port: int) -> bool:
    return bool(int(words[port >> 6]) >> (port & 63) & 1)


@dcmd("evtchn", "::evtchn [-a]", "event channels: port, type, pending/masked, handler",
      aliases=("evtchns",),
      help="""
One line per open port: its type and binding as Xen keeps them (the domain's
channel table: unbound, interdomain, pirq, virq, ipi), its pending and mask
bits read from shared_info in guest memory, and the kernel's handler for it
(when the kernel has bound one).  Then each vCPU's upcall state from its
vcpu_info: upcall pending, upcall mask, the pending selector word.  -a also
lists closed ports whose pending or mask bit is set.""")
def evtchn(k, cmd):
    o = getopts(cmd.args, flags="a")
    t = k.target
    t.need_xen("::evtchn")
    si_va = t.shared_info_va()
    raw = t.vread(si_va, abi.shared_info.itemsize, k.cpu)
    si = np.frombuffer(raw, dtype=abi.shared_info)[0]
    pending, mask = si["evtchn_pending"], si["evtchn_mask"]
    dom = t.dom0
    channels = list(dom.channels) if dom is not None else []
    handlers = _handlers(t.kernel)
    rows = []
    ports = [p for p, ch in enumerate(channels) if ch.state not in (abi.EVTCHNSTAT_closed, -1)]
    if "a" in o.flags:
        extra = [p for p in range(abi.NR_EVENT_CHANNELS)
                 if (_bit(pending, p) or _bit(mask, p)) and p not in ports]
        ports = sorted(set(ports) | set(extra))
    for p in ports:
        ch = channels[p] if p < len(channels) else None
        state = STATE_NAMES.get(ch.state, str(ch.state)) if ch is not None else "closed"
        detail = ""
        if ch is not None:
            if ch.state == abi.EVTCHNSTAT_virq:
                detail = f"virq {ch.virq}"
            elif ch.state == abi.EVTCHNSTAT_pirq:
                detail = f"pirq {ch.pirq}"
            elif ch.state == abi.EVTCHNSTAT_interdomain:
                detail = f"dom{ch.remote_dom} port {ch.remote_port}"
            elif ch.state == abi.EVTCHNSTAT_unbound:
                detail = f"for dom{ch.remote_dom}"
        h = handlers.get(p)
        rows.append({"port": p, "type": state, "vcpu": ch.notify_vcpu if ch else None,
                     "detail": detail, "pending": _bit(pending, p), "masked": _bit(mask, p),
                     "handler": h})
    text = f"{'PORT':>5} {'TYPE':<12} {'VCPU':>4} {'BINDING':<16} {'PEND':>4} {'MASK':>4}  HANDLER\n"
    for r in rows:
        text += (f"{r['port']:>5} {r['type']:<12} {'-' if r['vcpu'] is None else r['vcpu']:>4} "
                 f"{r['detail'] or '-':<16} {int(r['pending']):>4} {int(r['masked']):>4}  "
                 f"{r['handler'] or '-'}\n")
    if not rows:
        text += "      (no event channel is bound)\n"
    vcpus = []
    upcall = k.symbols.fmt(k.symbols.addr("hypervisor_callback"))
    for n in range(t.ncpus()):
        vi = si["vcpu_info"][n]
        v = {"vcpu": n, "upcall_pending": int(vi["evtchn_upcall_pending"]),
             "upcall_mask": int(vi["evtchn_upcall_mask"]),
             "pending_sel": int(vi["evtchn_pending_sel"])}
        vcpus.append(v)
        text += (f"vcpu{n}: upcall_pending={v['upcall_pending']} upcall_mask={v['upcall_mask']}"
                 f" pending_sel={v['pending_sel']:#x} -> {upcall}\n")
    return text, {"ports": rows, "vcpus": vcpus}


def _handlers(kernel) -> dict:
    """port -> handler name, from the kernel's event-channel table when it has one."""
    table = getattr(kernel, "evtchn_handlers", None) if kernel is not None else None
    out = {}
    for port, h in (table or {}).items():
        out[int(port)] = getattr(h, "__qualname__", None) or str(h)
    return out
