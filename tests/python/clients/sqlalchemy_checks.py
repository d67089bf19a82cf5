"""The Superset route: SQLAlchemy through flightsql-dbapi (which pins SQLAlchemy 1.4, hence a
virtualenv of its own, `.venv-flightsql`), against a real gateway.

Run by tests/flight_sql.rs as `python sqlalchemy_checks.py HOST PORT`: the gateway serves one
database, `demo`, holding `orders` (id, name, total) with rows 1 'one' 1.5 and 2 'two' 2.5.
"""

import sys

import flightsql.sqlalchemy  # noqa: F401  (registers the datafusion+flightsql dialect)
import sqlalchemy as sa


def main():
    host, port = sys.argv[1], sys.argv[2]
    engine = sa.create_engine(f"datafusion+flightsql://{host}:{port}?insecure=true")
    with engine.connect() as conn:
        inspector = sa.inspect(conn)
        assert "main" in inspector.get_schema_names(), inspector.get_schema_names()
        tables = inspector.get_table_names(schema="main")
        assert "orders" in tables, tables
        columns = [c["name"] for c in inspector.get_columns("orders", schema="main")]
        assert columns == ["id", "name", "total"], columns
        rows = conn.execute(sa.text("SELECT id, name, total FROM orders ORDER BY id")).fetchall()
        assert [tuple(r) for r in rows] == [(1, "one", 1.5), (2, "two", 2.5)], rows
        # Reflected, then queried through SQLAlchemy's own SQL.
        orders = sa.Table("orders", sa.MetaData(), autoload_with=conn, schema="main")
        got = conn.execute(sa.select(orders.c.name).order_by(orders.c.id)).fetchall()
        assert [r[0] for r in got] == ["one", "two"], got
    print("sqlalchemy checks passed")


if __name__ == "__main__":
    main()
