#!/usr/bin/python3
"""Start, stop, kill, pause and inspect a real ZooKeeper ensemble on loopback, using Debian's
`zookeeper` package (3.8) on the machine's JVM. Standard library only; a library for the
recording script (samples/record/record.sh) and a CLI for the Rust integration tests:

    zkharness.py start    --dir D [--servers 3] [--base-port 21810] [--tick 500]
                          [--extra key=value ...] [--debian-layout N ...] [--owner-pid PID]
                          [--layout N=PATTERN ...] [--jars J1:J2:...] [--jvm-opt ARG ...]
                          [--timeout 60]          # prints the leader's id once there is one
    zkharness.py leader   --dir D [--timeout 60]  # prints the leader's id (waits for a quorum)
    zkharness.py kill N | stop N | pause N | resume N | restart N [--wait]  --dir D
    zkharness.py status   --dir D                 # one line per server: id pid alive|dead mode
    zkharness.py connect-string --dir D           # 127.0.0.1:P1,127.0.0.1:P2,...
    zkharness.py stop-all --dir D                 # SIGKILL every server (and the watchdog)

Layout: server N lives in D/zkN/{conf,data,logs}: conf/zoo.cfg, conf/log4j.properties,
data/myid, data/version-2/ (txn logs, snapshots), logs/zookeeper.log (log4j FileAppender),
logs/zookeeper.out (the JVM's stdout/stderr), and D/zkN/pid. D/ensemble.json holds the settings
and pids. Ports (all on 127.0.0.1): client base+N, quorum base+100+N, election base+200+N; pick
distinct base ports for tests that run in parallel.

Log layouts: upstream `%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n`, except for the
servers given with --debian-layout (default: server 3 when there are 3 or more; pass
`--debian-layout 0` for none), which use Debian's /etc/zookeeper/conf layout without `[myid:N]`.
`--layout N=PATTERN` gives server N any log4j 1.2 ConversionPattern instead (it wins over
--debian-layout).
Debian's zookeeper.jar has no logging binding: the servers run with slf4j-log4j12 and log4j 1.2
on the class path (the rest comes from the jar's manifest Class-Path) or they write no log.
Every JVM runs with TZ=UTC and -Xmx256m.
`--jars` replaces that class path (after the conf dir) for another ZooKeeper build, e.g. the
3.4.6 jars bundled in pyspark 2.4.8 (samples/record/zk34.sh): zookeeper, log4j 1.2, slf4j-api,
slf4j-log4j12 (3.4's jar has no manifest class path, so every jar it needs must be listed).

No stray JVMs: `start` leaves a small watchdog process (D/watchdog.pid) that SIGKILLs every
server of D as soon as the owner process dies (--owner-pid, default the process that ran the
CLI, i.e. its parent; 0 = no watchdog) or `stop-all` is called. Callers should still end with
`zkharness.py stop-all --dir D` (also safe to call when nothing runs). Every wait has a timeout
and fails with a message on stderr and exit status 1.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

# The class path the servers need: conf dir (log4j.properties), the server, the slf4j binding
# and log4j 1.2. zookeeper.jar's manifest pulls in slf4j-api, netty, jute, commons-*, ...
JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
]

UPSTREAM = "%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n"
DEBIAN = "%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n"  # /etc/zookeeper/conf/log4j.properties

HERE = os.path.abspath(__file__)


class HarnessError(SystemExit):
    """A failure with a message for the caller (exit status 1 from the CLI)."""

    def __init__(self, msg):
        super().__init__("zkharness: " + msg)


def classpath(conf, jars=None):
    jars = jars or JARS
    missing = [j for j in jars if not os.path.exists(j)]
    if missing:
        raise HarnessError("missing %s (apt-get install zookeeper liblog4j1.2-java libslf4j-java)"
                           % ", ".join(missing))
    return ":".join([conf] + list(jars))


def meta_path(d):
    return os.path.join(d, "ensemble.json")


def load(d):
    try:
        with open(meta_path(d)) as f:
            return json.load(f)
    except FileNotFoundError:
        raise HarnessError("no ensemble in %s (run start first)" % d)


def save(d, meta):
    tmp = meta_path(d) + ".tmp"
    with open(tmp, "w") as f:
        json.dump(meta, f, indent=1)
    os.replace(tmp, meta_path(d))


def ports(meta, n):
    b = meta["base_port"]
    return b + n, b + 100 + n, b + 200 + n


def server_dir(d, n):
    return os.path.join(d, "zk%d" % n)


def write_config(d, meta, n):
    root = server_dir(d, n)
    conf, data, logs = (os.path.join(root, x) for x in ("conf", "data", "logs"))
    for p in (conf, data, logs):
        os.makedirs(p, exist_ok=True)
    with open(os.path.join(data, "myid"), "w") as f:
        f.write("%d\n" % n)
    client, _, _ = ports(meta, n)
    cfg = {
        "tickTime": str(meta["tick"]),
        "initLimit": "10",
        "syncLimit": "5",
        "dataDir": data,
        "clientPort": str(client),
        "clientPortAddress": "127.0.0.1",
        "4lw.commands.whitelist": "*",
        "admin.enableServer": "false",
        "autopurge.snapRetainCount": "3",
        "minSessionTimeout": "1000",
        "maxSessionTimeout": "60000",
    }
    for kv in meta.get("extra", []):
        if "=" not in kv:
            raise HarnessError("--extra wants key=value, got %r" % kv)
        k, v = kv.split("=", 1)
        cfg[k.strip()] = v.strip()  # overrides a default in place
    lines = ["%s=%s" % kv for kv in cfg.items()]
    for i in range(1, meta["servers"] + 1):
        _, q, e = ports(meta, i)
        lines.append("server.%d=127.0.0.1:%d:%d" % (i, q, e))
    with open(os.path.join(conf, "zoo.cfg"), "w") as f:
        f.write("\n".join(lines) + "\n")
    layout = DEBIAN if n in meta.get("debian_layout", []) else UPSTREAM
    layout = meta.get("layouts", {}).get(str(n), layout)
    with open(os.path.join(conf, "log4j.properties"), "w") as f:
        f.write(
            "log4j.rootLogger=INFO, FILE\n"
            "log4j.appender.FILE=org.apache.log4j.FileAppender\n"
            "log4j.appender.FILE.File=%s\n"
            "log4j.appender.FILE.Append=true\n"
            "log4j.appender.FILE.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.FILE.layout.ConversionPattern=%s\n" % (os.path.join(logs, "zookeeper.log"), layout)
        )


def alive(pid):
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def is_our_jvm(pid, d):
    """The pid still runs a server of this ensemble (not a recycled pid)."""
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().decode(errors="replace")
    except OSError:
        return False
    return "QuorumPeerMain" in cmd and d in cmd


def reap(pid):
    try:
        os.waitpid(pid, os.WNOHANG)
    except (ChildProcessError, OSError):
        pass


def port_free(port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def tail(path, n=15):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError:
        return ""


def start_server(d, n):
    meta = load(d)
    if alive(meta["pids"].get(str(n))) and is_our_jvm(meta["pids"][str(n)], d):
        raise HarnessError("zk%d already runs (pid %d)" % (n, meta["pids"][str(n)]))
    busy = [p for p in ports(meta, n) if not port_free(p)]
    if busy:
        raise HarnessError("zk%d: port(s) %s on 127.0.0.1 already in use (another ensemble? "
                           "pick another --base-port)" % (n, ", ".join(map(str, busy))))
    root = server_dir(d, n)
    conf = os.path.join(root, "conf")
    logs = os.path.join(root, "logs")
    out = open(os.path.join(logs, "zookeeper.out"), "ab")
    env = dict(os.environ, TZ="UTC")
    env.pop("JAVA_TOOL_OPTIONS", None)
    p = subprocess.Popen(
        ["java", "-Xmx256m", "-XX:+UseSerialGC", "-Dzookeeper.log.dir=" + logs,
         "-Dzookeeper.preAllocSize=%d" % meta.get("prealloc_kb", 65536)]
        + list(meta.get("jvm_opts", []))
        + ["-cp", classpath(conf, meta.get("jars")), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
         os.path.join(conf, "zoo.cfg")],
        stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=env,
        start_new_session=True)
    out.close()
    meta = load(d)
    meta["pids"][str(n)] = p.pid
    save(d, meta)
    with open(os.path.join(root, "pid"), "w") as f:
        f.write("%d\n" % p.pid)
    return p.pid


def four(meta, n, cmd, timeout=1.0):
    """A four-letter word to server n; "" when it does not answer."""
    client, _, _ = ports(meta, n)
    try:
        with socket.create_connection(("127.0.0.1", client), timeout=timeout) as s:
            s.sendall(cmd.encode())
            s.settimeout(timeout)
            buf = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
            return buf.decode(errors="replace")
    except OSError:
        return ""


def mode(meta, n):
    """leader / follower / standalone, or None (down, paused, looking: not serving)."""
    for line in four(meta, n, "srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def leader(d, timeout=60.0, exclude=()):
    """The id of the leader once a quorum serves (a leader plus enough followers)."""
    meta = load(d)
    deadline = time.time() + timeout
    modes = {}
    while time.time() < deadline:
        modes = {n: mode(meta, n) for n in range(1, meta["servers"] + 1) if n not in exclude}
        leaders = [n for n, m in modes.items() if m in ("leader", "standalone")]
        serving = [n for n, m in modes.items() if m in ("leader", "follower", "standalone")]
        if leaders and len(serving) > meta["servers"] // 2:
            return leaders[0]
        time.sleep(0.2)
    meta = load(d)
    state = ", ".join("zk%d %s %s" % (n, "alive" if alive(meta["pids"].get(str(n))) else "dead", m or "-")
                      for n, m in sorted(modes.items()))
    raise HarnessError("no leader with a quorum within %.0f s (%s); see %s/zkN/logs/zookeeper.log"
                       % (timeout, state, d))


def signal_server(d, n, sig, wait=10.0):
    """Sends sig to server n. For SIGTERM/SIGKILL waits until it is gone (SIGTERM escalates to
    SIGKILL after `wait` seconds). Returns the pid (or None if it was not running)."""
    meta = load(d)
    if str(n) not in meta["pids"] and not 1 <= n <= meta["servers"]:
        raise HarnessError("no server %d in %s" % (n, d))
    pid = meta["pids"].get(str(n))
    if not (pid and alive(pid) and is_our_jvm(pid, d)):
        return None
    if sig in (signal.SIGTERM, signal.SIGKILL):
        os.kill(pid, signal.SIGCONT)  # a paused JVM cannot handle SIGTERM
    os.kill(pid, sig)
    if sig in (signal.SIGKILL, signal.SIGTERM):
        deadline = time.time() + wait
        while alive(pid):
            reap(pid)
            if time.time() > deadline:
                if sig == signal.SIGKILL:
                    raise HarnessError("zk%d (pid %d) survived SIGKILL for %.0f s" % (n, pid, wait))
                os.kill(pid, signal.SIGKILL)
                sig, deadline = signal.SIGKILL, time.time() + wait
            time.sleep(0.05)
    return pid


def wait_serving(d, n, timeout=60.0):
    meta = load(d)
    deadline = time.time() + timeout
    while time.time() < deadline:
        if mode(meta, n) in ("leader", "follower", "standalone"):
            return
        if not alive(load(d)["pids"].get(str(n))):
            raise HarnessError("zk%d died:\n%s" % (n, tail(os.path.join(server_dir(d, n), "logs", "zookeeper.out"))))
        time.sleep(0.2)
    raise HarnessError("zk%d not serving within %.0f s" % (n, timeout))


def start(d, servers=3, base_port=21810, tick=500, debian_layout=None, extra=(), prealloc_kb=65536,
          wait=True, owner_pid=None, timeout=60.0, layouts=None, jars=None, jvm_opts=()):
    """Writes the configuration of every server, starts them and (wait=True) returns the leader's
    id. owner_pid: the watchdog kills the ensemble when that process dies (None: this process;
    0: no watchdog). debian_layout: server ids using Debian's layout (None: server 3 if any).
    layouts: {server id: log4j ConversionPattern} overriding both. jars: the class path to run
    instead of Debian's 3.8 (None: JARS). jvm_opts: more JVM arguments (a JAAS configuration for
    SASL: -Djava.security.auth.login.config=FILE)."""
    d = os.path.abspath(d)
    os.makedirs(d, exist_ok=True)
    if os.path.exists(meta_path(d)):
        old = load(d)
        running = [n for n, p in old.get("pids", {}).items() if alive(p) and is_our_jvm(p, d)]
        if running:
            raise HarnessError("servers %s of %s still run: stop-all first" % (", ".join(running), d))
    if debian_layout is None:
        debian_layout = [3] if servers >= 3 else []
    meta = {"servers": servers, "base_port": base_port, "tick": tick, "pids": {},
            "debian_layout": [n for n in debian_layout if n], "extra": list(extra),
            "prealloc_kb": prealloc_kb, "jvm_opts": list(jvm_opts),
            "layouts": {str(k): v for k, v in (layouts or {}).items()}}
    if jars:
        meta["jars"] = list(jars)
    save(d, meta)
    busy = [p for n in range(1, servers + 1) for p in ports(meta, n) if not port_free(p)]
    if busy:
        raise HarnessError("port(s) %s on 127.0.0.1 already in use: pick another --base-port"
                           % ", ".join(map(str, busy)))
    for n in range(1, servers + 1):
        write_config(d, meta, n)
    try:
        for n in range(1, servers + 1):
            start_server(d, n)
        if owner_pid is None:
            owner_pid = os.getpid()
        if owner_pid:
            start_watchdog(d, owner_pid)
        if not wait:
            return None
        time.sleep(0.5)
        for n in range(1, servers + 1):
            if not alive(load(d)["pids"][str(n)]):
                raise HarnessError("zk%d exited at start:\n%s" % (
                    n, tail(os.path.join(server_dir(d, n), "logs", "zookeeper.out"))))
        return leader(d, timeout)
    except BaseException:
        stop_all(d)
        raise


def start_watchdog(d, owner):
    p = subprocess.Popen([sys.executable, HERE, "_watchdog", "--dir", d, "--owner-pid", str(owner)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True, close_fds=True)
    with open(os.path.join(d, "watchdog.pid"), "w") as f:
        f.write("%d\n" % p.pid)


def watchdog(d, owner):
    """Polls every 0.3 s; when the owner is gone, SIGKILLs every server it knows of."""
    known = {}
    while True:
        try:
            known.update(load(d)["pids"])
        except (SystemExit, OSError, ValueError):
            pass  # dir removed or file mid-write: keep the last pids known
        if not alive(owner):
            for pid in known.values():
                if alive(pid) and is_our_jvm(pid, d):
                    try:
                        os.kill(pid, signal.SIGCONT)
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            return
        time.sleep(0.3)


def stop_all(d):
    """SIGKILLs every server of the ensemble in d and its watchdog; quiet if nothing runs."""
    d = os.path.abspath(d)
    try:
        meta = load(d)
    except SystemExit:
        return
    for n in list(meta["pids"]):
        signal_server(d, int(n), signal.SIGKILL)
    wp = os.path.join(d, "watchdog.pid")
    try:
        with open(wp) as f:
            pid = int(f.read().strip())
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            if b"_watchdog" in f.read():
                os.kill(pid, signal.SIGKILL)
                reap(pid)
        os.remove(wp)
    except (OSError, ValueError):
        pass


def connect_string(d):
    meta = load(d)
    return ",".join("127.0.0.1:%d" % ports(meta, n)[0] for n in range(1, meta["servers"] + 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["start", "leader", "kill", "stop", "pause", "resume", "restart",
                                       "status", "stop-all", "connect-string", "_watchdog"])
    ap.add_argument("n", nargs="?", type=int)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=21810)
    ap.add_argument("--tick", type=int, default=500)
    ap.add_argument("--debian-layout", type=int, action="append", default=None,
                    help="server id using Debian's log layout (repeatable; default 3; 0 = none)")
    ap.add_argument("--extra", action="append", default=[], help="zoo.cfg key=value (repeatable)")
    ap.add_argument("--prealloc-kb", type=int, default=65536)
    ap.add_argument("--layout", action="append", default=[],
                    help="N=PATTERN: server N's log4j ConversionPattern (repeatable)")
    ap.add_argument("--jars", default=None, help="class path (':'-separated) instead of Debian's 3.8")
    ap.add_argument("--jvm-opt", action="append", default=[],
                    help="a JVM argument for every server (repeatable), e.g. -Djava.security.auth.login.config=FILE")
    ap.add_argument("--owner-pid", type=int, default=None,
                    help="kill the ensemble when this process dies (default: the caller; 0: never)")
    ap.add_argument("--wait", action="store_true", help="restart: wait until the server serves")
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    if a.action == "_watchdog":
        watchdog(d, a.owner_pid)
        return
    if a.action == "start":
        owner = os.getppid() if a.owner_pid is None else a.owner_pid
        layouts = {}
        for kv in a.layout:
            k, sep, v = kv.partition("=")
            if not sep or not k.strip().isdigit():
                raise HarnessError("--layout wants N=PATTERN, got %r" % kv)
            layouts[int(k)] = v
        n = start(d, a.servers, a.base_port, a.tick, a.debian_layout, a.extra, a.prealloc_kb,
                  owner_pid=owner, timeout=a.timeout, layouts=layouts,
                  jars=a.jars.split(":") if a.jars else None, jvm_opts=a.jvm_opt)
        print(n)
        print("zkharness: ensemble of %d up in %s, zk%d leads" % (a.servers, d, n), file=sys.stderr)
    elif a.action == "leader":
        print(leader(d, a.timeout))
    elif a.action == "connect-string":
        print(connect_string(d))
    elif a.action == "status":
        meta = load(d)
        for n in range(1, meta["servers"] + 1):
            pid = meta["pids"].get(str(n))
            print(n, pid, "alive" if alive(pid) and is_our_jvm(pid, d) else "dead", mode(meta, n) or "-")
    elif a.action == "stop-all":
        stop_all(d)
    else:
        if a.n is None:
            raise HarnessError("%s needs a server id" % a.action)
        if a.action == "kill":
            signal_server(d, a.n, signal.SIGKILL)
        elif a.action == "stop":
            signal_server(d, a.n, signal.SIGTERM)
        elif a.action == "pause":
            signal_server(d, a.n, signal.SIGSTOP)
        elif a.action == "resume":
            signal_server(d, a.n, signal.SIGCONT)
        elif a.action == "restart":
            signal_server(d, a.n, signal.SIGKILL)
            print(start_server(d, a.n))
            if a.wait:
                wait_serving(d, a.n, a.timeout)


if __name__ == "__main__":
    main()
