"""`vmknet vmkping`, `vmknet lab check`, `vmknet stats`: real traffic in the bound lab.

    vmknet vmkping -H esx01 -I vmk1 -d -s 8972 198.18.4.12
    vmknet lab check [--json]
    vmknet stats [-H esx01] [--json]

All three need a lab up for the inventory (`vmknet lab up`); without one they
fail with NotFound and say so.
"""

from __future__ import annotations

import sys

import click

from ..lab import Lab, require_lab
from ..model import Datacenter
from ..traffic import checks, ping
from ..traffic.icmp import Reply
from .context import AppContext, pass_app, reported
from .output import emit_json, say, table

EXIT_FAILED = 1  # a check or a ping that found the network broken (not a usage error)


def _bound(app: AppContext) -> tuple[Datacenter, Lab]:
    with reported():
        lab = require_lab(app.inventory)
        return app.inventory.read(), lab


@click.command("vmkping")
@click.option("-H", "--host", "host", required=True, metavar="HOST",
              help="The host to ping from (as vmkping on that host).")
@click.option("-I", "--interface", "vmk", metavar="vmkN",
              help="Outgoing VMkernel adapter: bound to its address and device.")
@click.option("-S", "--netstack", "netstack", metavar="STACK",
              help="TCP/IP stack to ping from [default: the adapter's, else defaultTcpipStack].")
@click.option("-d", "--df", "df", is_flag=True, help="Set DF: never fragment (MTU checks).")
@click.option("-s", "--size", "size", type=click.IntRange(0, 65507), default=ping.DEFAULT_SIZE,
              show_default=True, help="ICMP payload bytes (8972 for a 9000 MTU with -d).")
@click.option("-c", "--count", "count", type=click.IntRange(1, 10000),
              default=ping.DEFAULT_COUNT, show_default=True, help="Echoes to send.")
@click.option("-W", "--timeout", "timeout", type=click.FloatRange(0.01, 60), default=1.0,
              show_default=True, help="Seconds to wait for the last reply.")
@click.option("-i", "--interval", "interval", type=click.FloatRange(0.0, 60), default=1.0,
              show_default=True, help="Seconds between echoes.")
@click.option("-6", "--ipv6", "ipv6", is_flag=True, help="Ping an IPv6 address.")
@click.argument("address")
@pass_app
def vmkping_command(app: AppContext, host: str, vmk: str | None, netstack: str | None,
                    df: bool, size: int, count: int, timeout: float, interval: float,
                    ipv6: bool, address: str) -> None:
    """Send ICMP echo to ADDRESS from a host's VMkernel stack, as ESXi's vmkping.

    Exits 1 when no reply came back.
    """
    dc, lab = _bound(app)
    with reported(esxcli_style=True):
        target = ping.parse_target(address, ipv6)
        ping.origin(dc, lab, host, target, vmk=vmk, netstack=netstack)  # refuse before printing
    click.echo(ping.header_line(str(target), size))

    def report(event: Reply | str) -> None:
        click.echo(ping.event_line(event))

    with reported(esxcli_style=True):
        result = ping.vmkping(dc, lab, host, address, vmk=vmk, netstack=netstack, ipv6=ipv6,
                              df=df, size=size, count=count, timeout=timeout,
                              interval=interval, report=report)
    for line in ping.summary_lines(result):
        click.echo(line)
    if not result.ok:
        sys.exit(EXIT_FAILED)


CHECK_COLUMNS = ("check", "service", "source", "target", "result", "rtt/why")


@click.command("check")
@click.option("--timeout", type=click.FloatRange(0.05, 30), default=1.0, show_default=True,
              help="Seconds to wait for each reply.")
@click.option("--json", "as_json", is_flag=True, help="Results and summary as JSON.")
@pass_app
def check_command(app: AppContext, timeout: float, as_json: bool) -> None:
    """Ping every service's adapter pairs (small and DF large-packet) and every stack's gateway.

    Per cluster (or all unclustered hosts), per service with adapters, per
    ordered host pair: the flows `vmknet resolve` picks. Then the negative
    checks (SEC-6): from every stack, the adapters of other traffic types on
    other hosts and their gateways must not answer an echo or a TCP connect
    ("isolated"). Exits 1 on any failure.
    """
    dc, lab = _bound(app)
    with reported():
        report = checks.check(dc, lab, timeout=timeout)
    if as_json:
        emit_json({"lab": lab.name, "ok": report.ok, "seconds": round(report.seconds, 3),
                   "checks": len(report.results), "failed": len(report.failed),
                   "results": [r.record() for r in report.results]})
    else:
        table(CHECK_COLUMNS, [[r.check, r.service, r.source, r.target,
                               "ok" if r.ok else "FAIL", r.detail] for r in report.results],
              title=f"lab {lab.name}", row_style=lambda row: "bold red" if row[4] == "FAIL"
              else None)
        say(report.summary(), style="green" if report.ok else "bold red")
    if not report.ok:
        sys.exit(EXIT_FAILED)


STATS_COLUMNS = ("Host", "Kind", "Name", "Netstack/Adapters", "RX Bytes", "TX Bytes",
                 "RX Packets", "TX Packets")


@click.command("stats")
@click.option("-H", "--host", "host", metavar="HOST", help="Only this host.")
@click.option("--json", "as_json", is_flag=True, help="Counters as a JSON list.")
@pass_app
def stats_command(app: AppContext, host: str | None, as_json: bool) -> None:
    """Bytes and packets per VMkernel adapter and per uplink (vmnic), read from the kernel."""
    dc, lab = _bound(app)
    with reported():
        if host is not None:
            dc.host(host)
        from ..traffic import stats  # netlink: only for this command

        rows = stats.host_stats(dc, lab, [host] if host is not None else None)
    if as_json:
        emit_json([{"host": r.host, "kind": r.kind, "name": r.name, "where": r.where,
                    "rxBytes": r.counters.rx_bytes, "txBytes": r.counters.tx_bytes,
                    "rxPackets": r.counters.rx_packets, "txPackets": r.counters.tx_packets}
                   for r in rows])
        return
    table(STATS_COLUMNS, [[r.host, r.kind, r.name, r.where, r.counters.rx_bytes,
                           r.counters.tx_bytes, r.counters.rx_packets, r.counters.tx_packets]
                          for r in rows])


COMMANDS = (vmkping_command, stats_command)
