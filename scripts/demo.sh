#!/usr/bin/env bash
# The main job, end to end: set up; validate, lint, plan and resolve examples/lab.yaml; then
# build it as a lab of network namespaces (`vmknet lab up`), check it (`lab status`), try a
# change that would cut management off (refused and rolled back, REQ-5), and `lab down`.
# Uses a temporary store and a lab name of its own; an EXIT trap removes both, so nothing is
# left behind even when a step fails or the demo is interrupted. The lab part needs root.
# VMKNET_DEMO_KEEP=1 leaves the lab up at the end, for the web UI: it prints the address, an
# operator token and the command that takes it down (nothing is removed until then).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

tmp=$(mktemp -d -t vmknet-demo.XXXXXX)
lab="demo-$$"
sto="sto-$$"  # the shared-storage step's lab (examples/storage-lab.yaml), its own store
ha="ha-$$"  # the vSphere HA step's lab (examples/ha-lab.yaml), its own store
vsan="vsan-$$"  # the vSAN step's lab (examples/vsan-lab.yaml), its own store
export VMKNET_STORE="$tmp/inventory.db"
file=examples/lab.yaml

kept=""
cleanup() {
    [ -n "$kept" ] && return  # left up on request (VMKNET_DEMO_KEEP): the user takes it down
    if [ "$(id -u)" -eq 0 ]; then
        .venv/bin/vmknet lab down --name "$lab" >/dev/null 2>&1 || true
        VMKNET_STORE="$tmp/storage.db" .venv/bin/vmknet lab down --name "$sto" >/dev/null 2>&1 \
            || true
        VMKNET_STORE="$tmp/ha.db" .venv/bin/vmknet lab down --name "$ha" >/dev/null 2>&1 || true
        VMKNET_STORE="$tmp/vsan.db" .venv/bin/vmknet lab down --name "$vsan" >/dev/null 2>&1 \
            || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # so that the EXIT trap runs on ^C and kill too

step() {
    printf '\n$ vmknet %s\n' "$*"
    .venv/bin/vmknet "$@"
}

step validate "$file"
step lint "$file" --severity warning
printf '\n$ vmknet plan %s | tail -n 3\n' "$file"  # 69 additions: the last few say enough
.venv/bin/vmknet plan "$file" | tail -n 3

if [ "$(id -u)" -ne 0 ]; then
    printf '\ndemo: the lab needs root (network namespaces); skipped\n'
    exit 0
fi
step lab up "$file" --name "$lab"
printf '\n# The management plane: one agent per host, heartbeating over its management adapter:\n'
step host status
step lab status
step lab check
step resolve vmotion esx01 esx03
printf '\n# A jumbo frame with DF set, over the routed vMotion network (own gateway):\n'
step vmkping -H esx01 -I vmk1 -S vmotion -d -s 8972 -c 2 198.18.5.13
step stats -H esx01
printf '\n# Live migration over the vMotion adapters resolve() picks (multi-NIC, encrypted):\n'
step vm create web01 -H esx01 --memory 256MiB --dirty-rate 20MB/s
step vmotion web01 --to esx02
step vm list
printf '\n# Cold migration of a powered-off VM: its files cross over NFC on the provisioning stack:\n'
step vm create db01 -H esx01 --memory 64MiB --dirty-rate 1MB/s --disk 8GiB --disk-data 64MiB
step vm power-off db01
step vm migrate db01 --to esx03
step vm files
printf '\n# Fault Tolerance: a secondary on esx02 in step over the FT logging adapters (encrypted);\n'
printf '# kill -9 of the primary: the secondary serves the output, then is re-protected on esx03:\n'
step vm create app01 -H esx01 --memory 32MiB --dirty-rate 10MB/s
step vm ft on app01 --secondary esx02 --output-port 9100
# A client on esx03 reads the VM's output; kill -9 of the primary; it reads on from esx02.
.venv/bin/python - "$lab" <<'PY'
import os, signal, socket, sys, threading, time
from vmknet.ft import enable
from vmknet.inventory import Inventory
from vmknet.model import DEFAULT_STACK
from vmknet.traffic.place import stack_ns
from vmknet.traffic.sockets import tcp_socket
lab, vm, port = sys.argv[1], "app01", 9100
dc = Inventory.open(os.environ["VMKNET_STORE"]).read()
def client(host, first, seen, stop):
    sock = tcp_socket(stack_ns(lab, "esx03", DEFAULT_STACK), socket.AF_INET)
    sock.settimeout(1.0)
    sock.connect((enable.output_at(dc, lab, host, port, 0)["address"], port))
    sock.sendall(f"from {first}\n".encode())
    buf = b""
    with sock:
        while not stop():
            try:
                data = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            *lines, buf = (buf + data).split(b"\n")
            seen += [(int(x.split()[0]), time.monotonic()) for x in lines]
before, after = [], []
reader = threading.Thread(target=client, args=("esx01", 0, before, lambda: False))
reader.start()
time.sleep(1.0)
pid = enable.ft_status(lab, vm)["primary_pid"]
killed = time.monotonic()
os.kill(pid, signal.SIGKILL)
reader.join(10)
deadline = killed + 20
while time.monotonic() < deadline:
    try:
        client("esx02", len(before), after, lambda: len(after) >= 5 or time.monotonic() > deadline)
        break
    except OSError:
        time.sleep(0.01)
got = [n for n, _ in before + after]
assert after and got == list(range(len(got))), "output lost or repeated across the failover"
print(f"client: records 0..{len(before) - 1} from esx01 until kill -9 of its VM process "
      f"(pid {pid}); {after[0][0]}..{after[-1][0]} from the secondary on esx02, the first "
      f"{(after[0][1] - killed) * 1000:.0f} ms after the kill: no record lost or repeated")
while time.monotonic() < killed + 30:
    st = enable.ft_status(lab, vm)
    if (st["state"], st["secondary"]) == ("protected", "esx03") and st["primary_ft"]:
        print(f"re-protected by itself: secondary on esx03 {time.monotonic() - killed:.1f} s "
              "after the kill")
        break
    time.sleep(0.1)
else:
    sys.exit("demo: the VM was not re-protected on esx03")
PY
step vm ft status app01
step vm ft off app01
step vm destroy app01
printf '\n# A change to every host rolls out through the host agents, one host at a time (MGMT-3):\n'
sed '/dvportgroup: Provisioning/a\        mtu: 8000' "$file" > "$tmp/mtu.yaml"
step apply --yes --max-unavailable 1 "$tmp/mtu.yaml"
printf '\n# A change that cuts esx01 off from the controller: its agent reverts it (MGMT-2, REQ-5):\n'
step esxcli -H esx01 network vswitch standard portgroup set -p "Management Network" -v 99 \
    && { echo "demo: REQ-5 did not refuse the change" >&2; exit 1; }
step events
step host status
step vm destroy web01
step lab status
printf '\n# Shared storage (STO-5): a VM whose disk is an iSCSI LUN, used raw (an RDM) through NMP over\n'
printf '# two bound paths (vmk2, vmk3); vMotion moves its memory only, the target reopens the LUN:\n'
export VMKNET_STORE="$tmp/storage.db" VMKNET_DATASTORE_BASE="$tmp/datastores"  # the VM's .vmx
step lab up examples/storage-lab.yaml --name "$sto"
naa=$(.venv/bin/python -c 'from vmknet.storage.paths import device_id
print(device_id("iqn.2026-11.com.example:array01.ds01", 1))')
for h in esx01 esx02; do
    step esxcli -H "$h" iscsi adapter discovery sendtarget add -A vmhba64 -a 198.18.30.100:3260
    step esxcli -H "$h" storage core adapter rescan -A vmhba64
    step esxcli -H "$h" storage nmp device set -d "$naa" --psp VMW_PSP_RR
done
step esxcli -H esx01 storage core path list -d "$naa"
step esxcli -H esx01 iscsi networkportal list
step esxcli -H esx01 storage nfs add -H 198.18.31.100 -s /share -v nfs01
step esxcli -H esx01 storage filesystem list
step vm create db02 -H esx01 --memory 64MiB --dirty-rate 5MB/s --disk "/vmfs/devices/disks/$naa"
sleep 2
step vmotion db02 --to esx02
sleep 2
step vm list
# The guest's disk stream (each write read back) went on at the target without an error, and
# the target first read back the source's last write through its own paths:
.venv/bin/vmknet vm show db02 | .venv/bin/python -c '
import json, sys
d = json.load(sys.stdin)["disk"]
assert d["io_errors"] == 0 and d["verify_failures"] == 0 and d["carried_verified"], d
print("disk", d["disk"] + ":", d["writes"], "writes read back, 0 errors; the last write "
      "before the move read back on the target")'
step vm destroy db02
step lab down --name "$sto"
printf '\n# vSphere HA (FDM in the host agents, HA-1..3): esx01 dies (cables pulled, its agent and VM\n'
printf '# killed); the primary declares it failed and restarts its VM on another host from its disk:\n'
export VMKNET_STORE="$tmp/ha.db"
step lab up examples/ha-lab.yaml --name "$ha"
step vm create ha01 -H esx01 --memory 32MiB --dirty-rate 1MB/s --disk "[nfs01]" --disk-size 16MiB
sleep 6  # the election listens 5 s; the primary learns of ha01 from esx01's next heartbeat
step cluster status cl01
.venv/bin/python - "$ha" <<'PY'
import os, signal, subprocess, sys, time
from pathlib import Path
from vmknet.dataplane import naming
from vmknet.mgmt import paths
from vmknet.processes import lab_pids
from vmknet.supervise import scan
lab = sys.argv[1]
pids = [p for p in lab_pids(paths.AGENT_MARKER, lab)
        if b"--host=esx01" in Path(f"/proc/{p}/cmdline").read_bytes().split(b"\0")]
pids += [r.pid for r in scan.find(lab, "esx01")]
for pid in pids:  # its agent first: it would repair a cable it saw pulled
    os.kill(pid, signal.SIGKILL)
ns = naming.host_ns(lab, "esx01")
for vmk in ("vmk0", "vmk1", "vmk2"):
    for nic in ("vmnic0", "vmnic1", "vmnic2"):
        subprocess.run(["ip", "-n", ns, "link", "set", naming.wire_host(vmk, nic, ["vmnic0",
                        "vmnic1", "vmnic2"]), "down"], check=False, capture_output=True)
died = time.monotonic()
while time.monotonic() < died + 30:
    hosts = [r.host for r in scan.find(lab) if r.kind == "vm" and r.name == "ha01"]
    if hosts and "esx01" not in hosts:
        print(f"esx01 died; ha01 runs on {hosts[0]} {time.monotonic() - died:.1f} s later")
        break
    time.sleep(0.1)
else:
    sys.exit("demo: ha01 was not restarted within 30 s")
PY
step cluster status cl01
.venv/bin/vmknet events | grep -E '^HA-(2|3) '
step lab down --name "$ha"
printf '\n# vSAN (VSAN-1..5): web01 runs on esx04, which holds no replica of its disk (FTT=1: two\n'
printf '# replicas and a witness on the other hosts); one replica host is lost under its I/O:\n'
export VMKNET_STORE="$tmp/vsan.db"
step lab up examples/vsan-lab.yaml --name "$vsan"
step vsan start
for _ in $(seq 60); do  # membership: one master, every peer heard (health all green)
    .venv/bin/vmknet vsan health >/dev/null 2>&1 && break
    sleep 0.5
done
step vm create web01 -H esx04 --memory 32MiB --dirty-rate 1MB/s \
    --disk '[vsanDatastore] web01/web01-flat.vmdk' --disk-size 64MiB --disk-rate 200
sleep 2
step vsan object list
.venv/bin/python - "$vsan" <<'PY'
import json, subprocess, sys, time
from vmknet.vsan import directory, objects, procs
lab = sys.argv[1]
def disk():
    out = subprocess.run([".venv/bin/vmknet", "vm", "show", "web01"], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)["disk"]
meta = objects.find(lab, "web01/web01-flat.vmdk")
lost = meta.replicas()[1].host
procs.kill(lab, lost)
start = disk()["writes"]
time.sleep(3)
d = disk()
assert d["io_errors"] == 0 and d["verify_failures"] == 0, d
print(f"{lost}'s vSAN node killed (-9): web01 went on with the surviving replica, "
      f"{d['writes'] - start} writes read back in 3 s, 0 errors, longest I/O "
      f"{d['max_io_ms']:.0f} ms; object {directory.load(lab, meta.uuid).health()}")
PY
step vsan object list
step vsan start
.venv/bin/python - "$vsan" <<'PY'
import sys, time
from vmknet.vsan import directory, objects
lab = sys.argv[1]
meta = objects.find(lab, "web01/web01-flat.vmdk")
deadline = time.monotonic() + 30
while directory.load(lab, meta.uuid).health() != "healthy":
    if time.monotonic() > deadline:
        sys.exit("demo: the object did not resync within 30 s")
    time.sleep(0.2)
PY
step vsan resync status
step vsan health
step vm destroy web01
step lab down --name "$vsan"
export VMKNET_STORE="$tmp/inventory.db"
if [ -n "${VMKNET_DEMO_KEEP:-}" ]; then
    token=$(.venv/bin/vmknet api token create --role operator --name demo)
    kept=1
    printf '\ndemo: lab %s left up. Web UI: %s (log in with the token %s)\n' \
        "$lab" "$(.venv/bin/vmknet api url)" "$token"
    printf 'take it down with: VMKNET_STORE=%s .venv/bin/vmknet lab down --name %s && rm -r %s\n' \
        "$VMKNET_STORE" "$lab" "$tmp"
    exit 0
fi
step lab down
printf '\ndemo: done (lab %s down, store %s removed)\n' "$lab" "$VMKNET_STORE"
