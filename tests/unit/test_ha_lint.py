"""HA-1 and HA-2 lint: heartbeat datastores and isolation addresses of an HA cluster."""

from __future__ import annotations

from pathlib import Path

from vmknet.model import Datacenter
from vmknet.rules.lint import lint
from vmknet.state import load_file

EXAMPLE = Path(__file__).parents[2] / "examples" / "ha-lab.yaml"


def _rules(dc: Datacenter, rule: str) -> list[str]:
    return sorted(f.path for f in lint(dc) if f.rule == rule)


def test_the_example_is_clean_of_ha_findings() -> None:
    dc = load_file(EXAMPLE)
    assert _rules(dc, "HA-1") == [] and _rules(dc, "HA-2") == []


def test_one_shared_datastore_is_fewer_than_das_heartbeatdsperhost() -> None:
    dc = load_file(EXAMPLE)
    del dc.hosts["esx02"].storage.nfs["nfs02"]
    assert _rules(dc, "HA-1") == ["hosts/esx02"]
    dc.clusters["cl01"].ha = False
    assert _rules(dc, "HA-1") == []


def test_no_isolation_address_when_the_default_is_off_and_none_is_named() -> None:
    dc = load_file(EXAMPLE)
    opts = dc.clusters["cl01"].das.options
    for key in [k for k in opts if k.startswith("das.isolationaddress")]:
        del opts[key]
    assert _rules(dc, "HA-2") == ["hosts/esx01", "hosts/esx02", "hosts/esx03"]
    opts["das.usedefaultisolationaddress"] = "true"  # the management stack's gateway
    assert _rules(dc, "HA-2") == []
    for host in dc.hosts.values():
        host.netstacks["defaultTcpipStack"].gateway = None
    assert len(_rules(dc, "HA-2")) == 3  # powerOff with nothing to ping
    dc.clusters["cl01"].das.isolation_response = "none"
    assert _rules(dc, "HA-2") == []
