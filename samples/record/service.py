#!/usr/bin/python3
"""A simulated service instance using ZooKeeper through kazoo (Debian's python3-kazoo):

- registers an EPHEMERAL znode /services/<name>/<instance> whose data names its log
  (`{"service", "instance", "host", "logs": [{"url", "format"}]}`),
- takes part in an election under /election/<name> (kazoo's Election recipe) and logs every role
  change ("role change: standby -> primary"),
- with --burst N, also writes N items /data/<name>/items/<k> per tick (asynchronously, one
  summary line per tick): load, so that a server down for half a minute falls more than
  ZooKeeper's 500-proposal commit log behind and has to be re-synced with a snapshot,
- writes /data/<name>/counter about twice a second and logs each write with the session id and the
  resulting mzxid,
- logs kazoo's connection states; on session expiry (LOST) it re-registers and re-enters the
  election with its new session.

Text logs use `%(asctime)s %(levelname)s %(name)s: %(message)s`; `--log-format json` writes one
JSON object per line. kazoo's own loggers (kazoo.client, kazoo.protocol.connection) go to the same
file. Other layouts (samples/incident-2, record-incident-2.py), each written by the real library:

- `pythread`: `%(asctime)s %(levelname)s [%(threadName)s] %(name)s - %(message)s` (Python >= 3.10
  names threads `Thread-3 (zk_loop)`);
- `jsonlogger`: python-json-logger's JsonFormatter (Debian's python3-pythonjsonlogger) with
  `%(asctime)s %(levelname)s %(threadName)s %(name)s %(message)s` and the `extra` fields;
- `structlog`: structlog (Debian's python3-structlog) rendering JSON, kazoo's stdlib records
  through its ProcessorFormatter;
- `syslog`: logging.handlers.SysLogHandler to --syslog-address (UDP host:port) with the ident
  `<instance>[<pid>]: ` and `%(levelname)s %(name)s [%(threadName)s] %(message)s`: the file is
  whatever the syslog daemon writes.

`--layout-out FILE` writes the exact layout used (a JSON object: logger, layout) for the manifest.
"""
import argparse
import datetime
import json
import logging
import logging.handlers
import os
import signal
import sys
import threading
import time

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException, NodeExistsError, ZookeeperError


class JsonFormatter(logging.Formatter):
    def format(self, record):
        d = {
            "ts": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k in ("session", "zxid", "path"):
            v = getattr(record, k, None)
            if v is not None:
                d[k] = v
        return json.dumps(d)


class StructlogAdapter:
    """The service's own lines through structlog: `extra` fields become key-value pairs."""

    def __init__(self, logger):
        self.l = logger

    def info(self, msg, extra=None):
        self.l.info(msg, **(extra or {}))

    def warning(self, msg, extra=None):
        self.l.warning(msg, **(extra or {}))


def setup_logging(a):
    """The root handler for --log-format; returns the service's logger and {logger, layout}."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    fmt = a.log_format
    if fmt != "syslog":
        os.makedirs(os.path.dirname(a.log_file), exist_ok=True)
    pyver = "Python %d.%d.%d logging" % sys.version_info[:3]
    if fmt == "json":
        h = logging.FileHandler(a.log_file)
        h.setFormatter(JsonFormatter())
        layout = {"logger": pyver + ", service.py JsonFormatter", "layout": "json: ts level logger msg [session zxid path]"}
    elif fmt == "jsonlogger":
        from pythonjsonlogger import jsonlogger
        import importlib.metadata as md
        pattern = "%(asctime)s %(levelname)s %(threadName)s %(name)s %(message)s"
        h = logging.FileHandler(a.log_file)
        h.setFormatter(jsonlogger.JsonFormatter(pattern))
        layout = {"logger": "python-json-logger %s JsonFormatter (%s)" % (md.version("python-json-logger"), pyver),
                  "layout": pattern}
    elif fmt == "structlog":
        import structlog
        import importlib.metadata as md
        from structlog.processors import CallsiteParameter, CallsiteParameterAdder
        pre = [
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            CallsiteParameterAdder([CallsiteParameter.THREAD_NAME]),
        ]
        structlog.configure(
            processors=[structlog.stdlib.filter_by_level] + pre
            + [structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
            logger_factory=structlog.stdlib.LoggerFactory(),
            wrapper_class=structlog.stdlib.BoundLogger,
            cache_logger_on_first_use=True)
        h = logging.FileHandler(a.log_file)
        h.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer()],
            foreign_pre_chain=pre + [structlog.stdlib.ExtraAdder()]))
        root.addHandler(h)
        return StructlogAdapter(structlog.get_logger(a.name)), {
            "logger": "structlog %s JSONRenderer, stdlib ProcessorFormatter (%s)" % (md.version("structlog"), pyver),
            "layout": "json: add_log_level, add_logger_name, TimeStamper(fmt='iso', utc=True), "
                      "CallsiteParameterAdder([THREAD_NAME]), event"}
    elif fmt == "syslog":
        host, _, port = (a.syslog_address or "").rpartition(":")
        if not host or not port.isdigit():
            raise SystemExit("--log-format syslog needs --syslog-address host:port")
        h = logging.handlers.SysLogHandler(address=(host, int(port)),
                                           facility=logging.handlers.SysLogHandler.LOG_LOCAL0)
        h.ident = "%s[%d]: " % (a.instance, os.getpid())
        pattern = "%(levelname)s %(name)s [%(threadName)s] %(message)s"
        h.setFormatter(logging.Formatter(pattern))
        layout = {"logger": pyver + " SysLogHandler (UDP, facility local0, ident '<instance>[<pid>]: ')",
                  "layout": pattern}
    else:
        pattern = ("%(asctime)s %(levelname)s [%(threadName)s] %(name)s - %(message)s" if fmt == "pythread"
                   else "%(asctime)s %(levelname)s %(name)s: %(message)s")
        h = logging.FileHandler(a.log_file)
        h.setFormatter(logging.Formatter(pattern))
        layout = {"logger": pyver, "layout": pattern}
    root.addHandler(h)
    return logging.getLogger(a.name), layout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--instance", required=True)
    ap.add_argument("--zk", required=True)
    ap.add_argument("--log-file", required=True)
    ap.add_argument("--host", default="127.0.0.1",
                    help="the host its registration names (tests run several hosts on one machine)")
    ap.add_argument("--log-format", choices=["text", "json", "pythread", "jsonlogger", "structlog", "syslog"],
                    default="text")
    ap.add_argument("--syslog-address", default=None, help="host:port of the syslog daemon (UDP)")
    ap.add_argument("--layout-out", default=None, help="write the layout used here (JSON)")
    ap.add_argument("--timeout", type=float, default=4.0, help="session timeout, seconds")
    ap.add_argument("--burst", type=int, default=0, help="extra item writes per tick")
    ap.add_argument("--retry-max-delay", type=float, default=None,
                    help="cap kazoo's reconnect back-off (seconds; default kazoo's 60 s)")
    a = ap.parse_args()

    log, layout = setup_logging(a)
    # What a registration says of its log: a format name zklens ships, or the layout itself.
    reg_format = {"json": "jsonl", "text": "python-logging", "jsonlogger": "jsonl", "structlog": "jsonl",
                  "syslog": "syslog"}.get(a.log_format, layout["layout"])
    if a.layout_out:
        with open(a.layout_out, "w") as f:
            json.dump(layout, f)

    retry = None
    if a.retry_max_delay is not None:
        # Reconnect promptly after an outage (kazoo's back-off otherwise grows to a minute, so a
        # client may come back after its session timeout even though the ensemble is serving).
        retry = {"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": a.retry_max_delay}
    zk = KazooClient(hosts=a.zk, timeout=a.timeout, connection_retry=retry)
    stop = threading.Event()
    closing = threading.Event()  # set right before we close the session ourselves
    role = {"now": "standby"}
    lost = threading.Event()

    last_sid = {"v": None}

    def sid():
        # kazoo forgets the session id while disconnected: keep the last one known.
        s = zk.client_id
        if s:
            last_sid["v"] = s[0]
        return "0x%x" % last_sid["v"] if last_sid["v"] is not None else "none"

    def on_state(state):
        # Called on kazoo's thread: only log and flag, never block.
        if state == KazooState.LOST:
            if closing.is_set():
                log.info("connection state LOST: session closed by us", extra={"session": sid()})
                return
            log.warning("connection state LOST: session 0x%x expired" % (last_sid["v"] or 0), extra={"session": sid()})
            lost.set()
        elif state == KazooState.SUSPENDED:
            log.warning("connection state SUSPENDED: disconnected from the ensemble, session %s" % sid())
        else:
            log.info("connection state CONNECTED session 0x%x" % zk.client_id[0], extra={"session": sid()})

    zk.add_listener(on_state)
    zk.start(timeout=30)
    base = "/services/%s" % a.name
    me = "%s/%s" % (base, a.instance)
    counter = "/data/%s/counter" % a.name

    def register():
        zk.ensure_path(base)
        zk.ensure_path(counter)
        for k in range(a.burst):
            zk.ensure_path("/data/%s/items/%d" % (a.name, k))
        data = json.dumps({
            "service": a.name, "instance": a.instance, "host": a.host,
            "logs": [{"url": "file://" + os.path.abspath(a.log_file),
                      "format": reg_format}],
        }).encode()
        try:
            zk.create(me, data, ephemeral=True)
        except NodeExistsError:
            zk.delete(me)
            zk.create(me, data, ephemeral=True)
        log.info("registered ephemeral znode %s session %s" % (me, sid()), extra={"session": sid(), "path": me})

    election = {"obj": None}

    role_lock = threading.Lock()

    def step_down():
        with role_lock:
            if role["now"] == "primary":
                held = role.get("session") or sid()
                log.info("role change: primary -> standby (session %s)" % held, extra={"session": held})
                role["now"] = "standby"

    def lead():
        held = sid()  # the session holding the role (the id changes if it expires)
        role["session"] = held
        log.info("role change: %s -> primary (session %s)" % (role["now"], held), extra={"session": held})
        role["now"] = "primary"
        # Conservative: give the role up as soon as the connection is not CONNECTED (SUSPENDED
        # included), as Curator's recipes recommend.
        while not stop.is_set() and not lost.is_set() and zk.state == KazooState.CONNECTED:
            time.sleep(0.2)
        step_down()

    def run_election():
        while not stop.is_set():
            e = zk.Election("/election/%s" % a.name, a.instance)
            election["obj"] = e
            try:
                e.run(lead)
            except (KazooException, ZookeeperError) as ex:
                log.warning("election interrupted: %s" % type(ex).__name__)
            step_down()
            time.sleep(0.5)

    register()
    threading.Thread(target=run_election, daemon=True).start()

    def on_term(*_):
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    parent = os.getppid()  # the recording script: when it dies, so do we (no strays)
    n = 0
    while not stop.is_set():
        if os.getppid() != parent:
            log.warning("parent process %d gone, stopping" % parent)
            break
        if lost.is_set():
            lost.clear()
            # kazoo reconnects with a new session by itself; wait for it, then re-register.
            for _ in range(200):
                if zk.state == KazooState.CONNECTED or stop.is_set():
                    break
                time.sleep(0.1)
            try:
                register()
                log.info("re-registered after session expiry, new session %s" % sid(), extra={"session": sid()})
                if election["obj"] is not None:
                    election["obj"].cancel()
            except (KazooException, ZookeeperError) as ex:
                log.warning("re-registration failed: %s" % type(ex).__name__)
                lost.set()
        try:
            n += 1
            st = zk.set(counter, str(n).encode())
            log.info("wrote %s version=%d mzxid=0x%x session %s" % (counter, st.version, st.mzxid, sid()),
                     extra={"session": sid(), "zxid": "0x%x" % st.mzxid, "path": counter})
        except (KazooException, ZookeeperError) as ex:
            log.warning("write to %s failed: %s" % (counter, type(ex).__name__))
        if a.burst and zk.state == KazooState.CONNECTED:
            try:
                rs = [zk.set_async("/data/%s/items/%d" % (a.name, k), str(n).encode()) for k in range(a.burst)]
                last = max(r.get(timeout=5).mzxid for r in rs)
                log.info("wrote %d items under /data/%s/items last mzxid=0x%x session %s"
                         % (a.burst, a.name, last, sid()), extra={"session": sid(), "zxid": "0x%x" % last})
            except Exception as ex:  # noqa: BLE001 - any failure of the batch is just logged
                log.warning("item writes failed: %s" % type(ex).__name__)
        stop.wait(0.5)
    log.info("shutting down, closing session %s" % sid(), extra={"session": sid()})
    step_down()
    closing.set()
    try:
        zk.stop()
        zk.close()
    except Exception:
        pass


if __name__ == "__main__":
    sys.exit(main())
