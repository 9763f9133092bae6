"""vSAN (docs/vsan.md): a cluster datastore mirrored over the hosts' vSAN adapters.

A node per host (node.py): unicast membership on UDP 12321 (membership.py, VSAN-1),
object I/O on TCP 2233 (server.py), resync and rebuild of what a lost host missed
(resync.py, VSAN-2); objects placed with FTT=0 or FTT=1 (placement.py, objects.py);
a VM's disk opens an object from any host of the cluster:

    disk = vsan.open_object(lab, "esx03", uuid)
    disk.write(0, data); disk.read(0, len(data)); disk.flush(); disk.close()
"""

from .client import VsanObject, open_object

__all__ = ["VsanObject", "open_object"]
