#!/usr/bin/python3
"""Records samples/fleet: TWO real 3-server ZooKeeper ensembles, `east` and `west`, running at the
same time on this machine, each going through its own leader failover while the other one does,
and writes the manifest of what the files are and what happened.

    /usr/bin/python3 samples/record/record-fleet.py        # ~2 min -> samples/fleet

It exists to test that zklens keeps two ensembles apart in one index: both ensembles have servers
named zk1, zk2, zk3 and services named calc-a, calc-b; both start at epoch 1, so their zxids
collide (0x100000001 is a different transaction in each); their logs overlap in time and their
failovers overlap in wall-clock time (west's leader is killed while east is still failing over).
The only thing that tells them apart is the `ensemble=NAME` directory (Hive-style) each file lies
under.

Needs (Debian 12 packages): zookeeper, python3-kazoo, a JDK. /usr/bin/python3 is the interpreter
(Debian's kazoo). It reuses record-incident-2.py (the ensemble handling through
tests/harness/zkharness.py, the services, the collection of the files, the read-back of the
servers' logs, the expected incidents and the TOML writer) and record-incident-3.py (the txn-log
reader and the session replay), both imported, not changed.

ensembles (ports base+1..3, quorum base+101..103, election base+201..203):
  east  base 26010 (client ports 26011-26013)
  west  base 26510 (client ports 26511-26513)
  each  zk1, zk2, zk3: ZooKeeper 3.8 (Debian), log4j, upstream layout
        `%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`; tickTime 500
        calc-a, calc-b: service.py on kazoo (session timeout 4 s), ephemeral /services/calc/<id>
        whose data names its own log file (file://<work dir>/ensemble=NAME/calc-X/logs/calc-X.log),
        kazoo Election /election/calc, the layout zklens ships
        `%(asctime)s %(levelname)s %(name)s: %(message)s` -> ensemble=NAME/calc-X/logs/calc-X.log

Steps (the driver measures each outcome on each ensemble itself, as record-incident-2.py does:
leaders from `srvr`, epochs from the leader's zxid, sessions from the znodes' ephemeralOwner,
primaries from the lowest election node):
  1. start: both ensembles at once; calc-a then calc-b in each (calc-a is each calc primary)
  2. kill-leader, overlapping: kill -9 east's leader; as soon as the driver sees east's next leader
     (`srvr`), while east's clients are still reconnecting and its calc role has not moved yet,
     kill -9 west's leader (--stagger N: N seconds after east's kill instead); wait for both next
     epochs and for each ensemble's services to be back (registered, calc primary moved: calc-a
     gives the role up on SUSPENDED). East recovers in about a second (epoch formed ~0.45 s, calc
     role moved ~1 s after the kill), so a stagger of 2 s or more would leave the two failovers
     disjoint in wall-clock time: the recording fails unless west's kill falls before east's
     recovery (the latest of its epoch's formation, its calc role change, its services back)
  3. stall-client in --stall ensemble (default east): SIGSTOP its calc primary for 10 s, past the
     4 s session timeout: its leader expires the session, the other calc instance becomes primary;
     SIGCONT: it registers again with a new session. The other ensemble keeps running.
  4. rejoin, overlapping: restart east's killed server; --rejoin-stagger seconds (2) later west's
  5. services stop (sessions closed), servers stop; files collected into
     samples/fleet/ensemble=NAME/ (txn logs and snapshots gzip-compressed); the facts read back
     from each ensemble's servers' logs, services' logs and txn logs, checked against what the
     driver measured; that the two ensembles' zxids collide and their failovers overlap is
     checked too. A disagreement fails the recording.

Output: samples/fleet (replaced), fleet.manifest.toml beside it and fleet.timeline.txt. On any
failure everything started is killed, the work dir is kept, the exit status is 1.
"""
import argparse
import calendar
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True  # the imports below leave no __pycache__ in samples/record
HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name, fname):
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, fname))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


rec2 = _load("rec2", "record-incident-2.py")
rec3 = _load("rec3", "record-incident-3.py")
H = rec2.H
RecordError, iso, now_ms, wait_for, pkg_version = rec2.RecordError, rec2.iso, rec2.now_ms, rec2.wait_for, rec2.pkg_version
hx = rec3.hx
# record-incident-3.py loads its own copy of record-incident-2.py: its RecordError is another class.
ERRORS = (RecordError, rec3.RecordError, H.HarnessError, subprocess.CalledProcessError, OSError)

SESSION_TIMEOUT_S = rec2.SESSION_TIMEOUT_S  # 4
TICK_MS = rec2.TICK_MS                      # 500
CLIENT_STALL_S = rec2.CLIENT_STALL_S        # 10
PYLOG = "%(asctime)s %(levelname)s %(name)s: %(message)s"
ENSEMBLES = (("east", 26010), ("west", 26510))
JVM_OPTS = ["-XX:TieredStopAtLevel=1"]  # six servers on two shared cores: C1 only, less JIT work
TIMELINE = []
_tl_lock = threading.Lock()


def ms_of(t):
    """RFC 3339 UTC with milliseconds -> epoch ms."""
    return calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) * 1000 + int(t[20:23])


def parallel(*fns):
    """Runs the functions in threads; returns their results; raises the first failure."""
    res, errs = [None] * len(fns), [None] * len(fns)

    def run(i, f):
        try:
            res[i] = f()
        except BaseException as ex:  # noqa: BLE001 - HarnessError is a SystemExit
            errs[i] = ex
    ts = [threading.Thread(target=run, args=(i, f), daemon=True) for i, f in enumerate(fns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for e in errs:
        if e is not None:
            raise e
    return res


class Ensemble(rec2.Recorder):
    """One ensemble of the fleet: incident-2's recorder, its work dir inside the fleet's."""

    def __init__(self, a, root, name, base_port):
        a2 = argparse.Namespace(**vars(a))
        a2.profile, a2.base_port = "fleet-" + name, base_port
        super().__init__(a2)
        os.rmdir(self.work)  # the fleet's work dir instead: root/ensemble=NAME mirrors the sample
        self.name, self.root = name, root
        self.work = self.ens = os.path.join(root, "ensemble=" + name)
        os.makedirs(self.work)
        self.kills, self.restarts = [], []
        self.led = threading.Event()  # set once the failover's next leader is seen

    def mark(self, msg):
        line = "%s  [%s] %s" % (iso(now_ms()), self.name, msg)
        with _tl_lock:
            TIMELINE.append(line)
        print(line, flush=True)

    def start_calc(self, instance):
        rel = "%s/logs/%s.log" % (instance, instance)
        logf = os.path.join(self.work, rel)  # the registration names this file
        drv = os.path.join(self.root, "driver")
        layout_out = os.path.join(drv, "%s-%s.layout.json" % (self.name, instance))
        cmd = ["/usr/bin/python3", os.path.join(HERE, "service.py"), "--name", "calc", "--instance", instance,
               "--zk", H.connect_string(self.ens), "--log-file", logf, "--log-format", "text",
               "--timeout", str(SESSION_TIMEOUT_S), "--retry-max-delay", "1", "--layout-out", layout_out]
        p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=open(os.path.join(drv, "%s-%s.stderr" % (self.name, instance)), "ab"),
                             env=dict(os.environ, TZ="UTC"))
        self.procs[instance] = p
        self.services[instance] = {"service": "calc", "format": "text", "file": rel, "path": logf,
                                   "layout_out": layout_out, "pid": p.pid}
        self.mark("%s started (kazoo Election /election/calc, pid %d, log %s)" % (instance, p.pid, logf))

    def registrations(self):
        """{instance: the log URL its registration names}."""
        out = {}
        for inst in sorted(self.procs):
            data, _ = self.obs.get("/services/calc/" + inst)
            out[inst] = json.loads(data.decode())["logs"][0]["url"]
        return out

    # ---- the ensemble -----------------------------------------------------------------------------
    def start(self):
        layouts = {n: H.UPSTREAM for n in (1, 2, 3)}
        for n in (1, 2, 3):
            self.layouts[n] = ("ZooKeeper %s (Debian), log4j %s PatternLayout"
                               % (pkg_version("zookeeper"), pkg_version("liblog4j1.2-java")), H.UPSTREAM)
        t = now_ms()
        first = H.start(self.ens, servers=3, base_port=self.a.base_port, tick=TICK_MS, debian_layout=[],
                        extra=["syncLimit=5"], prealloc_kb=1024, owner_pid=os.getpid(), timeout=90,
                        layouts=layouts, jvm_opts=JVM_OPTS)
        # H.start returns once a quorum serves; the third server may still be syncing, and a
        # session created meanwhile can break its sync off (ZooKeeper 3.8.0's
        # `NullPointerException: Cannot read field "hdr" because "pif" is null` in
        # Learner.syncWithLeader, then LOOKING again: a blip nobody caused). Clients wait for all three.
        for n in (1, 2, 3):
            H.wait_serving(self.ens, n, timeout=60)
        e = self.epoch(first)
        self.last_formed_ms = now_ms()
        self.version = self.srvr(first).get("Zookeeper version", "?")
        self.mark("ensemble up (client ports %s): %s, zk%d leads epoch %d"
                  % (H.connect_string(self.ens), self.version, first, e))
        self.step({"step": "start", "at": iso(t), "leader": first, "epoch": e, "leader_seen_at": iso(now_ms())})
        self.obs = rec2.KazooClient(hosts=H.connect_string(self.ens), timeout=15,
                                    connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0})
        self.obs.start(timeout=30)

    def kill_leader(self):
        """kill -9 the leader; returns what the failover step needs to wait for the next epoch."""
        old = self.leader()
        e0 = self.epoch(old)
        t = now_ms()
        self.mark("kill -9 zk%d (the leader of epoch %d)" % (old, e0))
        H.signal_server(self.ens, old, signal.SIGKILL)
        self.kills.append({"server": "zk%d" % old, "signal": "SIGKILL", "at": iso(t), "was": "leader"})
        return old, e0, t

    def failover(self, old, e0, t, primary):
        """Waits for the next epoch's leader (then sets self.led), then for every service back:
        registered, in its election, and the calc primary moved off `primary` (it gives the role
        up on SUSPENDED); the first poll that shows it."""
        new, e1, formed = self.new_leader(e0, exclude=(old,))
        self.last_formed_ms = formed
        self.mark("zk%d leads epoch %d" % (new, e1))
        self.led.set()

        def back():
            owners, prim = self.znodes()
            return (set(owners) == set(self.procs) and all(len(o["ephemerals"]) == 2 for o in owners.values())
                    and prim.get("calc") not in (None, primary))
        wait_for("%s: the services back after the failover (calc primary no longer %s)" % (self.name, primary),
                 back, 40, every=0.05)
        back_ms = now_ms()
        self.mark("services back (registered, calc primary %s)" % self.znodes()[1].get("calc"))
        return {"at": iso(t), "killed": old, "old_leader": old, "new_leader": new, "old_epoch": e0,
                "new_epoch": e1, "leader_seen_at": iso(formed), "services_back_seen_at": iso(back_ms)}

    def rejoin(self, server):
        lead = self.leader()
        e = self.epoch(lead)
        off = self.log_size(lead)
        t = now_ms()
        self.mark("restart zk%d" % server)
        H.start_server(self.ens, server)
        H.wait_serving(self.ens, server, timeout=60)
        serving = now_ms()
        self.mark("zk%d serving again" % server)
        if self.leader() != lead or self.epoch(lead) != e:
            raise RecordError("%s: the restart of zk%d changed the leader or epoch" % (self.name, server))
        mode = wait_for("%s: zk%d's sync in zk%d's log" % (self.name, server, lead),
                        lambda: self.sync_mode(lead, server, off), 10)
        self.restarts.append({"server": "zk%d" % server, "at": iso(t), "serving_at": iso(serving), "sync": mode})
        return {"at": iso(t), "server": server, "leader": lead, "epoch": e, "sync": mode, "serving_at": iso(serving)}

    def stall(self, owners, prim):
        victim = prim["calc"]
        other = [i for i in ("calc-a", "calc-b") if i != victim][0]
        lead = self.leader()
        e = self.epoch(lead)
        session = owners[victim]["session"]
        t = now_ms()
        self.mark("SIGSTOP %s (pid %d, session %s) for %.0f s (session timeout %d s)"
                  % (victim, self.procs[victim].pid, session, CLIENT_STALL_S, SESSION_TIMEOUT_S))
        os.kill(self.procs[victim].pid, signal.SIGSTOP)
        wait_for("%s: the expiry of %s's session %s" % (self.name, victim, session),
                 lambda: self.znodes()[0].get(victim) is None, SESSION_TIMEOUT_S * 3, every=0.05)
        gone = now_ms()
        self.mark("%s's registration is gone (session %s expired)" % (victim, session))
        wait_for("%s: %s to become calc primary" % (self.name, other), lambda: self.znodes()[1].get("calc") == other,
                 10, every=0.05)
        primary_seen = now_ms()
        left = t / 1000.0 + CLIENT_STALL_S - time.time()
        if left > 0:
            time.sleep(left)
        os.kill(self.procs[victim].pid, signal.SIGCONT)
        resumed = now_ms()
        self.mark("SIGCONT %s" % victim)
        owners2, prim2 = self.settled()
        if self.leader() != lead or self.epoch(lead) != e:
            raise RecordError("%s: the leader or epoch changed during the client stall" % self.name)
        self.step({"step": "stall-client", "at": iso(t), "stalled": [victim], "leader": lead, "epoch": e,
                   "sessions": {victim: session}, "ephemerals_gone_at": {victim: iso(gone)},
                   "primary_seen_at": iso(primary_seen), "resumed_at": iso(resumed),
                   "new_sessions": {victim: owners2[victim]["session"]},
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        return owners2, prim2


class Fleet:
    def __init__(self, a):
        self.a = a
        self.root = tempfile.mkdtemp(prefix="zklens-record-fleet.")
        os.makedirs(os.path.join(self.root, "driver"))
        self.ens = [Ensemble(a, self.root, n, p) for n, p in ENSEMBLES]
        self.by_name = {e.name: e for e in self.ens}

    def quiet(self):
        for e in self.ens:
            e.quiet()

    def run(self):
        print("== work dir %s" % self.root, flush=True)
        import logging
        kl = logging.getLogger("kazoo")
        kl.addHandler(logging.FileHandler(os.path.join(self.root, "driver", "driver-kazoo.log")))
        kl.propagate = False
        east, west = self.ens

        # 1. both ensembles at once, then their services (calc-a first in each).
        parallel(*[e.start for e in self.ens])
        t = now_ms()
        for e in self.ens:
            e.start_calc("calc-a")
        time.sleep(1.5)
        for e in self.ens:
            e.start_calc("calc-b")
        state = dict(zip(self.by_name, parallel(*[lambda e=e: e.settled(timeout=60) for e in self.ens])))
        for e in self.ens:
            owners, prim = state[e.name]
            if prim.get("calc") != "calc-a":
                raise RecordError("%s: calc-a started first but %r is the calc primary" % (e.name, prim))
            regs = e.registrations()
            for inst, url in regs.items():
                if not url.endswith("/ensemble=%s/%s/logs/%s.log" % (e.name, inst, inst)):
                    raise RecordError("%s: %s's registration names %s" % (e.name, inst, url))
            e.step({"step": "services", "at": iso(t), "primaries": prim,
                    "sessions": {i: o["session"] for i, o in sorted(owners.items())}, "log_urls": regs})

        # 2. kill -9 east's leader, then west's while east still fails over: overlapping failovers.
        self.quiet()
        res = {}
        k_east = east.kill_leader()
        th = threading.Thread(target=lambda: self._catch(
            res, "east", lambda: east.failover(*k_east, state["east"][1]["calc"])), daemon=True)
        th.start()
        if self.a.stagger is None:
            # As soon as east's next leader is seen: east's clients are still reconnecting and its
            # calc role has not moved yet, so the two failovers overlap.
            if not east.led.wait(60):
                th.join()
            west.mark("east's next leader is seen, its services are still failing over: kill west's leader")
        else:
            time.sleep(max(0.0, k_east[2] / 1000.0 + self.a.stagger - time.time()))
        if isinstance(res.get("east"), BaseException):
            raise res["east"]
        k_west = west.kill_leader()
        res["west"] = west.failover(*k_west, state["west"][1]["calc"])
        th.join()
        if isinstance(res.get("east"), BaseException):
            raise res["east"]
        settled = parallel(*[lambda e=e: e.settled() for e in self.ens])
        killed = {}
        for e, (owners2, prim2) in zip(self.ens, settled):
            owners, prim = state[e.name]
            d = dict({"step": "kill-leader"}, **res[e.name])
            d["sessions_expired"] = e.expired(owners, owners2)
            d["service_failovers"] = e.failovers(prim, prim2)
            e.step(d)
            state[e.name] = (owners2, prim2)
            killed[e.name] = res[e.name]["killed"]

        # 3. a client stall in one ensemble; the other one runs on.
        self.quiet()
        s = self.by_name[self.a.stall]
        state[s.name] = s.stall(*state[s.name])

        # 4. restart the killed servers, east's first and west's --rejoin-stagger seconds later.
        self.quiet()
        out = {}

        def later(e):
            time.sleep(self.a.rejoin_stagger)
            return e.rejoin(killed[e.name])
        out = dict(zip(self.by_name, parallel(lambda: east.rejoin(killed["east"]), lambda: later(west))))
        settled = parallel(*[lambda e=e: e.settled() for e in self.ens])
        for e, (owners2, prim2) in zip(self.ens, settled):
            owners, prim = state[e.name]
            d = dict({"step": "rejoin"}, **out[e.name])
            d["sessions_expired"] = e.expired(owners, owners2)
            d["service_failovers"] = e.failovers(prim, prim2)
            e.step(d)
            state[e.name] = (owners2, prim2)
        time.sleep(4)

    @staticmethod
    def _catch(res, key, f):
        try:
            res[key] = f()
        except BaseException as ex:  # noqa: BLE001
            res[key] = ex

    def shutdown(self):
        try:
            for e in self.ens:
                e.mark("stopping services (SIGTERM: they close their sessions)")
                for p in e.procs.values():
                    try:
                        os.kill(p.pid, signal.SIGCONT)
                        p.terminate()
                    except OSError:
                        pass
            for e in self.ens:
                for p in e.procs.values():
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
                        p.wait(timeout=10)
        finally:
            for e in self.ens:  # incident-2's shutdown, without the services (gone already)
                try:
                    if e.obs is not None:
                        try:
                            e.obs.stop()
                            e.obs.close()
                        except Exception:  # noqa: BLE001 - best effort on the way out
                            pass
                    if os.path.exists(H.meta_path(e.ens)):
                        e.mark("stopping the ensemble")
                        for n in (1, 2, 3):
                            H.signal_server(e.ens, n, signal.SIGTERM, wait=5)
                except BaseException as ex:  # noqa: BLE001 - the other ensemble must stop too
                    print("== %s: shutdown: %r" % (e.name, ex), file=sys.stderr)
                finally:
                    H.stop_all(e.ens)


# ---- read back, cross-checks and the manifest ------------------------------------------------------
def ensemble_txns(e, out, files):
    """{zxid: txn} of one ensemble's txn logs (every server's), checked to agree per zxid."""
    by_zxid = {}
    for f in files:
        if f["kind"] == "txnlog":
            for tx in rec3.read_txnlog(os.path.join(out, f["path"])):
                old = by_zxid.setdefault(tx["zxid"], tx)
                if old["type"] != tx["type"] or old["session"] != tx["session"]:
                    raise RecordError("%s: zxid %s differs between the servers' txn logs" % (e.name, hx(tx["zxid"])))
    return by_zxid


def facts(fleet, out):
    per = {}
    for e in fleet.ens:
        eout = os.path.join(out, "ensemble=" + e.name)
        files = e.collect(eout)
        epochs, elections, expiries, roles, syncs = e.read_back(eout)
        incidents = e.expectations(epochs, expiries, roles)
        txns = ensemble_txns(e, eout, files)
        sessions, inst_of, _ = rec3.Recorder3.replay(e, [txns[z] for z in sorted(txns)], expiries)
        per[e.name] = dict(files=files, epochs=epochs, elections=elections, expiries=expiries, roles=roles,
                           syncs=syncs, incidents=incidents, txns=txns, sessions=sessions, inst_of=inst_of)
        # Every election is one the driver caused: each server's first, and one per failover (the
        # survivors) or restart (the killed server). Anything else (a sync broken off, a blip) fails.
        for n in (1, 2, 3):
            got = [x["role"] for x in elections if x["server"] == n]
            want = ["leading" if n == s["leader"] else "following" for s in e.steps if s["step"] == "start"]
            for s in e.steps:
                if s["step"] == "kill-leader" and s["killed"] != n:
                    want.append("leading" if n == s["new_leader"] else "following")
                elif s["step"] == "rejoin" and s["server"] == n:
                    want.append("following")
            if got != want:
                raise RecordError("%s zk%d: elections %r, the driver caused %r" % (e.name, n, got, want))
        if not any(f["kind"] == "txnlog" for f in files):
            raise RecordError("%s: no txn log collected" % e.name)
        for f in files:
            if f["kind"] in ("zookeeper-log", "service-log") and not f["lines"]:
                raise RecordError("%s: %s is empty" % (e.name, f["path"]))
    names = sorted(os.listdir(out))
    if names != ["ensemble=" + e.name for e in fleet.ens]:
        raise RecordError("%s holds %r" % (out, names))

    # The expiries the driver caused, and no other: one `Expiring session` line on the leader
    # (expectations() checked that), its closeSession in the txn logs deleting what the driver saw.
    expired_rows = {}
    for e in fleet.ens:
        p = per[e.name]
        caused = [x for s in e.steps for x in s.get("sessions_expired", [])]
        if sorted(x["session"] for x in caused) != sorted(x["session"] for x in p["expiries"]):
            raise RecordError("%s: the driver expired %r, the servers' logs expire %r"
                              % (e.name, [x["session"] for x in caused], [x["session"] for x in p["expiries"]]))
        if (e.name == fleet.a.stall) != bool(caused):
            raise RecordError("%s: expired sessions %r (the stall was in %s)" % (e.name, caused, fleet.a.stall))
        rows = []
        for x in caused:
            row = p["sessions"].get(int(x["session"], 16))
            if not row or row.get("ended") != "session_expired":
                raise RecordError("%s: session %s: the txn logs say %r" % (e.name, x["session"], row))
            if e.closed_paths.get(x["session"]) != sorted(x["ephemerals"]):
                raise RecordError("%s: session %s: the driver saw ephemerals %r, its closeSession deletes %r"
                                  % (e.name, x["session"], x["ephemerals"], e.closed_paths.get(x["session"])))
            rows.append({"instance": x["instance"], "session": x["session"],
                         "expired_by": "zk%d" % [s for s in e.steps if s["step"] == "stall-client"][0]["leader"],
                         "expired_at": [y["at"] for y in p["expiries"] if y["session"] == x["session"]][0],
                         "close_session_zxid": row["ended_zxid"], "ephemerals_lost": x["ephemerals"]})
        expired_rows[e.name] = rows
        for inc in p["incidents"]:
            if inc["kind"] == "session-expiry":
                inc["close_session_zxid"] = p["sessions"][int(inc["sessions_expired"][0], 16)]["ended_zxid"]

    # The zxids collide: the same zxid is a different transaction in each ensemble.
    a, b = (per[e.name]["txns"] for e in fleet.ens)
    both = sorted(set(a) & set(b))
    key = lambda t: (t["type"], t["session"], t["time"])  # noqa: E731
    differ = [z for z in both if key(a[z]) != key(b[z])]
    epochs_both = sorted({z >> 32 for z in both})
    if not both or epochs_both[:2] != [1, 2]:
        raise RecordError("the ensembles' zxids do not collide in epochs 1 and 2: %r" % epochs_both)
    common_sessions = sorted(set(hx(t["session"]) for t in a.values() if t["type"] == -10)
                             & set(hx(t["session"]) for t in b.values() if t["type"] == -10))

    # The failovers overlap: the second kill falls inside the first failover's recovery, up to
    # its services settled again, and the two kills are at most 5 s apart.
    fo = {}
    for e in fleet.ens:
        s = [x for x in e.steps if x["step"] == "kill-leader"][0]
        ep = [x for x in per[e.name]["epochs"] if x["epoch"] == s["new_epoch"]][0]
        sf = [f["at"] for f in s["service_failovers"]]
        fo[e.name] = {"ensemble": e.name, "killed": "zk%d" % s["killed"], "killed_at": s["at"],
                      "new_epoch": s["new_epoch"], "new_leader": "zk%d" % s["new_leader"],
                      "epoch_formed_at": ep["formed_at"], "leader_seen_at": s["leader_seen_at"],
                      "service_failover_at": max(sf) if sf else None,
                      "services_back_seen_at": s["services_back_seen_at"]}
        fo[e.name]["recovered_at"] = max(x for x in (ep["formed_at"], fo[e.name]["service_failover_at"],
                                                     s["services_back_seen_at"]) if x)
    f1, f2 = fo[fleet.ens[0].name], fo[fleet.ens[1].name]
    stagger = ms_of(f2["killed_at"]) - ms_of(f1["killed_at"])
    if not 0 < stagger <= 5000:
        raise RecordError("the kills are %d ms apart" % stagger)
    if not ms_of(f2["killed_at"]) < ms_of(f1["recovered_at"]):
        raise RecordError("the failovers do not overlap: %s's leader was killed at %s, %s had recovered at %s"
                          % (f2["ensemble"], f2["killed_at"], f1["ensemble"], f1["recovered_at"]))
    rj = {e.name: [x for x in e.steps if x["step"] == "rejoin"][0]["at"] for e in fleet.ens}
    overlap = {
        "first": f1["ensemble"], "second": f2["ensemble"], "kill_stagger_ms": stagger,
        "first_killed_at": f1["killed_at"], "second_killed_at": f2["killed_at"],
        "first_epoch_formed_at": f1["epoch_formed_at"], "first_service_failover_at": f1["service_failover_at"],
        "first_services_back_seen_at": f1["services_back_seen_at"], "first_recovered_at": f1["recovered_at"],
        "second_epoch_formed_at": f2["epoch_formed_at"], "second_service_failover_at": f2["service_failover_at"],
        "second_services_back_seen_at": f2["services_back_seen_at"], "second_recovered_at": f2["recovered_at"],
        "second_killed_before_first_recovered": ms_of(f2["killed_at"]) < ms_of(f1["recovered_at"]),
        "rejoin_stagger_ms": ms_of(rj[f2["ensemble"]]) - ms_of(rj[f1["ensemble"]]),
        "colliding_zxids": len(both), "colliding_zxids_that_differ": len(differ),
        "colliding_epochs": epochs_both,
        "first_colliding_zxid": hx(both[0]), "last_colliding_zxid": hx(both[-1]),
        "common_session_ids": common_sessions,
    }

    def tag(name, rows, *paths):
        outrows = []
        for r in rows:
            r = dict(r)
            for k in paths:
                if k in r and isinstance(r[k], str):
                    r[k] = "ensemble=%s/%s" % (name, r[k])
            outrows.append(dict({"ensemble": name}, **r))
        return outrows

    ens_rows, doc_lists = [], {k: [] for k in ("file", "epoch", "election", "expiry", "sync", "role_change",
                                               "session", "step", "incident")}
    for e in fleet.ens:
        p = per[e.name]
        steps = e.steps
        leaders = [{"epoch": s["epoch"], "leader": "zk%d" % s["leader"], "seen_at": s["leader_seen_at"]}
                   for s in steps if s["step"] == "start"]
        leaders += [{"epoch": s["new_epoch"], "leader": "zk%d" % s["new_leader"], "seen_at": s["leader_seen_at"]}
                    for s in steps if s["step"] == "kill-leader"]
        by_epoch = {x["epoch"]: x for x in p["epochs"]}
        for l in leaders:
            if by_epoch.get(l["epoch"], {}).get("leader") != int(l["leader"][2:]):
                raise RecordError("%s epoch %d: srvr says %s, the logs %r" % (e.name, l["epoch"], l["leader"],
                                                                              by_epoch.get(l["epoch"])))
            l["formed_at"] = by_epoch[l["epoch"]]["formed_at"]
        svc = [s for s in steps if s["step"] == "services"][0]
        ens_rows.append({
            "name": e.name, "dir": "ensemble=%s" % e.name, "base_port": e.a.base_port,
            "connect_string": H.connect_string(e.ens), "servers": ["zk1", "zk2", "zk3"],
            "services": sorted(e.services), "log_urls": svc["log_urls"],
            "initial_sessions": svc["sessions"],
            "leaders": leaders, "kills": e.kills, "restarts": e.restarts,
            "expired_sessions": expired_rows[e.name],
            "txns": len(p["txns"]), "last_zxid": hx(max(p["txns"])),
        })
        doc_lists["file"] += tag(e.name, p["files"], "path")
        doc_lists["epoch"] += tag(e.name, p["epochs"], "evidence")
        doc_lists["election"] += tag(e.name, p["elections"], "evidence")
        doc_lists["expiry"] += tag(e.name, p["expiries"], "evidence")
        doc_lists["sync"] += tag(e.name, p["syncs"], "evidence")
        doc_lists["role_change"] += tag(e.name, p["roles"], "evidence")
        srows = []
        for sid, s in sorted(p["sessions"].items(), key=lambda kv: int(kv[1]["created_zxid"], 16)):
            if sid in p["inst_of"]:
                srows.append(dict({"service": p["inst_of"][sid][0], "instance": p["inst_of"][sid][1]}, **s))
        for s in srows:
            s.setdefault("ended", "open")
        doc_lists["session"] += tag(e.name, srows)
        doc_lists["step"] += tag(e.name, steps)
        doc_lists["incident"] += tag(e.name, p["incidents"])
    return ens_rows, overlap, doc_lists


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stagger", type=float, default=None,
                    help="seconds between east's and west's leader kills (default: kill west's leader as soon "
                         "as east's next leader is seen, while east's services still fail over; the recording "
                         "fails unless west's kill falls inside east's failover)")
    ap.add_argument("--rejoin-stagger", type=float, default=2.0,
                    help="seconds between the restarts of east's and west's killed servers")
    ap.add_argument("--stall", choices=[n for n, _ in ENSEMBLES], default="east",
                    help="the ensemble whose calc primary is stalled past its session timeout")
    ap.add_argument("--out", default=None, help="sample directory (default samples/fleet)")
    a = ap.parse_args()
    os.environ["TZ"] = "UTC"
    time.tzset()
    out = os.path.abspath(a.out or os.path.join(rec2.REPO, "samples", "fleet"))
    fleet = Fleet(a)

    def on_term(*_):
        raise RecordError("terminated by a signal")
    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        try:
            fleet.run()
            ok = True
        finally:
            fleet.shutdown()
        if os.path.exists(out):
            shutil.rmtree(out)
        ens_rows, overlap, lists = facts(fleet, out)
    except ERRORS as ex:
        print("== FAILED: %s; work dir kept: %s" % (ex, fleet.root), file=sys.stderr)
        for e in fleet.ens:
            for n in (1, 2, 3):
                print("---- %s zk%d log tail ----\n%s" % (e.name, n, H.tail(e.log_path(n), 6)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("== interrupted; work dir kept: %s" % fleet.root, file=sys.stderr)
        return 130
    if not ok:
        return 1
    east = fleet.ens[0]
    doc = {
        "sample": os.path.basename(out),
        "recorded_at": TIMELINE[0][:24] if TIMELINE else "",
        "recorded_by": "samples/record/record-fleet.py%s --rejoin-stagger %g --stall %s"
                       % ("" if a.stagger is None else " --stagger %g" % a.stagger, a.rejoin_stagger, a.stall),
        "zookeeper": east.version,
        "java": rec2.java_version(),
        "jvm_opts": ["-Xmx256m", "-XX:+UseSerialGC"] + JVM_OPTS,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "kazoo": pkg_version("python3-kazoo"),
        "tick_ms": TICK_MS,
        "session_timeout_ms": SESSION_TIMEOUT_S * 1000,
        "timezone": "UTC",
        "ensembles": [e.name for e in fleet.ens],
        "overlap": overlap,
        "ensemble": ens_rows,
    }
    doc.update(lists)
    header = [
        "Generated by samples/record/record-fleet.py: do not edit by hand.",
        "Two ensembles recorded at the same time, each under samples/fleet/ensemble=NAME/; every row",
        "below names its `ensemble`, and every path is relative to samples/fleet. Every fact was",
        "measured by the recording driver on the ensemble (steps; [[ensemble]] leaders from `srvr`,",
        "kills, restarts, sessions from the znodes' ephemeralOwner) or read back from the recorded",
        "files themselves (epoch, election, expiry, sync from the servers' logs; role_change from the",
        "services' logs; session from the txn logs; [overlap] colliding zxids: the zxids present in",
        "both ensembles' txn logs). [[incident]] holds what zklens must report, per ensemble: the two",
        "ensembles have incidents with the same id. Times are UTC.",
    ]
    with open(out + ".manifest.toml", "w") as f:
        f.write(rec2.to_toml(doc, header))
    with open(out + ".timeline.txt", "w") as f:
        f.write("\n".join(TIMELINE) + "\n")
    shutil.rmtree(fleet.root, ignore_errors=True)
    print("== recorded into %s (manifest %s.manifest.toml)" % (out, out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
