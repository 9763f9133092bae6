"""Live migration (vMotion) of lab VMs: pre-copy over every vMotion adapter pair.

    from vmknet.vmotion import migrate, MigrationReport
    report = migrate(dc, lab, "web01", "esx02")          # see orchestrate.migrate
    report.to_dict()                                     # JSON: rounds, pairs, downtime

Modules: protocol (stream framing), precopy (chunks, stop rule), streams (one
sender per pair), source / target (the two VM processes' sides), crypto (SEC-1),
report, orchestrate (resolve, sockets, processes). See docs/vmotion.md.
"""

from .orchestrate import migrate
from .report import MigrationReport, PairStat, RoundStat

__all__ = ["MigrationReport", "PairStat", "RoundStat", "migrate"]
