"""Drives a real ZooKeeper server with kazoo for tests/txnlog_oracle.rs.

usage: drive.py HOST:PORT PHASE
  main      creates (persistent, ephemeral, sequential, create2, container, TTL), setData,
            failed single writes (NodeExists, NoNode, BadVersion), setACL, a multi that
            succeeds (with check), a multi that fails part-way, a second session that is
            abandoned and expires, and closes the first session normally (paths2Delete).
  plain     a session with an ephemeral and a multi, closed normally (run on a server started
            with digest and closeSessionTxn disabled: records without digest, closeSession
            without body).
  reconfig  an incremental reconfig (quorum mode with reconfigEnabled).
  orphan    (internal) opens a session, creates /beph ephemeral, exits without closing.
Prints one JSON object of facts on the last line of stdout.
"""
import json
import os
import struct
import subprocess
import sys
import time
from collections import namedtuple

from kazoo.client import KazooClient
from kazoo.exceptions import BadVersionError, NodeExistsError, NoNodeError
from kazoo.protocol import serialization as ser
from kazoo.security import OPEN_ACL_UNSAFE, make_acl

hosts, phase = sys.argv[1], sys.argv[2]
facts = {"phase": phase}


class CreateContainer(ser.Create2):
    """createContainer (opcode 19): a Create2 request with flags CONTAINER (4)."""
    type = 19


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    """createTTL (opcode 21): Create2 request fields + long ttl."""
    type = 21

    def serialize(self):
        b = ser.Create2(self.path, self.data, self.acl, self.flags).serialize()
        b.extend(struct.pack("!q", self.ttl))
        return b

    @classmethod
    def deserialize(cls, bytes, offset):
        return ser.Create2.deserialize(bytes, offset)


def call(zk, req):
    r = zk.handler.async_result()
    zk._call(req, r)
    return r.get(timeout=20)


def client(timeout=10.0):
    zk = KazooClient(hosts=hosts, timeout=timeout)
    zk.start(timeout=30)
    return zk


if phase == "orphan":
    b = client(timeout=1.0)
    b.create("/beph", b"", ephemeral=True)
    print(json.dumps({"orphan": b.client_id[0]}), flush=True)
    os._exit(0)  # no closeSession: the server expires the session

elif phase == "main":
    a = client()
    facts["session_a"] = a.client_id[0]
    a.create("/app", b"hello")
    a.create("/app/eph", b"e1", ephemeral=True)
    a.create("/app/seq-", b"", sequence=True)
    a.create("/app/eseq-", b"s", ephemeral=True, sequence=True)
    a.create("/app/c2", b"v", include_data=True)
    a.create("/odd", b"line1\nline2,%}\x00 \xc3\xa9 \xff\xfe end", makepath=False)
    call(a, CreateContainer("/cont", b"cd", OPEN_ACL_UNSAFE, 4))
    call(a, CreateContainer("/cont/child", b"", OPEN_ACL_UNSAFE, 4))
    call(a, CreateTTL("/ttl", b"td", OPEN_ACL_UNSAFE, 5, 60000))
    a.set("/app", b"world")
    a.set("/app", b"\xff\xfe bin")
    try:
        a.create("/app", b"dup")
    except NodeExistsError:
        pass
    try:
        a.delete("/nonexistent")
    except NoNodeError:
        pass
    try:
        a.set("/app", b"x", version=99)
    except BadVersionError:
        pass
    a.set_acls("/app/c2", [make_acl("world", "anyone", read=True, write=True),
                           make_acl("digest", "u:h,x}", all=True)])
    t = a.transaction()
    t.create("/m1", b"a")
    t.set_data("/app", b"m")
    t.check("/app", 3)
    t.delete("/app/seq-0000000001")
    facts["multi_ok"] = str(t.commit())
    t = a.transaction()
    t.create("/m2", b"b")
    t.create("/m1", b"exists")
    t.delete("/app/c2")
    facts["multi_failed"] = str(t.commit())
    a.delete("/m1")
    out = subprocess.run([sys.executable, __file__, hosts, "orphan"], check=True,
                         capture_output=True, text=True, timeout=60).stdout
    facts["orphan"] = json.loads(out.strip().splitlines()[-1])["orphan"]
    a.stop()
    a.close()
    c = client()
    deadline = time.time() + 60
    while c.exists("/beph") is not None and time.time() < deadline:
        time.sleep(0.1)
    facts["orphan_expired"] = c.exists("/beph") is None
    facts["session_c"] = c.client_id[0]
    c.stop()
    c.close()

elif phase == "plain":
    d = client()
    facts["session_d"] = d.client_id[0]
    d.create("/plain", b"p")
    d.create("/plain/eph", b"", ephemeral=True)
    t = d.transaction()
    t.set_data("/plain", b"q")
    t.create("/plain/x", b"")
    facts["multi_ok"] = str(t.commit())
    d.stop()
    d.close()

elif phase == "reconfig":
    e = client()
    facts["session_e"] = e.client_id[0]
    e.create("/rc", b"r")
    joining = sys.argv[3]
    data, _ = e.reconfig(joining=joining, leaving=None, new_members=None)
    facts["config"] = data.decode()
    e.stop()
    e.close()

print(json.dumps(facts), flush=True)
