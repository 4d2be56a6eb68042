"""Runs SQL statements with DuckDB over a zklens lake and prints each one's rows as JSON.

Usage: duckdb_sql.py LAKE < statements.json

The statements (a JSON list of strings) read the view `events`: the lake's Parquet files with
their Hive partition columns (`ensemble`, `date`), as `zklens sql --lake LAKE` sees them. The
output is a JSON list, one list of rows per statement, each row an object from column name to
value (integers and strings; anything else as its string).
"""
import json
import sys

import duckdb

lake = sys.argv[1]
statements = json.load(sys.stdin)
con = duckdb.connect()
con.execute(
    f"CREATE VIEW events AS SELECT * FROM read_parquet('{lake}/**/*.parquet', hive_partitioning = true)"
)


def plain(v):
    if v is None or isinstance(v, (int, str)):
        return v
    return str(v)


out = []
for s in statements:
    cur = con.execute(s)
    names = [d[0] for d in cur.description]
    out.append([{n: plain(v) for n, v in zip(names, row)} for row in cur.fetchall()])
print(json.dumps(out))
