#!/usr/bin/python3
"""Drives a real ZooKeeper server (Debian's package, standalone, loopback) hard enough to write a
large transaction log, then copies the log files out:

    /usr/bin/python3 benches/gen-txnlog.py OUT_DIR [--txns 120000] [--port 24810]

Writes are asynchronous kazoo creates, setData and deletes across a few sessions, so the log holds
a realistic mix (createSession, create, setData, delete, multi, closeSession). Needs `zookeeper`
and `python3-kazoo`. The files keep their 64 MiB preallocated size (that is what is benchmarked).
"""
import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "harness"))
import zkharness  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--txns", type=int, default=120000)
    ap.add_argument("--port", type=int, default=24810)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="zklens-txngen.")
    try:
        zkharness.start(work, servers=1, base_port=a.port, tick=500,
                        extra=["snapCount=100000000", "zookeeper.commitLogCount=500"])
        conn = zkharness.connect_string(work)
        clients = [KazooClient(hosts=conn, timeout=10) for _ in range(4)]
        for c in clients:
            c.start(timeout=30)
        clients[0].ensure_path("/bench")
        done = 0
        n = 0
        t0 = time.time()
        pending = []
        while done < a.txns:
            c = clients[n % len(clients)]
            base = "/bench/n%07d" % n
            # one session per path: ZooKeeper keeps a session's requests in order
            pending.append(c.create_async(base, b"x" * 32))
            pending.append(c.set_async(base, b"y" * 48))
            done += 2
            if n % 3 == 0:
                pending.append(c.delete_async(base))
                done += 1
            n += 1
            if len(pending) >= 600:
                for f in pending:
                    try:
                        f.get(timeout=30)
                    except Exception:
                        pass
                pending = []
            if n % 2000 == 0:
                t = c.transaction()
                t.create("/bench/m%07d" % n, b"z")
                t.check("/bench", 0)
                try:
                    t.commit()
                except Exception:
                    pass
                done += 1
        for f in pending:
            try:
                f.get(timeout=30)
            except Exception:
                pass
        for c in clients:
            c.stop()
            c.close()
        dt = time.time() - t0
        zkharness.stop_all(work)
        os.makedirs(a.out, exist_ok=True)
        vdir = os.path.join(work, "zk1", "data", "version-2")
        for f in sorted(os.listdir(vdir)):
            if f.startswith("log."):
                shutil.copy(os.path.join(vdir, f), os.path.join(a.out, f))
        print("%d txns written in %.1f s into %s" % (done, dt, a.out))
    finally:
        zkharness.stop_all(work)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
