"""The MLflow registry: register, list, show, promote (checked), rollback, and its errors."""

from __future__ import annotations

import time

import pytest

from mlstrata.errors import RefNotFoundError
from mlstrata.model.acceptance import run_acceptance
from mlstrata.model.evaluate import evaluate_model
from mlstrata.model.tracking import TrackingError
from mlstrata.package import registry
from mlstrata.package.registry import PromotionError
from mlstrata.workspace import Artifact, Workspace
from tests.model._fitted import (  # noqa: F401
    _empty_mlflow_db,
    _template,
    credit,
    fit_model,
    tracked,
)


def _checked(ws: Workspace, strength: float = 1.0) -> Artifact:
    """A model that passed its evaluation and acceptance test."""
    model = fit_model(ws, name=f"credit-c{strength:g}", strength=strength)
    assert evaluate_model(ws, model.ref).passed
    assert run_acceptance(ws, model.ref, n_boot=20).passed
    return model


def test_register_tags_lineage_and_is_idempotent(tracked: Workspace) -> None:  # noqa: F811
    model = fit_model(tracked)
    version = registry.register(tracked, model.ref)
    assert (version.name, version.version, version.model_id) == ("credit", 1, model.id)
    assert version.tags["mlstrata.dataset_id"] == model.meta["dataset"]
    assert version.tags["mlstrata.model_ref"] == "credit-model@1"
    assert registry.register(tracked, model.ref) == version
    import mlflow.pyfunc

    loaded = mlflow.pyfunc.load_model(version.source)
    assert loaded.metadata.flavors.keys() >= {"python_function", "sklearn"}
    (listed,) = registry.list_models(tracked)
    assert listed.name == "credit" and listed.latest == 1 and listed.aliases == {}


def test_promotion_requires_passed_evaluation_and_acceptance(tracked: Workspace) -> None:  # noqa: F811
    model = fit_model(tracked)
    registry.register(tracked, model.ref)
    with pytest.raises(PromotionError) as caught:
        registry.promote(tracked, "credit@1")
    assert str(caught.value) == (
        "cannot promote credit@1 to 'champion' (model credit-model@1): no evaluation — run "
        "'mlstrata evaluate credit-model@1'; no acceptance test — run "
        "'mlstrata test credit-model@1'")
    evaluate_model(tracked, model.ref)
    with pytest.raises(PromotionError, match="model credit-model@1.: no acceptance test"):
        registry.promote(tracked, "credit@1")
    assert registry.show(tracked, "credit").aliases == {}  # type: ignore[union-attr]


def test_a_failed_acceptance_test_blocks_promotion(tracked: Workspace) -> None:  # noqa: F811
    model = fit_model(tracked, cv_mean=0.99)
    evaluate_model(tracked, model.ref)
    run_acceptance(tracked, model.ref, n_boot=20)
    registry.register(tracked, model.ref)
    with pytest.raises(PromotionError, match=r"newest acceptance test \(credit-model.acceptance@1"
                                             r"\) failed"):
        registry.promote(tracked, "credit@1", alias="challenger")


def test_promote_and_rollback_walk_the_alias_history(tracked: Workspace) -> None:  # noqa: F811
    first, second = _checked(tracked, 1.0), _checked(tracked, 10.0)
    assert registry.register(tracked, first.ref).version == 1
    assert registry.register(tracked, second.ref).version == 2
    assert registry.promote(tracked, "credit@1").aliases == ["champion"]
    assert registry.promote(tracked, "credit@2").aliases == ["champion"]
    info = registry.show(tracked, "credit")
    assert info.aliases == {"champion": 2} and info.history == {"champion": [1, 2]}  # type: ignore[union-attr]
    back = registry.rollback(tracked, "credit")
    assert back.version == 1 and registry.show(tracked, "credit@champion").version == 1  # type: ignore[union-attr]
    with pytest.raises(PromotionError, match="only version 1 has held it, so there is no previous"):
        registry.rollback(tracked, "credit")
    with pytest.raises(PromotionError, match="'challenger' of credit: it was never set"):
        registry.rollback(tracked, "credit", alias="challenger")


def test_unknown_models_and_versions_name_what_exists(tracked: Workspace) -> None:  # noqa: F811
    registry.register(tracked, fit_model(tracked).ref)
    with pytest.raises(RefNotFoundError, match=r"credit has no version or alias '7' \(versions: 1; "
                                               r"aliases: none\)"):
        registry.promote(tracked, "credit@7")
    with pytest.raises(RefNotFoundError, match=r"no registered model named 'debit' \(registered: "
                                               r"credit\)"):
        registry.show(tracked, "debit")
    with pytest.raises(RefNotFoundError, match="promote needs NAME@VERSION"):
        registry.promote(tracked, "credit")


def test_unreachable_tracking_uri_fails_fast_in_one_line(credit: Workspace) -> None:  # noqa: F811
    start = time.monotonic()
    with pytest.raises(TrackingError) as caught:
        registry.list_models(credit, tracking_uri="http://127.0.0.1:9")
    assert time.monotonic() - start < 10
    message = str(caught.value)
    assert message.startswith("MLflow registry at http://127.0.0.1:9 failed or cannot be reached")
    assert "\n" not in message and "model.tracking_uri" in message
