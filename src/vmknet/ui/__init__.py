"""The web UI: static files (HTML, CSS, JS; no build step, no CDN) and the data its views draw.

    topology.host_diagram   one host's virtual switch diagram as data
    trace.trace             the physical NICs that carry an adapter now
    rates.Meter             bytes per second per adapter and per service
    STATIC                  the folder api/routes_ui serves at / and /ui/

The routes are in `vmknet.api.routes_ui`; this package never imports FastAPI.
"""

from pathlib import Path

STATIC = Path(__file__).resolve().parent / "static"
