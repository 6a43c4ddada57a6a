"""The leakage guard: leaks, identifiers and constants are found; ordinary features are not."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlstrata.config import FeatureConfig
from mlstrata.data.types import ColumnInfo
from mlstrata.model.features import plan_features
from mlstrata.model.leakage import screen_features


def _columns(frame: pd.DataFrame) -> list[ColumnInfo]:
    kinds = {"f": "float", "i": "integer", "b": "boolean", "O": "text", "M": "timestamp"}
    return [ColumnInfo(str(name), kinds.get(dtype.kind, "text"), "")  # type: ignore[arg-type]
            for name, dtype in frame.dtypes.items()]


def _by_column(findings: list[dict[str, object]]) -> dict[object, dict[str, object]]:
    return {f["column"]: f for f in findings}


def _base(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "plain": rng.normal(size=rows),
        "city": rng.choice(["paris", "lyon", "nice"], rows).astype(object),
        "opened": pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 900, rows), "D"),
    })


def test_log_of_a_regression_target_is_leakage_and_a_plain_feature_is_not() -> None:
    frame = _base()
    rng = np.random.default_rng(1)
    frame["amount"] = np.exp(frame["plain"] * 0.3 + rng.normal(0, 1, len(frame))) * 100
    frame["log_amount"] = np.log(frame["amount"])
    found = _by_column(screen_features(frame, "amount", "regression", _columns(frame),
                                       FeatureConfig()))
    assert set(found) == {"log_amount"}
    assert found["log_amount"]["reason"] == "leakage"
    assert found["log_amount"]["score"] == pytest.approx(1.0)
    assert "monotonic" in str(found["log_amount"]["detail"])


def test_parts_that_add_up_to_the_target_are_leakage() -> None:
    frame = _base()
    rng = np.random.default_rng(2)
    frame["principal"] = rng.uniform(100, 1000, len(frame))
    frame["interest"] = rng.uniform(50, 500, len(frame))
    frame["fees"] = rng.uniform(0, 10, len(frame))
    frame["total"] = frame["principal"] + frame["interest"]
    found = _by_column(screen_features(frame, "total", "regression", _columns(frame),
                                       FeatureConfig()))
    assert set(found) == {"principal", "interest"}
    assert "with interest it adds up linearly" in str(found["principal"]["detail"])


@pytest.mark.parametrize("classes", [["no", "yes"], ["low", "mid", "high"]])
def test_a_copy_of_the_label_and_an_id_that_encodes_it_are_leakage(classes: list[str]) -> None:
    frame = _base()
    rng = np.random.default_rng(3)
    label = rng.choice(classes, len(frame))
    frame["label"] = label.astype(object)
    frame["label_copy"] = label.astype(object)
    code = pd.Series(label).map({c: i for i, c in enumerate(classes)}).to_numpy()
    frame["customer_id"] = code * 1_000_000 + rng.permutation(len(frame))
    task = "binary" if len(classes) == 2 else "multiclass"
    found = _by_column(screen_features(frame, "label", task, _columns(frame), FeatureConfig()))
    assert set(found) == {"label_copy", "customer_id"}
    assert {f["reason"] for f in found.values()} == {"leakage"}
    assert "ROC AUC 1.0000" in str(found["customer_id"]["detail"])


def test_identifiers_and_constants_are_found_with_reasons() -> None:
    frame = _base()
    rows = len(frame)
    frame["row_number"] = np.arange(rows) + 1000
    frame["orderKey"] = np.random.default_rng(4).permutation(rows) * 7919
    frame["email"] = [f"user{i}@example.org" for i in range(rows)]
    frame["income"] = np.random.default_rng(5).integers(10_000, 10_000_000, rows)
    frame["country"] = "FR"
    frame["empty"] = np.nan
    frame["y"] = np.random.default_rng(6).integers(0, 2, rows).astype(bool)
    found = _by_column(screen_features(frame, "y", "binary", _columns(frame), FeatureConfig()))
    assert {c: f["reason"] for c, f in found.items()} == {
        "row_number": "identifier", "orderKey": "identifier", "email": "identifier",
        "country": "constant", "empty": "constant"}
    assert "row counter" in str(found["row_number"]["detail"])
    assert "id-like name" in str(found["orderKey"]["detail"])
    assert found["country"]["detail"] == "has a single value (FR)"


def test_kept_columns_are_reported_and_stay_in_the_plan() -> None:
    frame = _base()
    frame["y"] = frame["plain"] * 2.0 + 1.0
    frame["twice"] = frame["y"] * 3.0
    config = FeatureConfig(keep=["twice"])
    findings = screen_features(frame, "y", "regression", _columns(frame), config)
    assert findings == [{"column": "plain", "reason": "leakage", "score": pytest.approx(1.0),
                         "detail": findings[0]["detail"], "kept": False},
                        {"column": "twice", "reason": "leakage", "score": pytest.approx(1.0),
                         "detail": findings[1]["detail"], "kept": True}]
    plan = plan_features(_columns(frame), "y", config, findings, task="regression")
    assert "twice" in plan.numeric and "plain" not in plan.numeric
    assert plan.excluded[0]["column"] == "plain"


def test_clustering_reports_identifiers_and_constants_but_scores_nothing() -> None:
    frame = _base()
    frame["id"] = np.arange(len(frame))
    frame["flat"] = 1.0
    found = _by_column(screen_features(frame, None, "clustering", _columns(frame),
                                       FeatureConfig()))
    assert {c: f["reason"] for c, f in found.items()} == {"id": "identifier",
                                                          "flat": "constant"}


def test_scores_use_a_capped_sample() -> None:
    frame = _base(rows=3000)
    rng = np.random.default_rng(7)
    frame["y"] = rng.integers(0, 2, len(frame))
    frame["leak"] = frame["y"] * 10.0 + rng.normal(0, 0.1, len(frame))
    found = screen_features(frame, "y", "binary", _columns(frame), FeatureConfig(),
                            max_rows=500, seed=1)
    assert [f["column"] for f in found] == ["leak"]
