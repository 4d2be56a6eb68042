"""Sessions expired per new leader, from a zklens event lake, with Apache Spark.

For each ensemble and each epoch of it: the leader of that epoch, and the sessions that leader
expired while it led. Over a lake of many ensembles (`zklens export --out LAKE`, one
`ensemble=NAME` partition each), one table answers "which failovers cost sessions, where".

Run it with Spark's own launcher, on a cluster or locally:

    spark-submit examples/spark/expired_per_leader.py LAKE [--json]

or with plain Python where PySpark is installed (`pip install pyspark`, and a `java` on PATH
or in JAVA_HOME; tested with PySpark 4.3.0 on Java 17), which starts a small local Spark
(`local[2]`) itself:

    python examples/spark/expired_per_leader.py LAKE [--json]

LAKE is any path Spark reads (a directory, `s3a://...`, `hdfs://...`). The table goes to
standard output, sorted by ensemble and epoch; `--json` prints it as a JSON array instead, one
object per (ensemble, epoch): `ensemble`, `epoch`, `leader` (node name), `leader_myid`,
`formed_at`, `sessions_expired` (a count), `sessions` (ids as ZooKeeper prints them,
"0x..." hex, sorted) and `expiries` (per session: `at`, `close_zxid`, and whether it was
`committed` and/or `logged`).

What it reads (schema zklens.event.v1; `ensemble` comes from the partition directories):

- the leaders: `kind = 'quorum.formed'`, the line a leader logs once a quorum of followers
  has synced with it ("Have quorum of supporters, sids: [...]; starting up and setting last
  processed zxid: 0x<epoch>00000000"). Its `node` is the leader, `epoch` the epoch it leads,
  `myid` its server id, `ts` when the epoch started. (`election.leading`, "LEADING", names
  the same node earlier but carries no epoch: the quorum line is the one that does.) An
  epoch lasts until the next epoch of the same ensemble is formed.
- the expiries, from either of two sources, so that a lake with only the logs, or only the
  transaction logs, still answers:
  - committed: `kind = 'txn.closeSession' AND state = 'expired'`, the closeSession
    transaction the leader's session tracker proposes when a session times out (a client's
    own close has a non-zero cxid and `state = 'closed'`). Its `epoch` is the zxid's upper
    32 bits, so the epoch whose leader proposed it; `session`, `zxid`, `ts`.
  - logged: `kind = 'session.expired'` ("Expiring session 0x..., timeout of N ms
    exceeded") logged by that epoch's leader (`node` = the leader) between its `quorum.formed`
    and the next epoch's. Lines from other nodes are not the leader's doing and are left out.
  A session counts once per epoch whichever sources saw it. Client-side lines
  (`client.session_expired`) are not expiries by a leader and are not read.

An epoch with no expiry shows 0; an expiry in an epoch whose leader's quorum line is not in
the lake shows the leader as "?" (null in JSON). `--timings` says on stderr how long Spark
took to start and to answer. Run with plain `python`, Spark logs errors only
(log4j2.properties beside this file); with spark-submit, pass `--driver-java-options
-Dlog4j2.configurationFile=file:examples/spark/log4j2.properties` for the same.
"""
import argparse
import json
import os
import sys
import time

from pyspark import SparkContext
from pyspark.sql import SparkSession

QUERY = """
WITH leaders AS (
  SELECT ensemble, epoch, node AS leader, first(myid) AS leader_myid, min(ts) AS formed_at
  FROM events
  WHERE kind = 'quorum.formed' AND epoch IS NOT NULL
  GROUP BY ensemble, epoch, node
),
terms AS (
  SELECT *, lead(formed_at) OVER (PARTITION BY ensemble ORDER BY epoch, formed_at) AS until
  FROM leaders
),
committed AS (
  SELECT ensemble, epoch, session, min(ts) AS at, min(zxid) AS zxid
  FROM events
  WHERE kind = 'txn.closeSession' AND state = 'expired' AND session IS NOT NULL
  GROUP BY ensemble, epoch, session
),
logged AS (
  SELECT e.ensemble, t.epoch, e.session, min(e.ts) AS at
  FROM events e
  JOIN terms t
    ON e.ensemble = t.ensemble AND e.node = t.leader
   AND e.ts >= t.formed_at AND (t.until IS NULL OR e.ts < t.until)
  WHERE e.kind = 'session.expired' AND e.session IS NOT NULL
  GROUP BY e.ensemble, t.epoch, e.session
),
expiries AS (
  SELECT coalesce(c.ensemble, g.ensemble) AS ensemble,
         coalesce(c.epoch, g.epoch) AS epoch,
         coalesce(c.session, g.session) AS session,
         least(c.at, g.at) AS at,
         c.zxid AS close_zxid,
         c.session IS NOT NULL AS committed,
         g.session IS NOT NULL AS logged
  FROM committed c
  FULL OUTER JOIN logged g
    ON c.ensemble = g.ensemble AND c.epoch = g.epoch AND c.session = g.session
)
SELECT coalesce(l.ensemble, x.ensemble) AS ensemble,
       coalesce(l.epoch, x.epoch) AS epoch,
       l.leader,
       l.leader_myid,
       date_format(l.formed_at, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX") AS formed_at,
       count(x.session) AS sessions_expired,
       collect_list(
         CASE WHEN x.session IS NOT NULL THEN named_struct(
           'session', concat('0x', lower(hex(x.session))),
           'at', date_format(x.at, "yyyy-MM-dd'T'HH:mm:ss.SSSXXX"),
           'close_zxid', CASE WHEN x.close_zxid IS NOT NULL
                              THEN concat('0x', lower(hex(x.close_zxid))) END,
           'committed', x.committed,
           'logged', x.logged) END
       ) AS expiries
FROM leaders l
FULL OUTER JOIN expiries x
  ON l.ensemble = x.ensemble AND l.epoch = x.epoch
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3
"""


def spark_session():
    builder = SparkSession.builder.appName("zklens-expired-per-leader")
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # Plain `python`: no spark-submit chose a master; start a small local Spark (C1 only
        # and the serial collector: a short-lived JVM starts faster), quiet (log4j2.properties
        # beside this file: errors only, on stderr).
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
        log4j2 = os.path.join(os.path.dirname(os.path.abspath(__file__)), "log4j2.properties")
        builder = (
            builder.master("local[2]")
            .config("spark.driver.memory", "512m")
            .config(
                "spark.driver.extraJavaOptions",
                "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
                f"-Dlog4j2.configurationFile=file:{log4j2}",
            )
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "2")
        )
    # Times in the output are UTC, whatever the machine's zone.
    return builder.config("spark.sql.session.timeZone", "UTC").getOrCreate()


def stop(spark):
    spark.stop()
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        # The JVM this process started exits once its stdin closes: close it and wait, so that
        # Spark is gone (its temporary directories removed) when this script returns.
        gateway = SparkContext._gateway
        if gateway is not None:
            gateway.shutdown()
            gateway.proc.stdin.close()
            gateway.proc.wait(timeout=60)


def table(rows):
    head = ["ensemble", "epoch", "leader", "sessions_expired", "sessions"]
    cells = [
        [r["ensemble"], str(r["epoch"]), r["leader"] or "?", str(r["sessions_expired"])]
        + [" ".join(r["sessions"])]
        for r in rows
    ]
    widths = [max(len(c[i]) for c in [head] + cells) for i in range(len(head))]
    for c in [head] + cells:
        print("  ".join(v.ljust(w) for v, w in zip(c, widths)).rstrip())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("lake", help="the lake `zklens export --out` wrote")
    ap.add_argument("--json", action="store_true", help="print a JSON array, not a table")
    ap.add_argument("--timings", action="store_true", help="say on stderr how long Spark took")
    args = ap.parse_args()

    t0 = time.monotonic()
    spark = spark_session()
    started = time.monotonic()
    try:
        spark.read.parquet(args.lake).createOrReplaceTempView("events")
        rows = []
        for r in spark.sql(QUERY).collect():
            expiries = sorted(
                (e.asDict() for e in r["expiries"]), key=lambda e: int(e["session"], 16)
            )
            rows.append(
                {
                    "ensemble": r["ensemble"],
                    "epoch": r["epoch"],
                    "leader": r["leader"],
                    "leader_myid": r["leader_myid"],
                    "formed_at": r["formed_at"],
                    "sessions_expired": r["sessions_expired"],
                    "sessions": [e["session"] for e in expiries],
                    "expiries": expiries,
                }
            )
    finally:
        stop(spark)
    if args.timings:
        done = time.monotonic()
        print(
            f"spark started in {started - t0:.1f} s, answered and stopped in "
            f"{done - started:.1f} s",
            file=sys.stderr,
        )
    if args.json:
        json.dump(rows, sys.stdout, indent=2)
        print()
    else:
        table(rows)


if __name__ == "__main__":
    main()
