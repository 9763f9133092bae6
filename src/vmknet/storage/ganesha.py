"""One nfs-ganesha per storage array with NFS exports, with its own rpcbind: NFS 3, 4.0 and 4.1.

NFS 3 needs a portmapper: clients (vmknet's, libnfs) ask port 111 of the
server for the MOUNT and NFS ports. rpcbind keeps its socket and lock at fixed paths in /run
(`/run/rpcbind.sock`, `/run/rpcbind.lock`), shared by every network namespace,
so a second rpcbind would take the system's. Each array's rpcbind therefore
runs in a mount namespace of its own (`unshare -m`) with a private tmpfs on
/run; ganesha runs beside it (it registers through that socket), and the
array's run directory, hidden by the tmpfs, is bound back in through the
shell's working directory. Checked on Debian 12 (nfs-ganesha 4.3, rpcbind
1.2.6): `rpcinfo -p` from a host's namespace lists nfs 3 and mountd,
`nfs-cp` with version=3 and version=4 both write.

Every ganesha vmknet starts carries `-f <run dir>/labs/<lab>/arrays/<array>/
ganesha.conf` on its command line: the marker `lab down` finds it by; its
rpcbind is found as the other process of the array's namespace.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

from ..errors import DataplaneError, NotFound
from ..processes import alive, cmdlines, terminate

GANESHA = "ganesha.nfsd"
RPCBIND = "rpcbind"
NFS_PORT = 2049
MOUNT_PORT = 20048
READY_TIMEOUT = 10.0
STOP_GRACE = 2.0

# Runs inside `ip netns exec NS unshare -m --propagation private sh -c SCRIPT _ FOLDER`.
_SCRIPT = r"""set -e
cd "$1"
mount -t tmpfs vmknet-nfs /run
mkdir -p "$1"
mount -c --bind /proc/self/cwd "$1"  # -c: the hidden directory itself, not its path
rpcbind -f &
i=0
while [ ! -S /run/rpcbind.sock ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done
exec ganesha.nfsd -F -f "$1/ganesha.conf" -L "$1/ganesha.log" -p "$1/ganesha.pid"
"""


def config(folder: Path, exports: list[tuple[str, Path]]) -> str:
    """ganesha.conf: NFS 3 and 4 (minor versions 0 for libnfs 4.0, 1 for vmknet's 4.1
    client), FSAL_VFS per export.

    NLM and RQUOTA are off (ESXi's NFS 3 locks with .lck files, not NLM);
    `Mount_Path_Pseudo` lets an NFS 3 client mount `/share` as a 4.x one does. No
    Bind_addr: ganesha serves every address of the array's namespace, which is what
    NFS 4.1 session trunking over the array's addresses needs.
    """
    blocks = [f"""NFS_CORE_PARAM {{
  Protocols = 3, 4;
  NFS_Port = {NFS_PORT};
  MNT_Port = {MOUNT_PORT};
  Enable_NLM = false;
  Enable_RQUOTA = false;
  Mount_Path_Pseudo = true;
}}
NFSV4 {{
  RecoveryRoot = {folder / "recovery"};
  Minor_Versions = 0, 1;
  Graceless = true;
}}
LOG {{ Default_Log_Level = EVENT; }}
"""]
    for export_id, (pseudo, directory) in enumerate(exports, start=1):
        blocks.append(f"""EXPORT {{
  Export_Id = {export_id};
  Path = {directory};
  Pseudo = {pseudo};
  Access_Type = RW;
  Squash = No_Root_Squash;
  SecType = sys;
  Protocols = 3, 4;
  Transports = TCP;
  FSAL {{ Name = VFS; }}
}}
""")
    return "\n".join(blocks)


def marker(lab: str) -> str:
    return f"/labs/{lab}/arrays/"


def start(ns: str, folder: Path, exports: list[tuple[str, Path]]) -> subprocess.Popen[bytes]:
    """rpcbind and ganesha in namespace `ns`, serving `exports` (pseudo path, directory)."""
    for tool in (GANESHA, RPCBIND, "unshare"):
        if shutil.which(tool) is None:
            raise NotFound(f"{tool} is not installed: run scripts/setup.sh (Debian packages "
                           "nfs-ganesha, nfs-ganesha-vfs, rpcbind)", code="NotFound")
    (folder / "recovery").mkdir(parents=True, exist_ok=True)
    for _, directory in exports:
        directory.mkdir(parents=True, exist_ok=True)
    (folder / "ganesha.conf").write_text(config(folder, exports), encoding="utf-8")
    log = folder / "ganesha.out"
    with log.open("ab") as out:
        proc = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "-m",
                                 "--propagation", "private", "sh", "-c", _SCRIPT, "vmknet-nfs",
                                 str(folder)],
                                stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                                start_new_session=True)
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise DataplaneError(f"nfs-ganesha in {ns} exited with {proc.returncode}: "
                                 f"{_last(folder)}", code="DataplaneError", ns=ns)
        if _listening(ns, NFS_PORT) and _listening(ns, 111):
            return proc
        time.sleep(0.1)
    stop_in(ns, [proc.pid])
    raise DataplaneError(f"nfs-ganesha in {ns} did not listen on port {NFS_PORT} within "
                         f"{READY_TIMEOUT:.0f} s: {_last(folder)}", code="DataplaneError", ns=ns)


def _last(folder: Path) -> str:
    """The last complaint of the start script or ganesha (ganesha's D-Bus and Kerberos
    complaints are noise here: neither is used)."""
    lines: list[str] = []
    for name in ("ganesha.out", "ganesha.log"):
        try:
            lines += (folder / name).read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            continue
    noise = ("DBUS", "krb5", "keytab", "RADOS", "credentials", "gssd", "realm")
    causes = [ln for ln in lines if not any(n in ln for n in noise)
              and any(w in ln for w in ("CRIT", "FATAL", "MAJ", "rror", "ailed", "denied"))]
    return (causes or lines or ["nothing logged"])[-1][-200:]


def _listening(ns: str, port: int) -> bool:
    done = subprocess.run(["ip", "netns", "exec", ns, "ss", "-Hltn", f"sport = :{port}"],
                          capture_output=True, text=True, timeout=10, check=False)
    return done.returncode == 0 and bool(done.stdout.strip())


def lab_pids(lab: str) -> list[int]:
    """Every ganesha of `lab`, found by its command line alone."""
    mark, name = marker(lab).encode(), GANESHA.encode()
    return [pid for pid, argv in cmdlines().items()
            if os.path.basename(argv[0]) == name and any(mark in a for a in argv)]


def ns_pids(ns: str) -> list[int]:
    """Every process in namespace `ns` (`ip netns pids`): the array's rpcbind with them."""
    done = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True,
                          timeout=10, check=False)
    return [int(p) for p in done.stdout.split() if p.isdigit()] if done.returncode == 0 else []


def stop_in(ns: str | None, pids: list[int]) -> None:
    """End `pids` and every rpcbind or ganesha left in `ns` (SIGTERM, then SIGKILL)."""
    names = {GANESHA.encode(), RPCBIND.encode(), b"unshare", b"sh"}
    table = cmdlines()
    extra = [p for p in (ns_pids(ns) if ns is not None else []) if p in table and table[p]
             and os.path.basename(table[p][0]) in names]
    everyone = sorted(set(pids) | set(extra))
    terminate(everyone, STOP_GRACE)
    deadline = time.monotonic() + READY_TIMEOUT
    while any(alive(p) for p in everyone) and time.monotonic() < deadline:
        time.sleep(0.02)
