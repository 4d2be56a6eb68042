#!/usr/bin/python3
"""A singleton job runner on kazoo (Debian's python3-kazoo), for samples/incident-3: deliberately
naive.

- registers an EPHEMERAL /services/<name>/<instance> whose data names its log (the JSON of
  service.py: `{"service", "instance", "host", "logs": [{"url", "format"}]}`), and registers again
  with its new session after an expiry (kazoo reconnects with a new session by itself);
- takes a kazoo Lock at /locks/<name> with identifier=<instance> (nodes
  `<uuidhex>__lock__NNNNNNNNNN` whose data is the instance) and, once it holds it, holds it for
  good: it logs `acquired /locks/<name>: now PRIMARY (session 0x...)` and then, every 500 ms,
  `batch N done as PRIMARY (session 0x...)`. While it waits it logs `waiting for /locks/<name>`.
- The naive part: nothing stops the batches when the connection is SUSPENDED or the session is
  LOST. After an expiry its lock node is gone (and another instance may hold the lock), yet it
  keeps running batches "as PRIMARY": a split brain, in its own words.

Layout `%(asctime)s %(levelname)s %(name)s: %(message)s`; kazoo's own loggers go to the same file.
On SIGTERM it releases the lock and closes the session; it exits when its parent dies.
"""
import argparse
import json
import logging
import os
import signal
import sys
import threading

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import CancelledError, KazooException, NodeExistsError, ZookeeperError

LAYOUT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--instance", required=True)
    ap.add_argument("--zk", required=True)
    ap.add_argument("--log-file", required=True)
    ap.add_argument("--timeout", type=float, default=4.0, help="session timeout, seconds")
    ap.add_argument("--retry-max-delay", type=float, default=1.0)
    a = ap.parse_args()

    os.makedirs(os.path.dirname(a.log_file), exist_ok=True)
    h = logging.FileHandler(a.log_file)
    h.setFormatter(logging.Formatter(LAYOUT))
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(h)
    log = logging.getLogger(a.name)

    zk = KazooClient(hosts=a.zk, timeout=a.timeout,
                     connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": a.retry_max_delay})
    stop = threading.Event()
    closing = threading.Event()
    lost = threading.Event()
    last_sid = {"v": None}

    def sid():
        s = zk.client_id
        if s:
            last_sid["v"] = s[0]
        return "0x%x" % last_sid["v"] if last_sid["v"] is not None else "none"

    def on_state(state):
        if state == KazooState.LOST:
            if closing.is_set():
                log.info("connection state LOST: session closed by us")
                return
            log.warning("connection state LOST: session 0x%x expired" % (last_sid["v"] or 0))
            lost.set()
        elif state == KazooState.SUSPENDED:
            log.warning("connection state SUSPENDED: disconnected from the ensemble, session %s" % sid())
        else:
            log.info("connection state CONNECTED session 0x%x" % zk.client_id[0])

    zk.add_listener(on_state)
    zk.start(timeout=30)
    me = "/services/%s/%s" % (a.name, a.instance)
    lock_path = "/locks/%s" % a.name

    def register():
        zk.ensure_path("/services/%s" % a.name)
        data = json.dumps({"service": a.name, "instance": a.instance, "host": "127.0.0.1",
                           "logs": [{"url": "file://" + os.path.abspath(a.log_file), "format": "python-logging"}]})
        try:
            zk.create(me, data.encode(), ephemeral=True)
        except NodeExistsError:
            zk.delete(me)
            zk.create(me, data.encode(), ephemeral=True)
        log.info("registered ephemeral znode %s session %s" % (me, sid()))

    register()
    lock = zk.Lock(lock_path, identifier=a.instance)
    held = threading.Event()

    def take():
        log.info("waiting for %s (session %s)" % (lock_path, sid()))
        try:
            lock.acquire()
        except CancelledError:
            return
        except (KazooException, ZookeeperError) as ex:
            log.warning("lock attempt failed: %s" % type(ex).__name__)
            return
        log.info("acquired %s: now PRIMARY (session %s)" % (lock_path, sid()))
        held.set()

    threading.Thread(target=take, name="lock", daemon=True).start()

    def on_term(*_):
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    parent = os.getppid()
    n = 0
    while not stop.wait(0.5):
        if os.getppid() != parent:
            log.warning("parent process %d gone, stopping" % parent)
            break
        if lost.is_set():
            # kazoo has a new session (or will have one): register again. Nothing else: the job
            # keeps running as before (the naive part).
            if zk.state == KazooState.CONNECTED:
                lost.clear()
                try:
                    register()
                except (KazooException, ZookeeperError) as ex:
                    log.warning("re-registration failed: %s" % type(ex).__name__)
                    lost.set()
        if held.is_set():
            n += 1
            log.info("batch %d done as PRIMARY (session %s)" % (n, sid()))
    log.info("shutting down, closing session %s" % sid())
    closing.set()
    try:
        if held.is_set():
            lock.release()
        else:
            lock.cancel()
    except Exception:  # noqa: BLE001 - closing anyway
        pass
    try:
        zk.stop()
        zk.close()
    except Exception:  # noqa: BLE001
        pass


if __name__ == "__main__":
    sys.exit(main())
