#!/usr/bin/env bash
# Records a real failover incident on a real 3-server ZooKeeper ensemble (Debian's zookeeper 3.8
# package, loopback ports) with real client services, into samples/incident-1/.
#
#   bash samples/record/record.sh            # about 80 s; needs zookeeper, python3-kazoo, javac
#   ZKLENS_RECORD_PORT=23810 (default) sets the base port: client ports base+1..3, quorum
#   base+101..103, election base+201..203, all on 127.0.0.1.
#
# What happens (the real times go to samples/incident-1.timeline.txt, beside the sample rather
# than in it: everything under incident-1/ is ingested as the nodes' own files):
#   1. ensemble up (zk1, zk2 upstream log layout with [myid:N]; zk3 Debian's layout without it);
#      services calc-a then calc-b (kazoo, election under /election/calc), store-1 (kazoo, JSON
#      lines, ~25 writes/s), ledger-1 (Java client); 10 s steady
#   2. kill -9 the leader; a new leader is elected; 8 s. Every client is disconnected; the calc
#      primary (calc-a) gives the role up on SUSPENDED, so calc-b takes it.
#   3. SIGSTOP the calc primary (whichever holds the role now: calc-b) and ledger-1 for 12 s
#      (session timeout 4 s): the new leader expires their sessions, their ephemerals go, the
#      other calc instance becomes primary; SIGCONT: they notice the expiry and register again
#      with new sessions; 8 s
#   4. restart the killed server: it rejoins; it is more than 500 txns (the leader's commit log)
#      behind because of store-1's load and txn-log sync is off (snapshotSizeFactor=-1), so the
#      leader sends it a snapshot (SNAP); 8 s
#   5. quorum loss: kill -9 the leader and the one server not killed so far (so every server is
#      restarted exactly once); 8 s; restart both; the ensemble serves again; 8 s
#   6. services stop (sessions closed), servers stop, txn logs and snapshots gzip-compressed,
#      logs copied; the sample is checked for the lines it exists to show.
# On any exit (error, Ctrl-C) the trap kills the services and the ensemble (the work dir is kept
# on failure); if this script is SIGKILLed, the harness's watchdog kills the servers and the
# services exit when they see their parent gone.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/samples/incident-1"
work="$(mktemp -d /tmp/zklens-record.XXXXXX)"
harness="/usr/bin/python3 $repo/tests/harness/zkharness.py"
base=${ZKLENS_RECORD_PORT:-23810}
PY=/usr/bin/python3   # kazoo is Debian's python3-kazoo: the system interpreter
export TZ=UTC

pids=()
cleanup() {
  [ "${1:-}" = fail ] && echo "== failed; work dir kept: $work" >&2
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] || continue
    kill -CONT "$p" 2>/dev/null || true
    kill -9 "$p" 2>/dev/null || true
  done
  $harness stop-all --dir "$work/ens" >/dev/null 2>&1 || true
}
trap 'cleanup fail' EXIT
trap 'exit 130' INT TERM

timeline="$work/TIMELINE.txt"
mark() { printf '%s  %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*" | tee -a "$timeline"; }

echo "== work dir $work"
# The Java client service: compiled now, against Debian's zookeeper.jar (its manifest brings
# slf4j-api); run with log4j 1.2 and the slf4j binding so ClientCnxn's lines reach its log.
jout="$work/java"
mkdir -p "$jout" "$work/ledger-1/conf" "$work/ledger-1/logs"
javac -nowarn -implicit:none -cp /usr/share/java/zookeeper.jar -d "$jout" "$here/JavaService.java"
cat > "$work/ledger-1/conf/log4j.properties" <<EOF
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$work/ledger-1/logs/ledger-1.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
EOF
jcp="$jout:$work/ledger-1/conf:/usr/share/java/zookeeper.jar:/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"

# zk1, zk2: upstream log layout with [myid:N]; zk3: Debian's layout without it.
# snapshotSizeFactor=-1 turns off txn-log based sync: a learner further behind than the leader's
# in-memory commit log (the last 500 proposals) is sent a snapshot (SNAP) rather than a DIFF.
leader=$($harness start --dir "$work/ens" --servers 3 --base-port "$base" --tick 500 --debian-layout 3 \
  --extra snapshotSizeFactor=-1 --owner-pid $$)
mark "ensemble up: zk1 zk2 zk3 (client ports $((base+1))-$((base+3))), leader zk$leader"
zkconn=$($harness connect-string --dir "$work/ens")

svc() { # name instance format [service.py options]
  local logf="$work/$2/logs/$2.log"
  [ "$3" = json ] && logf="$work/$2/logs/$2.jsonl"
  $PY "$here/service.py" --name "$1" --instance "$2" --zk "$zkconn" --log-file "$logf" --log-format "$3" --timeout 4 "${@:4}" &
  pids+=($!)
  eval "pid_${2//-/_}=$!"
}

svc calc calc-a text
mark "calc-a started (kazoo, pid $pid_calc_a)"
sleep 2
svc calc calc-b text
mark "calc-b started (kazoo, pid $pid_calc_b)"
# store-1 also writes 12 items per tick: the killed leader falls >500 txns behind (step 4).
svc store store-1 json --burst 12
mark "store-1 started (kazoo, JSON lines, ~25 writes/s, pid $pid_store_1)"
java -Xmx128m -Dservice.log="$work/ledger-1/logs/ledger-1.log" -cp "$jcp" JavaService "$zkconn" ledger ledger-1 4000 >"$work/ledger-1/logs/stdout.txt" 2>&1 &
pid_ledger_1=$!
pids+=($pid_ledger_1)
mark "ledger-1 started (Java client, pid $pid_ledger_1)"
sleep 10

old=$($harness leader --dir "$work/ens")
mark "kill -9 zk$old (the leader)"
$harness kill "$old" --dir "$work/ens"
new=$($harness leader --dir "$work/ens" --timeout 60)
mark "zk$new leads after the election"
sleep 8

# Stall whichever calc instance is primary now (its last role change says "-> primary").
primary=calc-a; pid_primary=$pid_calc_a
if grep -h "role change" "$work/calc-b/logs/calc-b.log" 2>/dev/null | tail -n 1 | grep -q -- "-> primary"; then
  primary=calc-b; pid_primary=$pid_calc_b
fi
mark "SIGSTOP $primary (the calc primary, pid $pid_primary) and ledger-1 (pid $pid_ledger_1) for 12 s (session timeout 4 s)"
kill -STOP "$pid_primary" "$pid_ledger_1"
sleep 12
kill -CONT "$pid_primary" "$pid_ledger_1"
mark "SIGCONT $primary and ledger-1"
sleep 8

mark "restart zk$old"
$harness restart "$old" --dir "$work/ens" --wait >/dev/null
sleep 8
mark "zk$old rejoined: $($harness status --dir "$work/ens" | tr '\n' ';')"

cur=$($harness leader --dir "$work/ens")
other=$((6 - cur - old))   # the one server not killed so far
if [ "$other" = "$cur" ] || [ "$other" -lt 1 ] || [ "$other" -gt 3 ]; then
  other=$(for n in 1 2 3; do [ "$n" != "$cur" ] && echo "$n"; done | head -n 1)
fi
mark "quorum loss: kill -9 zk$cur (the leader) and zk$other"
$harness kill "$cur" --dir "$work/ens"
$harness kill "$other" --dir "$work/ens"
sleep 8
mark "restart zk$cur and zk$other"
$harness restart "$cur" --dir "$work/ens" >/dev/null
$harness restart "$other" --dir "$work/ens" >/dev/null
last=$($harness leader --dir "$work/ens" --timeout 90)
mark "ensemble serving again, leader zk$last"
sleep 8

mark "stopping services"
for p in "$pid_calc_a" "$pid_calc_b" "$pid_store_1" "$pid_ledger_1"; do kill -TERM "$p" 2>/dev/null || true; done
for p in "$pid_calc_a" "$pid_calc_b" "$pid_store_1" "$pid_ledger_1"; do
  for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
done
mark "stopping the ensemble"
for n in 1 2 3; do $harness stop "$n" --dir "$work/ens"; done

# Collect. zookeeper.out (the JVMs' stdout) is left out: the log4j file has everything.
rm -rf "$out"
mkdir -p "$out"
for n in 1 2 3; do
  src="$work/ens/zk$n"
  mkdir -p "$out/zk$n/logs" "$out/zk$n/data/version-2"
  cp "$src/logs/zookeeper.log" "$out/zk$n/logs/zookeeper.log"
  cp "$src/data/myid" "$out/zk$n/data/myid"
  for f in "$src"/data/version-2/*; do
    b=$(basename "$f")
    case "$b" in
      # txn logs are 64 MiB preallocated (sparse) files: gzip shrinks them to their content
      log.*|snapshot.*) gzip -9 -n -c "$f" > "$out/zk$n/data/version-2/$b.gz" ;;
      *) cp "$f" "$out/zk$n/data/version-2/$b" ;;
    esac
  done
done
for s in calc-a calc-b store-1 ledger-1; do
  mkdir -p "$out/$s/logs"
  cp "$work/$s"/logs/*.log "$work/$s"/logs/*.jsonl "$out/$s/logs/" 2>/dev/null || true
done
cp "$timeline" "$repo/samples/incident-1.timeline.txt"
trap - EXIT
cleanup
rm -rf "$work"
echo "== recorded into $out"
du -sh "$out"

# The sample must show what it exists to show.
missing=0
need() { # pattern file...
  local pat="$1"; shift
  if ! grep -q -E -- "$pat" "$@" 2>/dev/null; then
    echo "MISSING: /$pat/ in ${*#$out/}"; missing=1
  fi
}
zks=("$out"/zk?/logs/zookeeper.log)
svcs=("$out"/calc-a/logs/calc-a.log "$out"/calc-b/logs/calc-b.log "$out"/store-1/logs/store-1.jsonl)
need ' - LOOKING$' "${zks[@]}"
need ' - LEADING$' "${zks[@]}"
need ' - FOLLOWING$' "${zks[@]}"
need 'LEADER ELECTION TOOK - [0-9]+ MS' "${zks[@]}"
need 'Peer state changed: ' "${zks[@]}"
need 'Expiring session 0x[0-9a-f]+, timeout of' "${zks[@]}"
need 'Sending DIFF zxid=' "${zks[@]}"
need 'Getting a diff from the leader' "${zks[@]}"
need 'Sending snapshot last zxid of peer' "${zks[@]}"
need 'Getting a snapshot from leader' "${zks[@]}"
need 'Creating new log file: log\.' "${zks[@]}"
need 'Session establishment complete on server .*session id = 0x' "$out/ledger-1/logs/ledger-1.log"
need 'Client session timed out, have not heard from server' "$out/ledger-1/logs/ledger-1.log"
need 'Unable to reconnect to ZooKeeper service, session 0x[0-9a-f]+ has expired' "$out/ledger-1/logs/ledger-1.log"
need 're-registered after session expiry' "$out/ledger-1/logs/ledger-1.log"
need 'kazoo.client.*(Connection dropped|Session has expired)' "${svcs[@]}"
need 'connection state SUSPENDED' "${svcs[@]}"
need 'connection state LOST: session 0x[0-9a-f]+ expired' "${svcs[@]}"
need 'connection state CONNECTED' "${svcs[@]}"
need 'role change: standby -> primary' "${svcs[@]}"
need 'role change: primary -> standby' "${svcs[@]}"
need 're-registered after session expiry' "${svcs[@]}"
need '"session": "0x' "$out/store-1/logs/store-1.jsonl"
for n in 1 2 3; do
  ls "$out/zk$n/data/version-2/"log.*.gz >/dev/null 2>&1 || { echo "MISSING: zk$n txn logs"; missing=1; }
done
if [ "$missing" = 1 ]; then
  echo "== the recording lacks lines it should have (see above)"
  exit 1
fi
echo "== all expected lines present"
exit 0
