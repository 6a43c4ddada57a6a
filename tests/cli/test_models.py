"""``mlstrata models``: register, list, show, promote, rollback and their errors."""

from __future__ import annotations

import json

from mlstrata.model.acceptance import run_acceptance
from mlstrata.model.evaluate import evaluate_model
from mlstrata.workspace import Workspace
from tests.model._fitted import (  # noqa: F401
    _empty_mlflow_db,
    _template,
    credit,
    fit_model,
    tracked,
)


def test_register_promote_list_show(tracked: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    model = fit_model(tracked)
    registered = cli("models", "register", model.ref, "--json", cwd=tracked.root)
    assert registered.code == 0, registered.err
    assert json.loads(registered.out)["ref"] == "credit@1"
    refused = cli("models", "promote", "credit@1", cwd=tracked.root)
    assert refused.code == 2 and "\n" not in refused.err.strip()
    assert "no evaluation — run 'mlstrata evaluate credit-model@1'" in refused.err
    evaluate_model(tracked, model.ref)
    run_acceptance(tracked, model.ref, n_boot=20)
    promoted = cli("models", "promote", "credit@1", "--alias", "champion", cwd=tracked.root)
    assert promoted.code == 0 and "champion -> credit@1" in promoted.out
    listed = json.loads(cli("models", "list", "--json", cwd=tracked.root).out)
    assert listed[0]["aliases"] == {"champion": 1} and listed[0]["history"] == {"champion": [1]}
    shown = cli("models", "show", "credit@champion", cwd=tracked.root)
    assert shown.code == 0 and "credit-model@1" in shown.out
    rollback = cli("models", "rollback", "credit", cwd=tracked.root)
    assert rollback.code == 2 and "no previous version" in rollback.err


def test_unknown_version_and_unreachable_server(tracked: Workspace, cli) -> None:  # type: ignore[no-untyped-def]  # noqa: F811
    cli("models", "register", fit_model(tracked).ref, cwd=tracked.root)
    unknown = cli("models", "show", "credit@9", cwd=tracked.root)
    assert unknown.code == 2 and "credit has no version or alias '9'" in unknown.err
    down = cli("models", "list", "--tracking-uri", "http://127.0.0.1:9", cwd=tracked.root)
    assert down.code == 2 and "\n" not in down.err.strip()
    assert "MLflow registry at http://127.0.0.1:9 failed or cannot be reached" in down.err
