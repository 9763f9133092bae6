#!/usr/bin/env bash
# Create .venv and install vmknet with its dev tools; idempotent and quick when nothing changed.
# Works on a fresh Debian machine with Python 3.11: installs with apt-get (as root) what is
# missing: python3-venv, and the tools the lab uses (iproute2: ip/bridge/tc; iputils-ping;
# iperf3 for traffic tests; nftables for the routers' filter; tcpdump for captures; tgt and
# libiscsi-bin for IP storage: the arrays' iSCSI targets and the hosts' initiators; nfs-ganesha,
# nfs-ganesha-vfs, rpcbind and libnfs-utils for NFS: the arrays' servers, the hosts' client; chromium
# and chromium-driver for the web UI's headless browser tests).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1

apt_install() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "setup: missing $*; install it as root: apt-get install -y $*" >&2
        exit 1
    fi
    # Refresh the package lists only when they are missing or the install fails without them.
    if ! ls /var/lib/apt/lists/*_Packages >/dev/null 2>&1; then
        apt-get update -qq
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null \
        || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}

command -v "$PYTHON" >/dev/null || apt_install python3
if ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
    # Debian ships ensurepip in python3-venv; python3.11-venv on some images.
    apt_install python3-venv
fi

# The lab's kernel tools; only looked up, so a machine that has them installs nothing.
missing=()
command -v ip >/dev/null && command -v bridge >/dev/null && command -v tc >/dev/null \
    || missing+=(iproute2)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v iperf3 >/dev/null || missing+=(iperf3)
command -v nft >/dev/null || missing+=(nftables)  # routers' traffic-type filter
command -v etcd >/dev/null || missing+=(etcd-server)  # the etcd store (docs/store.md)
command -v etcdctl >/dev/null || missing+=(etcd-client)  # looking into it by hand
command -v tcpdump >/dev/null || missing+=(tcpdump)  # SEC-4 test: no key in a management capture
command -v tgtd >/dev/null && command -v tgtadm >/dev/null || missing+=(tgt)  # arrays' iSCSI targets
command -v iscsi-ls >/dev/null || missing+=(libiscsi-bin)  # hosts' iSCSI initiator (docs/storage.md)
command -v ganesha.nfsd >/dev/null || missing+=(nfs-ganesha)  # arrays' NFS server
[ -e /usr/lib/x86_64-linux-gnu/ganesha/libfsalvfs.so ] || [ -e /usr/lib/ganesha/libfsalvfs.so ] \
    || missing+=(nfs-ganesha-vfs)  # its exports on a directory (FSAL_VFS)
command -v rpcbind >/dev/null || missing+=(rpcbind)  # the arrays' own portmapper for NFS 3 (and rpcinfo)
command -v nfs-cp >/dev/null || missing+=(libnfs-utils)  # hosts' NFS client (nfs-ls, nfs-cp)
command -v chromium >/dev/null || missing+=(chromium)  # the web UI's browser tests (docs/ui.md)
command -v chromedriver >/dev/null || missing+=(chromium-driver)  # selenium drives chromium with it
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        echo "setup: apt-get install ${missing[*]}"
        apt_install "${missing[@]}"
    else
        echo "setup: the lab needs ${missing[*]} (as root: apt-get install -y ${missing[*]})" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv with $("$PYTHON" --version)"
    "$PYTHON" -m venv .venv
fi

stamp=.venv/.vmknet-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -x .venv/bin/vmknet ]; then
    echo "setup: pip install -e .[dev]"
    .venv/bin/python -m pip install -q -e '.[dev]'
    echo "$want" > "$stamp"
fi
