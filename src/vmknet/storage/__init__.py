"""IP storage for real: the arrays' iSCSI targets (tgtd) and the hosts' initiators (libiscsi).

This kernel has no SCSI layer (LAB.md), so both ends run in user space, as
they do inside ESXi's VMkernel: each storage array of the topology gets a
Debian `tgtd` in its own namespace (`arrays`, `tgt`), and a host's software
iSCSI adapter discovers and logs in with libiscsi's tools from the stack
namespace of each bound VMkernel adapter, bound to that adapter's interface
(`libiscsi`), so a path's bytes leave by exactly its adapter (`paths`,
`scan`).
"""
