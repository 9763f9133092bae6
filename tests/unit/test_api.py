"""The REST API through FastAPI's TestClient over a temporary store: roles, errors, plan/apply."""

from __future__ import annotations

import json
import select
import socket
import stat
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from fastapi.testclient import TestClient

from vmknet.api import routes_mgmt
from vmknet.api.app import create_app
from vmknet.api.listen import listen_unix
from vmknet.api.problems import MAX_BODY
from vmknet.api.routes_mgmt import HostStatus
from vmknet.api.serve import RestServer
from vmknet.api.tokens import ROLES, TokenBook, allows, digest
from vmknet.cli.main import main
from vmknet.controller.service import Controller
from vmknet.inventory import Inventory
from vmknet.state import canonical, load_file

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
LAB = EXAMPLES / "lab.yaml"
REFUSED = EXAMPLES / "ex3-refused.yaml"
YAML = {"content-type": "application/yaml"}


@dataclass
class Api:
    client: TestClient
    store: Path
    book: TokenBook
    tokens: dict[str, str]  # role -> secret
    controller: Controller

    def as_(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def inventory(self) -> Inventory:
        return Inventory.open(self.store)


@pytest.fixture
def api(tmp_path: Path) -> Iterator[Api]:
    store = tmp_path / "inventory.db"
    Inventory.open(store).apply(load_file(LAB))
    book = TokenBook(tmp_path / "controller" / "api-tokens.json")
    tokens = {role: book.create(role, f"test-{role}")[0] for role in ROLES}
    controller = Controller(tmp_path / "controller", "unit", lambda: Inventory.open(store).read())
    app = create_app(controller, lambda: Inventory.open(store), book)
    with TestClient(app) as client:
        yield Api(client, store, book, tokens, controller)
    controller.stop()


def assert_problem(response: object, status: int, code: str) -> dict[str, object]:
    r = response
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"code", "message", "details"}, body
    assert body["code"] == code, body
    assert isinstance(body["message"], str) and body["message"] and "\n" not in body["message"]
    return dict(body)


# -- the OpenAPI document ------------------------------------------------------------------


def test_openapi_document_is_public_and_describes_versioned_paths(api: Api) -> None:
    doc = api.client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    paths = set(doc["paths"])
    assert all(p.startswith("/api/v1/") for p in paths)
    for p in ("/api/v1/hosts", "/api/v1/hosts/status", "/api/v1/hosts/{host}/vmknics/{name}",
              "/api/v1/plan", "/api/v1/apply", "/api/v1/lint", "/api/v1/resolve",
              "/api/v1/events", "/api/v1/vms", "/api/v1/dvs", "/api/v1/clusters"):
        assert p in paths
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    plan_body = doc["paths"]["/api/v1/plan"]["post"]["requestBody"]["content"]
    assert {"application/yaml", "application/json"} <= set(plan_body)


# -- authentication and roles --------------------------------------------------------------


def test_no_token_and_bad_tokens_are_401_with_a_bearer_challenge(api: Api) -> None:
    for headers in ({}, {"Authorization": "Bearer vmk_not-a-token"},
                    {"Authorization": "Bearer " + "x" * 5000},
                    {"Authorization": "Basic dXNlcjpwYXNz"}):
        r = api.client.get("/api/v1/hosts", headers=headers)
        assert_problem(r, 401, "NotAuthenticated")
        assert r.headers["www-authenticate"] == "Bearer"


def test_roles_each_may_what_the_ones_below_may(api: Api) -> None:
    doc = LAB.read_text()
    calls = {  # the least role each call needs
        ("GET", "/api/v1/hosts", ""): "read-only",
        ("GET", "/api/v1/lint", ""): "read-only",
        ("GET", "/api/v1/session", ""): "read-only",
        ("POST", "/api/v1/plan", doc): "operator",
        ("GET", "/api/v1/tokens", ""): "admin",
    }
    for (method, path, body), needed in calls.items():
        for role in ROLES:
            r = api.client.request(method, path, content=body or None,
                                   headers=api.as_(role) | (YAML if body else {}))
            if allows(role, needed):
                assert r.status_code == 200, (role, path, r.text)
            else:
                problem = assert_problem(r, 403, "NoPermission")
                assert problem["details"] == {"role": role, "needed": needed}


def test_session_names_the_caller(api: Api) -> None:
    me = api.client.get("/api/v1/session", headers=api.as_("operator")).json()
    assert me["role"] == "operator" and me["name"] == "test-operator"
    assert me["id"] == digest(api.tokens["operator"])[:12]


def test_admin_manages_tokens_and_a_revoked_token_is_refused_at_once(api: Api) -> None:
    made = api.client.post("/api/v1/tokens", json={"role": "read-only", "name": "dash"},
                           headers=api.as_("admin"))
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["token"].startswith("vmk_") and new["role"] == "read-only"
    mine = {"Authorization": f"Bearer {new['token']}"}
    assert api.client.get("/api/v1/hosts", headers=mine).status_code == 200
    listed = api.client.get("/api/v1/tokens", headers=api.as_("admin")).json()
    assert new["id"] in {t["id"] for t in listed}
    assert all("token" not in t and "sha256" not in t for t in listed)
    assert api.client.delete(f"/api/v1/tokens/{new['id']}",
                             headers=api.as_("admin")).status_code == 200
    assert_problem(api.client.get("/api/v1/hosts", headers=mine), 401, "NotAuthenticated")
    assert_problem(api.client.delete(f"/api/v1/tokens/{new['id']}", headers=api.as_("admin")),
                   404, "NotFound")
    bad = api.client.post("/api/v1/tokens", json={"role": "root"}, headers=api.as_("admin"))
    assert_problem(bad, 422, "InvalidRequest")


def test_token_file_is_root_only_and_holds_no_secret(api: Api) -> None:
    mode = stat.S_IMODE(api.book.path.stat().st_mode)
    assert mode == 0o600
    text = api.book.path.read_text()
    for secret in api.tokens.values():
        assert secret not in text
        assert digest(secret) in text
    # Another process's book (the CLI) sees a token the controller created, and vice versa.
    other = TokenBook(api.book.path)
    secret, entry = other.create("operator", "cli")
    assert api.book.authenticate(secret) == entry
    api.book.revoke(entry.id)
    assert other.authenticate(secret) is None


def test_cli_creates_lists_and_revokes_tokens(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VMKNET_RUN_DIR", str(tmp_path / "run"))
    run = CliRunner()
    made = run.invoke(main, ["api", "token", "create", "--role", "operator", "--name", "ci",
                             "--lab", "unit"])
    assert made.exit_code == 0, made.output
    secret = made.stdout.strip()
    assert secret.startswith("vmk_") and "\n" not in secret
    listed = json.loads(run.invoke(main, ["api", "token", "list", "--json", "--lab",
                                          "unit"]).stdout)
    assert [(t["name"], t["role"]) for t in listed] == [("ci", "operator")]
    gone = run.invoke(main, ["api", "token", "revoke", listed[0]["id"], "--lab", "unit"])
    assert gone.exit_code == 0 and "Revoked" in gone.stdout
    again = run.invoke(main, ["api", "token", "revoke", listed[0]["id"], "--lab", "unit"])
    assert again.exit_code == 3 and again.stderr.startswith("Error [NotFound]: ")
    bad = run.invoke(main, ["api", "token", "create", "--role", "god", "--lab", "unit"])
    assert bad.exit_code == 2 and bad.stderr.startswith("Error [InvalidArgument]: ")


# -- inventory reads -------------------------------------------------------------------------


def test_inventory_objects_as_the_file_names_them(api: Api) -> None:
    dc = api.inventory().read()
    h = api.as_("read-only")
    get = api.client.get
    assert get("/api/v1/datacenter", headers=h).json() == canonical(dc)
    hosts = get("/api/v1/hosts", headers=h).json()
    assert sorted(hosts) == sorted(dc.hosts)
    assert hosts["esx01"]["vmknics"] == list(dc.hosts["esx01"].vmknics)
    esx01 = get("/api/v1/hosts/esx01", headers=h).json()
    assert esx01["vmknics"]["vmk0"]["services"] == ["management"]
    assert get("/api/v1/hosts/esx01/vmknics/vmk0", headers=h).json() == esx01["vmknics"]["vmk0"]
    assert sorted(get("/api/v1/hosts/esx01/netstacks", headers=h).json()) == sorted(
        dc.hosts["esx01"].netstacks)
    pg = get("/api/v1/hosts/esx01/portgroups/Management Network", headers=h).json()
    assert pg["vswitch"] == "vSwitch0" and pg["vlan"] == 10
    assert sorted(get("/api/v1/clusters", headers=h).json()) == sorted(dc.clusters)
    assert sorted(get("/api/v1/dvs", headers=h).json()) == sorted(dc.distributed_switches)


def test_unknown_objects_and_paths_are_coded_404s(api: Api) -> None:
    h = api.as_("read-only")
    assert_problem(api.client.get("/api/v1/hosts/esx99", headers=h), 404, "NotFound")
    p = assert_problem(api.client.get("/api/v1/hosts/esx01/vmknics/vmk99", headers=h),
                       404, "NotFound")
    assert "vmk99" in str(p["message"])
    assert_problem(api.client.get("/api/v1/clusters/nope", headers=h), 404, "NotFound")
    assert_problem(api.client.get("/api/v1/nothing-here", headers=h), 404, "NotFound")
    assert_problem(api.client.delete("/api/v1/hosts", headers=h), 405, "MethodNotAllowed")


def test_lint_resolve_events_and_their_refusals(api: Api) -> None:
    h = api.as_("read-only")
    findings = api.client.get("/api/v1/lint?severity=info", headers=h).json()
    assert findings == [
        {"rule": f.rule, "severity": str(f.severity), "path": f.path, "message": f.message,
         "hint": f.hint} for f in api.inventory().lint()]
    flows = api.client.get("/api/v1/resolve", headers=h, params={
        "service": "vmotion", "source": "esx01", "target": "esx02"}).json()
    assert flows and all(f["source"]["netstack"] == "vmotion" for f in flows)
    assert_problem(api.client.get("/api/v1/resolve", headers=h, params={
        "service": "teleport", "source": "esx01", "target": "esx02"}), 400, "InvalidArgument")
    assert_problem(api.client.get("/api/v1/resolve", headers=h, params={
        "service": "vmotion", "source": "esx01", "target": "esx99"}), 404, "NotFound")
    assert_problem(api.client.get("/api/v1/resolve", headers=h), 422, "InvalidRequest")
    assert_problem(api.client.get("/api/v1/lint?severity=loud", headers=h), 422,
                   "InvalidRequest")
    bad = assert_problem(api.client.get("/api/v1/events?limit=0", headers=h), 422,
                         "InvalidRequest")
    assert bad["details"]["errors"][0]["loc"] == ["query", "limit"]  # type: ignore[index]
    assert isinstance(api.client.get("/api/v1/events", headers=h).json(), list)


def test_host_status_is_the_controllers_table(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_mgmt, "STATUS_TTL", 0.0)  # each read made afresh
    rows = api.client.get("/api/v1/hosts/status", headers=api.as_("read-only")).json()
    assert [r["host"] for r in rows] == sorted(api.inventory().read().hosts)
    assert {r["condition"] for r in rows} == {"NotJoined"}  # no agent ever joined this one
    # The rows are served as the controller makes them: they must be the schema's.
    table = api.controller.hosts
    table.heartbeat("esx01", "198.18.0.11", "vmk0", 42, None)
    table.heartbeat("esx02", "198.18.0.12", "vmk0", 43, None)
    table.changed("esx01", "g1", "reverted", "cut off")
    table.changed("esx02", "g1", "progressing")
    rows = api.client.get("/api/v1/hosts/status", headers=api.as_("read-only")).json()
    for row in rows:
        assert HostStatus.model_validate(row).model_dump(mode="json") == row
    assert rows[0]["lastChange"]["state"] == "reverted" and rows[1]["condition"] == "Progressing"


def test_vms_need_a_lab_bound_to_the_store(api: Api) -> None:
    r = api.client.get("/api/v1/vms", headers=api.as_("read-only"))
    assert "lab up" in str(assert_problem(r, 404, "NotFound")["message"])


# -- plan and apply --------------------------------------------------------------------------


def _changed(doc_path: Path) -> str:
    data = yaml.safe_load(doc_path.read_text())
    data["hosts"]["esx01"]["vmknics"]["vmk0"]["mtu"] = 1400
    return json.dumps(data)


def test_plan_then_apply_with_the_plans_version(api: Api) -> None:
    op = api.as_("operator")
    body = _changed(LAB)
    before = api.inventory().store.read()[0]
    planned = api.client.post("/api/v1/plan", content=body,
                              headers=op | {"content-type": "application/json"}).json()
    assert planned["version"] == before
    assert [c["path"] for c in planned["changes"]] == ["hosts/esx01/vmknics/vmk0"]
    assert planned["changes"][0]["action"] == "modify"
    done = api.client.post(f"/api/v1/apply?version={planned['version']}", content=body,
                           headers=op | {"content-type": "application/json"})
    assert done.status_code == 200, done.text
    assert done.json()["version"] == before + 1 and done.json()["applied"] == 1
    assert api.inventory().read().hosts["esx01"].vmknics["vmk0"].mtu == 1400
    again = api.client.post("/api/v1/plan", content=body,
                            headers=op | {"content-type": "application/json"}).json()
    assert again == {"version": before + 1, "changes": []}


def test_apply_with_a_stale_version_is_409_and_changes_nothing(api: Api) -> None:
    op = api.as_("operator") | YAML
    first = _changed(LAB)
    plan_a = api.client.post("/api/v1/plan", content=first, headers=op).json()
    plan_b = api.client.post("/api/v1/plan", content=LAB.read_text(), headers=op).json()
    assert plan_a["version"] == plan_b["version"]
    ok = api.client.post(f"/api/v1/apply?version={plan_a['version']}", content=first,
                         headers=op)
    assert ok.status_code == 200
    held = api.inventory().store.read()
    stale = api.client.post(f"/api/v1/apply?version={plan_b['version']}",
                            content=LAB.read_text(), headers=op)
    problem = assert_problem(stale, 409, "ConcurrentModification")
    assert problem["details"] == {"expected": plan_b["version"], "actual": held[0]}
    assert api.inventory().store.read() == held


def test_concurrent_applies_of_one_plan_commit_once(api: Api) -> None:
    op = api.as_("operator") | YAML
    body = _changed(LAB)
    version = api.client.post("/api/v1/plan", content=body, headers=op).json()["version"]
    results: list[int] = []

    def go() -> None:
        r = api.client.post(f"/api/v1/apply?version={version}", content=body, headers=op)
        results.append(r.status_code)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [200, 409, 409, 409]
    assert api.inventory().store.read()[0] == version + 1


def test_refused_documents_are_coded_errors(api: Api) -> None:
    op = api.as_("operator") | YAML
    rule = api.client.post("/api/v1/plan", content=REFUSED.read_text(), headers=op)
    assert assert_problem(rule, 422, "EX-3")["details"]["rule"] == "EX-3"
    syntax = api.client.post("/api/v1/plan", content="hosts: [unclosed", headers=op)
    assert "<request>:" in str(assert_problem(syntax, 400, "InvalidArgument")["message"])
    assert_problem(api.client.post("/api/v1/plan", content=b"\xff\xfe", headers=op), 400,
                   "InvalidArgument")
    assert_problem(api.client.post("/api/v1/plan", content="[]", headers=op), 400,
                   "InvalidArgument")
    assert_problem(api.client.post("/api/v1/plan", content="{}",
                                   headers=api.as_("operator") | {"content-type": "image/png"}),
                   415, "UnsupportedMediaType")
    assert_problem(api.client.post("/api/v1/apply", content="{}", headers=op), 422,
                   "InvalidRequest")  # no version
    assert_problem(api.client.post("/api/v1/apply?version=-1", content="{}", headers=op), 422,
                   "InvalidRequest")


def test_body_over_the_limit_is_413_before_it_is_read(api: Api) -> None:
    op = api.as_("operator") | YAML
    declared = api.client.post("/api/v1/plan", content=b"a" * (MAX_BODY + 1), headers=op)
    assert_problem(declared, 413, "RequestTooLarge")
    # The limit holds for a caller without a token too: nothing is read for a stranger.
    assert api.client.post("/api/v1/plan", content=b"a" * (MAX_BODY + 1),
                           headers=YAML).status_code == 413



# -- served by uvicorn, as the controller does --------------------------------------------


@pytest.fixture
def served(api: Api, tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "rest.sock"
    server = RestServer(api.client.app, [listen_unix(path)])  # type: ignore[arg-type]
    server.start()
    yield path
    server.stop()


def _raw(path: Path, request: bytes) -> tuple[int, dict[str, object]]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(request)
        return _response(sock)


def _response(sock: socket.socket) -> tuple[int, dict[str, object]]:
    data = b""
    while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    return int(head.split()[1]), json.loads(body[:_length(data)])


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")[1:]:
        key, _, value = line.partition(b":")
        if key.strip().lower() == b"content-length":
            return int(value)
    return 0


def test_served_on_a_root_only_unix_socket(api: Api, served: Path) -> None:
    assert stat.S_IMODE(served.stat().st_mode) == 0o600
    token = api.tokens["read-only"].encode()
    status, body = _raw(served, b"GET /api/v1/session HTTP/1.1\r\nHost: x\r\n"
                        b"Authorization: Bearer " + token + b"\r\nConnection: close\r\n\r\n")
    assert status == 200 and body["role"] == "read-only"


def test_a_chunked_body_is_refused_once_past_the_limit_not_read_to_the_end(
        api: Api, served: Path) -> None:
    token = api.tokens["operator"].encode()
    chunk = b"#" * 2**20
    sent = 0
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(2)
        sock.connect(str(served))
        sock.sendall(b"POST /api/v1/plan HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + token
                     + b"\r\nContent-Type: application/yaml\r\n"
                     b"Transfer-Encoding: chunked\r\n\r\n")
        try:
            for _ in range(64):  # 64 MiB, unless the server stops reading first
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
                if select.select([sock], [], [], 0)[0]:
                    break  # the answer is there
        except OSError:  # reset, or a full window the server no longer drains
            pass
        sock.settimeout(10)
        status, body = _response(sock)
    assert status == 413 and body["code"] == "RequestTooLarge"
    assert MAX_BODY < sent < 32 * 2**20, sent


def test_host_status_is_made_at_most_every_quarter_second(api: Api) -> None:
    first = api.client.get("/api/v1/hosts/status", headers=api.as_("read-only")).json()
    api.controller.hosts.heartbeat("esx01", "198.18.0.11", "vmk0", 42, None)
    again = api.client.get("/api/v1/hosts/status", headers=api.as_("read-only")).json()
    assert again == first  # the same body within STATUS_TTL
    time.sleep(routes_mgmt.STATUS_TTL + 0.05)
    later = api.client.get("/api/v1/hosts/status", headers=api.as_("read-only")).json()
    assert later[0]["agentPid"] == 42
