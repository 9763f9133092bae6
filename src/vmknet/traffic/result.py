"""One line of `lab check`: what was checked, from where to where, and how it went.

Its own module because both the echo checks (`checks`) and the negative checks
(`isolation`) produce it, and `checks` runs `isolation`: no import cycle.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Result:
    check: str
    service: str
    source: str
    target: str
    ok: bool
    detail: str  # "0.181 ms", or why it failed
    size: int | None = None

    def record(self) -> dict[str, str | int | bool | None]:
        return {"check": self.check, "service": self.service, "source": self.source,
                "target": self.target, "result": "ok" if self.ok else "FAIL",
                "detail": self.detail, "size": self.size}
