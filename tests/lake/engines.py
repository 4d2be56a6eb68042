"""Reads a zklens lake with real engines and prints what they found as JSON.

Usage: engines.py LAKE KIND SINCE UNTIL

- pyarrow: the schema of one file and of the partitioned dataset, and its row count;
- DuckDB: the session and the zxid with the most events, and the (src_path, src_offset, session, zxid) of the rows of
  the session, zxid and kind + time-range queries, over read_parquet with Hive partitions.
"""
import json
import sys

import duckdb
import pyarrow.dataset as ds
import pyarrow.parquet as pq

lake, kind, since, until = sys.argv[1:5]
out = {}

dataset = ds.dataset(lake, format="parquet", partitioning="hive")
out["rows"] = dataset.count_rows()
one = sorted(dataset.files)[0]
out["file_schema"] = {f.name: str(f.type) for f in pq.read_schema(one)}
attrs = pq.read_schema(one).field("attributes").type
out["attributes"] = [type(attrs).__name__, str(attrs.key_type), str(attrs.item_type)]
out["file_metadata"] = {
    k.decode(): v.decode()
    for k, v in (pq.read_schema(one).metadata or {}).items()
    if not k.startswith(b"ARROW")
}
out["dataset_schema"] = {f.name: str(f.type) for f in dataset.schema}
md = pq.ParquetFile(one).metadata
rg = md.row_group(0)
out["sorting_columns"] = [
    [md.schema.column(c.column_index).name, c.descending] for c in (rg.sorting_columns or [])
]
out["compression"] = sorted({rg.column(i).compression for i in range(rg.num_columns)})

con = duckdb.connect()
src = f"read_parquet('{lake}/**/*.parquet', hive_partitioning = true)"


def keys(where, params):
    rows = con.execute(
        f"SELECT src_path, src_offset, session, zxid FROM {src} WHERE {where} "
        "ORDER BY ALL",
        params,
    ).fetchall()
    return [list(r) for r in rows]




def busiest(col):
    return con.execute(
        f"SELECT {col} FROM {src} WHERE {col} IS NOT NULL "
        f"GROUP BY {col} ORDER BY count(*) DESC, {col} LIMIT 1"
    ).fetchone()[0]


session, zxid = busiest("session"), busiest("zxid")
out["session_id"], out["zxid_id"] = session, zxid
out["session"] = keys("session = ?", [session])
out["zxid"] = keys("zxid = ?", [zxid])
out["kind_range"] = keys(
    "kind = ? AND ts >= CAST(? AS TIMESTAMPTZ) AND ts < CAST(? AS TIMESTAMPTZ)",
    [kind, since, until],
)
out["ensembles"] = [
    r[0] for r in con.execute(f"SELECT DISTINCT ensemble FROM {src} ORDER BY 1").fetchall()
]
print(json.dumps(out))
