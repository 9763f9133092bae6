"""vSphere HA in the host agents: FDM (Fault Domain Manager).

Each agent of a host in a cluster with `ha: true` runs one `fdm.Fdm`:
network heartbeats over every management adapter (`wire`, `links`), datastore
heartbeats (`datastore`), the election (`election`), the verdicts
(`verdicts`), the isolation response and the restarts (`restart`), and the
view the CLI reads (`view`). docs/ha.md tells the whole story.
"""
