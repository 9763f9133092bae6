"""SEC-5: every file path built from a name a user gave stays inside its base.

The name rules (`vmknet.model.names`) already refuse '/', '..' and leading
dots where names enter; `inside` is the second wall at the place a path is
built, so a name that reached a path some other way (an old store, a record
file, a future verb that forgot its check) still cannot leave its directory.

    inside(base, lab, host, "datastores", datastore)   # base/lab/host/datastores/ds1
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InvalidArgument


def inside(base: str | Path, *parts: str) -> Path:
    """`base/part/...`, refused (InvalidArgument, SEC-5) unless it stays below `base`.

    Each part must be one plain path component: not empty, no '/', no NUL, not
    '.' or '..'. Symlinks that exist are followed when comparing, so a link
    pointing out of the base is refused too; the returned path is not resolved.
    """
    for part in parts:
        if not part or "/" in part or "\0" in part or part in (".", ".."):
            raise InvalidArgument(f"{part!r} is not a plain name: a path built from it would "
                                  f"leave {base}", code="SEC-5", part=part, base=str(base))
    path = Path(base, *parts)
    real_base = os.path.realpath(base)
    real = os.path.realpath(path)
    if real != real_base and os.path.commonpath([real_base, real]) != real_base:
        raise InvalidArgument(f"{path} leads outside {base}", code="SEC-5", base=str(base))
    return path
