#!/usr/bin/python3
"""Records samples/incident-2 (or, with --profile zk34, samples/zk34) on a real 3-server ZooKeeper
ensemble with real client services, each logging through a real logging library in a layout
zklens does not ship, and writes the manifest of what the files are and what happened.

    /usr/bin/python3 samples/record/record-incident-2.py                 # ~75 s -> samples/incident-2
    /usr/bin/python3 samples/record/record-incident-2.py --profile zk34 --zk34-jars DIR
                                                                        # ~60 s -> samples/zk34

Needs (Debian 12 packages): zookeeper, python3-kazoo, python3-structlog, python3-pythonjsonlogger,
rsyslog, libcurator-recipes-java, liblogback-java, a JDK with javac. /usr/bin/python3 is the
interpreter (Debian's kazoo). --profile zk34 runs ZooKeeper 3.4.6 instead of Debian's 3.8: its
jars are the ones pyspark 2.4.8 bundles (no Maven here; PyPI has them), fetched with
`bash samples/record/zk34-jars.sh DIR` (see there).

profile incident-2 (ports base+1..3, quorum base+101..103, election base+201..203, base 23910):
  servers  zk1: log4j `%d{yyyy-MM-dd'T'HH:mm:ss.SSSZ} %-5p [%t] %c{1}:%L - %m%n`
           zk2: log4j `[%t] %d{ISO8601} %-5p %c{1}:%L - %m%n` (thread first)
           zk3: upstream `%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`
  services (session timeout 4 s) -> files of the sample
           calc-a, calc-b  kazoo, `%(asctime)s %(levelname)s [%(threadName)s] %(name)s - %(message)s`,
                           election /election/calc                        -> apps/calc-a.log, apps/calc-b.log
           display-1       kazoo, structlog JSON                          -> apps/display-1.log
           store-1         kazoo, python-json-logger                      -> store-1/logs/store-1.json
           audit-1         kazoo, SysLogHandler -> rsyslogd (UDP in, traditional file format)
                                                                          -> audit-1/logs/syslog
           ledger-1        Java, Curator 5.4 LeaderLatch, logback
                           `%d{yyyy-MM-dd HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n`
                                                                          -> ledger-1/logs/ledger-1.log
profile zk34 (base 24910): three ZooKeeper 3.4.6 servers in 3.4's default layout
  `%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`; calc-a, calc-b (kazoo, the layout
  zklens ships, `%(asctime)s %(levelname)s %(name)s: %(message)s`) -> calc-X/logs/calc-X.log

Steps (both profiles; the driver measures each outcome on the ensemble itself, as
tests/harness/scenario.py does: leaders from `srvr`, epochs from the leader's zxid, sessions from
the znodes' ephemeralOwner, primaries from the lowest election node):
  1. start; every service registers and enters its election (calc-a first: the calc primary)
  2. kill-leader: kill -9 the leader; wait for the next one (calc-a gives the role up on
     SUSPENDED, so calc-b becomes calc primary)
  3. stall-client: SIGSTOP the calc primary (and ledger-1, the Curator service) for 10 s,
     past their 4 s session timeout: the leader expires the sessions, the other calc instance
     becomes primary; SIGCONT: they register again with new sessions
  4. rejoin: restart the killed server; it syncs with the leader
  5. services stop (sessions closed), servers stop (SIGTERM), rsyslogd stops; files collected
     (txn logs and snapshots gzip-compressed), then the facts are read back from the servers'
     own logs (epochs and their leaders, elections, expiries) and the services' own logs (role
     changes) and checked against what the driver measured. A disagreement fails the recording.

Output: the sample directory (replaced), SAMPLE.manifest.toml beside it (every file with its node,
logger and layout; the steps; the incidents zklens is expected to report) and SAMPLE.timeline.txt.
On any failure everything started is killed, the work dir is kept, the exit status is 1.
"""
import argparse
import calendar
import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "harness"))
import zkharness as H  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoNodeError  # noqa: E402

SESSION_TIMEOUT_S = 4
TICK_MS = 500
CLIENT_STALL_S = 10.0
QUIET_S = 12.0  # between an epoch's formation and the next step (incident windows stay apart)
GAP_S = 8.0

ISO_T_Z = "%d{yyyy-MM-dd'T'HH:mm:ss.SSSZ} %-5p [%t] %c{1}:%L - %m%n"
THREAD_FIRST = "[%t] %d{ISO8601} %-5p %c{1}:%L - %m%n"
LOGBACK = "%d{yyyy-MM-dd HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n"
PYTHREAD = "%(asctime)s %(levelname)s [%(threadName)s] %(name)s - %(message)s"

ZK34_JARS = ["zookeeper-3.4.6.jar", "log4j-1.2.17.jar", "slf4j-api-1.7.16.jar", "slf4j-log4j12-1.7.16.jar"]
CURATOR_CP = ["/usr/share/java/curator-recipes.jar", "/usr/share/java/logback-classic.jar",
              "/usr/share/java/logback-core.jar"]


class RecordError(Exception):
    pass


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


def wait_for(what, pred, timeout, every=0.2):
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            v = pred()
        except (Exception, H.HarnessError) as ex:  # noqa: BLE001 - a failed poll is retried
            v, last = None, ex
        if v:
            return v
        time.sleep(every)
    raise RecordError("timed out after %.0f s waiting for %s%s"
                      % (timeout, what, " (last error: %r)" % last if last else ""))


def pkg_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "?"


def java_version():
    try:
        out = subprocess.run(["java", "-version"], capture_output=True, text=True).stderr
        return out.splitlines()[0].strip()
    except (OSError, IndexError):
        return "?"


# ---- time stamps as the files have them (the driver knows each file's layout) ---------------------
ISO_RE = re.compile(r"(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(?:[,.](\d{1,6}))?(Z|[+-]\d\d:?\d\d)?")
SYSLOG_RE = re.compile(r"^([A-Z][a-z]{2}) +(\d{1,2}) (\d\d:\d\d:\d\d) ")
MONTHS = {m: i + 1 for i, m in enumerate("Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split())}


def line_time(line, year):
    """The line's own time as RFC 3339 UTC (every recording runs with TZ=UTC), or None."""
    if line.startswith("{"):
        try:
            d = json.loads(line)
        except ValueError:
            d = {}
        for k in ("timestamp", "asctime", "ts"):
            if isinstance(d.get(k), str):
                line = d[k]
                break
    m = ISO_RE.search(line)
    if m:
        frac = (m.group(3) or "0").ljust(3, "0")[:3]
        return "%sT%s.%sZ" % (m.group(1), m.group(2), frac)
    m = SYSLOG_RE.match(line)
    if m:
        return "%04d-%02d-%02dT%s.000Z" % (year, MONTHS[m.group(1)], int(m.group(2)), m.group(3))
    return None


def message_of(line):
    if line.startswith("{"):
        try:
            d = json.loads(line)
            return str(d.get("event") or d.get("message") or d.get("msg") or "")
        except ValueError:
            pass
    return line


# ---- the manifest: a small TOML writer (strings as JSON-escaped basic strings) --------------------
def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=True)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join("%s = %s" % (toml_key(k), toml_value(x)) for k, x in v.items() if x is not None) + " }"
    raise TypeError("no TOML for %r" % (v,))


def toml_key(k):
    return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k)


def to_toml(doc, header):
    out = ["# " + h for h in header] + [""]
    for k, v in doc.items():
        if v is None or (isinstance(v, list) and v and all(isinstance(x, dict) for x in v)) or isinstance(v, dict):
            continue
        out.append("%s = %s" % (toml_key(k), toml_value(v)))
    for k, v in doc.items():
        if isinstance(v, dict):
            out += ["", "[%s]" % toml_key(k)]
            out += ["%s = %s" % (toml_key(a), toml_value(b)) for a, b in v.items() if b is not None]
    for k, v in doc.items():
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            for item in v:
                out += ["", "[[%s]]" % toml_key(k)]
                out += ["%s = %s" % (toml_key(a), toml_value(b)) for a, b in item.items() if b is not None]
    return "\n".join(out) + "\n"


class Recorder:
    def __init__(self, a):
        self.a = a
        self.profile = a.profile
        self.work = tempfile.mkdtemp(prefix="zklens-record-%s." % a.profile)
        self.ens = os.path.join(self.work, "ens")
        self.procs = {}      # instance -> Popen
        self.services = {}   # instance -> dict(service, kind, file (relative to the sample), ...)
        self.layouts = {}    # server id -> (logger, pattern)
        self.timeline = []
        self.steps = []
        self.obs = None
        self.rsyslog = None
        self.last_formed_ms = 0
        self.last_step_ms = 0
        self.year = time.gmtime().tm_year

    def mark(self, msg):
        line = "%s  %s" % (iso(now_ms()), msg)
        self.timeline.append(line)
        print(line, flush=True)

    # ---- the ensemble ---------------------------------------------------------------------------
    def meta(self):
        return H.load(self.ens)

    def srvr(self, n):
        out = {}
        for line in H.four(self.meta(), n, "srvr").splitlines():
            if ":" in line:
                k, v = line.split(":", 1)
                out[k.strip()] = v.strip()
        return out

    def epoch(self, n):
        z = self.srvr(n).get("Zxid")
        if not z:
            raise RecordError("zk%d did not answer srvr with a Zxid" % n)
        return int(z, 16) >> 32

    def leader(self, exclude=(), timeout=60.0):
        return H.leader(self.ens, timeout=timeout, exclude=exclude)

    def new_leader(self, old_epoch, exclude=(), timeout=60.0):
        def poll():
            n = self.leader(exclude=exclude, timeout=2.0)
            e = self.epoch(n)
            return (n, e, now_ms()) if e > old_epoch else None
        return wait_for("a leader of an epoch after %d" % old_epoch, poll, timeout)

    def log_path(self, n):
        return os.path.join(self.ens, "zk%d" % n, "logs", "zookeeper.log")

    def log_size(self, n):
        try:
            return os.path.getsize(self.log_path(n))
        except OSError:
            return 0

    def sync_mode(self, leader, learner, offset):
        """How the leader synced `learner`, from its log since offset (3.8 names the sid; 3.4
        does not, but only one learner syncs at a time here)."""
        with open(self.log_path(leader), errors="replace") as f:
            f.seek(offset)
            text = f.read()
        modes = []
        for line in text.splitlines():
            m = re.search(r"Sending (DIFF|TRUNC|SNAP)\b(?: zxid=0x[0-9a-f]+ +for peer sid: (\d+))?", line)
            if m and (m.group(2) is None or int(m.group(2)) == learner):
                modes.append(m.group(1).lower())
            elif "Sending snapshot last zxid of peer" in line:
                modes.append("snap")
        return modes[-1] if modes else None

    # ---- services -----------------------------------------------------------------------------
    def start_python(self, service, instance, fmt, rel):
        logf = os.path.join(self.work, "svc", rel)
        layout_out = os.path.join(self.work, "svc", instance + ".layout.json")
        cmd = ["/usr/bin/python3", os.path.join(HERE, "service.py"), "--name", service, "--instance", instance,
               "--zk", H.connect_string(self.ens), "--log-file", logf, "--log-format", fmt,
               "--timeout", str(SESSION_TIMEOUT_S), "--retry-max-delay", "1", "--layout-out", layout_out]
        if fmt == "syslog":
            cmd += ["--syslog-address", "127.0.0.1:%d" % self.syslog_port]
            logf = self.syslog_file
        env = dict(os.environ, TZ="UTC")
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(self.work, instance + ".stderr"), "wb"), env=env)
        self.procs[instance] = p
        self.services[instance] = {"service": service, "format": fmt, "file": rel, "path": logf,
                                   "layout_out": layout_out, "pid": p.pid}
        self.mark("%s started (%s, %s, pid %d)" % (instance, "kazoo", fmt, p.pid))

    def start_curator(self, service, instance, rel):
        jout = os.path.join(self.work, "java")
        os.makedirs(jout, exist_ok=True)
        subprocess.run(["javac", "-nowarn", "-implicit:none", "-cp", CURATOR_CP[0], "-d", jout,
                        os.path.join(HERE, "CuratorService.java")], check=True)
        logf = os.path.join(self.work, "svc", rel)
        os.makedirs(os.path.dirname(logf), exist_ok=True)
        xml = os.path.join(self.work, instance + "-logback.xml")
        with open(xml, "w") as f:
            f.write("""<configuration>
  <appender name="FILE" class="ch.qos.logback.core.FileAppender">
    <file>%s</file>
    <encoder><pattern>%s</pattern></encoder>
  </appender>
  <root level="INFO"><appender-ref ref="FILE"/></root>
</configuration>
""" % (logf, LOGBACK))
        env = dict(os.environ, TZ="UTC")
        env.pop("JAVA_TOOL_OPTIONS", None)
        p = subprocess.Popen(
            ["java", "-Xmx96m", "-XX:+UseSerialGC", "-Dlogback.configurationFile=" + xml, "-Dservice.log=" + logf,
             "-cp", ":".join([jout] + CURATOR_CP), "CuratorService", H.connect_string(self.ens), service, instance,
             str(SESSION_TIMEOUT_S * 1000)],
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(self.work, instance + ".stdout"), "wb"),
            stderr=subprocess.STDOUT, env=env)
        self.procs[instance] = p
        self.services[instance] = {
            "service": service, "format": "logback", "file": rel, "path": logf, "pid": p.pid,
            "logger": "logback-classic %s (Debian liblogback-java) over slf4j %s; Curator %s, ZooKeeper client %s"
                      % (pkg_version("liblogback-java"), pkg_version("libslf4j-java"),
                         pkg_version("libcurator-recipes-java"), pkg_version("zookeeper")),
            "layout": LOGBACK}
        self.mark("%s started (Java, Curator LeaderLatch, logback, pid %d)" % (instance, p.pid))

    def start_rsyslog(self):
        d = os.path.join(self.work, "rsyslog")
        os.makedirs(d, exist_ok=True)
        self.syslog_port = self.a.base_port + 300
        self.syslog_file = os.path.join(self.work, "svc", "audit-1", "logs", "syslog")
        os.makedirs(os.path.dirname(self.syslog_file), exist_ok=True)
        conf = os.path.join(d, "rsyslog.conf")
        with open(conf, "w") as f:
            f.write('global(workDirectory="%s")\n'
                    'module(load="imudp")\n'
                    'input(type="imudp" address="127.0.0.1" port="%d")\n'
                    '*.* action(type="omfile" file="%s" template="RSYSLOG_TraditionalFileFormat")\n'
                    % (d, self.syslog_port, self.syslog_file))
        env = dict(os.environ, TZ="UTC")
        self.rsyslog = subprocess.Popen(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(d, "rsyslogd.pid")],
                                        stdin=subprocess.DEVNULL, stdout=open(os.path.join(d, "out"), "wb"),
                                        stderr=subprocess.STDOUT, env=env)
        time.sleep(0.5)
        if self.rsyslog.poll() is not None:
            raise RecordError("rsyslogd exited: %s" % open(os.path.join(d, "out")).read())
        self.mark("rsyslogd %s started (UDP 127.0.0.1:%d -> %s, RSYSLOG_TraditionalFileFormat, pid %d)"
                  % (pkg_version("rsyslog"), self.syslog_port, "audit-1/logs/syslog", self.rsyslog.pid))

    def znodes(self):
        """{instance: {service, session, ephemerals}} and {service: primary instance}."""
        owners, primaries = {}, {}
        for svc in sorted({s["service"] for s in self.services.values()}):
            try:
                regs = self.obs.get_children("/services/" + svc)
            except NoNodeError:
                regs = []
            for inst in regs:
                try:
                    _, st = self.obs.get("/services/%s/%s" % (svc, inst))
                except NoNodeError:
                    continue
                owners[inst] = {"service": svc, "session": "0x%x" % st.ephemeralOwner,
                                "ephemerals": ["/services/%s/%s" % (svc, inst)]}
            try:
                nodes = self.obs.get_children("/election/" + svc)
            except NoNodeError:
                nodes = []
            held = []
            for node in nodes:
                path = "/election/%s/%s" % (svc, node)
                try:
                    data, st = self.obs.get(path)
                except NoNodeError:
                    continue
                seq = re.search(r"(\d{10})$", node)
                held.append((seq.group(1) if seq else node, data.decode(errors="replace"), path,
                             "0x%x" % st.ephemeralOwner))
            held.sort()
            for _, inst, path, sess in held:
                o = owners.get(inst)
                if o and o["session"] == sess:
                    o["ephemerals"].append(path)
            if held:
                _, inst, _, sess = held[0]
                if owners.get(inst, {}).get("session") == sess:
                    primaries[svc] = inst
        for o in owners.values():
            o["ephemerals"].sort()
        return owners, primaries

    def settled(self, timeout=40.0, stable_s=2.0):
        services = {s["service"] for s in self.services.values()}

        def complete():
            owners, prim = self.znodes()
            ok = (set(owners) == set(self.procs)
                  and all(len(o["ephemerals"]) == 2 for o in owners.values())
                  and set(prim) == services)
            return (owners, prim) if ok else None
        state = wait_for("every service registered with a primary per election", complete, timeout)
        deadline = time.time() + timeout
        since = time.time()
        while time.time() < deadline:
            time.sleep(0.25)
            cur = complete()
            if cur != state:
                state = wait_for("services to settle again", complete, max(1.0, deadline - time.time()))
                since = time.time()
            elif time.time() - since >= stable_s:
                return state
        raise RecordError("services did not settle within %.0f s: %r" % (timeout, state))

    def quiet(self):
        left = max(self.last_formed_ms / 1000.0 + QUIET_S, self.last_step_ms / 1000.0 + GAP_S) - time.time()
        if left > 0:
            time.sleep(left)

    @staticmethod
    def expired(before, after):
        out = []
        for inst, o in sorted(before.items()):
            a = after.get(inst)
            if a is None or a["session"] != o["session"]:
                out.append({"instance": inst, "session": o["session"], "ephemerals": o["ephemerals"]})
        return out

    @staticmethod
    def failovers(p0, p1):
        return [{"service": s, "from": p0.get(s), "to": p1[s]} for s in sorted(p1) if p0.get(s) != p1[s]]

    def step(self, d):
        self.last_step_ms = now_ms()
        self.steps.append(d)
        self.mark("%s: %s" % (d["step"], json.dumps({k: v for k, v in d.items() if k != "step"})))

    # ---- the run ----------------------------------------------------------------------------------
    def run(self):
        os.makedirs(os.path.join(self.work, "svc"), exist_ok=True)
        print("== work dir %s" % self.work, flush=True)
        if self.profile == "zk34":
            jars = [os.path.join(os.path.abspath(self.a.zk34_jars), j) for j in ZK34_JARS]
            missing = [j for j in jars if not os.path.exists(j)]
            if missing:
                raise RecordError("missing %s: run `bash samples/record/zk34-jars.sh %s` first"
                                  % (", ".join(missing), self.a.zk34_jars))
            layouts = {n: H.UPSTREAM for n in (1, 2, 3)}
            for n in (1, 2, 3):
                self.layouts[n] = ("ZooKeeper 3.4.6 (pyspark 2.4.8's jars), log4j 1.2.17 PatternLayout", H.UPSTREAM)
        else:
            jars = None
            layouts = {1: ISO_T_Z, 2: THREAD_FIRST, 3: H.UPSTREAM}
            for n in (1, 2, 3):
                self.layouts[n] = ("ZooKeeper %s (Debian), log4j %s PatternLayout"
                                   % (pkg_version("zookeeper"), pkg_version("liblog4j1.2-java")), layouts[n])
        t = now_ms()
        first = H.start(self.ens, servers=3, base_port=self.a.base_port, tick=TICK_MS, debian_layout=[],
                        extra=["syncLimit=5"], prealloc_kb=1024, owner_pid=os.getpid(), timeout=60,
                        layouts=layouts, jars=jars)
        e = self.epoch(first)
        self.last_formed_ms = now_ms()
        self.version = self.srvr(first).get("Zookeeper version", "?")
        self.mark("ensemble up: %s, zk%d leads epoch %d" % (self.version, first, e))
        self.step({"step": "start", "at": iso(t), "leader": first, "epoch": e})
        kl = __import__("logging").getLogger("kazoo")
        kl.addHandler(__import__("logging").FileHandler(os.path.join(self.work, "driver-kazoo.log")))
        kl.propagate = False
        self.obs = KazooClient(hosts=H.connect_string(self.ens), timeout=15,
                               connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0})
        self.obs.start(timeout=30)

        if self.profile == "zk34":
            # The layout zklens ships (incident-1's): only the servers' 3.4 wording is new here.
            self.start_python("calc", "calc-a", "text", "calc-a/logs/calc-a.log")
            time.sleep(1.5)
            self.start_python("calc", "calc-b", "text", "calc-b/logs/calc-b.log")
        else:
            self.start_rsyslog()
            self.start_python("calc", "calc-a", "pythread", "apps/calc-a.log")
            time.sleep(1.5)  # calc-a first: it is the calc primary
            self.start_python("calc", "calc-b", "pythread", "apps/calc-b.log")
            self.start_python("display", "display-1", "structlog", "apps/display-1.log")
            self.start_python("store", "store-1", "jsonlogger", "store-1/logs/store-1.json")
            self.start_python("audit", "audit-1", "syslog", "audit-1/logs/syslog")
            self.start_curator("ledger", "ledger-1", "ledger-1/logs/ledger-1.log")
        owners, prim = self.settled(timeout=60)
        if prim.get("calc") != "calc-a":
            raise RecordError("calc-a started first but %r is the calc primary" % prim)
        self.mark("services settled: primaries %s" % json.dumps(prim, sort_keys=True))

        # 2. kill -9 the leader.
        self.quiet()
        old = self.leader()
        e0 = self.epoch(old)
        t = now_ms()
        self.mark("kill -9 zk%d (the leader)" % old)
        H.signal_server(self.ens, old, signal.SIGKILL)
        new, e1, formed = self.new_leader(e0, exclude=(old,))
        self.last_formed_ms = formed
        owners2, prim2 = self.settled()
        self.step({"step": "kill-leader", "at": iso(t), "killed": old, "old_leader": old, "new_leader": new,
                   "old_epoch": e0, "new_epoch": e1, "leader_seen_at": iso(formed),
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        owners, prim, killed = owners2, prim2, old

        # 3. SIGSTOP the calc primary (and the Curator service) past the session timeout.
        self.quiet()
        victims = [prim["calc"]] + (["ledger-1"] if "ledger-1" in self.procs else [])
        other = [i for i in ("calc-a", "calc-b") if i != prim["calc"]][0]
        lead = self.leader()
        e = self.epoch(lead)
        sessions = {v: owners[v]["session"] for v in victims}
        t = now_ms()
        self.mark("SIGSTOP %s for %.0f s (session timeout %d s)" % (" and ".join(
            "%s (pid %d, session %s)" % (v, self.procs[v].pid, sessions[v]) for v in victims), CLIENT_STALL_S,
            SESSION_TIMEOUT_S))
        for v in victims:
            os.kill(self.procs[v].pid, signal.SIGSTOP)
        gone = {}
        for v in victims:
            wait_for("the expiry of %s's session %s" % (v, sessions[v]),
                     lambda: self.znodes()[0].get(v) is None, SESSION_TIMEOUT_S * 3)
            gone[v] = now_ms()
        wait_for("%s to become calc primary" % other, lambda: self.znodes()[1].get("calc") == other, 10)
        primary_seen = now_ms()
        left = t / 1000.0 + CLIENT_STALL_S - time.time()
        if left > 0:
            time.sleep(left)
        for v in victims:
            os.kill(self.procs[v].pid, signal.SIGCONT)
        resumed = now_ms()
        self.mark("SIGCONT %s" % " and ".join(victims))
        owners2, prim2 = self.settled()
        if self.leader() != lead or self.epoch(lead) != e:
            raise RecordError("the leader or epoch changed during the client stall")
        self.step({"step": "stall-client", "at": iso(t), "stalled": victims, "leader": lead, "epoch": e,
                   "sessions": sessions, "ephemerals_gone_at": {v: iso(g) for v, g in gone.items()},
                   "primary_seen_at": iso(primary_seen), "resumed_at": iso(resumed),
                   "new_sessions": {v: owners2[v]["session"] for v in victims},
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        owners, prim = owners2, prim2

        # 4. restart the killed server: it rejoins the epoch.
        self.quiet()
        lead = self.leader()
        e = self.epoch(lead)
        off = self.log_size(lead)
        t = now_ms()
        self.mark("restart zk%d" % killed)
        H.start_server(self.ens, killed)
        H.wait_serving(self.ens, killed, timeout=60)
        serving = now_ms()
        if self.leader() != lead or self.epoch(lead) != e:
            raise RecordError("the restart of zk%d changed the leader or epoch" % killed)
        mode = wait_for("zk%d's sync in zk%d's log" % (killed, lead), lambda: self.sync_mode(lead, killed, off), 10)
        owners2, prim2 = self.settled()
        self.step({"step": "rejoin", "at": iso(t), "server": killed, "leader": lead, "epoch": e, "sync": mode,
                   "serving_at": iso(serving), "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        time.sleep(5)

    def shutdown(self):
        self.mark("stopping services")
        for p in self.procs.values():
            try:
                os.kill(p.pid, signal.SIGCONT)
                p.terminate()
            except OSError:
                pass
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        if self.obs is not None:
            try:
                self.obs.stop()
                self.obs.close()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass
        try:
            if os.path.exists(H.meta_path(self.ens)):
                self.mark("stopping the ensemble")
                for n in (1, 2, 3):
                    H.signal_server(self.ens, n, signal.SIGTERM, wait=5)
        finally:
            H.stop_all(self.ens)
            if self.rsyslog is not None:
                self.rsyslog.terminate()
                try:
                    self.rsyslog.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.rsyslog.kill()
                    self.rsyslog.wait(timeout=10)

    # ---- collection and the facts read back from the files ------------------------------------------
    def collect(self, out):
        if os.path.exists(out):
            shutil.rmtree(out)
        files = []
        for n in (1, 2, 3):
            src = os.path.join(self.ens, "zk%d" % n)
            dst = os.path.join(out, "zk%d" % n)
            os.makedirs(os.path.join(dst, "logs"))
            os.makedirs(os.path.join(dst, "data", "version-2"))
            shutil.copy(os.path.join(src, "logs", "zookeeper.log"), os.path.join(dst, "logs", "zookeeper.log"))
            logger, pattern = self.layouts[n]
            files.append({"path": "zk%d/logs/zookeeper.log" % n, "node": "zk%d" % n, "kind": "zookeeper-log",
                          "logger": logger, "layout": pattern, "time_has_year": True})
            shutil.copy(os.path.join(src, "data", "myid"), os.path.join(dst, "data", "myid"))
            files.append({"path": "zk%d/data/myid" % n, "node": "zk%d" % n, "kind": "myid"})
            for b in sorted(os.listdir(os.path.join(src, "data", "version-2"))):
                f = os.path.join(src, "data", "version-2", b)
                if b.startswith("log.") or b.startswith("snapshot."):
                    with open(f, "rb") as i, gzip.GzipFile(os.path.join(dst, "data", "version-2", b + ".gz"), "wb",
                                                           compresslevel=9, mtime=0) as o:
                        shutil.copyfileobj(i, o)
                    files.append({"path": "zk%d/data/version-2/%s.gz" % (n, b), "node": "zk%d" % n,
                                  "kind": "txnlog" if b.startswith("log.") else "snapshot"})
                elif not b.endswith(".tmp"):
                    shutil.copy(f, os.path.join(dst, "data", "version-2", b))
                    files.append({"path": "zk%d/data/version-2/%s" % (n, b), "node": "zk%d" % n,
                                  "kind": "epoch-file"})
        for inst, s in sorted(self.services.items()):
            dst = os.path.join(out, s["file"])
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            shutil.copy(s["path"], dst)
            if "layout" in s:
                logger, layout = s["logger"], s["layout"]
            else:
                with open(s["layout_out"]) as f:
                    lo = json.load(f)
                logger, layout = lo["logger"], lo["layout"]
                logger += "; kazoo %s" % pkg_version("python3-kazoo")
                if s["format"] == "syslog":
                    logger += "; forwarded by rsyslogd %s (imudp), file written with template " \
                              "RSYSLOG_TraditionalFileFormat" % pkg_version("rsyslog")
                    layout = "RSYSLOG_TraditionalFileFormat: %TIMESTAMP% %HOSTNAME% %syslogtag%%msg%, msg: " + layout
            files.append({"path": s["file"], "node": inst, "kind": "service-log", "service": s["service"],
                          "logger": logger, "layout": layout,
                          # syslog's traditional time stamp has no year (nor zone): the facts
                          # below carry the recording's year, a reader has to guess it.
                          "time_has_year": s["format"] != "syslog"})
        # Nothing else may be in the sample: every file under it is ingested.
        listed = {f["path"] for f in files}
        for root, _, names in os.walk(out):
            for nm in names:
                rel = os.path.relpath(os.path.join(root, nm), out)
                if rel not in listed:
                    raise RecordError("unlisted file in the sample: %s" % rel)
        for f in files:
            p = os.path.join(out, f["path"])
            if f["kind"] in ("zookeeper-log", "service-log"):
                with open(p, errors="replace") as fh:
                    lines = fh.read().splitlines()
                f["lines"] = len(lines)
                f["lines_with_time"] = sum(1 for ln in lines if line_time(ln, self.year))
                f["timestamped"] = True
            f["bytes"] = os.path.getsize(p)
        return files

    def read_back(self, out):
        """Epochs, elections, expiries and role changes as the files themselves record them."""
        epochs, elections, expiries, roles, syncs = [], [], [], [], []
        for n in (1, 2, 3):
            rel = "zk%d/logs/zookeeper.log" % n
            with open(os.path.join(out, rel), errors="replace") as f:
                for i, line in enumerate(f, 1):
                    ev = "%s:%d" % (rel, i)
                    m = re.search(r"Have quorum of supporters.*setting last processed zxid: 0x([0-9a-f]+)", line)
                    if m:
                        epochs.append({"epoch": int(m.group(1), 16) >> 32, "leader": n, "formed_at": line_time(line, self.year),
                                       "evidence": ev})
                    m = re.search(r"(LEADING|FOLLOWING) - LEADER ELECTION TOOK - (\d+)", line)
                    if m:
                        elections.append({"server": n, "role": m.group(1).lower(), "took_ms": int(m.group(2)),
                                          "at": line_time(line, self.year), "evidence": ev})
                    m = re.search(r"Expiring session (0x[0-9a-f]+), timeout of (\d+)ms exceeded", line)
                    if m:
                        expiries.append({"session": m.group(1), "server": n, "timeout_ms": int(m.group(2)),
                                         "at": line_time(line, self.year), "evidence": ev})
                    m = re.search(r"Sending (DIFF|TRUNC|SNAP)\b(?: zxid=0x[0-9a-f]+ +for peer sid: (\d+))?", line)
                    if m:
                        syncs.append({"leader": n, "mode": m.group(1).lower(),
                                      "learner": int(m.group(2)) if m.group(2) else None,
                                      "at": line_time(line, self.year), "evidence": ev})
                    elif "Sending snapshot last zxid of peer" in line:
                        syncs.append({"leader": n, "mode": "snap", "at": line_time(line, self.year), "evidence": ev})
        for inst, s in sorted(self.services.items()):
            with open(os.path.join(out, s["file"]), errors="replace") as f:
                for i, line in enumerate(f, 1):
                    m = re.search(r"role change: (\w+) -> (\w+) \(session (0x[0-9a-f]+)\)", message_of(line))
                    if m:
                        roles.append({"service": s["service"], "instance": inst, "from": m.group(1), "to": m.group(2),
                                      "session": m.group(3), "at": line_time(line, self.year),
                                      "evidence": "%s:%d" % (s["file"], i)})
        epochs.sort(key=lambda x: x["epoch"])
        roles.sort(key=lambda x: x["at"] or "")
        return epochs, elections, expiries, roles, syncs

    def expectations(self, epochs, expiries, roles):
        """The incidents zklens must report, from the steps (measured on the ensemble), each
        checked against the servers' and services' own lines."""
        by_epoch = {e["epoch"]: e for e in epochs}
        incidents = []
        for s in self.steps:
            if s["step"] == "start":
                if by_epoch.get(s["epoch"], {}).get("leader") != s["leader"]:
                    raise RecordError("epoch %d: srvr says zk%d leads, the logs say %r"
                                      % (s["epoch"], s["leader"], by_epoch.get(s["epoch"])))
            elif s["step"] == "kill-leader":
                if by_epoch.get(s["new_epoch"], {}).get("leader") != s["new_leader"]:
                    raise RecordError("epoch %d: srvr says zk%d leads, the logs say %r"
                                      % (s["new_epoch"], s["new_leader"], by_epoch.get(s["new_epoch"])))
                if s["sessions_expired"]:
                    raise RecordError("sessions expired during the leader failover: %r" % s["sessions_expired"])
                incidents.append({
                    "id": "leader-failover-epoch-%d" % s["new_epoch"], "kind": "leader-failover",
                    "old_leader": s["old_leader"], "new_leader": s["new_leader"],
                    "old_epoch": s["old_epoch"], "new_epoch": s["new_epoch"],
                    "sessions_expired": [], "ephemerals_lost": [],
                    "service_failovers": s["service_failovers"],
                    "started_not_before": s["at"], "started_not_after": s["leader_seen_at"]})
            elif s["step"] == "stall-client":
                for x in s["sessions_expired"]:
                    seen = [e for e in expiries if e["session"] == x["session"]]
                    if [e["server"] for e in seen] != [s["leader"]]:
                        raise RecordError("session %s: expected one 'Expiring session' line on the leader zk%d, got %r"
                                          % (x["session"], s["leader"], seen))
                    at_ms = calendar.timegm(time.strptime(s["at"][:19], "%Y-%m-%dT%H:%M:%S")) * 1000
                    at_ms += int(s["at"][20:23])
                    incidents.append({
                        "id": "session-expiry-%s" % x["session"], "kind": "session-expiry",
                        "instance": x["instance"], "expired_by": s["leader"], "expired_at": seen[0]["at"],
                        "old_leader": s["leader"],
                        "sessions_expired": [x["session"]], "ephemerals_lost": x["ephemerals"],
                        "service_failovers": [f for f in s["service_failovers"] if f["from"] == x["instance"]],
                        "started_not_before": iso(at_ms + SESSION_TIMEOUT_S * 1000 - 1000),
                        "started_not_after": s["ephemerals_gone_at"][x["instance"]]})
                if sorted(x["instance"] for x in s["sessions_expired"]) != sorted(s["stalled"]):
                    raise RecordError("expired %r, stalled %r" % (s["sessions_expired"], s["stalled"]))
            elif s["step"] == "rejoin":
                if s["sessions_expired"] or s["service_failovers"]:
                    raise RecordError("the rejoin moved sessions or roles: %r" % s)
                incidents.append({
                    "id_prefix": "server-rejoin-zk%d-" % s["server"], "kind": "server-rejoin",
                    "server": "zk%d" % s["server"], "sync": {"zk%d" % s["server"]: s["sync"]},
                    "sessions_expired": [], "ephemerals_lost": [], "service_failovers": [],
                    "started_not_before": s["at"], "started_not_after": s["serving_at"]})
        # Every failover the driver saw is a 'role change: ... -> primary' line of the new primary
        # after the step began.
        for s in self.steps:
            for f in s.get("service_failovers", []):
                hit = [r for r in roles if r["instance"] == f["to"] and r["to"] == "primary" and r["at"] >= s["at"][:23]]
                if not hit:
                    raise RecordError("%s became %s primary (step %s) but its log has no role change after %s"
                                      % (f["to"], f["service"], s["step"], s["at"]))
                f["at"] = hit[0]["at"]
        return incidents


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=["incident-2", "zk34"], default="incident-2")
    ap.add_argument("--base-port", type=int, default=None)
    ap.add_argument("--zk34-jars", default="/tmp/zk34-jars")
    ap.add_argument("--out", default=None, help="sample directory (default samples/<profile>)")
    a = ap.parse_args()
    if a.base_port is None:
        a.base_port = 23910 if a.profile == "incident-2" else 24910
    os.environ["TZ"] = "UTC"
    time.tzset()
    out = os.path.abspath(a.out or os.path.join(REPO, "samples", a.profile))
    r = Recorder(a)

    def on_term(*_):
        raise RecordError("terminated by a signal")
    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        try:
            r.run()
            ok = True
        finally:
            r.shutdown()
        files = r.collect(out)
        epochs, elections, expiries, roles, syncs = r.read_back(out)
        incidents = r.expectations(epochs, expiries, roles)
    except (RecordError, H.HarnessError, subprocess.CalledProcessError, OSError) as ex:
        print("== FAILED: %s; work dir kept: %s" % (ex, r.work), file=sys.stderr)
        for n in (1, 2, 3):
            print("---- zk%d log tail ----\n%s" % (n, H.tail(r.log_path(n), 8)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("== interrupted; work dir kept: %s" % r.work, file=sys.stderr)
        return 130
    if not ok:
        return 1
    name = os.path.basename(out)
    doc = {
        "sample": name,
        "recorded_at": r.timeline[0][:24] if r.timeline else "",
        "recorded_by": "samples/record/record-incident-2.py --profile %s" % a.profile,
        "zookeeper": r.version,
        "java": java_version(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "tick_ms": TICK_MS,
        "session_timeout_ms": SESSION_TIMEOUT_S * 1000,
        "timezone": "UTC",
        "file": files,
        "epoch": epochs,
        "election": elections,
        "expiry": expiries,
        "sync": syncs,
        "role_change": roles,
        "step": r.steps,
        "incident": incidents,
    }
    header = [
        "Generated by samples/record/record-incident-2.py --profile %s: do not edit by hand." % a.profile,
        "Every fact here was measured by the recording driver on the ensemble (steps) or read back",
        "from the recorded files themselves (epoch, election, expiry, sync, role_change; `evidence`",
        "is file:line inside the sample). [[incident]] holds what zklens must report; times are UTC.",
        "lines / lines_with_time count physical lines (stack-trace lines continue an entry and have no",
        "time of their own), so their ratio is not the share of entries with a timestamp.",
    ]
    with open(out + ".manifest.toml", "w") as f:
        f.write(to_toml(doc, header))
    with open(out + ".timeline.txt", "w") as f:
        f.write("\n".join(r.timeline) + "\n")
    shutil.rmtree(r.work, ignore_errors=True)
    print("== recorded into %s (manifest %s.manifest.toml)" % (out, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
