"""One process model: every long-lived process a lab runs on a host, in one registry.

    rec = start("vm", lab, host, name, argv_tail, log)  # a child of the caller
    find(lab, host="esx01", kind="vm")                   # registry + /proc, after any crash
    stop(find(lab))                                      # SIGTERM, then SIGKILL

The host agent is the caller of `start` (it is the parent of its host's
processes); `write_json` is the one atomic record writer of every kind of
record (VMs, NFC servers, replication daemons, the process registry itself).
"""
