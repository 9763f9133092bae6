"""A router namespace's nftables ruleset (SEC-6): written with `nft -f`, read with `nft -j`.

The kernel's nftables API is netlink, but its expression encoding is long and
version-bound; the `nft` tool (Debian `nftables`, installed by
scripts/setup.sh) speaks it for us. It runs inside the namespace through
`nsenter --net`, which enters only the network namespace (no remount of /sys
as `ip netns exec` does): ~4 ms a call.

Written::

    flush ruleset
    table inet vmknet {
      chain forward { type filter hook forward priority 0; policy drop;
        iifname "r2" oifname "r3" accept ... }
      chain input { type filter hook input priority 0; policy accept;
        iifname "r2" ip daddr 198.18.0.1 drop ... }
    }

Read back from `nft -j list ruleset` into a `Filter`: the rules of exactly
that shape become `forward` and `refuse` pairs, anything else (another table,
another chain or policy, any other rule) one `drift` line.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from ipaddress import ip_address
from typing import Any

from ..kops import SetFilter
from ..kstate import Filter
from . import netns

TABLE = ("inet", "vmknet")
CHAINS = {"forward": ("forward", "drop"), "input": ("input", "accept")}  # chain: hook, policy
TIMEOUT = 10.0
_FIELD = {"iifname", "oifname"}


def available() -> bool:
    return shutil.which("nft") is not None


def _nft(ns: str, args: list[str], stdin: str | None = None) -> str:
    if not available():
        raise FileNotFoundError(2, "nft not found: install Debian nftables (scripts/setup.sh)")
    if not netns.exists(ns):
        raise FileNotFoundError(2, f"no namespace {ns}")
    done = subprocess.run(["nsenter", f"--net={netns.path(ns)}", "nft", *args], input=stdin,
                          capture_output=True, text=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, ["nft", *args],
                                            stderr=done.stderr.encode())
    return done.stdout


# ------------------------------------------------------------------ writing


def script(f: Filter) -> str:
    """The whole ruleset as one `nft -f` transaction (flush included: all or nothing)."""
    forward = [f'    iifname "{i}" oifname "{o}" accept' for i, o in sorted(f.forward)]
    refuse = [f'    iifname "{i}" {_family(a)} daddr {a} drop' for i, a in sorted(f.refuse)]
    lines = ["flush ruleset", f"table {TABLE[0]} {TABLE[1]} {{"]
    for chain, rules in (("forward", forward), ("input", refuse)):
        hook, policy = CHAINS[chain]
        lines += [f"  chain {chain} {{",
                  f"    type filter hook {hook} priority 0; policy {policy};", *rules, "  }"]
    return "\n".join([*lines, "}", ""])


def _family(address: str) -> str:
    return "ip" if ip_address(address).version == 4 else "ip6"


def set_filter(op: SetFilter) -> None:
    # A rollback may ask for a drifted `before`: only its forward/refuse part can be
    # written back; the drift itself is not restored (it was never vmknet's).
    text = script(op.after) if op.after is not None else "flush ruleset\n"
    _nft(op.ns, ["-f", "-"], stdin=text)


# ------------------------------------------------------------------ reading


def read(ns: str) -> Filter | None:
    """The namespace's ruleset as a Filter; None when it is empty (or nft is missing)."""
    if not available():
        return None
    return parse(ns, json.loads(_nft(ns, ["-j", "list", "ruleset"])))


def parse(ns: str, listing: dict[str, Any]) -> Filter | None:
    items = [item for item in listing.get("nftables", []) if "metainfo" not in item]
    if not items:
        return None
    forward: set[tuple[str, str]] = set()
    refuse: set[tuple[str, str]] = set()
    drift: list[str] = []
    seen_chains: set[str] = set()
    for item in items:
        kind, body = next(iter(item.items()))
        if kind == "table" and (body.get("family"), body.get("name")) == TABLE:
            continue
        where = (body.get("family"), body.get("table"))
        if kind == "chain" and where == TABLE and _our_chain(body):
            seen_chains.add(body["name"])
        elif kind == "rule" and where == TABLE and body.get("chain") in CHAINS:
            _rule(body, forward, refuse, drift)
        else:
            drift.append(f"{kind} {_short(body)}")
    drift += [f"chain {c} missing" for c in sorted(set(CHAINS) - seen_chains)]
    return Filter(ns, frozenset(forward), frozenset(refuse), tuple(sorted(drift)))


def _our_chain(body: dict[str, Any]) -> bool:
    hook_policy = CHAINS.get(body.get("name", ""))
    return (hook_policy is not None and body.get("type") == "filter"
            and (body.get("hook"), body.get("policy")) == hook_policy and body.get("prio") == 0)


def _rule(body: dict[str, Any], forward: set[tuple[str, str]], refuse: set[tuple[str, str]],
          drift: list[str]) -> None:
    expr = body.get("expr", [])
    found = [_match(e) for e in expr[:-1]]
    matches = [m for m in found if m is not None]
    verdict = next(iter(expr[-1])) if expr and isinstance(expr[-1], dict) else None
    keys = [k for k, _ in matches] if len(matches) == len(found) == 2 else []
    if body["chain"] == "forward" and keys == ["iifname", "oifname"] and verdict == "accept":
        forward.add((matches[0][1], matches[1][1]))
    elif (body["chain"] == "input" and keys in (["iifname", "ip"], ["iifname", "ip6"])
          and verdict == "drop"):
        refuse.add((matches[0][1], matches[1][1]))
    else:
        drift.append(f"rule in {body['chain']}: {json.dumps(expr, sort_keys=True)[:200]}")


def _match(e: Any) -> tuple[str, str] | None:
    """`iifname == "r0"` -> ("iifname", "r0"); `ip daddr == A` -> ("ip", A); else None."""
    m = e.get("match") if isinstance(e, dict) else None
    if not isinstance(m, dict) or m.get("op") != "==" or not isinstance(m.get("right"), str):
        return None
    left = m.get("left", {})
    meta, payload = left.get("meta", {}), left.get("payload", {})
    if meta.get("key") in _FIELD:
        return (meta["key"], m["right"])
    if payload.get("protocol") in ("ip", "ip6") and payload.get("field") == "daddr":
        return (payload["protocol"], m["right"])
    return None


def _short(body: dict[str, Any]) -> str:
    shown = {k: v for k, v in body.items() if k != "handle"}
    return json.dumps(shown, sort_keys=True)[:200]
