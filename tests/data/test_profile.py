"""Profiling on small real tables: exact statistics, correlations, warnings and renderings."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from mlstrata.data._profile_correlations import compute_correlations, cramers_v
from mlstrata.data._profile_stats import profile_columns
from mlstrata.data.profile import Profile, profile_dataset, profile_relation
from mlstrata.data.types import columns_of
from mlstrata.errors import AccessDeniedError, DataError, RefNotFoundError
from mlstrata.workspace import SEALED_KIND, Workspace

from .._factories import make_dataset

TINY = """SELECT * FROM (VALUES
    (1, 'a', DATE '2024-01-15', 2.5),
    (2, 'b', DATE '2024-01-20', NULL),
    (2, 'a', DATE '2024-03-01', 'NaN'::DOUBLE),
    (NULL, 'a', NULL, 0.0),
    (0, NULL, DATE '2024-03-31', 0.0)
) t(n, s, d, f)"""


def _profile(sql: str, **kwargs: object) -> Profile:
    con = duckdb.connect()
    return profile_relation(con, sql, columns_of(con.sql(sql)), **kwargs)  # type: ignore[arg-type]


def _warnings(profile: Profile, kind: str) -> list[str | None]:
    return [w.column for w in profile.warnings if w.kind == kind]


def test_exact_statistics_of_a_tiny_table() -> None:
    profile = _profile(TINY)
    n = profile.column("n")
    assert (profile.rows, n.count, n.missing, n.missing_pct) == (5, 4, 1, 20.0)
    assert (n.min, n.max, n.mean, n.distinct, n.zeros) == (0, 2, 1.25, 3, 1)
    assert [(v.value, v.count) for v in n.top_values] == [(2, 2), (0, 1), (1, 1)]
    assert n.quantiles["p50"] == 1.5
    s = profile.column("s")
    assert (s.count, s.missing, s.distinct) == (4, 1, 2)
    assert [(v.value, v.count) for v in s.top_values] == [("a", 3), ("b", 1)]
    d = profile.column("d")
    assert (d.min, d.max, d.count) == ("2024-01-15", "2024-03-31", 4)
    assert d.histogram is not None and d.histogram.labels == ("2024-01", "2024-03")


def test_nan_counts_as_missing_in_floats() -> None:
    f = _profile(TINY).column("f")
    assert (f.count, f.missing, f.zeros, f.max) == (3, 2, 2, 2.5)


@pytest.mark.parametrize("name", ["n", "d", "f"])
def test_histogram_counts_sum_to_non_missing_count(name: str) -> None:
    column = _profile(TINY).column(name)
    assert column.histogram is not None
    assert sum(column.histogram.counts) == column.count


def test_numeric_histogram_has_twenty_bins_and_counts_outliers() -> None:
    sql = "SELECT CASE WHEN range = 0 THEN 1e6 ELSE range % 50 END AS x FROM range(1000)"
    x = _profile(sql).column("x")
    assert x.histogram is not None and len(x.histogram.counts) == 20
    assert len(x.histogram.edges) == 21 and sum(x.histogram.counts) == 1000
    assert x.far_outliers == 1
    assert "x" in _warnings(_profile(sql), "outliers")


def test_pearson_and_spearman_match_numpy_and_pandas() -> None:
    rng = np.random.default_rng(3)
    a = rng.normal(size=60)
    b = a * 0.5 + rng.normal(size=60)
    c = np.round(np.exp(b), 0)  # ties: Spearman needs average ranks
    rows = ", ".join(f"({x}, {y}, {z})" for x, y, z in zip(a.tolist(), b.tolist(), c.tolist(),
                                                         strict=True))
    corr = _profile(f"SELECT * FROM (VALUES {rows}) t(a, b, c)").correlations
    frame = pd.DataFrame({"a": a, "b": b, "c": c})
    for x, y in (("a", "b"), ("a", "c"), ("b", "c")):
        assert corr.pearson.get(x, y) == pytest.approx(np.corrcoef(frame[x], frame[y])[0, 1])
        expected = np.corrcoef(frame[x].rank(), frame[y].rank())[0, 1]
        assert corr.spearman.get(x, y) == pytest.approx(expected)


def test_spearman_ranks_each_column_over_its_own_present_values() -> None:
    a = [1.0, 2.0, None, 4.0, 5.0, 6.0, 2.0, 8.0]
    b = [2.0, None, 3.0, 3.0, 9.0, 1.0, 4.0, 7.0]
    rows = ", ".join(f"({'NULL' if x is None else x}, {'NULL' if y is None else y})"
                     for x, y in zip(a, b, strict=True))
    corr = _profile(f"SELECT * FROM (VALUES {rows}) t(a, b)").correlations
    frame = pd.DataFrame({"a": a, "b": b}, dtype=float)
    expected = frame["a"].rank().corr(frame["b"].rank())  # pairwise-complete Pearson of ranks
    assert corr.spearman.get("a", "b") == pytest.approx(expected)


def test_cramers_v_of_identical_and_independent_columns() -> None:
    sql = ("SELECT (range % 3)::VARCHAR AS a, (range % 3)::VARCHAR AS same, "
           "((range // 3) % 2)::VARCHAR AS other FROM range(120)")
    matrix = _profile(sql).correlations.cramers_v
    assert matrix.get("a", "same") == pytest.approx(1.0)
    assert matrix.get("a", "other") == pytest.approx(0.0, abs=1e-9)
    assert cramers_v([[10, 0], [0, 0]]) is None


def test_correlation_sample_is_reproducible_and_bounded() -> None:
    con = duckdb.connect()
    sql = "SELECT range AS x, (range * 37 % 101)::DOUBLE AS y FROM range(2000)"
    profiles = profile_columns(con, sql, columns_of(con.sql(sql)), 2000)
    first, again, other = (compute_correlations(con, sql, profiles, 2000, seed=seed,
                                                sample_rows=300) for seed in (1, 1, 2))
    assert first.sampled and first.sample_rows == 300
    assert first.pearson == again.pearson
    assert first.pearson != other.pearson


def test_duplicates_are_counted() -> None:
    profile = _profile("SELECT range % 4 AS a, 'x' AS b FROM range(10)")
    assert (profile.duplicates.count, profile.duplicates.pct) == (6, 60.0)
    assert None in _warnings(profile, "duplicates")


def test_target_is_detected_with_class_balance() -> None:
    profile = _profile("SELECT range AS amount, CASE WHEN range % 10 = 0 THEN 'bad' ELSE 'good' "
                       "END AS outcome FROM range(200)")
    target = profile.target
    assert target is not None and (target.column, target.source) == ("outcome", "guessed")
    assert target.task == "binary"
    assert [(c.value, c.count) for c in target.classes] == [("good", 180), ("bad", 20)]


def test_leakage_warning_for_a_copy_of_the_target() -> None:
    sql = ("SELECT range % 7 AS noise, CASE WHEN range % 3 = 0 THEN 'yes' ELSE 'no' END AS y, "
           "CASE WHEN range % 3 = 0 THEN 'Y' ELSE 'N' END AS leaked FROM range(300)")
    profile = _profile(sql, target="y")
    assert _warnings(profile, "leakage") == ["leaked"]


def test_leakage_warning_for_a_transform_of_a_regression_target() -> None:
    sql = ("SELECT range * 1.5 AS price, ln(range * 1.5 + 1) AS log_price, "
           "(range * 13 % 17)::DOUBLE AS noise FROM range(400)")
    profile = _profile(sql, target="price")
    assert profile.target is not None and profile.target.task == "regression"
    assert _warnings(profile, "leakage") == ["log_price"]


def test_column_warnings() -> None:
    sql = ("SELECT 'k' AS const, 'user' || range AS email, range AS row_id, "
           "CASE WHEN range % 2 = 0 THEN NULL ELSE range END AS holes, "
           "exp(range / 10.0) AS skew FROM range(100)")
    profile = _profile(sql)
    assert _warnings(profile, "constant") == ["const"]
    assert _warnings(profile, "identifier") == ["email", "row_id"]
    assert _warnings(profile, "missing") == ["holes"]
    assert _warnings(profile, "skewed") == ["skew"]
    assert _warnings(profile, "target") == [None]


def test_unknown_target_is_refused_with_the_column_named() -> None:
    with pytest.raises(DataError, match="target column 'nope' is not in the data"):
        _profile("SELECT 1 AS a", target="nope")


def test_progress_is_reported_to_the_last_step() -> None:
    seen: list[tuple[str, int, int]] = []
    _profile(TINY, progress=lambda *step: seen.append(step))
    assert seen[-1][1:] == (len(seen), len(seen))
    assert [s[0] for s in seen[1:5]] == ["column n", "column s", "column d", "column f"]


def test_json_is_valid_and_nan_free() -> None:
    profile = _profile(TINY + " UNION ALL SELECT 5, 'c', NULL, 'Infinity'::DOUBLE")

    def refuse(constant: str) -> None:
        raise AssertionError(f"{constant} in JSON")

    data = json.loads(profile.to_json(), parse_constant=refuse)
    assert data["kind"] == "profile" and data["rows"] == 6
    assert [c["name"] for c in data["columns"]] == ["n", "s", "d", "f"]
    assert data["columns"][3]["max"] == 2.5


def test_html_is_self_contained_with_embedded_plots(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # any import of it now fails
    page = _profile("SELECT range % 5 AS a, (range % 3)::VARCHAR AS b, range % 2 AS target "
                    "FROM range(50)").to_html()
    assert page.count("<svg") >= 4 and "<table class='heatmap'" in page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", page)
    assert "class balance" in page


def test_html_plots_escape_names_and_show_counts_on_hover() -> None:
    page = _profile("SELECT range % 7 AS \"<b>&x\", range % 4 AS y, CASE WHEN range % 3 = 0 "
                    "THEN '<i>' ELSE 'o''k' END AS t FROM range(84)").to_html()
    assert "<b>&x" not in page and "&lt;b&gt;&amp;x" in page
    assert "<i>" not in page and "&lt;i&gt;" in page
    assert "<title>&lt;i&gt;: 28 rows</title>" in page
    assert "<title>-0.5 – 0.5: 12 rows</title>" in page


def test_repr_html_and_terminal_rendering() -> None:
    profile = _profile(TINY, pii=[{"column": "s", "kinds": ["email"], "action": "mask"}],
                       title="tiny")
    assert profile._repr_html_().startswith("<!doctype html>")
    console = Console(record=True, width=140)
    profile.render_terminal(console)
    text = console.export_text()
    assert "tiny: 5 rows × 4 columns" in text
    assert "PII s: email (action: mask)" in text
    assert "[target]" in text


def test_profile_dataset_uses_catalog_target_and_pii(workspace: Workspace) -> None:
    make_dataset(workspace, "SELECT range AS x, range % 2 AS default_flag FROM range(40)",
                 name="loans", target="default_flag",
                 extra_meta={"pii": [{"column": "x", "kinds": ["phone"]}]})
    profile = profile_dataset(workspace, "loans")
    assert profile.title == "loans@1" and len(profile.dataset_id) == 64
    assert profile.target is not None and profile.target.source == "declared"
    assert profile.pii[0].column == "x" and profile.pii[0].kinds == ("phone",)


def test_profile_dataset_refuses_the_sealed_test_set(workspace: Workspace, tmp_path: Path) -> None:
    staged = tmp_path / "sealed.parquet"
    duckdb.connect().execute(f"COPY (SELECT 1 AS x) TO '{staged}' (FORMAT parquet)")
    workspace.put_file(staged, kind=SEALED_KIND, name="loans-test")
    with pytest.raises(AccessDeniedError, match="sealed test set"):
        profile_dataset(workspace, "loans-test")


def test_profile_dataset_unknown_ref(workspace: Workspace) -> None:
    with pytest.raises(RefNotFoundError, match="no dataset/testset named 'ghost'"):
        profile_dataset(workspace, "ghost")


def test_no_outliers_when_the_interquartile_range_is_zero() -> None:
    flag = _profile("SELECT CASE WHEN range % 10 = 0 THEN 1 ELSE 0 END AS flag FROM range(100)")
    assert flag.column("flag").outliers is None
    assert _warnings(flag, "outliers") == []
