"""The test PostgreSQL server really runs and answers SQL."""

from __future__ import annotations

import psycopg

from ._postgres import PostgresServer


def test_server_answers_queries(postgres: PostgresServer) -> None:
    with psycopg.connect(postgres.url) as con:
        assert con.execute("SELECT 40 + 2").fetchone() == (42,)
