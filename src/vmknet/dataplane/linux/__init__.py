"""The Linux data plane: every TCP/IP stack of every host is a network namespace.

`LinuxBackend` (name ``"linux"``) implements `vmknet.dataplane.base.Backend`
with pyroute2 netlink. Mechanisms, module by module:

- ``netns``: namespaces are ``/run/netns/<name>`` bind mounts, made by a
  short-lived thread that unshares (no fork); ``lo`` is brought up on creation. Code that must run
  inside a namespace (opening an rtnetlink socket, /proc/sys) runs in a
  short-lived thread that ``setns(2)``s in and back: setns moves only the
  calling thread, and a socket keeps its namespace for life. One socket per
  namespace costs ~0.3 ms instead of ~10 ms for ``IPRoute(netns=...)``.
- ``links``: veth pairs in one request, the peer placed straight into its
  namespace (IFLA_NET_NS_FD), MTU and MAC set, then master and STP port cost
  (IFLA_BRPORT_COST), then admin up; deleted again if a later step fails.
  Bridges use kernel STP (stp_state 1, forward delay 2 s, hello 1 s, max age
  6 s: the minimums) with the given priority. ``ModifyLink`` rolls back to
  ``before`` on failure.
- ``routes``: addresses (IPv6 with NODAD), routes (vmknet protocol numbers
  118/119 record whether the device was given, so `read` returns the same
  `Route`), policy rules.
- ``sysctl``: /proc/sys written and read inside the namespace.
- ``tc``: root tbf via netlink (burst: 4 ms at line rate, >= 64 KiB; latency
  50 ms); rates >= 2^32 B/s (~34 Gbit/s) via the ``tc`` command, since
  pyroute2 lacks TCA_TBF_RATE64.
- ``resolver``: /etc/netns/<ns>/resolv.conf, written atomically.
- ``read`` + ``rtdump`` + ``nsid``: one thread tours the namespaces (an
  rtnetlink socket + the sysctls from each), the dumps run on those sockets
  and are parsed with ``struct`` (pyroute2's decoder was ~10x slower); veth
  peers from IFLA_LINK + IFLA_LINK_NETNSID, confirmed with raw RTM_GETNSID.
  A 16-host lab (81 namespaces, 177 links) reads in ~60 ms.
- ``errors``: the one place kernel errors become ``DataplaneError``.
- ``caps``: VLAN/teaming capabilities probed once in a scratch namespace.
- ``nl``: the pyroute2 seam (the only untyped code); used for every write.

What `read` reports, so that plans against it are empty after an apply:
MACs always (give `Link.mac`, or the plan must ignore a ``None`` MAC);
``bridge_priority`` for STP bridges (or a non-default one); ``port_cost`` for
ports of STP bridges only; ``Route.dev`` as given when added (protocol 119
marks "gateway only"); all five managed sysctls of every namespace.

Needs root, iproute2 (``ip``, ``tc``); the kernel tests also use ``ping``
(Debian ``iputils-ping``).
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .backend import LinuxBackend
    from .caps import Capabilities


def __getattr__(name: str) -> Any:
    # Loaded on first use: pyroute2 costs ~150 ms, which commands that only need
    # `netns.in_netns` or the pure dataplane (every vmknet CLI start) should not pay.
    if name == "LinuxBackend":
        from .backend import LinuxBackend

        return LinuxBackend
    if name == "Capabilities":
        from .caps import Capabilities

        return Capabilities
    raise AttributeError(name)


__all__ = ["Capabilities", "LinuxBackend"]
