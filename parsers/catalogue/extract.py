#!/usr/bin/env python3
"""Regenerates the log-statement catalogue (parsers/catalogue/*.toml) from the sources.

Reads the LOG.info/warn/error calls (Python: log.info/warning/error/exception) of the classes
listed in SOURCES at every release tag of apache/zookeeper, apache/curator and python-zk/kazoo,
joins them with the hand-made assignments in parsers/catalogue/assign/<component>.toml (which
kind each statement gets, with an example and the fields it must yield, or `none` and why) and
writes one catalogue file per component. A statement no assignment names is written with
kind = "?" and listed on stderr; the catalogue test fails on it.

Usage (python3, standard library only):

    parsers/catalogue/extract.py --zookeeper DIR --curator DIR --kazoo DIR [--out DIR]

where each DIR is a git directory (a clone, or the bare mirror `fetch github:apache/zookeeper`
brings). Stale assignments (naming no extracted statement) are reported and make the run fail.
"""

import argparse
import ast
import os
import re
import subprocess
import sys
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))

# ---- which sources ------------------------------------------------------------------------------

ZK_SERVER = [
    # election and peer connections
    "server/quorum/QuorumPeer.java",
    "server/quorum/QuorumPeerMain.java",
    "server/quorum/FastLeaderElection.java",
    "server/quorum/QuorumCnxManager.java",
    # leader / follower / learner / observer
    "server/quorum/Leader.java",
    "server/quorum/Follower.java",
    "server/quorum/Learner.java",
    "server/quorum/LearnerHandler.java",
    "server/quorum/LearnerSender.java",
    "server/quorum/Observer.java",
    "server/quorum/ObserverMaster.java",
    "server/quorum/LearnerSyncThrottler.java",
    "server/quorum/QuorumZooKeeperServer.java",
    "server/quorum/LeaderZooKeeperServer.java",
    "server/quorum/FollowerZooKeeperServer.java",
    "server/quorum/LearnerZooKeeperServer.java",
    "server/quorum/ObserverZooKeeperServer.java",
    # session tracking
    "server/SessionTrackerImpl.java",
    "server/quorum/LeaderSessionTracker.java",
    "server/quorum/LearnerSessionTracker.java",
    "server/quorum/LocalSessionTracker.java",
    "server/quorum/UpgradeableSessionTracker.java",
    "server/ZooKeeperServer.java",
    "server/FinalRequestProcessor.java",
    "server/PrepRequestProcessor.java",
    # client connections
    "server/ServerCnxn.java",
    "server/ServerCnxnFactory.java",
    "server/NIOServerCnxn.java",
    "server/NIOServerCnxnFactory.java",
    "server/NettyServerCnxn.java",
    "server/NettyServerCnxnFactory.java",
    # persistence
    "server/SyncRequestProcessor.java",
    "server/ZKDatabase.java",
    "server/persistence/FileTxnLog.java",
    "server/persistence/FileTxnSnapLog.java",
    "server/persistence/FileSnap.java",
    "server/persistence/SnapStream.java",
]

ZK_CLIENT = [
    "ClientCnxn.java",
    "ClientCnxnSocket.java",
    "ClientCnxnSocketNIO.java",
    "ClientCnxnSocketNetty.java",
    "ZooKeeper.java",
]

CURATOR = [
    "curator-client/src/main/java/org/apache/curator/ConnectionState.java",
    "curator-framework/src/main/java/org/apache/curator/framework/state/ConnectionStateManager.java",
    "curator-recipes/src/main/java/org/apache/curator/framework/recipes/leader/LeaderLatch.java",
    "curator-recipes/src/main/java/org/apache/curator/framework/recipes/leader/LeaderSelector.java",
]

KAZOO = [
    "kazoo/client.py",
    "kazoo/protocol/connection.py",
    "kazoo/recipe/election.py",
    "kazoo/recipe/lock.py",
]

ZK_ROOTS = ["zookeeper-server/src/main/java/org/apache/zookeeper/", "src/java/main/org/apache/zookeeper/"]

# ---- git ----------------------------------------------------------------------------------------


def git(gitdir, *args):
    return subprocess.run(
        ["git", "--git-dir", gitdir, *args], check=True, capture_output=True, text=True
    ).stdout


_CAT = {}


def show(gitdir, tag, path):
    """The text of `path` at `tag`, or None (one `git cat-file --batch` per repository)."""
    cat = _CAT.get(gitdir)
    if cat is None:
        cat = subprocess.Popen(["git", "--git-dir", gitdir, "cat-file", "--batch"],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        _CAT[gitdir] = cat
    cat.stdin.write(f"{tag}:{path}\n".encode())
    cat.stdin.flush()
    head = cat.stdout.readline().decode().split()
    if len(head) != 3 or head[1] != "blob":
        return None
    data = cat.stdout.read(int(head[2]) + 1)
    return data[:-1].decode("utf-8", "replace")


def vkey(v):
    return tuple(int(x) for x in re.findall(r"\d+", v))


def zk_tags(gitdir):
    """Every ZooKeeper release of 3.4 to 3.9: the bare release tag, or when a release has only
    numbered candidates (3.8.0), the last of them. Returns [(version, tag)] in version order."""
    tags = git(gitdir, "tag").split()
    best = {}
    for t in tags:
        m = re.fullmatch(r"release-(3\.[4-9]\.\d+)(?:-(\d+))?", t)
        if not m:
            continue
        v, n = m.group(1), m.group(2)
        rank = 10**6 if n is None else int(n)
        if v not in best or rank > best[v][0]:
            best[v] = (rank, t)
    # a version with only numbered candidates and a later bare release in its line was released;
    # one newer than every bare release of its line (a candidate still being voted) is not
    bare = {v for v, (r, _) in best.items() if r == 10**6}
    out = []
    for v, (r, t) in best.items():
        line = v.rsplit(".", 1)[0]
        newest_bare = max((vkey(b) for b in bare if b.startswith(line + ".")), default=())
        if r != 10**6 and vkey(v) > newest_bare and line != "3.8":
            continue
        out.append((v, t))
    return sorted(out, key=lambda x: vkey(x[0]))


def plain_tags(gitdir, pattern, since):
    out = []
    for t in git(gitdir, "tag").split():
        m = re.fullmatch(pattern, t)
        if m and vkey(m.group(1)) >= vkey(since):
            out.append((m.group(1), t))
    return sorted(out, key=lambda x: vkey(x[0]))


# ---- Java ---------------------------------------------------------------------------------------


def strip_comments(src):
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            out.append(src[i : j + 1])
            i = j + 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            j = src.find("*/", i + 2)
            i = n if j < 0 else j + 2
            out.append(" ")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def balanced(src, start):
    """src[start] is '('; returns the index of its closing ')'."""
    depth, i, n = 0, start, len(src)
    while i < n:
        c = src[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and src[j] != c:
                j += 2 if src[j] == "\\" else 1
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def split_top(expr, sep):
    parts, depth, cur, i, n = [], 0, [], 0, len(expr)
    while i < n:
        c = expr[i]
        if c == '"' or c == "'":
            j = i + 1
            while j < n and expr[j] != c:
                j += 2 if expr[j] == "\\" else 1
            cur.append(expr[i : j + 1])
            i = j + 1
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        if c == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur).strip())
    return parts


JAVA_ESC = {"n": "\n", "t": "\t", '"': '"', "'": "'", "\\": "\\", "r": "\r"}


def java_string(lit):
    body = lit[1:-1]
    return re.sub(r"\\(.)", lambda m: JAVA_ESC.get(m.group(1), m.group(1)), body)


def is_string(p):
    return len(p) >= 2 and p[0] == '"' and p[-1] == '"' and balanced_string(p)


def balanced_string(p):
    i = 1
    while i < len(p) - 1:
        if p[i] == "\\":
            i += 2
            continue
        if p[i] == '"':
            return False
        i += 1
    return True


FMT = re.compile(r"%[-#+ 0,(]*\d*(?:\.\d+)?[sdxXfbcn]")


def java_template(first, rest, variables):
    """(template, [argument expressions]) of one call's message, or None."""
    first = first.strip()
    while first.startswith("(") and balanced(first, 0) == len(first) - 1:
        first = first[1:-1].strip()
    m = re.fullmatch(r"String\.format\((.*)\)", first, re.S)
    if m:
        args = split_top(m.group(1), ",")
        t = java_template(args[0], [], variables)
        if t is None:
            return None
        text, _ = t
        exprs = args[1:]
        out = FMT.sub("{}", text.replace("%%", "\x00")).replace("\x00", "%")
        return out, exprs
    if re.fullmatch(r"[A-Za-z_]\w*", first) and first in variables:
        return java_template(variables[first], rest, {})
    parts = split_top(first, "+")
    text, exprs, slf = [], [], list(rest)
    for p in parts:
        if is_string(p):
            s = java_string(p)
            pieces = s.split("{}")
            for k, piece in enumerate(pieces):
                text.append(piece)
                if k < len(pieces) - 1:
                    text.append("{}")
                    exprs.append(slf.pop(0) if slf else "?")
        else:
            text.append("{}")
            exprs.append(p)
    return "".join(text), exprs


def string_vars(src, before):
    """The string expressions assigned to local names before position `before` (`String msg =
    "..." + x;`): the last assignment of each name wins, as for the few messages that are built
    in a local first."""
    out = {}
    for m in re.finditer(r"(?:String\s+)?\b([a-z]\w*)\s*=\s*((?:\"|String\.format)[^;]*);", src[:before]):
        out[m.group(1)] = m.group(2)
    return out


CALL = re.compile(r"\b(?:LOG|log|logger|LOGGER)\s*\.\s*(info|warn|error)\s*\(")


def java_statements(src):
    src = strip_comments(src)
    out = []
    for m in CALL.finditer(src):
        open_ = m.end() - 1
        close = balanced(src, open_)
        if close < 0:
            continue
        args = split_top(src[open_ + 1 : close], ",")
        if not args or not args[0]:
            continue
        variables = string_vars(src, m.start()) if re.fullmatch(r"[a-z]\w*", args[0]) else {}
        t = java_template(args[0], args[1:], variables)
        if t is None:
            continue
        text, exprs = t
        text = " ".join(text.split("\n")[0].split()) if "\n" in text else text
        out.append((m.group(1).upper(), text, exprs))
    return out


# ---- Python -------------------------------------------------------------------------------------

PY_LEVELS = {"info": "INFO", "warning": "WARNING", "warn": "WARNING", "error": "ERROR",
             "exception": "ERROR", "critical": "CRITICAL"}
PYFMT = re.compile(r"%(?:\([^)]*\))?[-#+ 0]*\d*(?:\.\d+)?[srdixXf]")


def py_statements(src):
    try:
        tree = ast.parse(src)
    except SyntaxError:
        return []
    out = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        if node.func.attr not in PY_LEVELS:
            continue
        owner = ast.unparse(node.func.value)
        if not re.search(r"(?:^|\.)_?(?:log|logger|LOG)$", owner) or not node.args:
            continue
        first = node.args[0]
        if isinstance(first, ast.Constant) and isinstance(first.value, str):
            text = PYFMT.sub("{}", first.value.replace("%%", "\x00")).replace("\x00", "%")
            exprs = [ast.unparse(a) for a in node.args[1:]]
        elif isinstance(first, ast.JoinedStr):
            text, exprs = "", []
            for v in first.values:
                if isinstance(v, ast.Constant):
                    text += v.value
                else:
                    text += "{}"
                    exprs.append(ast.unparse(v.value))
        else:
            text, exprs = "{}", [ast.unparse(first)]
        out.append((PY_LEVELS[node.func.attr], text, exprs))
    return out


def py_logger(src, path):
    m = re.search(r"getLogger\(([^)]*)\)", src)
    mod = path[:-3].replace("/", ".")
    if not m or m.group(1).strip() == "__name__":
        return mod
    return m.group(1).strip().strip("'\"")


# ---- rendering examples ------------------------------------------------------------------------


def render(template, exprs):
    """The message with plausible values in place of each `{}` (for statements with no kind)."""
    out, k = [], 0
    pieces = template.split("{}")
    for i, piece in enumerate(pieces):
        out.append(piece)
        if i < len(pieces) - 1:
            e = exprs[k] if k < len(exprs) else ""
            k += 1
            out.append(value(e, "".join(out)))
    return "".join(out)


def value(expr, before):
    e = expr.lower()
    hexed = before.endswith("0x") or "tohexstring" in e or "hex" in e
    if hexed:
        if "session" in e or "sessionid" in e or re.search(r"\bid\b", e):
            v = "100000a1b2c0000"
        elif "epoch" in e:
            v = "2"
        else:
            v = "100000012"
        return v if before.endswith("0x") else "0x" + v
    if "zxid" in e:
        return "0x100000012"
    if "session" in e and ("id" in e or "session" == e):
        return "0x100000a1b2c0000"
    if re.search(r"addr|address|socket|sock\b|remote|host|endpoint", e):
        return "/10.0.0.2:2888"
    if re.search(r"exception|\be\b|\bex\b|cause|getmessage|\bt\b|\bie\b|\bioe\b|\berr\b", e):
        return "java.io.IOException: Connection reset by peer"
    if re.search(r"elapsed|duration|took|millis|\bms\b|time|delay|timeout", e):
        return "1042"
    if re.search(r"\bsid\b|myid|\bid\b|serverid|getid|\.sid|leader", e):
        return "2"
    if "epoch" in e:
        return "2"
    if "state" in e:
        return "LOOKING"
    if re.search(r"path|file|dir|snap", e):
        return "/var/lib/zookeeper/version-2/snapshot.100000000"
    if re.search(r"count|size|len|num|\bn\b|tries|limit", e):
        return "3"
    if "name" in e or "thread" in e:
        return "QuorumPeer[myid=1]"
    if re.search(r"\brequest\b|\breq\b|\bsi\b|request\)", e):
        return "sessionid:0x100000a1b2c0000 type:create cxid:0x1 zxid:0x100000013 txntype:1 reqpath:/app/node"
    if re.search(r"packet|\bqp\b|gettype|type", e):
        return "PROPOSAL"
    if re.search(r"enabled|\bis[a-z]|secure|bool|\?", e):
        return "true"
    if re.search(r"len|bytes|version", e):
        return "2"
    if re.search(r"config|conf|prop|key", e):
        return "zookeeper.snapCount"
    return "value"


# ---- catalogue ------------------------------------------------------------------------------


def extract(component, gitdir):
    """{(class, template): {"level": set, "versions": [...], "exprs": [...]}} and the versions."""
    stmts = {}
    if component in ("zookeeper-server", "zookeeper-client"):
        tags = zk_tags(gitdir)
        files = ZK_SERVER if component == "zookeeper-server" else ZK_CLIENT
        for v, tag in tags:
            for rel in files:
                src = None
                for root in ZK_ROOTS:
                    src = show(gitdir, tag, root + rel)
                    if src is not None:
                        break
                if src is None:
                    continue
                cls = os.path.basename(rel)[:-5]
                for level, text, exprs in java_statements(src):
                    add(stmts, cls, level, text, exprs, v)
    elif component == "curator":
        tags = plain_tags(gitdir, r"apache-curator-(\d+\.\d+\.\d+)", "2.0.0")
        for v, tag in tags:
            for rel in CURATOR:
                src = show(gitdir, tag, rel)
                if src is None:
                    continue
                cls = os.path.basename(rel)[:-5]
                for level, text, exprs in java_statements(src):
                    add(stmts, cls, level, text, exprs, v)
    else:
        tags = plain_tags(gitdir, r"(\d+\.\d+(?:\.\d+)?)", "2.0")
        for v, tag in tags:
            for rel in KAZOO:
                src = show(gitdir, tag, rel)
                if src is None:
                    continue
                cls = py_logger(src, rel)
                for level, text, exprs in py_statements(src):
                    add(stmts, cls, level, text, exprs, v)
    return stmts, [v for v, _ in tags]


def add(stmts, cls, level, text, exprs, version):
    s = stmts.setdefault((cls, text), {"levels": [], "versions": [], "exprs": exprs})
    if level not in s["levels"]:
        s["levels"].append(level)
    if version not in s["versions"]:
        s["versions"].append(version)


def line_of(component, v):
    if component.startswith("zookeeper"):
        return ".".join(v.split(".")[:2])
    if component == "curator":
        return v.split(".")[0]
    return ".".join(v.split(".")[:2])


def runs(versions, all_versions):
    """Maximal runs of consecutive releases: ["3.4.0..3.4.14", "3.5.5"]."""
    idx = {v: i for i, v in enumerate(all_versions)}
    out, start, prev = [], None, None
    for v in sorted(versions, key=lambda v: idx[v]):
        if start is not None and idx[v] == idx[prev] + 1:
            prev = v
            continue
        if start is not None:
            out.append(start if start == prev else f"{start}..{prev}")
        start = prev = v
    if start is not None:
        out.append(start if start == prev else f"{start}..{prev}")
    return out


def q(s):
    """A TOML basic string."""
    out = ['"']
    for c in s:
        if c == '"':
            out.append('\\"')
        elif c == "\\":
            out.append("\\\\")
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif ord(c) < 0x20:
            out.append("\\u%04x" % ord(c))
        else:
            out.append(c)
    out.append('"')
    return "".join(out)


def tv(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    return q(str(v))


HEADERS = {
    "zookeeper-server": ("ZooKeeper server", "apache/zookeeper release tags",
                         "zookeeper-log4j",
                         "2026-11-24 22:02:29,123 [myid:1] - {level5} [QuorumPeer[myid=1](plain=0.0.0.0:2181)(secure=disabled):{class}@100] - {message}"),
    "zookeeper-client": ("ZooKeeper Java client", "apache/zookeeper release tags",
                         "zookeeper-log4j",
                         "2026-11-24 22:02:29,123 [myid:127.0.0.1:2181] - {level5} [main-SendThread(127.0.0.1:2181):{class}@100] - {message}"),
    "curator": ("Apache Curator", "apache/curator release tags (apache-curator-X.Y.Z)",
                "zookeeper-log4j",
                "2026-11-24 22:02:29,123 [myid:] - {level5} [Curator-ConnectionStateManager-0:{class}@100] - {message}"),
    "kazoo": ("kazoo", "python-zk/kazoo release tags",
              "python-logging",
              "2026-11-24 22:02:29,123 {level} {class}: {message}"),
}


def case(o, a):
    o.append(f"kind = {q(a['kind'])}")
    o.append(f"example = {q(a['example'])}")
    fields = a.get("fields", {})
    o.append("fields = {" + ", ".join(f" {k} = {tv(v)}" for k, v in fields.items()) + (" }" if fields else "}"))
    if "note" in a:
        o.append(f"note = {q(a['note'])}")


def write(component, stmts, all_versions, assign, out_dir):
    kinds = {}
    for a in assign.get("kind", []):
        kinds.setdefault(a["key"], []).append(a)
    nones, examples = {}, {}
    for group in assign.get("none", []):
        for k in group["keys"]:
            nones[k] = group["why"]
        examples.update(group.get("example", {}))
    title, origin, fmt, line = HEADERS[component]
    lines_ = sorted({line_of(component, v) for v in all_versions}, key=vkey)
    o = []
    o.append(f"# {title} log statements, generated by parsers/catalogue/extract.py from {origin}")
    o.append(f"# ({all_versions[0]} to {all_versions[-1]}). Do not edit: the kinds are assigned in")
    o.append(f"# assign/{component}.toml; rerun the script after changing them.")
    o.append("#")
    o.append("# Each statement: the class that logs it, its level(s), the message template (`{}` = an")
    o.append("# argument), the release lines and releases it appears in, and either the kind it must")
    o.append("# classify to (with an example and the attributes it must yield) or kind = \"none\" and why.")
    o.append("")
    o.append("[catalogue]")
    o.append(f"component = {q(component)}")
    o.append(f"format = {q(fmt)}")
    o.append(f"line = {q(line)}")
    o.append(f"versions = [{', '.join(q(v) for v in lines_)}]")
    o.append(f"releases = [{', '.join(q(r) for r in runs(all_versions, all_versions))}]")
    o.append("")
    missing, used = [], set()
    for (cls, text) in sorted(stmts, key=lambda k: (k[0], k[1].lower())):
        s = stmts[(cls, text)]
        key = f"{cls}: {text}"
        o.append("[[statement]]")
        o.append(f"class = {q(cls)}")
        o.append(f"level = {q('/'.join(s['levels']))}")
        o.append(f"template = {q(text)}")
        vl = sorted({line_of(component, v) for v in s["versions"]}, key=vkey)
        o.append(f"versions = [{', '.join(q(v) for v in vl)}]")
        o.append(f"releases = [{', '.join(q(r) for r in runs(s['versions'], all_versions))}]")
        if key in kinds:
            used.add(key)
            first, *rest = kinds[key]
            case(o, first)
            for a in rest:
                o.append("[[statement.also]]")
                case(o, a)
        elif key in nones:
            used.add(key)
            o.append('kind = "none"')
            o.append(f"why = {q(nones[key])}")
            o.append(f"example = {q(examples.get(key, render(text, s['exprs'])))}")
        else:
            missing.append(key)
            o.append('kind = "?"')
            o.append(f"example = {q(render(text, s['exprs']))}")
        o.append("")
    stale = [k for k in list(kinds) + list(nones) if k not in used]
    with open(os.path.join(out_dir, f"{component}.toml"), "w") as f:
        f.write("\n".join(o))
    return missing, stale


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zookeeper", help="git dir of apache/zookeeper")
    ap.add_argument("--curator", help="git dir of apache/curator")
    ap.add_argument("--kazoo", help="git dir of python-zk/kazoo")
    ap.add_argument("--out", default=HERE)
    ap.add_argument("--list", action="store_true", help="print the unassigned statement keys")
    a = ap.parse_args()
    jobs = []
    if a.zookeeper:
        jobs += [("zookeeper-server", a.zookeeper), ("zookeeper-client", a.zookeeper)]
    if a.curator:
        jobs.append(("curator", a.curator))
    if a.kazoo:
        jobs.append(("kazoo", a.kazoo))
    if not jobs:
        ap.error("give at least one of --zookeeper, --curator, --kazoo")
    bad = False
    for component, gitdir in jobs:
        stmts, versions = extract(component, gitdir)
        path = os.path.join(HERE, "assign", f"{component}.toml")
        assign = {}
        if os.path.exists(path):
            with open(path, "rb") as f:
                assign = tomllib.load(f)
        missing, stale = write(component, stmts, versions, assign, a.out)
        print(f"{component}: {len(stmts)} statements from {len(versions)} releases "
              f"({versions[0]}..{versions[-1]}), {len(missing)} unassigned", file=sys.stderr)
        for k in missing if a.list else []:
            print(f"  unassigned: {k}", file=sys.stderr)
        for k in stale:
            print(f"  stale assignment (no such statement): {k}", file=sys.stderr)
        bad |= bool(stale)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
