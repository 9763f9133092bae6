"""Schema fuzzing of the REST API (schemathesis over /openapi.json): no 5xx, every refusal coded.

A short run, bounded to about 30 s: a few examples per operation, against a
temporary store holding the example lab, as admin (every operation reachable),
and once more without a token (every operation refused with a coded 401).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.generation.modes import GenerationMode

from vmknet.api.app import create_app
from vmknet.api.tokens import TokenBook
from vmknet.controller.service import Controller
from vmknet.controller.tasks import PARAMS, Tasks
from vmknet.errors import HTTP_STATUS, NotFound
from vmknet.inventory import Inventory
from vmknet.state import load_file

LAB = Path(__file__).resolve().parents[2] / "examples" / "lab.yaml"
EXAMPLES = 20  # per operation (valid and invalid data): ~30 operations, ~20 s on 2 cores


def _no_lab(*_: Any) -> tuple[bool, dict[str, Any], str]:
    raise NotFound("VM not found in lab fuzz")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[FastAPI, str]]:
    folder = tmp_path_factory.mktemp("fuzz")
    store = folder / "inventory.db"
    Inventory.open(store).apply(load_file(LAB))
    book = TokenBook(folder / "controller" / "api-tokens.json")
    token = book.create("admin", "fuzz")[0]
    controller = Controller(folder / "controller", "fuzz",
                            lambda: Inventory.open(store).read())
    # Tasks whose engines refuse (this test has no lab): what is fuzzed is the REST side.
    controller.tasks = Tasks("fuzz", lambda: Inventory.open(store).read(), lambda events: None,
                             dict.fromkeys(PARAMS, _no_lab))
    yield create_app(controller, lambda: Inventory.open(store), book), token
    controller.stop()


@pytest.fixture(scope="module")
def api_schema(built: tuple[FastAPI, str]) -> Any:
    return schemathesis.openapi.from_asgi("/openapi.json", built[0])


def coded_refusal(ctx: Any, response: Any, case: Any) -> bool:
    """Every 4xx is `{"code", "message", "details"}` with the status of its code."""
    if response.status_code < 400:
        return True
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"code", "message", "details"}, body
    assert isinstance(body["code"], str) and body["code"], body
    assert isinstance(body["message"], str) and "\n" not in body["message"], body
    assert HTTP_STATUS.get(body["code"], 422) == response.status_code, body
    return True


def _operations() -> list[str]:
    """`METHOD path` of every operation, from the document itself (no store needed for it)."""
    doc = create_app(None, Inventory.open, TokenBook(Path("/nonexistent"))).openapi()
    return [f"{m.upper()} {p}" for p, item in doc["paths"].items() for m in item]


OPERATIONS = _operations()


def _run(schema: Any, label: str, examples: int, test: Any) -> None:
    method, path = label.split(" ", 1)
    operation = schema[path][method]
    # Valid and invalid data alike: a refusal must be coded, never a 5xx.
    strategy = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                         operation.as_strategy(GenerationMode.NEGATIVE))

    @given(case=strategy)
    @settings(max_examples=examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case: Any) -> None:
        test(case)

    run()


@pytest.mark.parametrize("label", OPERATIONS)
def test_no_server_error_and_every_refusal_coded(label: str, api_schema: Any,
                                                 built: tuple[FastAPI, str]) -> None:
    def check(case: Any) -> None:
        case.call_and_validate(headers={"Authorization": f"Bearer {built[1]}"},
                               checks=[not_a_server_error, coded_refusal])

    _run(api_schema, label, EXAMPLES, check)


@pytest.mark.parametrize("label", OPERATIONS)
def test_without_a_token_everything_is_a_coded_401(label: str, api_schema: Any) -> None:
    def check(case: Any) -> None:
        case.headers = {k: v for k, v in (case.headers or {}).items()
                        if k.lower() != "authorization"}
        response = case.call()
        coded_refusal(None, response, case)
        assert response.status_code == 401, response.text

    _run(api_schema, label, 2, check)
