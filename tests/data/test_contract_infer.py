"""Inferring a contract from a dataset: types, nulls, ranges, categories, patterns, uniqueness."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from mlstrata.contract import ColumnSpec, Contract
from mlstrata.data.contract_infer import infer_contract, infer_contract_for, shape_pattern
from mlstrata.data.validate import validate_target
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


def test_low_cardinality_text_becomes_categories_that_warn(inferred: Contract) -> None:
    """Every model has an "other" level for an unseen category, so it can be scored: a warning."""
    purpose = inferred.columns["purpose"]
    assert purpose.allowed == ["car", "home", "study"] and not purpose.strict
    assert purpose.severity_of("allowed") == "warn"
    assert inferred.columns["comment"].allowed is None


def test_observed_ranges_warn_and_types_nulls_patterns_stay_errors(inferred: Contract) -> None:
    """A finite sample's range is not a law: a new batch reaching past it is scored, with a
    warning; what no model can score (a wrong type, a null where none was seen, a malformed
    code, a duplicate id) stays an error."""
    warned = {(name, rule.kind) for name, spec in inferred.columns.items()
              for rule in spec.rules(name) if rule.severity == "warn"}
    assert warned == {("age", "min"), ("age", "max"), ("income", "min"), ("income", "max"),
                      ("customer_id", "min"), ("customer_id", "max"), ("applied", "min"),
                      ("purpose", "allowed")}
    age = inferred.columns["age"]
    assert [(v.rule, v.severity) for v in Contract(columns={"age": age}).check_record(
        {"age": 99}, include_warnings=True)] == [("max", "warn")]
    errors = {rule.kind for name, spec in inferred.columns.items() for rule in spec.rules(name)
              if rule.severity == "error"}
    assert errors == {"type", "not_null", "pattern", "unique"}
    assert "severity:\n      min: warn\n      max: warn" in inferred.to_yaml()


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


DISCRETE_SQL = """
SELECT (range % 2)::INTEGER AS "default",
       [12, 24, 36, 48, 60][1 + range % 5] AS term_months,
       [0, 1, 2, 5][1 + range % 4] AS late_payments,
       (range % 3) - 1 AS trend,
       range * 3 AS amount
FROM range(100)
"""


def test_discrete_integers_keep_their_observed_bounds() -> None:
    con = duckdb.connect()
    columns = infer_contract(con, con.sql(DISCRETE_SQL), name="loans").columns
    default = columns["default"]  # a 0/1 target: never max 2
    assert (default.min, default.max, default.allowed) == (0, 1, None)
    late = columns["late_payments"]  # counts with gaps: 3 or 4 late payments are plausible
    assert (late.min, late.max, late.allowed) == (0, 5, None)
    trend = columns["trend"]
    assert (trend.min, trend.max) == (-1, 1)
    amount = columns["amount"]  # 100 distinct values: continuous, widened but not below zero
    assert (amount.min, amount.max) == (0, 327)


def test_a_regular_grid_of_integers_becomes_allowed_values() -> None:
    con = duckdb.connect()
    term = infer_contract(con, con.sql(DISCRETE_SQL), name="loans").columns["term_months"]
    assert term.allowed == [12, 24, 36, 48, 60] and term.strict
    assert (term.min, term.max) == (None, None)
    assert [v.rule for v in Contract(columns={"t": term}).check_record({"t": 18})] == ["allowed"]


def test_a_grid_seen_too_rarely_keeps_min_and_max() -> None:
    con = duckdb.connect()
    sql = "SELECT [12, 24, 36][1 + range % 3] AS term FROM range(6)"  # each value seen twice
    term = infer_contract(con, con.sql(sql), name="few").columns["term"]
    assert (term.min, term.max, term.allowed) == (12, 36, None)


PII_SQL = """
SELECT range AS n,
       'h' || lpad(range::VARCHAR, 6, '0') AS email,  -- a stand-in hash with a pattern
       'j***@e***.com' AS phone,
       lpad(range::VARCHAR, 5, '0') AS card,
       lpad(range::VARCHAR, 5, '0') AS zip
FROM range(60)
"""
PII_META = {"pii": [{"column": "email", "kinds": ["email"], "action": "hash"},
                    {"column": "phone", "kinds": ["phone"], "action": "mask"},
                    {"column": "zip", "kinds": ["national_id"], "action": "keep"},
                    {"column": "gone", "kinds": ["iban"], "action": "drop"}]}


def test_hashed_and_masked_columns_get_only_type_and_nullability(workspace: Workspace) -> None:
    make_dataset(workspace, PII_SQL, name="people", extra_meta=PII_META)
    contract, path = infer_contract_for(workspace, "people")
    for name in ("email", "phone"):
        spec = contract.columns[name]
        bare = ColumnSpec(type="text", nullable=False, description=spec.description)
        assert spec == bare  # no pattern, categories, uniqueness or range
        assert "at ingest: only type and nullability are checked" in spec.description
    assert contract.columns["zip"].pattern == "^[0-9]{5}$"  # kept as is: still checked
    assert contract.columns["card"].pattern == "^[0-9]{5}$"
    text = path.read_text()
    assert "PII hashed at ingest" in text and "PII masked at ingest" in text
    raw = {"n": 1, "email": "ana@example.com", "phone": "+34 600 000 000", "card": "00001",
           "zip": "00001"}
    assert Contract.load(path).check_record(raw) == []  # a raw request passes
    assert validate_target(workspace, "people").passed  # and so does the stored data
