"""Reads a zklens lake with a real Apache Spark and prints what it found as JSON.

Usage: spark.py LAKE KIND SINCE UNTIL

Spark runs locally (`local[2]`: one JVM that PySpark starts and this script stops and waits
for; PySpark from PyPI, .ci/requirements-lake.txt; it needs a Java 17+ `java` in JAVA_HOME
or on PATH) and reads the lake the way a Spark user would, with a plain
`spark.read.parquet(LAKE)`: partition discovery adds `ensemble` and `date` from the
`ensemble=NAME/date=YYYY-MM-DD` directories. It prints, in the shape tests/lake/engines.py
prints DuckDB's answers (so tests/lake.rs compares both with `zklens query` the same way):

- `spark_version`; `schema`: each column's Spark type class (`ts` TimestampType, `session`
  and `zxid` LongType, `epoch` IntegerType, ...), `attributes`: ["MapType", key, value];
- `rows`: the row count; `ensembles`: the distinct ensembles, sorted;
- `session_id`, `zxid_id`: the session and the zxid with the most events (Java's signed
  longs, as stored), ties to the smallest;
- `session`, `zxid`, `kind_range`: the [src_path, src_offset, session, zxid] of the rows with
  that session, that zxid, and `kind = KIND AND SINCE <= ts < UNTIL`, sorted;
- `seconds`: how long Spark took to start, to answer, and in all.
"""
import json
import os
import sys
import time

t0 = time.monotonic()
lake, kind, since, until = sys.argv[1:5]

# Before pyspark starts the JVM: bind to loopback (no "resolves to a loopback address"
# warning, no DNS look-up of the host name). Logging: log4j2.properties beside this file,
# errors only, to stderr (stdout is the JSON); Spark's default profile says WARN and more.
os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
log4j2 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")

from pyspark import SparkContext  # noqa: E402
from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import functions as F  # noqa: E402

spark = None
out = {}
try:
    spark = (
        SparkSession.builder.master("local[2]")
        .appName("zklens-lake-test")
        # Small and quiet: a 3.6k-row lake needs no more than this, and the two cores are shared.
        .config("spark.driver.memory", "512m")
        # A short-lived JVM: C1 only and the serial collector start faster than C2 + G1.
        .config(
            "spark.driver.extraJavaOptions",
            "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
            f"-Dlog4j2.configurationFile=file:{log4j2}",
        )
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        # Two shuffle partitions, not 200: every GROUP BY below is a shuffle.
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    started = time.monotonic()
    out["spark_version"] = spark.version
    df = spark.read.parquet(lake)
    out["schema"] = {f.name: type(f.dataType).__name__ for f in df.schema.fields}
    attrs = df.schema["attributes"].dataType
    out["attributes"] = [
        type(attrs).__name__,
        type(attrs.keyType).__name__,
        type(attrs.valueType).__name__,
    ]
    out["rows"] = df.count()
    ensembles = df.select("ensemble").distinct().orderBy("ensemble").collect()
    out["ensembles"] = [r[0] for r in ensembles]

    def keys(cond):
        rows = (
            df.where(cond)
            .select("src_path", "src_offset", "session", "zxid")
            .orderBy("src_path", "src_offset", "session", "zxid")
            .collect()
        )
        return [list(r) for r in rows]

    def busiest(col):
        return (
            df.where(F.col(col).isNotNull())
            .groupBy(col)
            .count()
            .orderBy(F.col("count").desc(), F.col(col))
            .first()[0]
        )

    session, zxid = busiest("session"), busiest("zxid")
    out["session_id"], out["zxid_id"] = session, zxid
    out["session"] = keys(F.col("session") == F.lit(session))
    out["zxid"] = keys(F.col("zxid") == F.lit(zxid))
    # The bounds are RFC 3339 instants; Spark's cast reads the zone in them ("Z": UTC).
    out["kind_range"] = keys(
        (F.col("kind") == kind)
        & (F.col("ts") >= F.lit(since).cast("timestamp"))
        & (F.col("ts") < F.lit(until).cast("timestamp"))
    )
finally:
    if spark is not None:
        spark.stop()
    # The JVM would exit by itself once this process is gone (its stdin closes); close it
    # here and wait, so that when this script exits, Spark is gone too, its temporary
    # directories removed.
    gateway = SparkContext._gateway
    if gateway is not None and getattr(gateway, "proc", None) is not None:
        gateway.shutdown()
        gateway.proc.stdin.close()
        gateway.proc.wait(timeout=60)
done = time.monotonic()
out["seconds"] = {
    "start": round(started - t0, 2),
    "queries": round(done - started, 2),
    "total": round(done - t0, 2),
}
print(json.dumps(out))
