"""`vmknet-agent` without the kernel: its arguments, its state dir, readiness, the unit file."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from vmknet.agent import boot, host
from vmknet.agent.service import ControllerAddress
from vmknet.cli.commands_join import join_command
from vmknet.cli.main import main
from vmknet.errors import InvalidArgument, VmknetError

FP = "ab" * 32
UNIT = Path(__file__).resolve().parents[2] / "deploy" / "systemd" / "vmknet-agent.service"
JOIN = ["join", "--controller", "198.18.0.250", "--token", "abc123.x", "--ca-fingerprint", FP]


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- arguments ----------------------------------------------------------------------------


def test_join_defaults_to_the_state_dir_and_the_short_hostname(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "gethostname", lambda: "esx07.lab.example")
    args = host.parse(JOIN)
    assert args.command == "join" and args.host == "esx07"
    assert args.state_dir == Path("/var/lib/vmknet/agent")
    assert args.controller == ControllerAddress("198.18.0.250", 443)
    assert args.netns is None and args.source is None and not args.force


def test_join_options() -> None:
    fp = ":".join(["AB"] * 32)  # as openssl prints it
    args = host.parse(["join", "--controller", "198.18.0.250:8443", "--token", "t.s",
                       "--ca-fingerprint", fp, "--host", "esx03", "--state-dir", "/x",
                       "--netns", "ns1", "--source", "198.18.0.13", "--force"])
    assert args.controller == ControllerAddress("198.18.0.250", 8443)
    assert args.ca_fingerprint == FP and args.host == "esx03" and args.state_dir == Path("/x")
    assert (args.netns, args.source, args.force) == ("ns1", "198.18.0.13", True)


def test_run_options() -> None:
    args = host.parse(["run"])
    assert (args.command, args.state_dir, args.netns) == ("run", host.DEFAULT_STATE_DIR, None)
    args = host.parse(["run", "--state-dir", "/s", "--netns", "vmkl-x.esx01.defaultTcpipStack"])
    assert (args.state_dir, args.netns) == (Path("/s"), "vmkl-x.esx01.defaultTcpipStack")


@pytest.mark.parametrize("argv", [
    [],
    ["join"],
    ["join", "--controller", "c", "--token", "t"],  # no fingerprint
    [*JOIN[:5], "--ca-fingerprint", "abc"],  # too short
    [*JOIN[:5], "--ca-fingerprint", "g" * 64],  # not hex
    ["join", "--controller", "198.18.0.250:0", *JOIN[3:]],
    ["join", "--controller", "198.18.0.250:99999", *JOIN[3:]],
    ["join", "--controller", "198.18.0.250:https", *JOIN[3:]],
    ["run", "--bogus"],
    ["fly"],
])
def test_bad_arguments_are_one_coded_line(argv: list[str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(InvalidArgument):
        host.parse(argv)
    assert host.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("Error [InvalidArgument]: ") and err.count("\n") == 1


def test_run_before_join_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert host.main(["run", "--state-dir", str(tmp_path / "none")]) == 3
    err = capsys.readouterr().err
    assert err.startswith("Error [NotFound]: ") and "vmknet-agent join" in err


def test_join_into_a_joined_state_dir_is_refused_without_force(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = host.StateDir(tmp_path / "state")
    state.prepare()
    state.save_identity("esx03", ControllerAddress("198.18.0.250"))
    (state.root / "cert.pem").write_text("x")
    assert host.main([*JOIN, "--state-dir", str(state.root), "--host", "esx03"]) == 4
    err = capsys.readouterr().err
    assert err.startswith("Error [AlreadyExists]: ") and "--force" in err
    assert (state.root / "cert.pem").read_text() == "x"  # untouched


def test_an_unreachable_controller_is_one_line(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    listener.close()  # nobody listens there now: connection refused
    code = host.main(["join", "--controller", f"127.0.0.1:{port}", "--token", "a.b",
                      "--ca-fingerprint", FP, "--state-dir", str(tmp_path / "s"),
                      "--host", "esx03"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("Error [HostNotConnected]: Cannot join the controller "
                                        f"at 127.0.0.1:{port}: "), err
    assert not (tmp_path / "s" / "agent.json").exists()


# -- the state dir --------------------------------------------------------------------------


def test_state_dir_layout_and_modes(tmp_path: Path) -> None:
    root = tmp_path / "state"
    root.mkdir(mode=0o755)
    state = host.StateDir(root)
    state.prepare()
    assert _mode(root) == 0o700  # narrowed even though it existed
    assert not state.joined
    state.save_identity("esx03", ControllerAddress("198.18.0.250", 8443))
    assert _mode(state.identity) == 0o600
    assert state.load_identity() == ("esx03", ControllerAddress("198.18.0.250", 8443))
    assert not state.joined  # no certificate yet
    (root / "cert.pem").write_text("x")
    assert state.joined
    assert (state.key, state.tickets) == (root / "key.pem", root / "tickets")
    agent = state.agent("esx03", ControllerAddress("198.18.0.250"))
    assert agent.folder == root and agent.book.folder == root / "tickets"
    assert agent.host == "esx03" and agent.joined


def test_identity_default_port_is_not_written(tmp_path: Path) -> None:
    state = host.StateDir(tmp_path)
    state.save_identity("esx01", ControllerAddress("198.18.0.250"))
    assert '"controller": "198.18.0.250"' in state.identity.read_text()


def test_unreadable_identity(tmp_path: Path) -> None:
    state = host.StateDir(tmp_path)
    state.identity.write_text("{not json")
    with pytest.raises(InvalidArgument, match="--force"):
        state.load_identity()
    state.identity.write_text('{"host": "esx01"}')
    with pytest.raises(InvalidArgument):
        state.load_identity()


def test_links_roundtrip_root_only(tmp_path: Path) -> None:
    links = [("198.18.0.11", "vmk0"), ("198.18.1.11", "vmk3")]
    boot.save_links(tmp_path, links)
    assert _mode(tmp_path / boot.LINKS) == 0o600
    assert boot.load_links(tmp_path) == links
    assert [p.name for p in tmp_path.iterdir()] == [boot.LINKS]  # no temporary left
    (tmp_path / boot.LINKS).write_text("[1]")
    with pytest.raises(VmknetError, match="join again"):
        boot.load_links(tmp_path)


def test_missing_links(tmp_path: Path) -> None:
    with pytest.raises(VmknetError) as err:
        boot.load_links(tmp_path)
    assert err.value.code == "NotFound"


# -- running -------------------------------------------------------------------------------


class _FakeAgent:
    def __init__(self) -> None:
        self.calls: list[object] = []

    def start(self, links: boot.Links) -> None:
        self.calls.append(("start", links))

    def stop(self) -> None:
        self.calls.append("stop")


def test_serve_runs_until_sigterm_then_stops_the_agent() -> None:
    agent = _FakeAgent()
    old = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    ready = threading.Event()
    # SIGTERM only once serve() says it is ready: its handler is in place by then (sent any
    # earlier, the default action would end the test process).
    timer = threading.Timer(0.2, lambda: os.kill(os.getpid(), signal.SIGTERM))

    def on_ready() -> None:
        ready.set()
        timer.start()

    try:
        boot.serve(agent, [("198.18.0.11", "vmk0")], on_ready)  # type: ignore[arg-type]
    finally:
        timer.cancel()
        for s, handler in old.items():
            signal.signal(s, handler)
    assert ready.is_set()
    assert agent.calls == [("start", [("198.18.0.11", "vmk0")]), "stop"]


def test_notifier_speaks_sd_notify(tmp_path: Path) -> None:
    path = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        host.Notifier(str(path)).notify("READY=1")
        assert sock.recv(100) == b"READY=1"
    name = f"vmknet-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)  # systemd's abstract form: "@name"
        host.Notifier("@" + name).notify("STOPPING=1")
        assert sock.recv(100) == b"STOPPING=1"


def test_notifier_without_systemd_is_silent(tmp_path: Path) -> None:
    host.Notifier("").notify("READY=1")  # not under systemd: nothing to tell
    host.Notifier(str(tmp_path / "gone")).notify("READY=1")  # a dead socket: only a warning


# -- the controller's side: the command it prints -----------------------------------------


@given(token=st.text(min_size=1, max_size=80).filter(lambda s: "\0" not in s),
       host_name=st.text(min_size=1, max_size=40).filter(lambda s: "\0" not in s))
def test_the_printed_join_command_parses_back(token: str, host_name: str) -> None:
    argv = shlex.split(join_command("198.18.0.250", token, FP, host_name))
    assert argv[:2] == ["vmknet-agent", "join"]
    args = host.parse(argv[1:])
    assert (args.token, args.host, args.ca_fingerprint) == (token, host_name, FP)
    assert args.controller == ControllerAddress("198.18.0.250")


# -- the unit file ---------------------------------------------------------------------------


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # systemd keys are cased
    parser.read_string(UNIT.read_text(encoding="utf-8"))
    return parser


def test_unit_file_keys() -> None:
    unit = _unit()
    assert unit.sections() == ["Unit", "Service", "Install"]
    svc = unit["Service"]
    assert svc["Type"] == "notify" and svc["Restart"] == "always" and svc["RestartSec"] == "2"
    assert shlex.split(svc["ExecStart"])[1:] == ["run", "--state-dir", "/var/lib/vmknet/agent"]
    assert shlex.split(svc["ExecStart"])[0].endswith("/vmknet-agent")
    assert svc["ProtectSystem"] == "strict"
    assert set(svc["ReadWritePaths"].split()) == {"/var/lib/vmknet", "/run/netns", "/etc/netns"}
    assert set(svc["CapabilityBoundingSet"].split()) == {
        "CAP_NET_ADMIN", "CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_NET_BIND_SERVICE"}
    assert svc["NoNewPrivileges"] == "yes" and svc["StateDirectoryMode"] == "0700"
    assert unit["Unit"]["ConditionPathExists"] == f"{host.DEFAULT_STATE_DIR}/{host.IDENTITY}"
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def test_unit_file_verifies(tmp_path: Path) -> None:
    """systemd's own parser, when the machine has it: no unknown key, no bad value."""
    analyze = shutil.which("systemd-analyze")
    text = UNIT.read_text(encoding="utf-8")
    agent = Path(sys.executable).parent / "vmknet-agent"
    assert "/opt/vmknet/bin/vmknet-agent" in text
    local = tmp_path / UNIT.name  # ExecStart must exist for verify: this checkout's script
    local.write_text(text.replace("/opt/vmknet/bin/vmknet-agent", str(agent)))
    if analyze is None:  # configparser (above) is then all the check there is
        assert _unit()["Service"]["ExecStart"]
        return
    out = subprocess.run([analyze, "verify", str(local)], capture_output=True, text=True,
                         timeout=60)
    mine = [line for line in (out.stdout + out.stderr).splitlines() if UNIT.name in line]
    assert out.returncode == 0 and mine == [], out.stdout + out.stderr


def test_join_token_needs_the_controllers_lab(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--store", str(tmp_path / "inv.db"), "host",
                                       "join-token", "esx01"])
    assert result.exit_code == 3
    assert result.output.strip().startswith("Error [NotFound]: No lab is up"), result.output
