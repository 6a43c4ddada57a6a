"""score_batches: the same predictions as the runtime, invalid rows rejected with the reason."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mlstrata.batch.scoring import InvalidRowsError, checked_columns, score_batches
from mlstrata.errors import DataError
from mlstrata.runtime.inputs import FieldProblem, columns_from_lists
from mlstrata.runtime.model import LoadedModel, load
from mlstrata.runtime.signature import InputField, Signature

from ._inputs import KEY, raw_table, valid_records


@pytest.fixture(scope="module")
def model(credit_package: Path) -> LoadedModel:
    return load(credit_package, threads=1)


def _text_batches(records: list[dict[str, object]], keys: list[str], size: int
                  ) -> list[pa.RecordBatch]:
    """Records as all-text batches, the way a CSV is read."""
    table = pa.table({KEY: keys, **{name: [None if r[name] is None else str(r[name])
                                           for r in records] for name in records[0]}})
    return table.to_batches(max_chunksize=size)


def test_predictions_equal_the_runtime_on_the_same_rows(model: LoadedModel,
                                                        credit_package: Path) -> None:
    keys, records = valid_records(credit_package, 120)
    expected = model.predict_records(records)
    results = list(score_batches(model, _text_batches(records, keys, 50), keys=[KEY],
                                 run_id="r1"))
    scored = pa.concat_tables([r.scored for r in results])
    assert [r.rows_in for r in results] == [50, 50, 20]
    assert scored.column_names == [KEY, "prediction", "probability_0", "probability_1",
                                   "warnings", "model", "model_version", "run_id"]
    assert set(scored.column("warnings").to_pylist()) == {""}
    assert scored.column(KEY).to_pylist() == keys
    assert scored.column("prediction").to_pylist() == expected.predictions
    assert expected.probabilities is not None
    probabilities = np.column_stack([scored.column("probability_0").to_numpy(),
                                     scored.column("probability_1").to_numpy()])
    assert np.array_equal(probabilities, expected.probabilities)
    assert set(scored.column("model").to_pylist()) == {"credit.model"}
    assert set(scored.column("model_version").to_pylist()) == {1}
    assert set(scored.column("run_id").to_pylist()) == {"r1"}
    assert all(r.rejects.num_rows == 0 for r in results)


def test_typed_arrow_columns_score_like_text(model: LoadedModel, credit_package: Path) -> None:
    keys, records = valid_records(credit_package, 40)
    text = _text_batches(records, keys, 40)[0]
    typed = pa.table({KEY: keys, **{
        f.name: _typed(f.logical_type, [r[f.name] for r in records])
        for f in model.signature.inputs}}).to_batches()[0]
    from_text, from_typed = (next(score_batches(model, [b], run_id="r")).scored
                             for b in (text, typed))
    assert from_typed.equals(from_text)


def _typed(logical: str, values: list[object]) -> pa.Array:
    if logical == "integer":
        return pa.array(values, pa.int32())
    if logical == "float":
        return pa.array(values, pa.float64())
    if logical == "date":
        return pa.array([dt.date.fromisoformat(str(v)) for v in values], pa.date32())
    return pa.array(values, pa.string())


def test_invalid_rows_are_rejected_with_the_field_and_reason(model: LoadedModel,
                                                             credit_package: Path) -> None:
    keys, records = valid_records(credit_package, 6)
    records[1] = {**records[1], "term_months": 18, "purpose": None}
    records[3] = {**records[3], "region": "atlantis", "loan_amount": "lots"}
    records[4] = {**records[4], "term_months": 18.5}
    result = next(score_batches(model, _text_batches(records, keys, 6), keys=[KEY]))
    assert result.rows_in == 6
    assert result.scored.column(KEY).to_pylist() == [keys[0], keys[2], keys[5]]
    rejects = result.rejects.to_pylist()
    assert [r[KEY] for r in rejects] == [keys[1], keys[3], keys[4]]
    assert rejects[0]["term_months"] == "18"
    assert rejects[0]["reject_reason"].startswith(  # in field order, like the runtime's
        "field 'term_months': 18 is not an allowed value (allowed: [12, 24, 36, 48, 60]); "
        "field 'purpose': required")
    assert rejects[1]["reject_reason"] == (  # the unseen region only warns
        "field 'loan_amount': expected an integer, got text 'lots'; send it unquoted")
    assert rejects[2]["reject_reason"] == "field 'term_months': expected an integer, got 18.5"


def test_rows_breaking_warn_rules_are_scored_with_a_warnings_column(
        model: LoadedModel, credit_package: Path) -> None:
    """The inferred ranges and category sets warn: such a row is scored (the prediction the
    runtime gives it) and its ``warnings`` text names each broken rule; clean rows have ""."""
    keys, records = valid_records(credit_package, 5)
    records[1] = {**records[1], "age": 1200, "purpose": "yacht"}
    records[3] = {**records[3], "region": "atlantis", "loan_amount": "lots"}  # rejected anyway
    result = next(score_batches(model, _text_batches(records, keys, 5), keys=[KEY]))
    assert result.scored.column(KEY).to_pylist() == [keys[0], keys[1], keys[2], keys[4]]
    assert result.rejects.column(KEY).to_pylist() == [keys[3]]
    warnings = result.scored.column("warnings").to_pylist()
    assert warnings[0] == warnings[2] == warnings[3] == ""
    assert warnings[1].startswith("field 'age' (max): 1200 is above the maximum ")
    assert "; field 'purpose' (allowed): 'yacht' is not an allowed value" in warnings[1]
    assert result.warned == 1
    scored = [r for i, r in enumerate(records) if i != 3]
    expected = model.predict_records(scored)
    assert result.scored.column("prediction").to_pylist() == expected.predictions
    assert [len(w) for w in expected.warnings] == [0, 2, 0, 0]


def test_fail_names_the_input_row_counted_across_batches(model: LoadedModel,
                                                         credit_package: Path) -> None:
    keys, records = valid_records(credit_package, 30)
    records[23] = {**records[23], "purpose": None}
    results = score_batches(model, _text_batches(records, keys, 10), on_invalid="fail")
    assert next(results).scored.num_rows == 10
    assert next(results).scored.num_rows == 10
    with pytest.raises(InvalidRowsError) as caught:
        next(results)
    assert str(caught.value).startswith("invalid input: row 24, field 'purpose': required")
    assert "--on-invalid reject" in str(caught.value)


def test_a_row_the_model_answers_nan_for_is_rejected_naming_the_field(
        uncontracted_packages: tuple[Path, Path]) -> None:
    """A rule-abiding row (the package has no ranges) the model cannot score is a reject with
    the runtime's reason; an invalid row and the good rows around it are handled as before."""
    from ..runtime.test_outputs import RECORD

    model = load(uncontracted_packages[1])
    records = [RECORD, {**RECORD, "income": 1e300}, {**RECORD, "age": "old"},
               {**RECORD, "loan_amount": -1e300}, RECORD]
    keys = [f"k{i}" for i in range(len(records))]
    result = next(score_batches(model, _text_batches(records, keys, 5), keys=[KEY]))
    assert result.scored.column(KEY).to_pylist() == ["k0", "k4"]
    assert np.isfinite(result.scored.column("probability_1").to_numpy()).all()
    rejects = result.rejects.to_pylist()
    assert [r[KEY] for r in rejects] == ["k1", "k2", "k3"]
    assert rejects[0]["reject_reason"].startswith(
        "field 'income': 1e+300 is above the training range (")
    assert rejects[1]["reject_reason"].startswith("field 'age': expected an integer")
    assert rejects[2]["reject_reason"].startswith(
        "field 'loan_amount': -1e+300 is below the training range (")
    failing = score_batches(model, _text_batches([RECORD, RECORD, RECORD, records[1]], keys[:4],
                                                 2), on_invalid="fail")
    assert next(failing).scored.num_rows == 2
    with pytest.raises(InvalidRowsError, match=r"^invalid input: row 4, field 'income': 1e\+300 "
                                               "is above the training range"):
        next(failing)
    only_bad = next(score_batches(model, _text_batches(records[1:2], keys[:1], 1), keys=[KEY]))
    assert only_bad.scored.num_rows == 0 and only_bad.rejects.num_rows == 1


def test_a_missing_column_is_named(model: LoadedModel, credit_package: Path) -> None:
    batch = raw_table(credit_package).drop_columns(["age"]).to_batches(max_chunksize=10)[0]
    with pytest.raises(DataError, match="the input has no column 'age' that the model needs"):
        next(score_batches(model, [batch]))
    with pytest.raises(DataError, match="no column 'customer'"):
        next(score_batches(model, [batch], keys=["customer"]))


def test_a_batch_of_rejects_only_scores_nothing(model: LoadedModel, credit_package: Path) -> None:
    batch = raw_table(credit_package).slice(0, 5)
    batch = batch.set_column(batch.schema.get_field_index("age"), "age",
                             pc.cast(pa.array(["old"] * 5), pa.string())).to_batches()[0]
    result = next(score_batches(model, [batch], keys=[KEY]))
    assert result.scored.num_rows == 0
    assert result.scored.column_names[:2] == [KEY, "prediction"]
    assert result.rejects.num_rows == 5


def test_scoring_pulls_one_batch_at_a_time(model: LoadedModel, credit_package: Path) -> None:
    keys, records = valid_records(credit_package, 40)
    pulled: list[int] = []

    def source() -> Iterator[pa.RecordBatch]:
        for number, batch in enumerate(_text_batches(records, keys, 4)):
            pulled.append(number)
            yield batch

    for done, _ in enumerate(score_batches(model, source())):
        assert pulled == list(range(done + 1))
    assert len(pulled) == 10


TEXT_RULES = Signature(
    "m@1", "binary", "y",
    (InputField("city", "text", False, allowed=("north", "south"), strict=True),
     InputField("code", "text", False, pattern=r"\d{5}"),  # RE2 first, Python for the rest
     InputField("ref", "text", True, pattern=r"[^\d]+"),  # refused by RE2: Python only
     InputField("note", "text", False),
     InputField("kind", "text", False, allowed=("north", "ab"), pattern=r"[a-z]+",
                warn=frozenset({"allowed", "not_null"})),  # levels: warn and error rules
     InputField("zone", "text", True, pattern=r"\d{5}", warn=frozenset({"pattern"}))),
    (), (), ())
TEXTS = st.one_of(st.none(), st.sampled_from(["north", "south", "", "12345", "1234",
                                              "\u0661\u0662\u0663\u0664\u0665", "ab", "a1",
                                              "12345\n"]))


@given(st.lists(st.fixed_dictionaries({f.name: TEXTS for f in TEXT_RULES.inputs}), min_size=1,
                max_size=12))
def test_batch_text_checks_agree_with_the_runtime(records: list[dict[str, Any]]) -> None:
    """Levels, RE2 and the runtime's own per-value check name the same problems, with the same
    rules and severities (warn rules included)."""
    batch = pa.RecordBatch.from_pylist(records, schema=pa.schema(
        [(f.name, pa.string()) for f in TEXT_RULES.inputs]))
    _, in_batch = checked_columns(TEXT_RULES, batch)
    lists = {f.name: [r[f.name] for r in records] for f in TEXT_RULES.inputs}
    _, per_value = columns_from_lists(TEXT_RULES, lists, text_source=True)
    assert _seen(in_batch) == _seen(per_value)


def _seen(problems: list[FieldProblem]) -> list[tuple[str, str, str]]:
    return sorted((str(p), p.rule, p.severity) for p in problems)


NUMBER_RULES = Signature(
    "m@1", "regression", "y",
    (InputField("lines", "integer", True, min=0, max=13, warn=frozenset({"max"})),
     InputField("rate", "float", False, min=1.5, max=9.5, warn=frozenset({"min", "not_null"})),
     InputField("term", "integer", True, allowed=(12, 24), strict=True)),
    (), (), ())
NUMBERS = st.one_of(st.none(), st.sampled_from(["", "0", "-1", "13", "14", "1.4", "9.5", "12",
                                                "24", "36", "x", "2.5"]))


@given(st.lists(st.fixed_dictionaries({f.name: NUMBERS for f in NUMBER_RULES.inputs}),
                min_size=1, max_size=12))
def test_batch_number_checks_agree_with_the_runtime(records: list[dict[str, Any]]) -> None:
    """Arrow's vectorised casts and ``check_rules`` give the runtime's problems, warn or error."""
    batch = pa.RecordBatch.from_pylist(records, schema=pa.schema(
        [(f.name, pa.string()) for f in NUMBER_RULES.inputs]))
    _, in_batch = checked_columns(NUMBER_RULES, batch)
    lists = {f.name: [r[f.name] for r in records] for f in NUMBER_RULES.inputs}
    _, per_value = columns_from_lists(NUMBER_RULES, lists, text_source=True)
    assert _seen(in_batch) == _seen(per_value)
