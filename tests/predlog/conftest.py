"""Fixtures of the prediction-log tests: the credit package loaded, a few scored requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mlstrata.runtime.model import LoadedModel, load

from ..serve.conftest import valid_records


@pytest.fixture(scope="module")
def model(credit_package: Path) -> LoadedModel:
    """The credit package, loaded."""
    return load(credit_package)


@pytest.fixture(scope="module")
def records(credit_package: Path) -> list[dict[str, Any]]:
    """Twenty valid credit records."""
    return valid_records(credit_package)


def log_request(log: Any, model: LoadedModel, records: list[dict[str, Any]], request_id: str,
                **options: Any) -> Any:
    """Score ``records`` and queue them in ``log`` as one request; the predictions."""
    checked = model.check_records(records)
    predictions = model.score(checked.columns).with_warnings(checked.warnings)
    log.log_predictions(model, request_id=request_id, source="rest", columns=checked.columns,
                        predictions=predictions, latency_ms=1.25, **options)
    return predictions
