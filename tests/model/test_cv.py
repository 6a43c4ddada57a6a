"""Cross-validation: folds per strategy, their errors, fresh pipelines per fold, OOF, choose_k."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import make_blobs
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlstrata.errors import ConfigError, DataError
from mlstrata.model.candidates import CANDIDATES
from mlstrata.model.cv import average_results, choose_k, cross_validate, make_folds
from mlstrata.model.metrics import metric_names


def _frame(rows: int = 90, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(rows, 3)), columns=["a", "b", "c"])
    y = pd.Series(np.where(X["a"] + 0.3 * rng.normal(size=rows) > 0, "bad", "good"))
    return X, y


def test_stratified_folds_keep_class_shares_and_cover_each_row_once() -> None:
    y = np.array(["a"] * 30 + ["b"] * 60)
    folds = make_folds("binary", y, n_splits=3, strategy="auto", seed=0)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(90))
    for train, test in folds:
        assert (y[test] == "a").sum() == 10 and not set(train) & set(test)


def test_regression_folds_are_stratified_on_quantile_bins_reproducibly() -> None:
    y = np.random.default_rng(0).lognormal(0.0, 2.0, size=100)
    first = make_folds("regression", y, 5, "auto", seed=1)
    rank = np.argsort(np.argsort(y))
    for _, test in first:
        assert sorted(rank[test] // 5) == list(range(20)), "one row of every 5 by value"
    again = make_folds("regression", y, 5, "auto", seed=1)
    assert all((a[1] == b[1]).all() for a, b in zip(first, again, strict=True))
    other = make_folds("regression", y, 5, "auto", seed=2)
    assert any(set(a[1]) != set(b[1]) for a, b in zip(first, other, strict=True))
    stratified = make_folds("regression", y, 5, "stratified", seed=1)
    assert all((a[1] == b[1]).all() for a, b in zip(first, stratified, strict=True))


def test_kfold_strategy_keeps_plain_shuffled_folds_for_regression() -> None:
    folds = make_folds("regression", np.arange(20.0), 4, "kfold", seed=0)
    assert sorted(np.concatenate([test for _, test in folds])) == list(range(20))
    assert [len(test) for _, test in folds] == [5, 5, 5, 5]


def test_time_folds_never_train_on_later_rows() -> None:
    when = np.array([5, 1, 9, 3, 7, 2, 8, 4, 6, 0])
    for train, test in make_folds("regression", np.zeros(10), 3, "time", 0, time_order=when):
        assert when[train].max() < when[test].min()


def test_time_strategy_without_a_time_column_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="model.cv.strategy: time needs a time column"):
        make_folds("regression", np.zeros(10), 3, "time", 0)


def test_unknown_strategy_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown 'group'"):
        make_folds("regression", np.zeros(10), 3, "group", 0)


def test_fewer_rows_than_folds() -> None:
    with pytest.raises(DataError, match="3 training rows are fewer than model.cv.folds=5"):
        make_folds("regression", [1.0, 2.0, 3.0], 5, "auto", 0)


def test_class_smaller_than_the_folds_is_pooled_and_trained_on_in_every_fold() -> None:
    # It used to be refused: "class 'rare' has 2 rows, fewer than model.cv.folds=3".
    y = np.array(["common"] * 20 + ["rare"] * 2)
    folds = make_folds("binary", y, 3, "auto", 0)
    assert sorted(np.concatenate([test for _, test in folds])) == list(range(22))
    assert [(y[test] == "rare").sum() for _, test in folds].count(1) == 2
    assert all((y[train] == "rare").any() for train, _ in folds)


def test_class_with_a_single_row() -> None:
    with pytest.raises(DataError, match="class 'rare' has 1 row; cross-validation needs at "
                                        "least 2 rows of each class"):
        make_folds("multiclass", ["a"] * 20 + ["b"] * 20 + ["rare"], 3, "auto", 0)


def test_single_class() -> None:
    with pytest.raises(DataError, match="target has a single class \\('yes'\\)"):
        make_folds("binary", ["yes"] * 20, 3, "auto", 0)


def test_nan_in_the_target() -> None:
    with pytest.raises(DataError, match="target has 1 missing values; drop or impute"):
        make_folds("regression", [1.0, np.nan, 3.0, 4.0], 2, "auto", 0)


def test_stratified_on_clustering_is_refused() -> None:
    with pytest.raises(ConfigError, match="stratified needs a classification or regression task"):
        make_folds("clustering", np.zeros(10), 2, "stratified", 0)


@st.composite
def _targets(draw: st.DrawFn) -> tuple[str, np.ndarray]:
    """Continuous, heavy-tailed, few-level and one-huge-class targets of 60-300 rows."""
    kind = draw(st.sampled_from(["normal", "pareto", "levels", "huge"]))
    rows = draw(st.integers(60, 300))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "normal":
        return "regression", rng.normal(size=rows).round(draw(st.integers(0, 3)))
    if kind == "pareto":
        return "regression", rng.pareto(1.1, size=rows)
    if kind == "levels":
        levels = rng.choice(["a", "b", "c", "d"], size=rows - 8, p=rng.dirichlet(np.ones(4)))
        return "multiclass", np.concatenate([levels, ["a", "b", "c", "d"] * 2])
    tiny = np.repeat(["x", "y", "z"], draw(st.integers(2, 4)))
    return "multiclass", np.concatenate([["big"] * (rows - len(tiny)), tiny])


@settings(max_examples=30)
@given(target=_targets(), n_splits=st.integers(2, 10), seed=st.integers(0, 1000))
def test_stratified_folds_share_every_value_and_band(
    target: tuple[str, np.ndarray], n_splits: int, seed: int
) -> None:
    task, y = target
    folds = make_folds(task, y, n_splits, "auto", seed)
    tested = np.concatenate([test for _, test in folds])
    assert sorted(tested) == list(range(len(y)))
    assert max(len(t) for _, t in folds) - min(len(t) for _, t in folds) <= 1
    for value, count in Counter(y.tolist()).items():
        if count >= n_splits:
            assert all(abs((y[test] == value).sum() - count / n_splits) <= 1 for _, test in folds)
    order = np.argsort(y, kind="stable")
    band = np.empty(len(y), dtype=int)
    band[order] = np.arange(len(y)) * 10 // len(y)
    values_in = {b: set(y[band == b].tolist()) for b in range(10)}
    for b in range(10):
        whole = np.isin(y, list(values_in[b]))
        if whole.sum() >= 2 * n_splits:
            assert all(whole[test].any() for _, test in folds), f"band {b}"


class _CountingScaler(StandardScaler):
    """Records the row count of every fit, to prove each fold fits on its own training rows."""

    fitted_rows: list[int] = []

    def fit(self, X, y=None, sample_weight=None):  # type: ignore[no-untyped-def]
        _CountingScaler.fitted_rows.append(len(X))
        return super().fit(X, y, sample_weight)


def test_cross_validate_fits_a_fresh_pipeline_per_fold_on_train_rows_only() -> None:
    X, y = _frame()
    folds = make_folds("binary", y, 3, "auto", 0)
    _CountingScaler.fitted_rows = []
    seen: list[int] = []

    def factory() -> Pipeline:
        return Pipeline([("s", _CountingScaler()),
                         ("m", CANDIDATES["logistic"].build("binary", {}, 0))])

    result = cross_validate(factory, X, y, folds, "binary", metric_names("binary"),
                            on_fold=lambda i, scores: seen.append((i, scores)),
                            candidate="logistic", params={"C": 1.0})
    assert _CountingScaler.fitted_rows == [len(train) for train, _ in folds]
    assert [i for i, _ in seen] == [0, 1, 2]
    assert [s["roc_auc"] for _, s in seen] == result.fold_scores["roc_auc"]
    mean, std = result.metrics["roc_auc"]
    assert mean > 0.8 and std >= 0 and len(result.fold_scores["roc_auc"]) == 3
    assert result.classes == ["bad", "good"] and result.oof_mask.all()
    assert result.oof_proba is not None
    np.testing.assert_allclose(result.oof_proba.sum(axis=1), 1.0)
    assert set(result.oof_pred) == {"bad", "good"}
    summary = json.loads(json.dumps(result.to_dict()))
    assert summary["candidate"] == "logistic" and summary["params"] == {"C": 1.0}
    assert summary["fit_seconds"] > 0


def test_cross_validate_regression_and_time_folds_mark_untested_rows() -> None:
    X, _ = _frame()
    y = X["a"] * 2 + X["b"]
    folds = make_folds("regression", y, 3, "time", 0, time_order=np.arange(len(X)))
    result = cross_validate(
        lambda: Pipeline([("s", StandardScaler()),
                          ("m", CANDIDATES["ridge"].build("regression", {}, 0))]),
        X, y, folds, "regression", ["rmse", "r2"])
    assert result.candidate == "Ridge" and result.oof_proba is None
    assert not result.oof_mask[: len(X) // 4].any() and result.oof_mask[-10:].all()
    assert result.metrics["r2"][0] > 0.95


def test_cross_validate_clustering_scores_transformed_features() -> None:
    X_arr, _ = make_blobs(120, 2, centers=3, cluster_std=0.5, random_state=0)
    X = pd.DataFrame(X_arr * 50, columns=["x", "y"])
    folds = make_folds("clustering", np.zeros(len(X)), 3, "auto", 0)
    result = cross_validate(
        lambda: Pipeline([("s", StandardScaler()),
                          ("m", CANDIDATES["kmeans"].build("clustering", {"n_clusters": 3}, 0))]),
        X, None, folds, "clustering", metric_names("clustering"))
    assert result.metrics["silhouette"][0] > 0.5


def test_choose_k_finds_the_blobs() -> None:
    X, _ = make_blobs(150, 2, centers=4, cluster_std=0.5, random_state=0)
    k, table = choose_k(X, range(2, 7), seed=0)
    assert k == 4
    assert [row["k"] for row in table] == [2, 3, 4, 5, 6]
    best = min(table, key=lambda row: row["davies_bouldin"])
    assert best["k"] == 4


def test_choose_k_with_too_few_rows() -> None:
    with pytest.raises(DataError, match="2 rows cannot be clustered"):
        choose_k(np.zeros((2, 2)), range(2, 5))


@pytest.mark.parametrize("task", ["binary", "regression"])
def test_averaged_results_equal_cross_validating_the_voting_ensemble(task: str) -> None:
    from sklearn.base import clone

    from mlstrata.model.ensemble import Member, build_ensembles

    X, y = _frame(120, seed=3)
    if task == "regression":
        y = X["a"] * 2 + X["b"]
    folds = make_folds(task, y, 3, "auto", 0)
    metrics = metric_names(task)
    names = ["random_forest", "tree", "logistic" if task == "binary" else "ridge"]
    members = [CANDIDATES[n].build(task, {"n_estimators": 10} if n == "random_forest" else {}, 0)
               for n in names]
    results = [cross_validate(lambda m=m: Pipeline([("s", StandardScaler()), ("m", clone(m))]),
                              X, y, folds, task, metrics) for m in members]
    (voting,) = build_ensembles(["voting"], task, [Member(n, m, True)
                                                    for n, m in zip(names, members, strict=True)],
                                seed=0)
    fitted = cross_validate(lambda: Pipeline([("s", StandardScaler()),
                                              ("m", clone(voting.estimator))]),
                            X, y, folds, task, metrics)
    averaged = average_results(results, y, folds, task, metrics, candidate="voting",
                               params=voting.params)
    for m in metrics:
        np.testing.assert_allclose(averaged.fold_scores[m], fitted.fold_scores[m], atol=1e-9)
    if task == "binary":
        assert averaged.oof_pred.tolist() == fitted.oof_pred.tolist()
        assert averaged.oof_proba is not None and fitted.oof_proba is not None
        np.testing.assert_allclose(averaged.oof_proba, fitted.oof_proba, atol=1e-9)
    else:
        np.testing.assert_allclose(averaged.oof_pred, fitted.oof_pred, atol=1e-9)
    assert averaged.candidate == "voting" and averaged.classes == fitted.classes
    assert averaged.fit_seconds == pytest.approx(sum(r.fit_seconds for r in results))
