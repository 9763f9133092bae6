"""Re-protection (FT-2): after a failover the new primary gets a new secondary, by itself.

    choose_host(dc, protected, "esx02", {"esx01"}, vcpus=1)   # the rules' pick, or NoHost
    reprotect(lab, "web01", failed="esx01")                    # run by the VM's process

Who drives it: the VM process that went live. It learnt of the failover from the
controller's arbiter (its claim won), it holds the guest and its output, and it is
the one process sure to exist after a failover; the controller sits below the
engines in the import layers and starts no VM process itself. The decision stays the
controller's: `ft_on(..., reprotect=True)` begins the new pair's generation there,
which records FtReprotected in `vmknet events`. Only in a lab with a controller:
without one (vCenter's role) nothing re-protects, as in vSphere.

The host comes from the rules, never a guess: an FT logging adapter that resolve()
reaches from the new primary's (PATH-3, NoPath), not the failed host, not the
primary's own (FT-1), room under FT-3's limits; the fewest FT VMs first, then name.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

from ..errors import NoPath, NotFound, RuleViolation, VmknetError
from ..inventory import Inventory
from ..lab.registry import store_of
from ..model import Datacenter, Service
from ..resolve import resolve
from ..vm import manage
from . import enable, limits, records
from .limits import Protected

ATTEMPTS = 3  # a host that fails to start the secondary is left out of the next pick


class NoHost(VmknetError):
    default_code = "FT-2"


def choose_host(dc: Datacenter, protected: Iterable[Protected], primary: str,
                exclude: set[str], vcpus: int) -> str:
    """The host for the new secondary of a VM on `primary` (see the module's rules)."""
    pairs = list(protected)
    load = {h: sum(h in (p, s) for p, s, _ in pairs) for h in dc.hosts}
    why: list[str] = []
    for host in sorted(dc.hosts, key=lambda h: (load[h], h)):
        if host == primary or host in exclude:
            continue
        try:
            resolve(dc, Service.FT_LOGGING, primary, host)  # PATH-3 / SVC-5, NoPath
            limits.check(pairs, primary, host, vcpus)  # FT-3
        except (RuleViolation, NoPath) as err:
            why.append(f"{host}: {err.code}")
            continue
        return host
    raise NoHost(f"No host can run a new secondary for the VM on {primary} ("
                 f"{'; '.join(why) or 'no other host'})", primary=primary)


def reprotect(lab: str, vm: str, failed: str) -> str | None:
    """Start a new secondary for `vm` (now primary here); the host chosen, or None.

    The VM's output stream goes on where it is served: the VM process hands its live
    output to the new protection (vmx.ft_on), which holds records back again."""
    old = records.load(lab, vm)
    store = store_of(lab)
    if store is None:
        records.event(lab, vm, "reprotect-failed", f"no store is bound to lab {lab}")
        return None
    tried = {failed}
    for _ in range(ATTEMPTS):
        dc = Inventory.open(store).read()
        try:
            primary = manage.get(lab, vm).host
            host = choose_host(dc, [(r.primary, r.secondary, r.vcpus)
                                    for r in enable.live_records(lab) if r.vm != vm],
                               primary, tried, old.vcpus)
        except (NoHost, NotFound) as err:
            records.event(lab, vm, "reprotect-failed", f"not re-protected: {err.message}")
            return None
        try:
            enable.ft_on(dc, lab, vm, host, epoch=old.epoch, vcpus=old.vcpus,
                         timeout=old.timeout, output_port=old.output_port,
                         output_rate=old.output_rate, reprotect=True,
                         encryption=old.encryption)
        except VmknetError as err:
            records.event(lab, vm, "reprotect-failed", f"{host}: {err.message}")
            tried.add(host)
            time.sleep(0.5)
            continue
        records.event(lab, vm, "reprotected", f"new secondary on {host} (the primary runs "
                      f"on {primary} since the failover from {failed})", host=host)
        return host
    return None


def in_background(lab: str, vm: str, failed: str) -> None:
    """`reprotect` on a thread of the VM process (the guest runs on meanwhile); a failure
    is an event in the VM's FT log, never an end of the VM."""
    def run() -> None:
        try:
            reprotect(lab, vm, failed)
        except Exception as err:  # the VM runs on unprotected; say why, keep running
            records.event(lab, vm, "reprotect-failed", f"{type(err).__name__}: {err}")

    threading.Thread(target=run, name="ft-reprotect", daemon=True).start()
