"""`vmknet vm ft on|status|off`: Fault Tolerance for a VM of the bound lab.

    vmknet vm ft on web01 --secondary esx02 [--epoch 50] [--vcpus 1] [--output-port 9100]
                                            [--encryption disabled|opportunistic|required]
    vmknet vm ft status web01 [--json]
    vmknet vm ft off web01
"""

from __future__ import annotations

from typing import Any

import click

from ..model import names
from ..vm.units import human_bytes
from .context import AppContext, pass_app, reported
from .output import emit_json, say
from .vm_common import bound, valid, vm, vm_name


@vm.group("ft")
def ft() -> None:
    """Fault Tolerance: a secondary on another host, kept in step by checkpoints."""


@ft.command("on")
@click.argument("name")
@click.option("--secondary", required=True, metavar="HOST", help="Host of the secondary.")
@click.option("--epoch", type=click.FloatRange(5, 10000), default=50, show_default=True,
              help="Milliseconds between checkpoints.")
@click.option("--vcpus", type=click.IntRange(1, 8), default=1, show_default=True,
              help="vCPUs of the VM (FT-3 counts them per host).")
@click.option("--timeout", type=click.FloatRange(0.2, 60), default=2.0, show_default=True,
              help="Seconds without a checkpoint or its ACK that mean the link is lost.")
@click.option("--output-port", "output_port", type=click.IntRange(1024, 65535), default=None,
              help="Give the VM an output stream on this port of its host's management "
                   "adapter, released only after its checkpoint is acknowledged.")
@click.option("--encryption", type=click.Choice(["disabled", "opportunistic", "required"]),
              default="opportunistic", show_default=True,
              help="FT encryption (SEC-1): AES-256-GCM on the FT logging link; "
                   "opportunistic when both hosts can, required refuses otherwise.")
@pass_app
def on_command(app: AppContext, name: str, secondary: str, epoch: float, vcpus: int,
               timeout: float, output_port: int | None, encryption: str) -> None:
    """Protect VM NAME: start its secondary on HOST over the FT logging adapters."""
    from ..ft import enable

    valid((names.VM, name, "VM name"), (names.HOST, secondary, "--secondary"))
    dc, lab = bound(app)
    with reported():
        rec = enable.ft_on(dc, lab, name, secondary, epoch=epoch / 1000, vcpus=vcpus,
                           timeout=timeout, output_port=output_port, encryption=encryption)
    say(f"VM {rec.vm} protected: primary on {rec.primary}, secondary on {rec.secondary} "
        f"(pid {rec.secondary_pid}), a checkpoint every {rec.epoch * 1000:.0f} ms, FT logging "
        f"{'encrypted (AES-256-GCM)' if rec.encrypted else 'not encrypted'}", style="green")


@ft.command("status")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def status_command(app: AppContext, name: str, as_json: bool) -> None:
    """Checkpoints per second, bytes per checkpoint, last acknowledged checkpoint, lag."""
    from ..ft import enable

    vm_name(name)
    _, lab = bound(app)
    with reported():
        st = enable.ft_status(lab, name)
    if as_json:
        emit_json(st)
        return
    say(f"VM {name}: {st['state']}, primary on {st['primary']}, secondary on "
        f"{st['secondary']}, FT logging {'encrypted' if st.get('encrypted') else 'plain'} "
        f"(encryption {st.get('encryption')})")
    _print_ft(st.get("primary_ft"))
    for e in st["events"]:
        say(f"  event {e['event']}: {e['message']}")


def _print_ft(ft: dict[str, Any] | None) -> None:
    if not ft:
        return
    if "checkpoints" in ft:
        lag = ft.get("lag_ms")
        say(f"  {ft['checkpoints']} checkpoints, {ft['checkpoints_per_s']:.1f}/s, "
            f"{human_bytes(ft['bytes_per_checkpoint'])} per checkpoint, last acked "
            f"#{ft['last_acked']}, lag {'-' if lag is None else f'{lag:.0f} ms'}, guest paused "
            f"{ft['paused_fraction']:.1%} of the time, over {ft['adapter']} -> {ft['peer']}")
        if ft.get("output_released") is not None:
            say(f"  output: {ft['output_released']} records released of "
                f"{ft['output_produced']} produced (each after its checkpoint's ACK)")
    elif ft.get("live_from") is not None:
        say(f"  live since failover from checkpoint #{ft['live_from']} "
            f"({ft['failover_ms']:.0f} ms to go live after the link was lost)")


@ft.command("off")
@click.argument("name")
@pass_app
def off_command(app: AppContext, name: str) -> None:
    """Stop protecting VM NAME: the secondary stands down, the primary runs on."""
    from ..ft import enable

    vm_name(name)
    _, lab = bound(app)
    with reported():
        rec = enable.ft_off(lab, name)
    say(f"VM {name}: Fault Tolerance off (secondary on {rec.secondary} stopped)")
