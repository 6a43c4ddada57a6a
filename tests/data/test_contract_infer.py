"""Inferring a contract from a dataset: types, nulls, ranges, categories, patterns, uniqueness."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from mlstrata.contract import Contract
from mlstrata.data.contract_infer import infer_contract, infer_contract_for, shape_pattern
from mlstrata.errors import ContractError
from mlstrata.workspace import Workspace
from tests._factories import make_dataset

CREDIT_SQL = """
SELECT range + 1 AS customer_id,
       18 + range % 60 AS age,
       CASE WHEN range % 7 = 0 THEN NULL ELSE 1000.0 + range * 12.5 END AS income,
       lpad(((range * 7919) % 100000)::VARCHAR, 5, '0') AS postal_code,
       ['car', 'home', 'study'][1 + range % 3] AS purpose,
       'note ' || repeat('x', range % 45) AS comment,
       'ES-' || lpad(range::VARCHAR, 4, '0') AS branch,
       DATE '2021-01-01' + range::INTEGER AS applied,
       range % 2 = 0 AS vip
FROM range(200)
"""


@pytest.fixture
def inferred() -> Contract:
    con = duckdb.connect()
    return infer_contract(con, con.sql(CREDIT_SQL), name="credit", source="credit@1")


def test_types_and_nullability(inferred: Contract) -> None:
    types = {name: spec.type for name, spec in inferred.columns.items()}
    assert types == {"customer_id": "integer", "age": "integer", "income": "float",
                     "postal_code": "text", "purpose": "text", "comment": "text",
                     "branch": "text", "applied": "date", "vip": "boolean"}
    assert inferred.columns["income"].nullable
    assert not inferred.columns["age"].nullable
    assert (inferred.dataset, inferred.source, inferred.rows.min) == ("credit", "credit@1", 1)


def test_ranges_are_widened_by_a_tenth_of_the_span_without_crossing_zero(
        inferred: Contract) -> None:
    age = inferred.columns["age"]  # observed 18..77, span 59
    assert (age.min, age.max) == (12, 83)
    income = inferred.columns["income"]  # observed 1012.5..3487.5
    assert income.min is not None and income.max is not None
    assert 760 <= income.min <= 765 and 3735 <= income.max <= 3740
    customer = inferred.columns["customer_id"]  # observed 1..200: never below zero
    assert customer.min == 0
    applied = inferred.columns["applied"]  # dates: a lower bound only
    assert applied.min == date(2020, 12, 13) and applied.max is None


def test_low_cardinality_text_becomes_strict_categories(inferred: Contract) -> None:
    purpose = inferred.columns["purpose"]
    assert purpose.allowed == ["car", "home", "study"] and purpose.strict
    assert inferred.columns["comment"].allowed is None


def test_codes_get_a_pattern(inferred: Contract) -> None:
    assert inferred.columns["postal_code"].pattern == "^[0-9]{5}$"
    assert inferred.columns["branch"].pattern == r"^[A-Z]{2}\-[0-9]{4}$"
    assert inferred.columns["comment"].pattern is None


def test_id_like_columns_are_unique(inferred: Contract) -> None:
    assert inferred.columns["customer_id"].unique
    assert not inferred.columns["age"].unique
    assert not inferred.columns["postal_code"].unique


def test_a_dominant_shape_still_gives_a_pattern_so_off_values_are_reported() -> None:
    con = duckdb.connect()
    sql = ("SELECT CASE WHEN range = 5 THEN '123' ELSE lpad(range::VARCHAR, 5, '0') END AS zip "
           "FROM range(100)")
    contract = infer_contract(con, con.sql(sql), name="zips")
    assert contract.columns["zip"].pattern == "^[0-9]{5}$"
    assert [v.rule for v in contract.check_record({"zip": "123"})] == ["pattern"]


def test_the_inferred_contract_passes_its_own_rows(inferred: Contract) -> None:
    con = duckdb.connect()
    rows = con.sql(CREDIT_SQL).fetchall()
    names = con.sql(CREDIT_SQL).columns
    records = [dict(zip(names, row, strict=True)) for row in rows]
    assert all(found == [] for found in inferred.check_records(records))


def test_shape_pattern_escapes_regex_characters() -> None:
    assert shape_pattern("A.9+a") == r"^[A-Z]\.[0-9]\+[a-z]$"


def test_infer_contract_for_writes_yaml_and_records_lineage(workspace: Workspace) -> None:
    dataset = make_dataset(workspace, CREDIT_SQL, name="credit")
    contract, path = infer_contract_for(workspace, "credit")
    assert path == workspace.root / "contracts" / "credit.yaml"
    assert Contract.load(path) == contract
    (stored,) = workspace.artifacts("contract")
    assert [(role, parent.id) for role, parent in workspace.parents(stored.id)] == [
        ("dataset", dataset.id)]


def test_infer_contract_for_keeps_an_existing_contract(workspace: Workspace) -> None:
    make_dataset(workspace, CREDIT_SQL, name="credit")
    _, path = infer_contract_for(workspace, "credit")
    path.write_text(path.read_text() + "# my edits\n")
    with pytest.raises(ContractError, match="already exists.*pass --force"):
        infer_contract_for(workspace, "credit")
    assert path.read_text().endswith("# my edits\n")
    infer_contract_for(workspace, "credit", force=True)
    assert not path.read_text().endswith("# my edits\n")
