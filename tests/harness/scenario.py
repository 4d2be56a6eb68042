#!/usr/bin/python3
"""Generates incidents on a live ensemble and writes down what it did, measured from the ensemble
itself: the ground truth `tests/live_incidents.rs` holds zklens's reconstruction to.

    /usr/bin/python3 tests/harness/scenario.py --dir D [--base-port 26810]

One 3-server ensemble (Debian's ZooKeeper 3.8 through zkharness.py, tickTime=500, syncLimit=5:
followers give a silent leader up after 2.5 s) and three kazoo services (samples/record/service.py,
session timeout 4 s, reconnect back-off capped at 1 s): calc-a and calc-b share the election
/election/calc, store-1 (JSON lines) is alone in /election/store. Then, in sequence:

  1. kill-leader    kill -9 the leader; wait for the next one
  2. rejoin         restart the killed server; it syncs with the leader and follows
  3. stall-leader   SIGSTOP the leader for 9 s (past syncLimit*tickTime = 2.5 s): the others elect
                    a new leader; SIGCONT: the old leader finds it lost its quorum, steps down
                    and follows the new one
  4. stall-client   SIGSTOP the calc primary's process for 10 s (past its 4 s session timeout):
                    the leader expires its session, its ephemerals go, the other calc instance
                    becomes primary; SIGCONT: it registers again with a new session
  5. quorum-loss    kill -9 the leader and one follower; 6 s later restart both; wait for a leader

The truth (D/truth.json) comes from the ensemble, never from zklens: leaders from each server's
`srvr` mode, epochs from the leader's `srvr` zxid (high 32 bits), sessions and ephemerals from
the znodes' ephemeralOwner (read by the driver's own kazoo session), service primaries from the
owner of the lowest election lock node (its data is the instance name), sync modes from the
leader's log lines written during the step, outage lengths from the driver's clock (it polls
every 0.2 s). Steps are spaced so that each incident's evidence stays out of the others' windows
(queries/*.toml): at least 12 s between an epoch's formation and the next step.

D/collected/ holds, after the run, what is to be ingested: zkN/logs/zookeeper.log, zkN/data
(myid, version-2/ txn logs and snapshots), <service>/logs/<service>.{log,jsonl}.

Every wait is bounded and fails with a message (exit status 1, the message on stderr, the truth
so far still written). Whatever happens the services are killed and the ensemble is stopped
(zkharness's watchdog also kills the servers if this process dies).
"""
import argparse
import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import zkharness as H  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402
from kazoo.exceptions import NoNodeError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SERVICE = os.path.join(REPO, "samples", "record", "service.py")
SESSION_TIMEOUT_S = 4
TICK_MS = 500
SYNC_LIMIT = 5
LEADER_STALL_S = 9.0
CLIENT_STALL_S = 10.0
QUORUM_DOWN_S = 6.0
QUIET_S = 12.0  # between an epoch's formation and the next step
GAP_S = 8.0  # between the end of any step and the next (server-rejoin's 5 s formation margin)


class ScenarioError(Exception):
    pass


def now_ms():
    return int(time.time() * 1000)


def iso(ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms / 1000)) + ".%03dZ" % (ms % 1000)


def log(msg):
    print("scenario %s  %s" % (iso(now_ms()), msg), file=sys.stderr, flush=True)


def wait_for(what, pred, timeout, every=0.2):
    """Polls pred until it returns something truthy; ScenarioError after timeout seconds."""
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
    raise ScenarioError("timed out after %.0f s waiting for %s%s"
                        % (timeout, what, " (last error: %r)" % last if last else ""))


class Scenario:
    def __init__(self, d, base_port):
        self.d = os.path.abspath(d)
        self.ens = os.path.join(self.d, "ens")
        self.base_port = base_port
        self.procs = {}  # instance -> Popen
        self.obs = None
        self.truth = {
            "tick_ms": TICK_MS, "sync_limit": SYNC_LIMIT, "session_timeout_ms": SESSION_TIMEOUT_S * 1000,
            "base_port": base_port, "services": {}, "steps": [], "error": None,
        }
        self.last_formed_ms = 0
        self.last_step_ms = 0

    # ---- the ensemble, as its servers report it -------------------------------------------------
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
            raise ScenarioError("zk%d did not answer srvr with a Zxid" % n)
        return int(z, 16) >> 32

    def leader(self, exclude=(), timeout=60.0):
        return H.leader(self.ens, timeout=timeout, exclude=exclude)

    def new_leader(self, old_epoch, exclude=(), timeout=60.0):
        """Waits for a leader serving an epoch after old_epoch; returns (leader, epoch, ms)."""
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

    def log_since(self, n, offset):
        with open(self.log_path(n), errors="replace") as f:
            f.seek(offset)
            return f.read()

    def sync_mode(self, leader, learner, offset):
        """How the leader synced `learner`, from the leader's log lines since offset."""
        text = self.log_since(leader, offset)
        modes = []
        for line in text.splitlines():
            m = re.search(r"Sending (DIFF|TRUNC) zxid=0x[0-9a-f]+ +for peer sid: (\d+)", line)
            if m and int(m.group(2)) == learner:
                modes.append(m.group(1).lower())
            # The SNAP line names no sid: it is the learner's only when no other one syncs.
            if "Sending snapshot last zxid of peer" in line:
                modes.append("snap")
        # A learner whose first sync broke off reconnects and is synced again (seen on a
        # loaded machine: two DIFFs): the same mode each time is one answer; different modes
        # are not.
        if not modes or len(set(modes)) != 1:
            raise ScenarioError("zk%d's log since the step shows %d syncs of zk%d (%s), expected one mode"
                                % (leader, len(modes), learner, modes))
        return modes[0]

    # ---- services and their znodes, as the ensemble holds them --------------------------------
    def start_service(self, name, instance, fmt):
        ext = "jsonl" if fmt == "json" else "log"
        logf = os.path.join(self.d, instance, "logs", "%s.%s" % (instance, ext))
        p = subprocess.Popen(
            ["/usr/bin/python3", SERVICE, "--name", name, "--instance", instance,
             "--zk", H.connect_string(self.ens), "--log-file", logf, "--log-format", fmt,
             "--timeout", str(SESSION_TIMEOUT_S), "--retry-max-delay", "1"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(os.path.join(self.d, instance + ".stderr"), "wb"))
        self.procs[instance] = p
        self.truth["services"][instance] = {"service": name, "pid": p.pid}
        return p

    def znodes(self):
        """{instance: {"session", "registration", "locks": [paths]}} and {service: primary}."""
        owners = {}
        primaries = {}
        for svc in ("calc", "store"):
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
                locks = self.obs.get_children("/election/" + svc)
            except NoNodeError:
                locks = []
            held = []
            for node in locks:
                path = "/election/%s/%s" % (svc, node)
                try:
                    data, st = self.obs.get(path)
                except NoNodeError:
                    continue
                held.append((node.rsplit("__", 1)[-1], data.decode(), path, "0x%x" % st.ephemeralOwner))
            held.sort()
            for _, inst, path, sess in held:
                o = owners.get(inst)
                if o and o["session"] == sess:
                    o["ephemerals"].append(path)
            # The primary: the holder of the lowest lock node, if its session is the registered
            # one (a stale lock node of an expired or closing session holds no primary).
            if held:
                _, inst, _, sess = held[0]
                if owners.get(inst, {}).get("session") == sess:
                    primaries[svc] = inst
        for o in owners.values():
            o["ephemerals"].sort()
        return owners, primaries

    def settled(self, timeout=30.0, stable_s=2.0):
        """Waits until every service is registered and holds one lock node, each election has a
        primary, and nothing changes for stable_s. Returns (owners, primaries)."""
        def complete():
            owners, prim = self.znodes()
            ok = (set(owners) == set(self.procs)
                  and all(len(o["ephemerals"]) == 2 for o in owners.values())
                  and set(prim) == {"calc", "store"})
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
        raise ScenarioError("services did not settle within %.0f s: %r" % (timeout, state))

    def quiet(self):
        """Keeps the next step out of the last failover's windows."""
        left = max(self.last_formed_ms / 1000.0 + QUIET_S, self.last_step_ms / 1000.0 + GAP_S) - time.time()
        if left > 0:
            time.sleep(left)

    def expired(self, before, after):
        """Sessions of `before` that hold nothing in `after` (their service registered anew)."""
        out = []
        for inst, o in sorted(before.items()):
            a = after.get(inst)
            if a is None or a["session"] != o["session"]:
                out.append({"instance": inst, "session": o["session"], "ephemerals": o["ephemerals"]})
        return out

    def failovers(self, p0, p1):
        return [{"service": s, "from": p0.get(s), "to": p1[s]}
                for s in sorted(p1) if p0.get(s) != p1[s]]

    def step(self, d):
        self.last_step_ms = now_ms()
        self.truth["steps"].append(d)
        self.save()
        log("%s: %s" % (d["step"], json.dumps({k: v for k, v in d.items() if k != "step"})))

    def save(self):
        tmp = os.path.join(self.d, "truth.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.truth, f, indent=1)
        os.replace(tmp, os.path.join(self.d, "truth.json"))

    # ---- the run ----------------------------------------------------------------------------------
    def run(self):
        t = now_ms()
        first = H.start(self.ens, servers=3, base_port=self.base_port, tick=TICK_MS, debian_layout=[3],
                        extra=["syncLimit=%d" % SYNC_LIMIT], prealloc_kb=1024, owner_pid=os.getpid(),
                        timeout=60)
        e = self.epoch(first)
        self.last_formed_ms = now_ms()
        self.step({"step": "start", "at": iso(t), "leader": first, "epoch": e})
        # The driver's own kazoo session: its connection noise goes to D/driver-kazoo.log.
        kl = logging.getLogger("kazoo")
        kl.addHandler(logging.FileHandler(os.path.join(self.d, "driver-kazoo.log")))
        kl.propagate = False
        self.obs = KazooClient(hosts=H.connect_string(self.ens), timeout=15,
                               connection_retry={"max_tries": -1, "delay": 0.1, "backoff": 2, "max_delay": 1.0})
        self.obs.start(timeout=30)
        self.start_service("calc", "calc-a", "text")
        time.sleep(1.5)  # calc-a first: it is the calc primary
        self.start_service("calc", "calc-b", "text")
        self.start_service("store", "store-1", "json")
        owners, prim = self.settled()
        if prim.get("calc") != "calc-a":
            raise ScenarioError("calc-a started first but %r is the calc primary" % prim)

        # 1. kill -9 the leader.
        self.quiet()
        old = self.leader()
        e0 = self.epoch(old)
        t = now_ms()
        H.signal_server(self.ens, old, signal.SIGKILL)
        new, e1, formed = self.new_leader(e0, exclude=(old,))
        self.last_formed_ms = formed
        owners2, prim2 = self.settled()
        self.step({"step": "kill-leader", "at": iso(t), "killed": old, "old_leader": old, "new_leader": new,
                   "old_epoch": e0, "new_epoch": e1, "leader_seen_at": iso(formed),
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        owners, prim, killed = owners2, prim2, old

        # 2. restart the killed server: it rejoins the epoch.
        self.quiet()
        lead = self.leader()
        off = self.log_size(lead)
        t = now_ms()
        H.start_server(self.ens, killed)
        H.wait_serving(self.ens, killed, timeout=60)
        serving = now_ms()
        if self.leader() != lead or self.epoch(lead) != e1:
            raise ScenarioError("the restart of zk%d changed the leader or epoch" % killed)
        mode = wait_for("zk%d's sync in zk%d's log" % (killed, lead),
                        lambda: self.sync_mode(lead, killed, off), 10)
        owners2, prim2 = self.settled()
        self.step({"step": "rejoin", "at": iso(t), "server": killed, "leader": lead, "epoch": e1,
                   "sync": mode, "serving_at": iso(serving),
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        owners, prim = owners2, prim2

        # 3. SIGSTOP the leader past syncLimit: the others elect a new one; SIGCONT.
        self.quiet()
        old = self.leader()
        e0 = self.epoch(old)
        off_old = self.log_size(old)
        t = now_ms()
        H.signal_server(self.ens, old, signal.SIGSTOP)
        new, e1, formed = self.new_leader(e0, exclude=(old,), timeout=30)
        self.last_formed_ms = formed
        off_new = self.log_size(new)
        left = t / 1000.0 + LEADER_STALL_S - time.time()
        if left > 0:
            time.sleep(left)
        resumed = now_ms()
        H.signal_server(self.ens, old, signal.SIGCONT)
        wait_for("zk%d to follow after its resume" % old,
                 lambda: H.mode(self.meta(), old) == "follower", 60)
        following = now_ms()
        if self.leader() != new or self.epoch(new) != e1:
            raise ScenarioError("zk%d's resume changed the leader or epoch" % old)
        mode = wait_for("zk%d's sync in zk%d's log" % (old, new), lambda: self.sync_mode(new, old, off_new), 10)
        # What the stalled leader itself logged after its resume.
        after = self.log_since(old, off_old)
        owners2, prim2 = self.settled()
        self.step({"step": "stall-leader", "at": iso(t), "stalled": old, "old_leader": old, "new_leader": new,
                   "old_epoch": e0, "new_epoch": e1, "leader_seen_at": iso(formed),
                   "stall_ms": resumed - t, "resumed_at": iso(resumed), "following_at": iso(following),
                   "rejoin_sync": mode,
                   "old_leader_logged": {
                       "looking": bool(re.search(r" - LOOKING$", after, re.M)),
                       "following": bool(re.search(r"FOLLOWING - LEADER ELECTION TOOK", after)),
                       "shutdown": re.findall(r"Shutdown called\. For the reason (.*)", after)[:3],
                       "expiring": re.findall(r"Expiring session (0x[0-9a-f]+)", after),
                   },
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        owners, prim = owners2, prim2

        # 4. SIGSTOP the calc primary past its session timeout.
        self.quiet()
        victim = prim["calc"]
        other = [i for i in ("calc-a", "calc-b") if i != victim][0]
        lead = self.leader()
        e = self.epoch(lead)
        sess = owners[victim]["session"]
        t = now_ms()
        os.kill(self.procs[victim].pid, signal.SIGSTOP)
        wait_for("the expiry of %s's session %s" % (victim, sess),
                 lambda: self.znodes()[0].get(victim) is None, SESSION_TIMEOUT_S * 3)
        gone = now_ms()
        wait_for("%s to become calc primary" % other, lambda: self.znodes()[1].get("calc") == other, 10)
        left = t / 1000.0 + CLIENT_STALL_S - time.time()
        if left > 0:
            time.sleep(left)
        os.kill(self.procs[victim].pid, signal.SIGCONT)
        resumed = now_ms()
        owners2, prim2 = self.settled()
        if self.leader() != lead or self.epoch(lead) != e:
            raise ScenarioError("the leader or epoch changed during the client stall")
        self.step({"step": "stall-client", "at": iso(t), "stalled": victim, "session": sess,
                   "ephemerals": owners[victim]["ephemerals"], "leader": lead, "epoch": e,
                   "ephemerals_gone_at": iso(gone), "resumed_at": iso(resumed),
                   "new_session": owners2[victim]["session"],
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        owners, prim = owners2, prim2

        # 5. quorum loss: kill -9 the leader and a follower; restart both.
        self.quiet()
        old = self.leader()
        e0 = self.epoch(old)
        other = min(n for n in (1, 2, 3) if n != old)
        survivor = 6 - old - other
        t = now_ms()
        H.signal_server(self.ens, old, signal.SIGKILL)
        H.signal_server(self.ens, other, signal.SIGKILL)
        time.sleep(QUORUM_DOWN_S)
        restarted = now_ms()
        H.start_server(self.ens, old)
        H.start_server(self.ens, other)
        new, e1, formed = self.new_leader(e0, timeout=90)
        self.last_formed_ms = formed
        owners2, prim2 = self.settled(timeout=45)
        self.step({"step": "quorum-loss", "at": iso(t), "killed": [old, other], "survivor": survivor,
                   "old_leader": old, "new_leader": new, "old_epoch": e0, "new_epoch": e1,
                   "restarted_at": iso(restarted), "leader_seen_at": iso(formed),
                   "unavailable_ms": formed - t,
                   "sessions_expired": self.expired(owners, owners2),
                   "service_failovers": self.failovers(prim, prim2)})
        time.sleep(3)

    def stop_services(self):
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

    def shutdown(self):
        try:
            self.stop_services()
        finally:
            if self.obs is not None:
                try:
                    self.obs.stop()
                    self.obs.close()
                except Exception:  # noqa: BLE001 - best effort on the way out
                    pass
            try:
                meta = self.meta()
                for n in range(1, meta["servers"] + 1):
                    H.signal_server(self.ens, n, signal.SIGTERM, wait=5)
            finally:
                H.stop_all(self.ens)

    def collect(self):
        out = os.path.join(self.d, "collected")
        shutil.rmtree(out, ignore_errors=True)
        for n in (1, 2, 3):
            src = os.path.join(self.ens, "zk%d" % n)
            os.makedirs(os.path.join(out, "zk%d" % n, "logs"))
            shutil.copy(os.path.join(src, "logs", "zookeeper.log"), os.path.join(out, "zk%d" % n, "logs"))
            shutil.copytree(os.path.join(src, "data"), os.path.join(out, "zk%d" % n, "data"))
        for inst in self.procs:
            shutil.copytree(os.path.join(self.d, inst, "logs"), os.path.join(out, inst, "logs"))
        return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--base-port", type=int, default=26810)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    s = Scenario(a.dir, a.base_port)
    os.environ["TZ"] = "UTC"
    def on_term(*_):
        raise ScenarioError("terminated by SIGTERM")

    signal.signal(signal.SIGTERM, on_term)
    ok = False
    try:
        s.run()
        ok = True
    except (ScenarioError, SystemExit, Exception) as ex:  # noqa: BLE001 - reported, then cleaned up
        s.truth["error"] = str(ex) or type(ex).__name__
        log("FAILED: %s" % s.truth["error"])
    finally:
        s.shutdown()
        s.save()
    if not ok:
        for n in (1, 2, 3):
            print("---- zk%d log tail ----\n%s" % (n, H.tail(s.log_path(n), 10)), file=sys.stderr)
        return 1
    out = s.collect()
    log("done; truth in %s, files to ingest in %s" % (os.path.join(s.d, "truth.json"), out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
