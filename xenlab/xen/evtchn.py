"""Event channels: ports, the pending/mask bitmaps in shared_info, VIRQs, PIRQs.

After ``xen/common/event_channel.c`` (Xen 3.1).  The bitmaps live in the
domain's shared_info page, in guest-visible machine memory, so the guest
kernel reads and clears them with ordinary loads and stores.  Delivery follows
the rule in xen.h: a port going pending with its mask bit clear sets its
selector bit in the notified vCPU's ``evtchn_pending_sel`` and
``evtchn_upcall_pending``; the upcall itself is made when the vCPU next
returns to the guest with ``evtchn_upcall_mask`` clear (see
:func:`xenlab.xen.traps.deliver_events`).
"""

from __future__ import annotations

import numpy as np

from . import abi
from .domain import Channel
from .hypercall import guest, register

BUCKET = 128                     # EVTCHNS_PER_BUCKET: ports are allocated in buckets


# -- bitmaps in shared_info --------------------------------------------------------

def _bit_addr(xen, d, field: str, port: int) -> tuple[int, int]:
    base = xen.shared_info_addr(d, field)
    return base + (port >> 6) * 8, port & 63


def _test_bit(xen, d, field, port) -> bool:
    addr, bit = _bit_addr(xen, d, field, port)
    return bool(xen.memory.read64(addr) >> bit & 1)


def _set_bit(xen, d, field, port, value: bool) -> bool:
    """Set/clear; returns the old value."""
    addr, bit = _bit_addr(xen, d, field, port)
    w = xen.memory.read64(addr)
    old = bool(w >> bit & 1)
    nw = (w | (1 << bit)) if value else (w & ~(1 << bit))
    if nw != w:
        xen.write_machine(addr, nw.to_bytes(8, "little"))
    return old


def evtchn_set_pending(xen, d, vcpu_id: int, port: int):
    """Mark ``port`` pending and notify ``vcpu_id`` if it is not masked."""
    if _set_bit(xen, d, "evtchn_pending", port, True):
        return
    if not _test_bit(xen, d, "evtchn_mask", port):
        sel_addr = xen.shared_info_addr(d, "evtchn_pending_sel", vcpu_id)
        sel = xen.memory.read64(sel_addr)
        bit = 1 << (port >> 6)
        if not sel & bit:
            xen.write_machine(sel_addr, (sel | bit).to_bytes(8, "little"))
            mark_events_pending(xen, d, vcpu_id)
    for v in d.vcpus:                      # a vCPU polling on this port wakes
        if v.polling is not None and port in v.polling:
            v.polling = None
            v.blocked = False


def mark_events_pending(xen, d, vcpu_id: int):
    xen.write_vcpu_info(d, vcpu_id, "evtchn_upcall_pending", 1)
    v = d.vcpus[vcpu_id]
    if v.blocked and d.shutdown_reason is None:
        v.blocked = False
        v.runstate = abi.RUNSTATE_runnable


def local_events_need_delivery(xen, v) -> bool:
    d = v.domain
    return (xen.read_vcpu_info(d, v.vcpu_id, "evtchn_upcall_pending") != 0 and
            xen.read_vcpu_info(d, v.vcpu_id, "evtchn_upcall_mask") == 0)


def send_guest_virq(xen, v, virq: int):
    port = int(v.virq_to_evtchn[virq])
    if port:
        evtchn_set_pending(xen, v.domain, v.vcpu_id, port)


def send_global_virq(xen, d, virq: int):
    if d is not None and d.vcpus:
        send_guest_virq(xen, d.vcpus[0], virq)


def send_guest_pirq(xen, d, pirq: int):
    port = d.pirq_to_evtchn.get(pirq, 0)
    if port:
        ch = d.channels[port]
        evtchn_set_pending(xen, d, ch.notify_vcpu, port)


# -- ports -------------------------------------------------------------------------

def port_valid(d, port: int) -> bool:
    return 0 <= port < len(d.channels)


def get_free_port(d) -> int:
    for p in range(1, len(d.channels)):
        if d.channels[p].state == abi.EVTCHNSTAT_closed:
            return p
    if len(d.channels) >= abi.NR_EVENT_CHANNELS:
        return -abi.ENOSPC
    first = len(d.channels)
    d.channels.extend(Channel() for _ in range(BUCKET))
    return first


def _dom(xen, v, domid: int):
    if domid == abi.DOMID_SELF:
        return v.domain, 0
    d = xen.domain(domid)
    if d is None:
        return None, -abi.ESRCH
    if d is not v.domain and not v.domain.privileged:
        return None, -abi.EPERM
    return d, 0


def evtchn_close(xen, d, port: int) -> int:
    if not port_valid(d, port):
        return -abi.EINVAL
    ch = d.channels[port]
    st = ch.state
    if st in (abi.EVTCHNSTAT_closed, -1):
        return -abi.EINVAL
    if st == abi.EVTCHNSTAT_pirq:
        d.pirq_to_evtchn.pop(ch.pirq, None)
        bound = xen.irq_bound.get(ch.pirq, [])
        if d in bound:
            bound.remove(d)
        d.pirq_mask.discard(ch.pirq)
    elif st == abi.EVTCHNSTAT_virq:
        for v in d.vcpus:
            if v.virq_to_evtchn[ch.virq] == port:
                v.virq_to_evtchn[ch.virq] = 0
    elif st == abi.EVTCHNSTAT_interdomain:
        rd = xen.domain(ch.remote_dom)
        if rd is not None and port_valid(rd, ch.remote_port):
            rch = rd.channels[ch.remote_port]
            if rch.state == abi.EVTCHNSTAT_interdomain:
                rch.state = abi.EVTCHNSTAT_unbound
                rch.remote_dom = d.domid
    d.channels[port] = Channel()
    _set_bit(xen, d, "evtchn_pending", port, False)
    return 0


@register(abi.HYPERVISOR_event_channel_op, 2)
def do_event_channel_op(xen, v, cmd, arg):
    g = guest(xen, v)
    cmd &= 0xFFFFFFFF
    dt = {abi.EVTCHNOP_alloc_unbound: abi.evtchn_alloc_unbound,
          abi.EVTCHNOP_bind_interdomain: abi.evtchn_bind_interdomain,
          abi.EVTCHNOP_bind_virq: abi.evtchn_bind_virq,
          abi.EVTCHNOP_bind_pirq: abi.evtchn_bind_pirq,
          abi.EVTCHNOP_bind_ipi: abi.evtchn_bind_ipi,
          abi.EVTCHNOP_close: abi.evtchn_close,
          abi.EVTCHNOP_send: abi.evtchn_send,
          abi.EVTCHNOP_status: abi.evtchn_status,
          abi.EVTCHNOP_bind_vcpu: abi.evtchn_bind_vcpu,
          abi.EVTCHNOP_unmask: abi.evtchn_unmask,
          abi.EVTCHNOP_reset: abi.evtchn_reset}.get(cmd)
    if dt is None:
        return -abi.ENOSYS
    rec = g.read_struct(arg, dt)
    if rec is None:
        return -abi.EFAULT
    rc, out = evtchn_op(xen, v, cmd, rec)
    if rc == 0 and out is not None:
        if not g.write_struct(arg, out):
            return -abi.EFAULT
    return rc


def evtchn_op(xen, v, cmd: int, rec):
    """One event-channel command on a decoded argument record; (rc, record to copy back)."""
    d = v.domain
    if cmd == abi.EVTCHNOP_alloc_unbound:
        t, err = _dom(xen, v, int(rec["dom"]))
        if t is None:
            return err, None
        port = get_free_port(t)
        if port < 0:
            return port, None
        rdom = int(rec["remote_dom"])
        t.channels[port] = Channel(state=abi.EVTCHNSTAT_unbound,
                                   remote_dom=d.domid if rdom == abi.DOMID_SELF else rdom)
        rec["port"] = port
        return 0, rec
    if cmd == abi.EVTCHNOP_bind_interdomain:
        rdomid = int(rec["remote_dom"])
        rd = d if rdomid == abi.DOMID_SELF else xen.domain(rdomid)
        if rd is None:
            return -abi.ESRCH, None
        rport = int(rec["remote_port"])
        if not port_valid(rd, rport):
            return -abi.EINVAL, None
        rch = rd.channels[rport]
        if rch.state != abi.EVTCHNSTAT_unbound or rch.remote_dom != d.domid:
            return -abi.EINVAL, None
        lport = get_free_port(d)
        if lport < 0:
            return lport, None
        d.channels[lport] = Channel(state=abi.EVTCHNSTAT_interdomain,
                                    remote_dom=rd.domid, remote_port=rport)
        rch.state = abi.EVTCHNSTAT_interdomain
        rch.remote_dom, rch.remote_port = d.domid, lport
        evtchn_set_pending(xen, d, 0, lport)     # as Xen does: the new port starts pending
        rec["local_port"] = lport
        return 0, rec
    if cmd == abi.EVTCHNOP_bind_virq:
        virq, vcpu = int(rec["virq"]), int(rec["vcpu"])
        if virq >= abi.NR_VIRQS:
            return -abi.EINVAL, None
        if virq in abi.GLOBAL_VIRQS and vcpu != 0:
            return -abi.EINVAL, None
        if vcpu >= len(d.vcpus):
            return -abi.ENOENT, None
        t = d.vcpus[vcpu]
        if t.virq_to_evtchn[virq]:
            return -abi.EEXIST, None
        port = get_free_port(d)
        if port < 0:
            return port, None
        d.channels[port] = Channel(state=abi.EVTCHNSTAT_virq, notify_vcpu=vcpu, virq=virq)
        t.virq_to_evtchn[virq] = port
        rec["port"] = port
        return 0, rec
    if cmd == abi.EVTCHNOP_bind_ipi:
        vcpu = int(rec["vcpu"])
        if vcpu >= len(d.vcpus):
            return -abi.ENOENT, None
        port = get_free_port(d)
        if port < 0:
            return port, None
        d.channels[port] = Channel(state=abi.EVTCHNSTAT_ipi, notify_vcpu=vcpu)
        rec["port"] = port
        return 0, rec
    if cmd == abi.EVTCHNOP_bind_pirq:
        pirq = int(rec["pirq"])
        if pirq >= NR_PIRQS:
            return -abi.EINVAL, None
        if not d.irq_caps:
            return -abi.EPERM, None
        if pirq in d.pirq_to_evtchn:
            return -abi.EEXIST, None
        share = bool(int(rec["flags"]) & abi.BIND_PIRQ__WILL_SHARE)
        bound = xen.irq_bound.setdefault(pirq, [])
        if bound and not (share and xen.irq_shareable.get(pirq, False)):
            return -abi.EBUSY, None
        port = get_free_port(d)
        if port < 0:
            return port, None
        d.channels[port] = Channel(state=abi.EVTCHNSTAT_pirq, notify_vcpu=0, pirq=pirq)
        d.pirq_to_evtchn[pirq] = port
        xen.irq_shareable[pirq] = share if not bound else xen.irq_shareable[pirq] and share
        bound.append(d)
        from .physdev import pirq_guest_bind
        pirq_guest_bind(xen, pirq)
        rec["port"] = port
        return 0, rec
    if cmd == abi.EVTCHNOP_close:
        return evtchn_close(xen, d, int(rec["port"])), None
    if cmd == abi.EVTCHNOP_send:
        port = int(rec["port"])
        if not port_valid(d, port):
            return -abi.EINVAL, None
        ch = d.channels[port]
        if ch.state == abi.EVTCHNSTAT_interdomain:
            rd = xen.domain(ch.remote_dom)
            if rd is not None:
                evtchn_set_pending(xen, rd, rd.channels[ch.remote_port].notify_vcpu,
                                   ch.remote_port)
            return 0, None
        if ch.state == abi.EVTCHNSTAT_ipi:
            evtchn_set_pending(xen, d, ch.notify_vcpu, port)
            return 0, None
        if ch.state == abi.EVTCHNSTAT_unbound:
            return 0, None            # silently dropped
        return -abi.EINVAL, None
    if cmd == abi.EVTCHNOP_status:
        t, err = _dom(xen, v, int(rec["dom"]))
        if t is None:
            return err, None
        port = int(rec["port"])
        if not port_valid(t, port):
            return -abi.EINVAL, None
        ch = t.channels[port]
        st = ch.state if ch.state >= 0 else abi.EVTCHNSTAT_closed
        rec["status"] = st
        rec["vcpu"] = ch.notify_vcpu
        if st == abi.EVTCHNSTAT_unbound:
            rec["u_dom"] = ch.remote_dom
        elif st == abi.EVTCHNSTAT_interdomain:
            rec["u_dom"], rec["u_port"] = ch.remote_dom, ch.remote_port
        elif st == abi.EVTCHNSTAT_pirq:
            rec["u_pirq"] = ch.pirq
        elif st == abi.EVTCHNSTAT_virq:
            rec["u_virq"] = ch.virq
        return 0, rec
    if cmd == abi.EVTCHNOP_bind_vcpu:
        port, vcpu = int(rec["port"]), int(rec["vcpu"])
        if vcpu >= len(d.vcpus):
            return -abi.ENOENT, None
        if not port_valid(d, port):
            return -abi.EINVAL, None
        ch = d.channels[port]
        if ch.state in (abi.EVTCHNSTAT_unbound, abi.EVTCHNSTAT_interdomain,
                        abi.EVTCHNSTAT_pirq) or (
                ch.state == abi.EVTCHNSTAT_virq and ch.virq in abi.GLOBAL_VIRQS):
            ch.notify_vcpu = vcpu
            return 0, None
        return -abi.EINVAL, None
    if cmd == abi.EVTCHNOP_unmask:
        port = int(rec["port"])
        if not port_valid(d, port):
            return -abi.EINVAL, None
        evtchn_unmask(xen, d, port)
        return 0, None
    if cmd == abi.EVTCHNOP_reset:
        t, err = _dom(xen, v, int(rec["dom"]))
        if t is None:
            return err, None
        for p in range(1, len(t.channels)):
            if t.channels[p].state > 0:
                evtchn_close(xen, t, p)
        return 0, None
    return -abi.ENOSYS, None


def evtchn_unmask(xen, d, port: int):
    ch = d.channels[port]
    vid = ch.notify_vcpu if ch.state > 0 else 0
    was_masked = _set_bit(xen, d, "evtchn_mask", port, False)
    if was_masked and _test_bit(xen, d, "evtchn_pending", port):
        sel_addr = xen.shared_info_addr(d, "evtchn_pending_sel", vid)
        sel = xen.memory.read64(sel_addr)
        bit = 1 << (port >> 6)
        if not sel & bit:
            xen.write_machine(sel_addr, (sel | bit).to_bytes(8, "little"))
            mark_events_pending(xen, d, vid)


NR_PIRQS = 256                   # asm-x86/config.h NR_IRQS / NR_PIRQS (X31)


@register(abi.HYPERVISOR_event_channel_op_compat, 1)
def do_event_channel_op_compat(xen, v, uop):
    """The pre-0x00030202 form: one struct evtchn_op {cmd; union u}."""
    g = guest(xen, v)
    raw = g.read(uop, abi.evtchn_op.itemsize)
    if raw is None:
        return -abi.EFAULT
    cmd = int.from_bytes(raw[:4], "little")
    return do_event_channel_op(xen, v, cmd, uop + 4)


def do_poll(xen, v, ports_va: int, nr_ports: int, timeout: int) -> int:
    """SCHEDOP_poll: return at once if a port is pending, else block on them."""
    g = guest(xen, v)
    d = v.domain
    if xen.read_vcpu_info(d, v.vcpu_id, "evtchn_upcall_mask") == 0:
        return -abi.EINVAL           # only with events masked (X31)
    if nr_ports > 128:
        return -abi.EINVAL
    ports = []
    for i in range(nr_ports):
        raw = g.read(ports_va + 4 * i, 4)
        if raw is None:
            return -abi.EFAULT
        p = int.from_bytes(raw, "little")
        if not port_valid(d, p):
            return -abi.EINVAL
        if _test_bit(xen, d, "evtchn_pending", p):
            return 0
        ports.append(p)
    v.polling = ports
    v.blocked = True
    v.timer_deadline = timeout
    return 0


def channels_frame(xen, d):
    """pandas view of a domain's open ports: state, vCPU, peer, pirq/virq, pending, masked."""
    import pandas as pd
    names = {0: "closed", 1: "unbound", 2: "interdomain", 3: "pirq", 4: "virq", 5: "ipi",
             -1: "reserved"}
    rows = []
    for p, ch in enumerate(d.channels):
        if ch.state in (abi.EVTCHNSTAT_closed,):
            continue
        rows.append({"port": p, "state": names.get(ch.state, ch.state),
                     "vcpu": ch.notify_vcpu,
                     "remote_dom": ch.remote_dom if ch.state in (1, 2) else None,
                     "remote_port": ch.remote_port if ch.state == 2 else None,
                     "pirq": ch.pirq if ch.state == 3 else None,
                     "virq": ch.virq if ch.state == 4 else None,
                     "pending": _test_bit(xen, d, "evtchn_pending", p),
                     "masked": _test_bit(xen, d, "evtchn_mask", p)})
    return pd.DataFrame(rows, columns=["port", "state", "vcpu", "remote_dom", "remote_port",
                                       "pirq", "virq", "pending", "masked"])
