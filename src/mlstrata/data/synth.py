"""A synthetic credit-risk table with the flaws real data has, for the demo, tests and benchmarks.

Each row is a loan application in Spain. A hidden creditworthiness score drives the interest rate,
past defaults and the target ``default`` (a logistic model of several features plus that score),
so the target is learnable (ROC AUC around 0.8) but not trivially: the score itself is not a
column, and no column is computed from the target. The data is imperfect on purpose: skewed
incomes with missing values and extreme outliers, impossible ages, rare categories, postal codes
with leading zeros and ~1 % invalid ones, and e-mails and phone numbers as PII.

Generation is seeded and batched (batch ``i`` uses the seed sequence ``[seed, i]``), so the same
seed gives the same bytes and millions of rows never sit in memory at once.

>>> batch = next(credit_batches(rows=5, seed=7))
>>> batch.num_rows, batch.schema.names == list(CREDIT_COLUMNS)
(5, True)
>>> batch.column("application_id").to_pylist()[:2]
['A0000001', 'A0000002']
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .._atomic import atomic_path
from ..errors import DataError
from .engine import quote_literal

__all__ = ["CREDIT_COLUMNS", "CREDIT_FORMATS", "credit_batches", "write_credit"]

CREDIT_SCHEMA = pa.schema([
    ("application_id", pa.string()),
    ("application_date", pa.date32()),
    ("age", pa.int64()),
    ("income", pa.float64()),
    ("employment_years", pa.int64()),
    ("loan_amount", pa.int64()),
    ("term_months", pa.int64()),
    ("interest_rate", pa.float64()),
    ("debt_to_income", pa.float64()),
    ("num_credit_lines", pa.int64()),
    ("previous_defaults", pa.int64()),
    ("home_ownership", pa.string()),
    ("purpose", pa.string()),
    ("region", pa.string()),
    ("postal_code", pa.string()),
    ("email", pa.string()),
    ("phone", pa.string()),
    ("default", pa.int64()),
])
CREDIT_COLUMNS: tuple[str, ...] = tuple(CREDIT_SCHEMA.names)
CREDIT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".jsonl": "json"}

_FIRST_DAY = np.datetime64("2021-01-01")
_DAYS = 3 * 365
_MEDIAN_INCOME = 26_000.0

# (province code, autonomous community, population in hundreds of thousands)
_PROVINCES = [
    (1, "pais_vasco", 3.3), (2, "castilla_la_mancha", 3.9), (3, "valencia", 18.8),
    (4, "andalucia", 7.3), (5, "castilla_y_leon", 1.6), (6, "extremadura", 6.7),
    (7, "baleares", 11.7), (8, "cataluna", 57.0), (9, "castilla_y_leon", 3.6),
    (10, "extremadura", 3.9), (11, "andalucia", 12.4), (12, "valencia", 5.8),
    (13, "castilla_la_mancha", 4.9), (14, "andalucia", 7.8), (15, "galicia", 11.2),
    (16, "castilla_la_mancha", 2.0), (17, "cataluna", 7.8), (18, "andalucia", 9.2),
    (19, "castilla_la_mancha", 2.6), (20, "pais_vasco", 7.2), (21, "andalucia", 5.2),
    (22, "aragon", 2.2), (23, "andalucia", 6.3), (24, "castilla_y_leon", 4.5),
    (25, "cataluna", 4.3), (26, "la_rioja", 3.2), (27, "galicia", 3.3), (28, "madrid", 67.0),
    (29, "andalucia", 16.8), (30, "murcia", 15.1), (31, "navarra", 6.6), (32, "galicia", 3.1),
    (33, "asturias", 10.1), (34, "castilla_y_leon", 1.6), (35, "canarias", 11.3),
    (36, "galicia", 9.4), (37, "castilla_y_leon", 3.3), (38, "canarias", 10.3),
    (39, "cantabria", 5.8), (40, "castilla_y_leon", 1.5), (41, "andalucia", 19.5),
    (42, "castilla_y_leon", 0.9), (43, "cataluna", 8.2), (44, "aragon", 1.3),
    (45, "castilla_la_mancha", 7.0), (46, "valencia", 25.9), (47, "castilla_y_leon", 5.2),
    (48, "pais_vasco", 11.5), (49, "castilla_y_leon", 1.7), (50, "aragon", 9.7),
    (51, "ceuta", 0.8), (52, "melilla", 0.9),
]
_REGION_RISK = {"andalucia": 0.15, "canarias": 0.2, "extremadura": 0.15, "ceuta": 0.2,
                "melilla": 0.2, "pais_vasco": -0.2, "navarra": -0.2, "madrid": -0.1}
# purpose: (probability, log loan-size shift, default log-odds shift)
_PURPOSES = {
    "debt_consolidation": (0.37, 0.1, 0.2), "car": (0.18, 0.3, -0.1),
    "home_improvement": (0.14, 0.4, -0.2), "education": (0.07, 0.0, 0.2),
    "business": (0.07, 0.6, 0.5), "medical": (0.06, -0.3, 0.3), "other": (0.08, -0.2, 0.1),
    "wedding": (0.015, 0.2, 0.0), "vacation": (0.01, -0.5, 0.3),
    "renewable_energy": (0.005, 0.5, -0.3),
}
_PURPOSE_NAMES = np.array(list(_PURPOSES))
_PURPOSE_P, _PURPOSE_SIZE, _PURPOSE_RISK = (
    np.array(column) for column in zip(*_PURPOSES.values(), strict=True)
)
_HOME = np.array(["rent", "own", "mortgage", "other"])
_TERMS = np.array([12, 24, 36, 48, 60])
_FIRST_NAMES = np.array("""maria jose antonio carmen manuel ana francisco laura david lucia juan
    marta javier elena daniel paula carlos sara miguel cristina pablo andrea sergio isabel jorge
    raquel alberto nuria ivan silvia""".split())
_SURNAMES = np.array("""garcia fernandez gonzalez rodriguez lopez martinez sanchez perez gomez
    martin jimenez ruiz hernandez diaz moreno alvarez munoz romero alonso gutierrez navarro torres
    dominguez vazquez ramos gil ramirez serrano blanco molina""".split())
_DOMAINS = np.array(["gmail.com", "hotmail.com", "outlook.com", "yahoo.es", "telefonica.net",
                     "icloud.com", "protonmail.com"])
_DOMAIN_P = [0.45, 0.2, 0.12, 0.08, 0.05, 0.05, 0.05]
_LETTERS = np.array(list("ABCDEFGHJKLMNPRSTUVXYZ"))
_PROVINCE_CODES = np.array([code for code, _, _ in _PROVINCES])
_PROVINCE_REGIONS = np.array([region for _, region, _ in _PROVINCES])
_PROVINCE_RISK = np.array([_REGION_RISK.get(region, 0.0) for _, region, _ in _PROVINCES])
_PROVINCE_P = np.array([people for _, _, people in _PROVINCES]) / sum(p[2] for p in _PROVINCES)


def credit_batches(rows: int, seed: int, batch_size: int = 100_000) -> Iterator[pa.RecordBatch]:
    """Yield ``rows`` synthetic credit applications in record batches of ``batch_size`` rows."""
    for index, start in enumerate(range(0, rows, batch_size)):
        rng = np.random.default_rng([seed, index])
        yield _batch(rng, start, min(batch_size, rows - start))


def write_credit(
    path: Path, rows: int, seed: int, progress: Callable[[int], None] | None = None
) -> Path:
    """Write ``rows`` applications to ``path`` (``.csv``, ``.parquet`` or ``.jsonl``) atomically.

    Batches stream from the generator into DuckDB's single-threaded writer, so memory stays flat
    and the same seed gives byte-identical files. ``progress`` is called with the rows written.
    """
    fmt = CREDIT_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(
            f"cannot write {path}: unknown extension {path.suffix or '(none)'!r}; "
            f"use one of {', '.join(CREDIT_FORMATS)}"
        )
    if rows < 1:
        raise DataError(f"cannot write {path}: rows must be at least 1, got {rows}")
    reader = pa.RecordBatchReader.from_batches(
        CREDIT_SCHEMA, _reporting(credit_batches(rows, seed), progress)
    )
    with duckdb.connect() as con, atomic_path(path) as tmp:
        con.execute("SET threads = 1")
        con.register("credit", reader)
        con.execute(f"COPY credit TO {quote_literal(str(tmp))} (FORMAT {fmt})")
    return path


def _reporting(
    batches: Iterator[pa.RecordBatch], progress: Callable[[int], None] | None
) -> Iterator[pa.RecordBatch]:
    done = 0
    for batch in batches:
        yield batch
        done += batch.num_rows
        if progress is not None:
            progress(done)


def _batch(rng: np.random.Generator, start: int, n: int) -> pa.RecordBatch:
    truth = _applicants(rng, n)
    truth.update(_loans(rng, truth))
    truth["default"] = _defaults(rng, truth)
    columns = _observed(rng, start, truth)
    return pa.RecordBatch.from_arrays([columns[name] for name in CREDIT_COLUMNS],
                                      schema=CREDIT_SCHEMA)


def _applicants(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Who applies: the hidden ``risk`` score, age, job tenure, income, home and province."""
    risk = rng.standard_normal(n)
    age = np.clip(np.round(rng.normal(42, 13, n)), 18, 90).astype(np.int64)
    employment = np.minimum(age - 18, np.round(rng.gamma(2.0, 4.0, n))).astype(np.int64)
    income = np.exp(np.log(_MEDIAN_INCOME) + 0.012 * (age - 42) + 0.015 * employment
                    - 0.15 * risk + rng.normal(0, 0.45, n))
    return {
        "risk": risk, "age": age, "employment": employment, "income": income,
        "home": _home_ownership(rng, age),
        "province": rng.choice(len(_PROVINCES), n, p=_PROVINCE_P),
        "previous": rng.poisson(np.exp(-2.6 + 0.8 * risk)).astype(np.int64),
    }


def _loans(rng: np.random.Generator, truth: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What they ask for, and the rate the lender prices from a noisy view of ``risk``."""
    n = truth["risk"].size
    purpose = rng.choice(_PURPOSE_NAMES.size, n, p=_PURPOSE_P)
    loan = _loan_amount(rng, truth["income"], purpose)
    term = _TERMS[np.clip(np.round((np.log(loan) - np.log(2000)) / np.log(30) * 4
                                   + rng.normal(0, 0.8, n)), 0, 4).astype(np.int64)]
    rate = np.clip(6.5 + 2.3 * (0.8 * truth["risk"] + 0.5 * rng.standard_normal(n))
                   + 0.02 * (term - 36), 2.5, 24.99)
    dti = _debt_to_income(rng, loan, term, rate, truth["income"])
    return {"purpose": purpose, "loan": loan, "term": term, "rate": rate, "dti": dti}


def _defaults(rng: np.random.Generator, truth: dict[str, np.ndarray]) -> np.ndarray:
    """The target, drawn from a logistic model of the true (clean) values and hidden ``risk``."""
    logit = (-2.2 + 1.2 * truth["risk"] + 1.8 * (truth["dti"] - 0.35) + 0.45 * truth["previous"]
             - 0.35 * np.log(truth["income"] / _MEDIAN_INCOME) + 0.4 * (truth["age"] < 25)
             + 0.25 * (truth["employment"] < 1) + 0.2 * (truth["home"] == "rent")
             + 0.25 * (truth["term"] - 36) / 24 + _PURPOSE_RISK[truth["purpose"]]
             + _PROVINCE_RISK[truth["province"]])
    return np.asarray(rng.random(logit.size) < 1 / (1 + np.exp(-logit)), dtype=np.int64)


def _observed(rng: np.random.Generator, start: int, truth: dict[str, np.ndarray]
              ) -> dict[str, pa.Array]:
    """The columns as a lender's system records them: with gaps, typos and PII."""
    n, age, province = truth["age"].size, truth["age"], truth["province"]
    return {
        "application_id": _application_ids(start, n),
        "application_date": pa.array(_FIRST_DAY + rng.integers(0, _DAYS, n)),
        "age": _with_missing(rng, _age_outliers(rng, age), 0.015),
        "income": _with_missing(rng, np.round(_income_outliers(rng, truth["income"]), 2), 0.05),
        "employment_years": _with_missing(rng, truth["employment"], 0.03),
        "loan_amount": pa.array(truth["loan"].astype(np.int64)),
        "term_months": pa.array(truth["term"]),
        "interest_rate": pa.array(np.round(truth["rate"], 2)),
        "debt_to_income": pa.array(np.round(truth["dti"], 3)),
        "num_credit_lines": pa.array(np.minimum(rng.poisson(1 + 0.09 * (age - 18)), 30)),
        "previous_defaults": pa.array(truth["previous"]),
        "home_ownership": pa.array(truth["home"]),
        "purpose": pa.array(_PURPOSE_NAMES[truth["purpose"]]),
        "region": pa.array(_PROVINCE_REGIONS[province]),
        "postal_code": _postal_codes(rng, province),
        "email": _emails(rng, n),
        "phone": _phones(rng, n),
        "default": pa.array(truth["default"]),
    }


def _home_ownership(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """Young applicants rent; older ones own or pay a mortgage."""
    rent = np.clip(0.75 - 0.013 * (age - 18), 0.1, 0.75)
    mortgage = np.clip(0.15 + 0.01 * (age - 18), 0.15, 0.45)
    own = np.clip(1 - rent - mortgage - 0.03, 0, 1)
    cumulative = np.cumsum(np.stack([rent, own, mortgage]), axis=0)
    draw = rng.random(age.size)
    return np.asarray(_HOME[(draw[None, :] > cumulative).sum(axis=0)])


def _loan_amount(rng: np.random.Generator, income: np.ndarray, purpose: np.ndarray) -> np.ndarray:
    log_amount = np.log(9000) + 0.6 * np.log(income / _MEDIAN_INCOME) + _PURPOSE_SIZE[purpose]
    amount = np.exp(log_amount + rng.normal(0, 0.55, income.size))
    return np.asarray(np.clip(np.round(amount / 50) * 50, 500, 80_000))


def _debt_to_income(rng: np.random.Generator, loan: np.ndarray, term: np.ndarray,
                    rate: np.ndarray, income: np.ndarray) -> np.ndarray:
    """Existing debt service plus this loan's annuity, as a fraction of yearly income."""
    monthly = rate / 1200
    payment = loan * monthly / (1 - (1 + monthly) ** -term)
    existing = rng.beta(2, 8, loan.size) * 0.5
    return np.asarray(np.clip(existing + 12 * payment / income, 0, 3))


def _with_missing(rng: np.random.Generator, values: np.ndarray, fraction: float) -> pa.Array:
    return pa.array(values, mask=rng.random(values.size) < fraction)


def _age_outliers(rng: np.random.Generator, age: np.ndarray) -> np.ndarray:
    """About 0.2 % impossible ages, as typing errors leave them (150, 199, 999)."""
    wrong = rng.random(age.size) < 0.002
    return np.where(wrong, rng.choice([150, 199, 999], age.size), age)


def _income_outliers(rng: np.random.Generator, income: np.ndarray) -> np.ndarray:
    """About 0.3 % incomes 20-100 times too large (monthly typed as yearly, extra zeros)."""
    wrong = rng.random(income.size) < 0.003
    return np.where(wrong, income * rng.uniform(20, 100, income.size), income)


def _application_ids(start: int, n: int) -> pa.Array:
    numbers = _text(np.arange(start + 1, start + n + 1))
    return _join("A", pc.utf8_lpad(numbers, 7, "0"))


def _postal_codes(rng: np.random.Generator, province: np.ndarray) -> pa.Array:
    """Spanish postal codes (province + 3 digits, as text); ~1 % invalid in three typical ways:
    a digit lost (``8001``), letters (``KXZRA``) and a province that does not exist (``73012``)."""
    n = province.size
    codes = _PROVINCE_CODES[province] * 1000 + rng.integers(0, 1000, n)
    valid = pc.utf8_lpad(_text(codes), 5, "0")
    letters = _join(*(_LETTERS[rng.integers(0, _LETTERS.size, n)] for _ in range(5)))
    variants = [valid, pc.utf8_slice_codeunits(valid, 1), letters,
                _text(rng.integers(53_000, 100_000, n))]
    return pc.choose(pa.array(rng.choice(4, n, p=[0.99, 0.004, 0.003, 0.003])), *variants)


def _emails(rng: np.random.Generator, n: int) -> pa.Array:
    """``maria.garcia@``, ``maria_garcia@`` or ``mgarcia42@`` at a common mail provider."""
    first = pa.array(_FIRST_NAMES[rng.integers(0, _FIRST_NAMES.size, n)])
    last = pa.array(_SURNAMES[rng.integers(0, _SURNAMES.size, n)])
    initial = pc.utf8_slice_codeunits(first, 0, 1)
    local = pc.choose(pa.array(rng.integers(0, 3, n)), _join(first, ".", last),
                      _join(first, "_", last), _join(initial, last, _text(rng.integers(1, 100, n))))
    domain = pa.array(_DOMAINS[rng.choice(_DOMAINS.size, n, p=_DOMAIN_P)])
    return _with_nulls(rng, _join(local, "@", domain), 0.02)


def _phones(rng: np.random.Generator, n: int) -> pa.Array:
    """Mobile (6xx, 7xx) and landline (9xx) numbers in the formats people actually type."""
    lead = rng.choice(np.array([6, 7, 9]), n, p=[0.75, 0.1, 0.15])
    digits = _text(lead * 10**8 + rng.integers(0, 10**8, n))

    def part(begin: int, end: int) -> pa.Array:
        return pc.utf8_slice_codeunits(digits, begin, end)

    formats = [
        _join("+34 ", part(0, 3), " ", part(3, 6), " ", part(6, 9)),
        _join("+34", digits),
        _join(part(0, 3), " ", part(3, 5), " ", part(5, 7), " ", part(7, 9)),
        _join(part(0, 3), "-", part(3, 6), "-", part(6, 9)),
        digits,
    ]
    style = pa.array(rng.choice(len(formats), n, p=[0.35, 0.2, 0.2, 0.15, 0.1]))
    return _with_nulls(rng, pc.choose(style, *formats), 0.01)


def _text(values: np.ndarray) -> pa.Array:
    return pa.array(values).cast(pa.string())


def _join(*pieces: str | pa.Array) -> pa.Array:
    return pc.binary_join_element_wise(*pieces, "")


def _with_nulls(rng: np.random.Generator, values: pa.Array, fraction: float) -> pa.Array:
    missing = pa.array(rng.random(len(values)) < fraction)
    return pc.if_else(missing, pa.scalar(None, values.type), values)
