"""`python -m vmknet.agent --lab=NAME --host=HOST --controller=ADDR[:PORT] [--netns NS]`.

The host agent process. In a lab it enters its host's management stack
namespace (`--netns`) before anything else, so every socket it makes is that
stack's. The first start joins with the token in `join-token` (removed once
used) and the CA fingerprint; later starts find the certificate and go on.
"""

from __future__ import annotations

import argparse

from ..dataplane.linux import netns
from ..mgmt import paths, spawn
from ..trust.issuer import book
from . import boot
from .service import Agent, ControllerAddress


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="vmknet.agent")
    p.add_argument("--lab", required=True)
    p.add_argument("--host", required=True)
    p.add_argument("--controller", required=True, help="address[:port] of the controller")
    p.add_argument("--ca-fingerprint", default=None, help="sha256 of the controller's CA")
    p.add_argument("--netns", default=None, help="the management stack's namespace")
    p.add_argument("--ready-fd", type=int, default=None)
    args = p.parse_args(argv)
    spawn.detach()
    if args.netns:
        netns.enter(args.netns)
    folder = paths.agent_dir(args.lab, args.host)
    agent = Agent(args.host, folder, ControllerAddress.parse(args.controller),
                  book(args.lab, args.host), lab=args.lab)
    if not agent.joined:
        token_file = paths.join_token_file(args.lab, args.host)
        if not args.ca_fingerprint:
            raise SystemExit("not joined yet: --ca-fingerprint and a join token are needed")
        boot.join(agent, token_file.read_text().strip(), args.ca_fingerprint)
        token_file.unlink()
    boot.serve(agent, boot.load_links(folder), lambda: spawn.ready(args.ready_fd))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
