"""Lint of Fault Tolerance logging (FT-3): the uplinks under a host's FT logging adapter.

VMware requires FT logging on 10 Gbit/s or faster: every checkpoint of every FT VM of
the host crosses that adapter, and a slower uplink is what makes a protected VM slow
(the primary waits for the ACK of each checkpoint before its output may leave). A
warning, not a refusal: it works on slower links, only worse.
"""

from __future__ import annotations

from collections.abc import Iterator

from ..model import Service
from .lint_base import Context, Finding, finding

MIN_MBITS = 10000  # VMware: "at least 10 Gbit/s" for FT logging


def check_ft_logging_speed(ctx: Context) -> Iterator[Finding]:
    """FT-3: an FT logging adapter whose active or standby uplinks are below 10 Gbit/s."""
    for host, adapters in ctx.adapters.items():
        nics = ctx.dc.hosts[host].nics
        for a in adapters.values():
            if not a.vmk.carries(Service.FT_LOGGING) or a.att is None:
                continue
            team = a.att.teaming
            vmnics = [v for u in dict.fromkeys([*team.active, *team.standby])
                      if (v := a.att.uplinks.get(u)) is not None and v in nics]
            slow = [f"{v} at {nics[v].speed} Mbit/s" for v in vmnics
                    if nics[v].speed < MIN_MBITS]
            if slow:
                yield finding(
                    "FT-3", "warning", a.path,
                    f"FT logging adapter {a.label} is carried by uplinks slower than "
                    f"10 Gbit/s ({', '.join(slow)})",
                    f"Give {a.att.switch} 10 Gbit/s or faster uplinks for port group "
                    f"{a.att.portgroup}, or move FT logging to a switch that has them")
