#!/usr/bin/python3
"""Start, stop, kill, pause and inspect a real ZooKeeper ensemble on loopback, using Debian's
`zookeeper` package (3.8) on the machine's JVM. A library for the recording script and a CLI for
the Rust integration tests:

    zkharness.py start  --dir D [--servers 3] [--base-port 21810] [--tick 500] [--debian-layout 3]
    zkharness.py leader --dir D            # prints the leader's id (waits until there is one)
    zkharness.py kill N | stop N | pause N | resume N | restart N  --dir D
    zkharness.py status --dir D            # one line per server: id pid mode
    zkharness.py stop-all --dir D

Every server N lives in D/zkN/{conf,data,logs}; its log is D/zkN/logs/zookeeper.log. Ports:
client base+N, quorum base+100+N, election base+200+N, all on 127.0.0.1.
Debian's zookeeper.jar has no logging binding on its class path: the servers are started with
slf4j-log4j12 and log4j 1.2 and a log4j.properties of our own, or they write no log at all.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-log4j12.jar",
    "/usr/share/java/log4j-1.2.jar",
    "/usr/share/java/netty-handler.jar",
    "/usr/share/java/netty-transport.jar",
    "/usr/share/java/netty-common.jar",
    "/usr/share/java/netty-buffer.jar",
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-epoll.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
    "/usr/share/java/commons-io.jar",
    "/usr/share/java/commons-cli.jar",
    "/usr/share/java/jline.jar",
    "/usr/share/java/metrics-core.jar",
    "/usr/share/java/snappy-java.jar",
    "/usr/share/java/audience-annotations.jar",
]

UPSTREAM = "%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n"
DEBIAN = "%d{ISO8601} - %-5p [%t:%C{1}@%L] - %m%n"


def classpath(conf):
    return ":".join([conf] + [j for j in JARS if os.path.exists(j)])


def meta_path(d):
    return os.path.join(d, "ensemble.json")


def load(d):
    with open(meta_path(d)) as f:
        return json.load(f)


def save(d, meta):
    with open(meta_path(d), "w") as f:
        json.dump(meta, f, indent=1)


def ports(meta, n):
    b = meta["base_port"]
    return b + n, b + 100 + n, b + 200 + n


def write_config(d, meta, n):
    root = os.path.join(d, "zk%d" % n)
    conf, data, logs = (os.path.join(root, x) for x in ("conf", "data", "logs"))
    for p in (conf, data, logs):
        os.makedirs(p, exist_ok=True)
    with open(os.path.join(data, "myid"), "w") as f:
        f.write("%d\n" % n)
    client, _, _ = ports(meta, n)
    lines = [
        "tickTime=%d" % meta["tick"],
        "initLimit=10",
        "syncLimit=5",
        "dataDir=%s" % data,
        "clientPort=%d" % client,
        "clientPortAddress=127.0.0.1",
        "4lw.commands.whitelist=*",
        "admin.enableServer=false",
        "autopurge.snapRetainCount=3",
        "maxSessionTimeout=60000",
        "minSessionTimeout=1000",
    ] + meta.get("extra", [])
    for i in range(1, meta["servers"] + 1):
        _, q, e = ports(meta, i)
        lines.append("server.%d=127.0.0.1:%d:%d" % (i, q, e))
    with open(os.path.join(conf, "zoo.cfg"), "w") as f:
        f.write("\n".join(lines) + "\n")
    layout = DEBIAN if n in meta.get("debian_layout", []) else UPSTREAM
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
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().split()[2] != "Z"
    except OSError:
        return False


def start_server(d, n):
    meta = load(d)
    root = os.path.join(d, "zk%d" % n)
    conf = os.path.join(root, "conf")
    out = open(os.path.join(root, "logs", "zookeeper.out"), "ab")
    env = dict(os.environ, TZ="UTC")
    p = subprocess.Popen(
        ["java", "-Xmx256m", "-XX:+UseSerialGC", "-Dzookeeper.log.dir=" + os.path.join(root, "logs"),
         "-Dzookeeper.preAllocSize=%d" % meta.get("prealloc_kb", 65536),
         "-cp", classpath(conf), "org.apache.zookeeper.server.quorum.QuorumPeerMain",
         os.path.join(conf, "zoo.cfg")],
        stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    meta["pids"][str(n)] = p.pid
    save(d, meta)
    return p.pid


def four(meta, n, cmd, timeout=1.0):
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
    out = four(meta, n, "srvr")
    for line in out.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def leader(d, timeout=60.0, exclude=()):
    meta = load(d)
    deadline = time.time() + timeout
    while time.time() < deadline:
        modes = {n: mode(meta, n) for n in range(1, meta["servers"] + 1) if n not in exclude}
        leaders = [n for n, m in modes.items() if m in ("leader", "standalone")]
        serving = [n for n, m in modes.items() if m in ("leader", "follower", "standalone")]
        if leaders and len(serving) > meta["servers"] // 2:
            return leaders[0]
        time.sleep(0.2)
    raise SystemExit("zkharness: no leader within %.0f s" % timeout)


def signal_server(d, n, sig):
    meta = load(d)
    pid = meta["pids"].get(str(n))
    if pid and alive(pid):
        os.kill(pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            for _ in range(100):
                if not alive(pid):
                    break
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.05)
    return pid


def start(d, servers=3, base_port=21810, tick=500, debian_layout=(), extra=(), prealloc_kb=65536, wait=True):
    os.makedirs(d, exist_ok=True)
    meta = {"servers": servers, "base_port": base_port, "tick": tick, "pids": {},
            "debian_layout": list(debian_layout), "extra": list(extra), "prealloc_kb": prealloc_kb}
    save(d, meta)
    for n in range(1, servers + 1):
        write_config(d, meta, n)
    for n in range(1, servers + 1):
        start_server(d, n)
    if wait:
        return leader(d)
    return None


def stop_all(d):
    try:
        meta = load(d)
    except OSError:
        return
    for n in list(meta["pids"]):
        signal_server(d, int(n), signal.SIGCONT)
        signal_server(d, int(n), signal.SIGKILL)


def connect_string(d):
    meta = load(d)
    return ",".join("127.0.0.1:%d" % ports(meta, n)[0] for n in range(1, meta["servers"] + 1))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("action", choices=["start", "leader", "kill", "stop", "pause", "resume", "restart",
                                       "status", "stop-all", "connect-string"])
    ap.add_argument("n", nargs="?", type=int)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--servers", type=int, default=3)
    ap.add_argument("--base-port", type=int, default=21810)
    ap.add_argument("--tick", type=int, default=500)
    ap.add_argument("--debian-layout", type=int, action="append", default=[])
    ap.add_argument("--extra", action="append", default=[])
    ap.add_argument("--prealloc-kb", type=int, default=65536)
    ap.add_argument("--timeout", type=float, default=60.0)
    a = ap.parse_args()
    d = os.path.abspath(a.dir)
    if a.action == "start":
        print(start(d, a.servers, a.base_port, a.tick, a.debian_layout, a.extra, a.prealloc_kb))
    elif a.action == "leader":
        print(leader(d, a.timeout))
    elif a.action == "connect-string":
        print(connect_string(d))
    elif a.action == "status":
        meta = load(d)
        for n in range(1, meta["servers"] + 1):
            pid = meta["pids"].get(str(n))
            print(n, pid, "alive" if pid and alive(pid) else "dead", mode(meta, n) or "-")
    elif a.action == "stop-all":
        stop_all(d)
    else:
        if a.n is None:
            raise SystemExit("zkharness: %s needs a server id" % a.action)
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


if __name__ == "__main__":
    main()
