"""docs/rules.md defines every rule id the code and the README use; nothing links outside.

So a new id cannot slip into an error, a lint finding or the README without a
definition someone who cloned the repository can read.
"""

from __future__ import annotations

import re
from pathlib import Path

from vmknet.rules.lint import CHECKS

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "docs" / "rules.md"
FAMILIES = r"(?:NS|SVC|EX|PATH|SW|STO|REQ|SEC|MGMT|ADDR|HA|FT|VSAN)"
RULE_ID = re.compile(rf"(?<![\w-]){FAMILIES}-\d+(?![\w-])")
FAULT = re.compile(r"\bVnicHas\w+")  # STO-1's fault names, as ESXi spells them
KINDS = ("**Refused", "**Lint", "**Behaviour", "**Not yet enforced", "**refused",
         "Behaviour, refused")


def _defined() -> dict[str, str]:
    """Heading id -> its entry's text."""
    entries: dict[str, str] = {}
    current = None
    for line in RULES.read_text(encoding="utf-8").splitlines():
        if line.startswith("### "):
            current = line[4:].strip()
            entries[current] = ""
        elif line.startswith("## "):
            current = None
        elif current is not None:
            entries[current] += line + "\n"
    return entries


def _used() -> dict[str, set[str]]:
    """id -> files using it, in src/ and README.md."""
    used: dict[str, set[str]] = {}
    files = [*sorted((ROOT / "src").rglob("*.py")), ROOT / "README.md"]
    for path in files:
        text = path.read_text(encoding="utf-8")
        for found in {*RULE_ID.findall(text), *FAULT.findall(text)}:
            used.setdefault(found, set()).add(str(path.relative_to(ROOT)))
    for rule, _ in CHECKS:  # lint ids outside the families: MTU, DUP-ADDR, OVERLAP
        used.setdefault(rule, set()).add("src/vmknet/rules/lint.py")
    return used


def test_every_rule_id_in_src_and_readme_is_defined() -> None:
    defined = _defined()
    missing = {rule: sorted(where) for rule, where in _used().items() if rule not in defined}
    assert not missing, f"define these in docs/rules.md: {missing}"


def test_the_scan_sees_the_ids_it_must() -> None:
    used = _used()
    assert {"EX-3", "SEC-6", "STO-1", "VnicHasWrongUplink", "DUP-ADDR", "MTU"} <= set(used)
    assert "SHA-1" not in used and not RULE_ID.search("SHA-1 vmk1-br FT-Logging")


def test_each_definition_says_how_it_is_applied() -> None:
    for rule, text in _defined().items():
        assert len(text.split()) >= 15, f"{rule}: a one-paragraph definition"
        flat = " ".join(text.split())
        assert any(k in flat for k in KINDS), f"{rule}: refused, lint, behaviour or not yet"


def test_readme_and_docs_link_nothing_outside_the_repository() -> None:
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        assert "../shared" not in text and "SPEC.md" not in text, path.name
        assert not re.search(r"\bSPEC section\b", text), path.name
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not re.match(r"[a-z]+:", target):  # a relative link: the file must exist
                assert (path.parent / target).exists(), f"{path.name} links to {target}"
