#!/usr/bin/python3
"""Records samples/incident-3 on a real 3-server ZooKeeper ensemble with real client services that
use ZooKeeper recipes (Curator's ServiceDiscovery and LeaderSelector, kazoo's Lock), and writes
the manifest of what the files are and what happened: who held each recipe when, and a genuine
split brain of a naive lock holder.

    /usr/bin/python3 samples/record/record-incident-3.py        # ~90 s -> samples/incident-3

Needs (Debian 12 packages): zookeeper, python3-kazoo, libcurator-recipes-java,
libcurator-discovery-java, liblogback-java, a JDK with javac. /usr/bin/python3 is the interpreter
(Debian's kazoo). It reuses record-incident-2.py (imported, not changed): the ensemble handling,
the collection of the files, the read-back of the servers' logs and the TOML writer.

profile incident-3 (ports base+1..3, quorum base+101..103, election base+201..203, base 25910):
  servers  zk1, zk2, zk3: ZooKeeper 3.8 (Debian), log4j, upstream layout
           `%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`; tickTime 500
  services (session timeout 4 s) -> files of the sample
           pay-a, pay-b    Java, PayService.java on Curator 5.4: ServiceDiscovery registration
                           /services/pay/<id> (Curator's JSON), LeaderSelector /election/pay
                           (autoRequeue, LeaderSelectorListenerAdapter, no setId: node data is
                           Curator's default, the local IP address); logs nothing about its part
                           in the election; logback
                           `%d{yyyy-MM-dd HH:mm:ss.SSS} [%thread] %-5level %logger{36} - %msg%n`
                                                                      -> pay-X/logs/pay-X.log
           jobs-a, jobs-b  kazoo, jobs.py: ephemeral /services/jobs/<id>, kazoo Lock /locks/jobs
                           (identifier = instance), naive singleton job runner logging
                           `batch N done as PRIMARY` while it thinks it holds the lock;
                           `%(asctime)s %(levelname)s %(name)s: %(message)s`
                                                                      -> jobs-X/logs/jobs-X.log

Steps (the driver measures each outcome on the ensemble itself: leaders from `srvr`, epochs from
the leader's zxid, sessions from the znodes' ephemeralOwner; a poller reads the lowest child of
/election/pay and /locks/jobs, its ephemeralOwner and czxid and the parent's pzxid every 50 ms):
  1. start; pay-a then pay-b (pay-a holds /election/pay), jobs-a then jobs-b (jobs-a holds
     /locks/jobs); wait until settled
  2. kill-leader: kill -9 the ZooKeeper leader; wait for the next epoch; whatever each recipe does
     is measured (the LeaderSelector cancels leadership on SUSPENDED; kazoo's Lock keeps its node)
  3. stall-client: SIGSTOP the /election/pay holder and the /locks/jobs holder for 10 s, past the
     4 s session timeout: the leader expires both sessions, the other instances take over; SIGCONT.
     The naive lock holder keeps logging `batch N done as PRIMARY` while the other one holds the
     lock (the split brain, read back from its log)
  4. restart-stale: ~4 s after SIGCONT the stale jobs instance is stopped (SIGTERM: it closes its
     session) and started again (it waits for the lock)
  5. rejoin: restart the killed server; it syncs with the leader
  6. services stop (waiters first, so that no recipe changes hands), servers stop; files collected
     (txn logs and snapshots gzip-compressed), facts read back from the servers' logs and from the
     txn logs (every holding replayed from the committed creates, deletes and closeSessions, and
     checked against what the poller saw), the pay instances' own lines checked for role words.
     A disagreement fails the recording.

Output: samples/incident-3 (replaced), incident-3.manifest.toml beside it (files, steps, sessions,
[[recipe]] holdings, [[split_brain]], [[incident]]) and incident-3.timeline.txt. On any failure
everything started is killed, the work dir is kept, the exit status is 1.
"""
import argparse
import gzip
import importlib.util
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True  # importing record-incident-2.py leaves no __pycache__ in samples/record
HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location("rec2", os.path.join(HERE, "record-incident-2.py"))
rec2 = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rec2)
H = rec2.H
RecordError, iso, now_ms, wait_for, pkg_version = rec2.RecordError, rec2.iso, rec2.now_ms, rec2.wait_for, rec2.pkg_version
line_time = rec2.line_time

from kazoo.exceptions import NoNodeError  # noqa: E402

SESSION_TIMEOUT_S = rec2.SESSION_TIMEOUT_S  # 4
TICK_MS = rec2.TICK_MS                      # 500
CLIENT_STALL_S = rec2.CLIENT_STALL_S        # 10
STALE_RUN_S = 4.0                           # the stale lock holder runs this long after SIGCONT
POLL_S = 0.05
BASE_PORT = 25910
LOGBACK = rec2.LOGBACK
PYLOG = "%(asctime)s %(levelname)s %(name)s: %(message)s"
PAY_CP = ["/usr/share/java/curator-recipes.jar", "/usr/share/java/curator-x-discovery.jar",
          "/usr/share/java/logback-classic.jar", "/usr/share/java/logback-core.jar"]
# recipe parent -> (service, node name style)
RECIPES = {"/election/pay": ("pay", "curator-lock"), "/locks/jobs": ("jobs", "kazoo-lock")}
ROLE_WORDS = re.compile(r"(?i)\b(primary|leader\w*|standby|roles?|became|elected|now)\b")
CLAIM_RE = re.compile(r"batch (\d+) done as PRIMARY \(session (0x[0-9a-f]+|none)\)")


def seq(name):
    m = re.search(r"(\d{10})$", name)
    return int(m.group(1)) if m else -1


def hx(n):
    return "0x%x" % n


# ---- txn logs, read back (ZooKeeper 3.8 format; /work/shared/reference/zookeeper-txnlog-format.md) --
class _Buf:
    def __init__(self, b):
        self.b, self.o = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.o)
        self.o += struct.calcsize(fmt)
        return v[0] if len(v) == 1 else v

    def buffer(self):
        n = self.take(">i")
        if n < 0:
            return b""
        v = self.b[self.o:self.o + n]
        self.o += n
        return v

    def ustring(self):
        return self.buffer().decode("utf-8", errors="replace")

    def left(self):
        return len(self.b) - self.o


def _ops(typ, body):
    """[(op, path, data, ephemeral)] of a txn body that changes the tree or ends a session."""
    b = _Buf(body)
    if typ in (1, 15, 19, 21):  # create, create2, createContainer, createTTL
        path = b.ustring()
        data = b.buffer()
        for _ in range(b.take(">i")):
            b.take(">i")
            b.ustring()
            b.ustring()
        eph = bool(b.take(">B")) if typ in (1, 15) else False
        return [("create", path, data, eph)]
    if typ in (2, 20):  # delete, deleteContainer
        return [("delete", b.ustring(), None, False)]
    if typ == -11:  # closeSession (3.6+: the paths it deletes)
        paths = []
        if b.left() >= 4:
            paths = [b.ustring() for _ in range(b.take(">i"))]
        return [("close", p, None, False) for p in paths]
    if typ == 14:  # multi
        out = []
        for _ in range(b.take(">i")):
            t = b.take(">i")
            out += _ops(t, b.buffer())
        return out
    return []


def read_txnlog(path):
    """[{zxid, time, session, type, ops}] of a (gzip-compressed) txn log."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    if raw[:4] != b"ZKLG":
        raise RecordError("%s: not a txn log" % path)
    off, out = 16, []
    while off + 12 <= len(raw):
        _, ln = struct.unpack_from(">qi", raw, off)
        if ln <= 0 or off + 12 + ln + 1 > len(raw):
            break
        payload = raw[off + 12:off + 12 + ln]
        if raw[off + 12 + ln:off + 13 + ln] != b"B":
            break
        off += 13 + ln
        sess, _, zxid, t, typ = struct.unpack_from(">qiqqi", payload, 0)
        out.append({"zxid": zxid, "time": t, "session": sess, "type": typ, "ops": _ops(typ, payload[32:])})
    return out


# ---- the poller: recipe holders as a client sees them ------------------------------------------------
class Poller(threading.Thread):
    def __init__(self, zk, services):
        super().__init__(name="recipe poller", daemon=True)
        self.zk, self.services = zk, services
        self.halt = threading.Event()
        self.lock = threading.Lock()
        self.sessions = {}                         # ephemeralOwner -> instance (registrations)
        self.kids = {p: {} for p in RECIPES}       # parent -> {name: (owner, czxid)}
        self.pzxid = {}
        self.holdings = {p: [] for p in RECIPES}
        self.polls = 0
        self.failed = 0

    def run(self):
        while not self.halt.is_set():
            try:
                self.tick()
                self.polls += 1
            except Exception:  # noqa: BLE001 - a failed poll (disconnected: no quorum) is retried
                self.failed += 1
            self.halt.wait(POLL_S)

    def tick(self):
        zk = self.zk
        for svc in self.services:
            base = "/services/" + svc
            try:
                kids, st = zk.get_children(base, include_data=True)
            except NoNodeError:
                continue
            if st.pzxid == self.pzxid.get(base):
                continue
            for k in kids:
                try:
                    _, s = zk.get(base + "/" + k)
                except NoNodeError:
                    continue
                if s.ephemeralOwner:
                    with self.lock:
                        self.sessions[s.ephemeralOwner] = k
            self.pzxid[base] = st.pzxid
        for parent in RECIPES:
            try:
                kids, st = zk.get_children(parent, include_data=True)
            except NoNodeError:
                continue
            t = now_ms()  # after the read: the change it shows was committed before this
            if st.pzxid == self.pzxid.get(parent):
                continue
            prev, cur = self.kids[parent], {}
            for k in kids:
                if k in prev:
                    cur[k] = prev[k]
                    continue
                try:
                    _, s = zk.get(parent + "/" + k)
                except NoNodeError:
                    continue
                cur[k] = (s.ephemeralOwner, s.czxid)
            removed, added = set(prev) - set(cur), set(cur) - set(prev)
            with self.lock:
                self.pzxid[parent] = st.pzxid
                self.kids[parent] = cur
                hs = self.holdings[parent]
                h = hs[-1] if hs and "gone_seen_ms" not in hs[-1] else None
                if h and h["name"] not in cur:
                    h["gone_seen_ms"] = t
                    # The parent's pzxid is the zxid of its last child change: the deletion's,
                    # when that deletion is the only change since the last poll.
                    if removed == {h["name"]} and not added and len(cur) == len(kids):
                        h["deleted_pzxid"] = st.pzxid
                    h = None
                if cur and h is None:
                    low = min(cur, key=seq)
                    hs.append({"name": low, "znode": parent + "/" + low, "owner": cur[low][0],
                               "czxid": cur[low][1], "seen_ms": t})

    def holder(self, parent):
        """(instance or None, session) of the holding open now."""
        with self.lock:
            hs = self.holdings[parent]
            if not hs or "gone_seen_ms" in hs[-1]:
                return None, None
            return self.sessions.get(hs[-1]["owner"]), hs[-1]["owner"]

    def stop(self):
        self.halt.set()
        self.join(timeout=5)


class Recorder3(rec2.Recorder):
    def __init__(self, a):
        super().__init__(a)
        self.poller = None
        self.java_out = None

    # ---- services -------------------------------------------------------------------------------
    def start_pay(self, instance, port):
        rel = "%s/logs/%s.log" % (instance, instance)
        if self.java_out is None:
            self.java_out = os.path.join(self.work, "java")
            os.makedirs(self.java_out, exist_ok=True)
            subprocess.run(["javac", "-nowarn", "-implicit:none", "-cp", ":".join(PAY_CP[:2]), "-d", self.java_out,
                            os.path.join(HERE, "PayService.java")], check=True)
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
            ["java", "-Xmx96m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Dlogback.configurationFile=" + xml,
             "-Dservice.log=" + logf, "-cp", ":".join([self.java_out] + PAY_CP), "PayService",
             H.connect_string(self.ens), "pay", instance, str(SESSION_TIMEOUT_S * 1000), str(port)],
            stdin=subprocess.DEVNULL, stdout=open(os.path.join(self.work, instance + ".stdout"), "ab"),
            stderr=subprocess.STDOUT, env=env)
        self.procs[instance] = p
        self.services[instance] = {
            "service": "pay", "format": "logback", "file": rel, "path": logf, "pid": p.pid, "port": port,
            "logger": "logback-classic %s (Debian liblogback-java) over slf4j %s; Curator %s (recipes, "
                      "x-discovery), ZooKeeper client %s"
                      % (pkg_version("liblogback-java"), pkg_version("libslf4j-java"),
                         pkg_version("libcurator-discovery-java"), pkg_version("zookeeper")),
            "layout": LOGBACK}
        self.mark("%s started (Java, Curator ServiceDiscovery + LeaderSelector, logback, port %d, pid %d)"
                  % (instance, port, p.pid))

    def start_jobs(self, instance):
        rel = "%s/logs/%s.log" % (instance, instance)
        logf = os.path.join(self.work, "svc", rel)
        env = dict(os.environ, TZ="UTC")
        p = subprocess.Popen(
            ["/usr/bin/python3", os.path.join(HERE, "jobs.py"), "--name", "jobs", "--instance", instance,
             "--zk", H.connect_string(self.ens), "--log-file", logf, "--timeout", str(SESSION_TIMEOUT_S),
             "--retry-max-delay", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.work, instance + ".stderr"), "ab"), env=env)
        self.procs[instance] = p
        self.services[instance] = {
            "service": "jobs", "format": "python", "file": rel, "path": logf, "pid": p.pid,
            "logger": "Python %d.%d.%d logging; kazoo %s" % (sys.version_info[:3] + (pkg_version("python3-kazoo"),)),
            "layout": PYLOG}
        self.mark("%s started (kazoo Lock, pid %d)" % (instance, p.pid))

    def znodes(self):
        """{instance: {service, session, ephemerals}} and {service: instance holding its recipe}."""
        owners, holders = {}, {}
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
                owners[inst] = {"service": svc, "session": hx(st.ephemeralOwner),
                                "ephemerals": ["/services/%s/%s" % (svc, inst)]}
        by_session = {o["session"]: i for i, o in owners.items()}
        for parent, (svc, _) in RECIPES.items():
            try:
                nodes = self.obs.get_children(parent)
            except NoNodeError:
                nodes = []
            held = []
            for node in nodes:
                try:
                    _, st = self.obs.get(parent + "/" + node)
                except NoNodeError:
                    continue
                held.append((seq(node), parent + "/" + node, hx(st.ephemeralOwner)))
            held.sort()
            for _, path, sess in held:
                if sess in by_session:
                    owners[by_session[sess]]["ephemerals"].append(path)
            if held and held[0][2] in by_session:
                holders[svc] = by_session[held[0][2]]
        for o in owners.values():
            o["ephemerals"].sort()
        return owners, holders

    def settled(self, timeout=40.0, stable_s=2.0, registered_only=()):
        """incident-2's settled(): every instance registered and in its recipe, each recipe held,
        unchanged for stable_s; `registered_only` instances have no recipe node (the naive job
        runner after its expiry: it registered again but thinks it still holds the lock)."""
        services = {s["service"] for s in self.services.values()}

        def complete():
            owners, held = self.znodes()
            ok = (set(owners) == set(self.procs)
                  and all(len(o["ephemerals"]) == (1 if i in registered_only else 2) for i, o in owners.items())
                  and set(held) == services)
            return (owners, held) if ok else None
        state = wait_for("every service registered, every recipe held", complete, timeout)
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

    def wait_holder(self, svc, inst, timeout=30):
        wait_for("%s to hold the %s recipe" % (inst, svc), lambda: self.znodes()[1].get(svc) == inst, timeout)

    def stop_proc(self, inst, timeout=10):
        p = self.procs[inst]
        try:
            os.kill(p.pid, signal.SIGCONT)
            p.terminate()
        except OSError:
            pass
        try:
            p.wait(timeout=timeout)
            return "exited %d" % p.returncode
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=10)
            return "killed"

    # ---- the run --------------------------------------------------------------------------------
    def run(self):
        os.makedirs(os.path.join(self.work, "svc"), exist_ok=True)
        print("== work dir %s" % self.work, flush=True)
        layouts = {n: H.UPSTREAM for n in (1, 2, 3)}
        for n in (1, 2, 3):
            self.layouts[n] = ("ZooKeeper %s (Debian), log4j %s PatternLayout"
                               % (pkg_version("zookeeper"), pkg_version("liblog4j1.2-java")), H.UPSTREAM)
        t = now_ms()
        first = H.start(self.ens, servers=3, base_port=self.a.base_port, tick=TICK_MS, debian_layout=[],
                        extra=["syncLimit=5"], prealloc_kb=1024, owner_pid=os.getpid(), timeout=60,
                        layouts=layouts)
        e = self.epoch(first)
        self.last_formed_ms = now_ms()
        self.version = self.srvr(first).get("Zookeeper version", "?")
        self.mark("ensemble up: %s, zk%d leads epoch %d" % (self.version, first, e))
        self.step({"step": "start", "at": iso(t), "leader": first, "epoch": e})
        import logging
        kl = logging.getLogger("kazoo")
        kl.addHandler(logging.FileHandler(os.path.join(self.work, "driver-kazoo.log")))
        kl.propagate = False
        self.obs = rec2.KazooClient(hosts=H.connect_string(self.ens), timeout=15,
                                    connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0})
        self.obs.start(timeout=30)
        self.poller = Poller(self.obs, ["pay", "jobs"])
        self.poller.start()

        t = now_ms()
        self.start_pay("pay-a", self.a.base_port + 401)
        self.start_jobs("jobs-a")
        self.wait_holder("pay", "pay-a")
        self.wait_holder("jobs", "jobs-a")
        self.start_pay("pay-b", self.a.base_port + 402)
        self.start_jobs("jobs-b")
        owners, hold = self.settled(timeout=60)
        if hold != {"pay": "pay-a", "jobs": "jobs-a"}:
            raise RecordError("pay-a and jobs-a started first but the holders are %r" % hold)
        self.mark("services settled: holders %s, sessions %s" % (
            json.dumps(hold, sort_keys=True), json.dumps({i: o["session"] for i, o in sorted(owners.items())})))
        self.step({"step": "services", "at": iso(t), "holders": hold,
                   "sessions": {i: o["session"] for i, o in sorted(owners.items())}})

        # 2. kill -9 the leader.
        self.quiet()
        old = self.leader()
        e0 = self.epoch(old)
        t = now_ms()
        self.mark("kill -9 zk%d (the leader)" % old)
        H.signal_server(self.ens, old, signal.SIGKILL)
        new, e1, formed = self.new_leader(e0, exclude=(old,))
        self.last_formed_ms = formed
        owners2, hold2 = self.settled()
        self.step({"step": "kill-leader", "at": iso(t), "killed": old, "old_leader": old, "new_leader": new,
                   "old_epoch": e0, "new_epoch": e1, "leader_seen_at": iso(formed),
                   "sessions_expired": self.expired(owners, owners2), "holders": hold2})
        owners, hold, killed = owners2, hold2, old

        # 3. SIGSTOP both recipe holders past the session timeout.
        self.quiet()
        victims = [hold["pay"], hold["jobs"]]
        others = {"pay": [i for i in ("pay-a", "pay-b") if i != hold["pay"]][0],
                  "jobs": [i for i in ("jobs-a", "jobs-b") if i != hold["jobs"]][0]}
        stale = hold["jobs"]
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
                     lambda: self.znodes()[0].get(v) is None, SESSION_TIMEOUT_S * 3, every=0.05)
            gone[v] = now_ms()
        taken = {}
        for svc, o in sorted(others.items()):
            wait_for("%s to hold the %s recipe" % (o, svc), lambda: self.znodes()[1].get(svc) == o, 10, every=0.05)
            taken[svc] = now_ms()
        left = t / 1000.0 + CLIENT_STALL_S - time.time()
        if left > 0:
            time.sleep(left)
        for v in victims:
            os.kill(self.procs[v].pid, signal.SIGCONT)
        resumed = now_ms()
        self.mark("SIGCONT %s" % " and ".join(victims))
        time.sleep(STALE_RUN_S)
        owners2, hold2 = self.settled(timeout=10, stable_s=0.5, registered_only=(stale,))
        if self.leader() != lead or self.epoch(lead) != e:
            raise RecordError("the leader or epoch changed during the client stall")
        if hold2 != {"pay": others["pay"], "jobs": others["jobs"]}:
            raise RecordError("after the stall the holders are %r, expected %r" % (hold2, others))
        self.step({"step": "stall-client", "at": iso(t), "stalled": victims, "leader": lead, "epoch": e,
                   "sessions": sessions, "ephemerals_gone_at": {v: iso(g) for v, g in gone.items()},
                   "holder_seen_at": {s: iso(g) for s, g in taken.items()}, "resumed_at": iso(resumed),
                   "new_sessions": {v: owners2[v]["session"] for v in victims},
                   "sessions_expired": self.expired(owners, owners2), "holders": hold2})
        owners, hold = owners2, hold2

        # 4. the stale job runner is stopped and started again.
        t = now_ms()
        old_pid, old_sess = self.procs[stale].pid, owners[stale]["session"]
        self.mark("SIGTERM %s (pid %d, session %s): it still runs batches as PRIMARY" % (stale, old_pid, old_sess))
        how = self.stop_proc(stale)
        stopped = now_ms()
        wait_for("%s's registration to go" % stale, lambda: stale not in self.znodes()[0], 10, every=0.05)
        self.mark("%s %s" % (stale, how))
        self.start_jobs(stale)
        owners2, hold2 = self.settled()
        if hold2 != hold:
            raise RecordError("restarting %s moved a recipe: %r -> %r" % (stale, hold, hold2))
        self.stale = {"instance": stale, "resumed_ms": resumed, "stopped_ms": stopped, "pid": old_pid}
        self.step({"step": "restart-stale", "at": iso(t), "instance": stale, "stopped": how,
                   "stopped_at": iso(stopped), "session_closed": old_sess,
                   "new_session": owners2[stale]["session"], "holders": hold2})
        owners, hold = owners2, hold2

        # 5. restart the killed server: it rejoins the epoch.
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
        owners2, hold2 = self.settled()
        self.step({"step": "rejoin", "at": iso(t), "server": killed, "leader": lead, "epoch": e, "sync": mode,
                   "serving_at": iso(serving), "sessions_expired": self.expired(owners, owners2), "holders": hold2})
        if hold2 != hold:
            raise RecordError("the rejoin moved a recipe: %r -> %r" % (hold, hold2))
        time.sleep(3)

    def shutdown(self):
        self.mark("stopping services (waiters first)")
        try:
            holders = set(self.znodes()[1].values()) if self.obs is not None else set()
        except Exception:  # noqa: BLE001 - on the way out
            holders = set()
        for group in ([i for i in self.procs if i not in holders], [i for i in self.procs if i in holders]):
            for i in group:
                try:
                    os.kill(self.procs[i].pid, signal.SIGCONT)
                    self.procs[i].terminate()
                except OSError:
                    pass
            for i in group:
                try:
                    self.procs[i].wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self.procs[i].kill()
                    self.procs[i].wait(timeout=10)
        if self.poller is not None:
            time.sleep(0.5)
            self.poller.stop()
        if self.obs is not None:
            try:
                self.obs.stop()
                self.obs.close()
            except Exception:  # noqa: BLE001
                pass
        try:
            if os.path.exists(H.meta_path(self.ens)):
                self.mark("stopping the ensemble")
                for n in (1, 2, 3):
                    H.signal_server(self.ens, n, signal.SIGTERM, wait=5)
        finally:
            H.stop_all(self.ens)

    # ---- read back ----------------------------------------------------------------------------------
    def txns(self, out, files):
        by_zxid = {}
        for f in files:
            if f["kind"] == "txnlog":
                for tx in read_txnlog(os.path.join(out, f["path"])):
                    old = by_zxid.setdefault(tx["zxid"], tx)
                    if old["type"] != tx["type"] or old["session"] != tx["session"]:
                        raise RecordError("zxid %s differs between the servers' txn logs" % hx(tx["zxid"]))
        return [by_zxid[z] for z in sorted(by_zxid)]

    def replay(self, txns, expiries):
        """Sessions (with their instance) and each recipe parent's holdings, from the txn logs."""
        expired = {int(x["session"], 16) for x in expiries}
        self.closed_paths = {}
        sessions, inst_of = {}, {}
        for tx in txns:
            if tx["type"] == -10:
                sessions[tx["session"]] = {"session": hx(tx["session"]), "created_zxid": hx(tx["zxid"]),
                                           "created_at": iso(tx["time"])}
            for op, path, _, eph in tx["ops"]:
                m = re.fullmatch(r"/services/([^/]+)/([^/]+)", path)
                if op == "create" and m and eph:
                    inst_of[tx["session"]] = (m.group(1), m.group(2))
            if tx["type"] == -11 and tx["session"] in sessions:
                s = sessions[tx["session"]]
                self.closed_paths[hx(tx["session"])] = sorted(p for _, p, _, _ in tx["ops"])
                s["ended"] = "session_expired" if tx["session"] in expired else "session_closed"
                s["ended_zxid"], s["ended_at"] = hx(tx["zxid"]), iso(tx["time"])
        recipes = {}
        for parent in RECIPES:
            kids, hs, cur = {}, [], None
            for tx in txns:
                touched = False
                for op, path, data, eph in tx["ops"]:
                    if os.path.dirname(path) != parent:
                        continue
                    name = os.path.basename(path)
                    touched = True
                    if op == "create":
                        kids[name] = {"owner": tx["session"], "czxid": tx["zxid"], "data": data}
                    elif name in kids:
                        del kids[name]
                        if cur is not None and cur["name"] == name:
                            cur["until"] = ("node_deleted" if op == "delete" else
                                            "session_expired" if tx["session"] in expired else "session_closed")
                            cur["until_zxid"], cur["until_ms"] = tx["zxid"], tx["time"]
                            cur = None
                if touched and kids and cur is None:
                    low = min(kids, key=seq)
                    cur = dict(kids[low], name=low, znode=parent + "/" + low, since_zxid=tx["zxid"], since_ms=tx["time"])
                    hs.append(cur)
            recipes[parent] = hs
        return sessions, inst_of, recipes

    def split_brain(self, out, jobs_holdings, inst_of):
        st = self.stale
        rel = self.services[st["instance"]]["file"]
        claims = []
        with open(os.path.join(out, rel), errors="replace") as f:
            for i, line in enumerate(f, 1):
                m = CLAIM_RE.search(line)
                at = line_time(line, self.year)
                if m and at and iso(st["resumed_ms"])[:23] <= at[:23] <= iso(st["stopped_ms"])[:23]:
                    claims.append((at, m.group(2), "%s:%d" % (rel, i)))
        if not claims:
            raise RecordError("%s logged no batch as PRIMARY after SIGCONT" % st["instance"])
        first, last = claims[0][0], claims[-1][0]
        meanwhile = set()
        for h in jobs_holdings:
            since, until = iso(h["since_ms"]), iso(h["until_ms"]) if "until_ms" in h else "9999"
            if since[:23] <= last[:23] and until[:23] >= first[:23]:
                meanwhile.add(inst_of.get(h["owner"], ("?", "?"))[1])
        if len(meanwhile) != 1 or st["instance"] in meanwhile:
            raise RecordError("while %s claimed the jobs (%s .. %s) the lock was held by %r"
                              % (st["instance"], first, last, meanwhile))
        return {"instance": st["instance"], "service": "jobs", "first_claim": first, "last_claim": last,
                "claims": len(claims), "holder_meanwhile": meanwhile.pop(),
                "claim_sessions": sorted({c[1] for c in claims}),
                "evidence": "%s .. %s" % (claims[0][2], claims[-1][2].split(":")[-1])}

    def silent_check(self, out):
        for inst in ("pay-a", "pay-b"):
            rel = self.services[inst]["file"]
            own = 0
            with open(os.path.join(out, rel), errors="replace") as f:
                for i, line in enumerate(f, 1):
                    if not re.search(r"\] \w+ +PayService - ", line):
                        continue
                    own += 1
                    if ROLE_WORDS.search(line):
                        raise RecordError("%s:%d: the pay service logged a role word: %s" % (rel, i, line.strip()))
            if own < 10:
                raise RecordError("%s has only %d lines of PayService's own" % (rel, own))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-port", type=int, default=BASE_PORT)
    ap.add_argument("--out", default=None, help="sample directory (default samples/incident-3)")
    a = ap.parse_args()
    a.profile = "incident-3"
    os.environ["TZ"] = "UTC"
    time.tzset()
    out = os.path.abspath(a.out or os.path.join(rec2.REPO, "samples", "incident-3"))
    r = Recorder3(a)

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
        epochs, elections, expiries, _, syncs = r.read_back(out)
        doc = facts(r, out, files, epochs, elections, expiries, syncs)
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
    header = [
        "Generated by samples/record/record-incident-3.py: do not edit by hand.",
        "Every fact here was measured by the recording driver on the ensemble (steps; [[recipe]]",
        "holdings as its poller saw them: seen_at, deleted_pzxid) or read back from the recorded files",
        "themselves (epoch, election, expiry, sync from the servers' logs; session, the holdings' since/",
        "until and service_failovers' `at` from the txn logs, i.e. the leader's time of the txn;",
        "split_brain from the stale instance's own log). [[incident]] holds what zklens must report;",
        "times are UTC. A holding's `until`: node_deleted (the recipe deleted its node), session_expired,",
        "session_closed (the node went with its session's closeSession).",
    ]
    with open(out + ".manifest.toml", "w") as f:
        f.write(rec2.to_toml(doc, header))
    with open(out + ".timeline.txt", "w") as f:
        f.write("\n".join(r.timeline) + "\n")
    shutil.rmtree(r.work, ignore_errors=True)
    print("== recorded into %s (manifest %s.manifest.toml)" % (out, out))
    return 0


def facts(r, out, files, epochs, elections, expiries, syncs):
    """Everything the manifest says beyond the files, each checked against a second source."""
    txns = r.txns(out, files)
    sessions, inst_of, replayed = r.replay(txns, expiries)
    name = lambda s: inst_of.get(s, (None, None))[1]  # noqa: E731
    # The poller's holders against the txn logs' (the same znodes, in the same order).
    recipes = []
    for parent, (svc, scheme) in RECIPES.items():
        seen = r.poller.holdings[parent]
        rep = replayed[parent]
        if [h["znode"] for h in seen] != [h["znode"] for h in rep]:
            raise RecordError("%s: the poller saw holders %r, the txn logs say %r"
                              % (parent, [h["znode"] for h in seen], [h["znode"] for h in rep]))
        holdings = []
        for s, h in zip(seen, rep):
            if (s["owner"], s["czxid"]) != (h["owner"], h["czxid"]):
                raise RecordError("%s: owner/czxid of %s differ: poll %r, txn %r" % (parent, h["znode"], s, h))
            polled_inst = r.poller.sessions.get(s["owner"])
            if polled_inst != name(h["owner"]) or name(h["owner"]) is None:
                raise RecordError("%s: session %s is %r by the poller, %r by the txn logs"
                                  % (h["znode"], hx(h["owner"]), polled_inst, name(h["owner"])))
            if "deleted_pzxid" in s and s["deleted_pzxid"] != h.get("until_zxid"):
                raise RecordError("%s: parent pzxid %s after its deletion, the txn logs delete it at %s"
                                  % (h["znode"], hx(s["deleted_pzxid"]), hx(h.get("until_zxid", 0))))
            holdings.append({
                "holder": name(h["owner"]), "session": hx(h["owner"]), "znode": h["znode"], "czxid": hx(h["czxid"]),
                "data": h["data"].decode("utf-8", errors="replace"),
                "since": iso(h["since_ms"]), "since_zxid": hx(h["since_zxid"]), "seen_at": iso(s["seen_ms"]),
                "until": h.get("until"), "until_zxid": hx(h["until_zxid"]) if "until_zxid" in h else None,
                "until_at": iso(h["until_ms"]) if "until_ms" in h else None,
                "deleted_pzxid": hx(s["deleted_pzxid"]) if "deleted_pzxid" in s else None,
                "gone_seen_at": iso(s["gone_seen_ms"]) if "gone_seen_ms" in s else None})
        style = {"curator-lock": r"_c_[0-9a-f-]{36}-lock-\d{10}", "kazoo-lock": r"[0-9a-f]{32}__lock__\d{10}"}[scheme]
        for h in holdings:
            if not re.fullmatch(style, os.path.basename(h["znode"])):
                raise RecordError("%s is not a %s node" % (h["znode"], scheme))
        recipes.append({"parent": parent, "service": svc, "scheme": scheme, "holdings": holdings})

    # Every handover to another instance, in the step that caused it.
    steps = r.steps
    bounds = [(s, s["at"], steps[i + 1]["at"] if i + 1 < len(steps) else "9999") for i, s in enumerate(steps)]
    for s in steps:
        s["service_failovers"] = []
    for rc in recipes:
        hs = rc["holdings"]
        for prev, h in zip(hs, hs[1:]):
            if prev["holder"] == h["holder"]:
                continue
            st = [s for s, a, b in bounds if a[:23] <= h["since"][:23] < b[:23]]
            if not st or st[0]["step"] in ("start", "services"):
                raise RecordError("%s moved from %s to %s at %s outside a step" % (rc["parent"], prev["holder"],
                                                                                   h["holder"], h["since"]))
            st[0]["service_failovers"].append({"service": rc["service"], "from": prev["holder"], "to": h["holder"],
                                               "at": h["since"], "seen_at": h["seen_at"], "zxid": h["since_zxid"]})
    # jobs instances say so when they take the lock: each jobs failover has its 'acquired' line.
    for s in steps:
        for f in s["service_failovers"]:
            if f["service"] == "jobs":
                rel = r.services[f["to"]]["file"]
                with open(os.path.join(out, rel), errors="replace") as fh:
                    hit = [line_time(ln, r.year) for ln in fh if "acquired /locks/jobs: now PRIMARY" in ln]
                if not [x for x in hit if x and x[:23] >= f["at"][:23]]:
                    raise RecordError("%s took /locks/jobs at %s but logged no 'acquired' after it" % (f["to"], f["at"]))

    r.silent_check(out)
    # The stale instance's claims, while the lock was held by the instance that took it over.
    sb = r.split_brain(out, replayed["/locks/jobs"], inst_of)
    took = [f["to"] for s in steps if s["step"] == "stall-client" for f in s["service_failovers"]
            if f["service"] == "jobs" and f["from"] == sb["instance"]]
    if took != [sb["holder_meanwhile"]]:
        raise RecordError("split brain: %r held the lock meanwhile, but the stall handed it to %r"
                          % (sb["holder_meanwhile"], took))

    session_rows = []
    for sid, s in sorted(sessions.items(), key=lambda kv: kv[1]["created_zxid"]):
        if sid in inst_of:
            session_rows.append(dict({"service": inst_of[sid][0], "instance": inst_of[sid][1]}, **s))
    for s in session_rows:
        s.setdefault("ended", "open")

    # Incidents (incident-2's shapes), from the steps, checked against the servers' own lines.
    by_epoch = {e["epoch"]: e for e in epochs}
    incidents = []
    for s in steps:
        if s["step"] == "start" and by_epoch.get(s["epoch"], {}).get("leader") != s["leader"]:
            raise RecordError("epoch %d: srvr says zk%d leads, the logs say %r" % (s["epoch"], s["leader"],
                                                                                    by_epoch.get(s["epoch"])))
        if s["step"] == "kill-leader":
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
            if sorted(x["instance"] for x in s["sessions_expired"]) != sorted(s["stalled"]):
                raise RecordError("expired %r, stalled %r" % (s["sessions_expired"], s["stalled"]))
            at_ms = rec2.calendar.timegm(time.strptime(s["at"][:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(s["at"][20:23])
            for x in s["sessions_expired"]:
                seen = [e for e in expiries if e["session"] == x["session"]]
                if [e["server"] for e in seen] != [s["leader"]]:
                    raise RecordError("session %s: expected one 'Expiring session' line on the leader zk%d, got %r"
                                      % (x["session"], s["leader"], seen))
                row = [q for q in session_rows if q["session"] == x["session"]]
                if not row or row[0]["ended"] != "session_expired":
                    raise RecordError("session %s: the txn logs say %r" % (x["session"], row))
                if r.closed_paths.get(x["session"]) != sorted(x["ephemerals"]):
                    raise RecordError("session %s: the driver saw ephemerals %r, its closeSession deletes %r"
                                      % (x["session"], x["ephemerals"], r.closed_paths.get(x["session"])))
                incidents.append({
                    "id": "session-expiry-%s" % x["session"], "kind": "session-expiry",
                    "instance": x["instance"], "expired_by": s["leader"], "expired_at": seen[0]["at"],
                    "old_leader": s["leader"], "close_session_zxid": row[0]["ended_zxid"],
                    "sessions_expired": [x["session"]], "ephemerals_lost": x["ephemerals"],
                    "service_failovers": [f for f in s["service_failovers"] if f["from"] == x["instance"]],
                    "started_not_before": iso(at_ms + SESSION_TIMEOUT_S * 1000 - 1000),
                    "started_not_after": s["ephemerals_gone_at"][x["instance"]]})
        elif s["step"] == "restart-stale":
            if s["service_failovers"]:
                raise RecordError("restarting the stale instance moved a recipe: %r" % s["service_failovers"])
            row = [q for q in session_rows if q["session"] == s["session_closed"]]
            if not row or row[0]["ended"] != "session_closed":
                raise RecordError("session %s of the stopped %s: the txn logs say %r"
                                  % (s["session_closed"], s["instance"], row))
        elif s["step"] == "rejoin":
            if s["sessions_expired"] or s["service_failovers"]:
                raise RecordError("the rejoin moved sessions or recipes: %r" % s)
            incidents.append({
                "id_prefix": "server-rejoin-zk%d-" % s["server"], "kind": "server-rejoin",
                "server": "zk%d" % s["server"], "sync": {"zk%d" % s["server"]: s["sync"]},
                "sessions_expired": [], "ephemerals_lost": [], "service_failovers": [],
                "started_not_before": s["at"], "started_not_after": s["serving_at"]})
    return {
        "sample": "incident-3",
        "recorded_at": r.timeline[0][:24] if r.timeline else "",
        "recorded_by": "samples/record/record-incident-3.py",
        "zookeeper": r.version,
        "java": rec2.java_version(),
        "python": "%d.%d.%d" % sys.version_info[:3],
        "curator": pkg_version("libcurator-discovery-java"),
        "kazoo": pkg_version("python3-kazoo"),
        "tick_ms": TICK_MS,
        "session_timeout_ms": SESSION_TIMEOUT_S * 1000,
        "timezone": "UTC",
        "silent": ["pay-a", "pay-b"],
        "file": files,
        "epoch": epochs,
        "election": elections,
        "expiry": expiries,
        "sync": syncs,
        "session": session_rows,
        "recipe": recipes,
        "split_brain": [sb],
        "step": steps,
        "incident": incidents,
    }


if __name__ == "__main__":
    sys.exit(main())
