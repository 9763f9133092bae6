"""Operations: every change to the inventory, named after the esxcli / vSphere verbs.

Each operation mutates the datacenter it is given and returns the events of
its side effects; `execute` runs one on a copy and refuses the result unless
every rule of `rules.checks` holds on the hosts it touched, so a refused
operation changes nothing.
"""

from .execute import Operation, changed_hosts, execute

__all__ = ["Operation", "changed_hosts", "execute"]
