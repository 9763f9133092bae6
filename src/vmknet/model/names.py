"""One name rule per object kind (SEC-5): what a user may call a host, VM, switch, ...

Every place a name enters (the desired-state file through the model's
validators, esxcli and `vmknet` verbs through `require`, the rules through
`vmknet.rules.checks`) uses these rules, so the same name is refused the same
way everywhere: `InvalidArgument` (a `ValueError` inside pydantic, which the
file loader turns into `file:line: path: message`) with the same one-line text.

Where VMware publishes a limit it is used; where it does not, the choice is
conservative, because names become kernel objects and file names:

    host          one DNS label (RFC 1123), 1-63: ESXi's own host name
                  (`esxcli system hostname set --host`) is one label, the domain is
                  separate. No dots, no leading '_' or '.': the host is a namespace
                  `vmkl-<lab>.<host>` and its stacks `<host>.<stack>`, so a dotted host
                  (`esx01.vmotion`) or a hidden one (`.esx01`) would share a kernel
                  name with another object's.
    vm, snapshot  1-80 (vCenter's VM name limit), letters, digits, '-', '_', first a
                  letter or digit: the name becomes files (`<vm>/<vm>.vmx`, registry
                  `<vm>.json`), so no '.', '/', spaces or shell characters.
    datastore     1-64, letters, digits, '-', '_', '.', first a letter or digit
                  (vSphere forbids '/', '\\' and '%' in datastore names; KB 2046088
                  advises against other specials): a directory under the datastore base.
    vswitch, router
                  1-32, letters, digits, '-', '_', first a letter or digit.
    portgroup, dvportgroup, cluster, dvs, uplink
                  display names: 1-80 (vCenter's limit for distributed switches,
                  distributed port groups and clusters), letters, digits, spaces and
                  `- _ . ( )`, first a letter or digit, no trailing space: none of the
                  characters KB 2046088 says vSphere does not escape.
    netstack      NS-1: 1-32 letters, digits, '-', '_'.
    vmknic        vmkN (N up to 4 digits); nic: vmnicN.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

from ..errors import InvalidArgument

_SHOWN = 40  # characters of a refused name quoted in the message


@dataclass(frozen=True, slots=True)
class NameRule:
    kind: str  # "host", "VM", ... as the message names it
    pattern: re.Pattern[str]
    max_length: int
    allowed: str  # what to use instead, for the message

    def problem(self, name: object) -> str | None:
        """Why `name` is refused, or None."""
        if not isinstance(name, str):
            return f"Invalid {self.kind} name {name!r}: a name is text"
        if self.pattern.fullmatch(name) and len(name) <= self.max_length:
            return None
        return f"Invalid {self.kind} name {shown(name)}: {self.allowed}"


def _rule(kind: str, pattern: str, max_length: int, allowed: str) -> NameRule:
    return NameRule(kind, re.compile(pattern), max_length, allowed)


HOST = _rule("host", r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?", 63,
             "use 1-63 letters, digits or '-', starting and ending with a letter or digit "
             "(one DNS label, no dots)")
VM = _rule("VM", r"[A-Za-z0-9][A-Za-z0-9_-]*", 80,
           "use 1-80 letters, digits, '-' or '_', starting with a letter or digit")
SNAPSHOT = _rule("snapshot", VM.pattern.pattern, 80, VM.allowed)
DATASTORE = _rule("datastore", r"[A-Za-z0-9][A-Za-z0-9_.-]*", 64,
                  "use 1-64 letters, digits, '-', '_' or '.', starting with a letter or digit")
VSWITCH = _rule("vswitch", r"[A-Za-z0-9][A-Za-z0-9_-]*", 32,
                "use 1-32 letters, digits, '-' or '_', starting with a letter or digit")
ROUTER = _rule("router", VSWITCH.pattern.pattern, 32, VSWITCH.allowed)
_DISPLAY = r"[A-Za-z0-9](?:[A-Za-z0-9 ()._-]*[A-Za-z0-9()._-])?"
_DISPLAY_ALLOWED = ("use 1-80 letters, digits, spaces or '-', '_', '.', '(', ')', starting with "
                    "a letter or digit")
PORTGROUP = _rule("portgroup", _DISPLAY, 80, _DISPLAY_ALLOWED)
DVPORTGROUP = _rule("distributed port group", _DISPLAY, 80, _DISPLAY_ALLOWED)
CLUSTER = _rule("cluster", _DISPLAY, 80, _DISPLAY_ALLOWED)
DVS = _rule("distributed switch", _DISPLAY, 80, _DISPLAY_ALLOWED)
UPLINK = _rule("uplink", _DISPLAY, 80, _DISPLAY_ALLOWED)
NETSTACK = _rule("netstack", r"[A-Za-z0-9_-]+", 32,
                 "use letters, digits, '-' or '_', at most 32 characters")
VMKNIC = _rule("interface", r"vmk\d{1,4}", 7, "use vmkN")
NIC = _rule("physical NIC", r"vmnic\d{1,4}", 9, "use vmnicN")

RULES: dict[str, NameRule] = {
    "host": HOST, "vm": VM, "snapshot": SNAPSHOT, "datastore": DATASTORE,
    "vswitch": VSWITCH, "router": ROUTER, "portgroup": PORTGROUP,
    "dvportgroup": DVPORTGROUP, "cluster": CLUSTER, "dvs": DVS, "uplink": UPLINK,
    "netstack": NETSTACK, "vmknic": VMKNIC, "nic": NIC,
}


def shown(name: str) -> str:
    """The name quoted on one line, cut when long (a 300-character name is not echoed whole)."""
    if len(name) <= _SHOWN:
        return repr(name)
    return f"{name[:_SHOWN]!r}... ({len(name)} characters)"


def require(rule: NameRule, name: str, option: str | None = None) -> str:
    """`name` if `rule` allows it; else InvalidArgument naming the option it came from."""
    problem = rule.problem(name)
    if problem is not None:
        where = f"{option}: " if option else ""
        raise InvalidArgument(where + problem, field=option or rule.kind, name=name)
    return name


def _validator(rule: NameRule) -> AfterValidator:
    def check(name: str) -> str:
        problem = rule.problem(name)
        if problem is not None:
            raise ValueError(problem)  # pydantic reports it at the key's line in the file
        return name

    return AfterValidator(check)


HostName = Annotated[str, _validator(HOST)]
VswitchName = Annotated[str, _validator(VSWITCH)]
RouterName = Annotated[str, _validator(ROUTER)]
PortgroupName = Annotated[str, _validator(PORTGROUP)]
DvPortgroupName = Annotated[str, _validator(DVPORTGROUP)]
ClusterName = Annotated[str, _validator(CLUSTER)]
DvsName = Annotated[str, _validator(DVS)]
UplinkName = Annotated[str, _validator(UPLINK)]
NetstackName = Annotated[str, _validator(NETSTACK)]
VmknicName = Annotated[str, _validator(VMKNIC)]
NicName = Annotated[str, _validator(NIC)]
DatastoreName = Annotated[str, _validator(DATASTORE)]
VmName = Annotated[str, _validator(VM)]
