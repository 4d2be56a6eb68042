#!/usr/bin/env bash
# Records a real failover incident on a real 3-server ZooKeeper ensemble (Debian's zookeeper 3.8
# package, loopback ports) with real client services, into samples/incident-1/.
#
#   bash samples/record/record.sh            # about 2 minutes; needs zookeeper, python3-kazoo, javac
#
# What happens (the real times go to samples/incident-1.timeline.txt):
#   1. ensemble up (zk1, zk2 upstream log layout with [myid:N]; zk3 Debian's layout without it);
#      services calc-a then calc-b (kazoo, election under /election/calc), store-1 (kazoo, JSON
#      lines), ledger-1 (Java client); 10 s steady
#   2. kill -9 the leader; a new leader is elected; 8 s
#   3. SIGSTOP the calc primary (calc-a or calc-b, whichever holds the role) and ledger-1 for 12 s (session timeout 4 s): the new leader
#      expires their sessions, their ephemerals go, calc-b becomes primary; SIGCONT: they notice
#      the expiry and register again with new sessions; 8 s
#   4. restart the killed server: it rejoins (DIFF or SNAP); 8 s
#   5. quorum loss: kill -9 the leader and one follower; 8 s; restart both; the ensemble serves again; 8 s
#   6. services stop, servers stop
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
out="$repo/samples/incident-1"
work="$(mktemp -d /tmp/zklens-record.XXXXXX)"
harness="/usr/bin/python3 $repo/tests/harness/zkharness.py"
base=${ZKLENS_RECORD_PORT:-23810}
PY=/usr/bin/python3
export TZ=UTC

pids=()
cleanup() {
  for p in "${pids[@]:-}"; do
    [ -n "$p" ] || continue
    kill -CONT "$p" 2>/dev/null || true
    kill -9 "$p" 2>/dev/null || true
  done
  $harness stop-all --dir "$work/ens" >/dev/null 2>&1 || true
}
trap cleanup EXIT

timeline="$work/TIMELINE.txt"
mark() { printf '%s  %s\n' "$(date -u +%Y-%m-%dT%H:%M:%S.%3NZ)" "$*" | tee -a "$timeline"; }

echo "== work dir $work"
leader=$($harness start --dir "$work/ens" --servers 3 --base-port "$base" --tick 500 --debian-layout 3)
mark "ensemble up: zk1 zk2 zk3 (client ports $((base+1))-$((base+3))), leader zk$leader"
zkconn=$($harness connect-string --dir "$work/ens")

# The Java client service.
jout="$work/java"
mkdir -p "$jout" "$work/ledger-1/conf" "$work/ledger-1/logs"
javac -nowarn -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-api.jar -d "$jout" "$here/JavaService.java"
cat > "$work/ledger-1/conf/log4j.properties" <<EOF
log4j.rootLogger=INFO, FILE
log4j.appender.FILE=org.apache.log4j.FileAppender
log4j.appender.FILE.File=$work/ledger-1/logs/ledger-1.log
log4j.appender.FILE.layout=org.apache.log4j.PatternLayout
log4j.appender.FILE.layout.ConversionPattern=%d{ISO8601} [myid:%X{myid}] - %-5p [%t:%C{1}@%L] - %m%n
EOF
jcp="$jout:$work/ledger-1/conf"
for j in zookeeper zookeeper-jute slf4j-api slf4j-log4j12 log4j-1.2 netty-handler netty-transport netty-common netty-buffer netty-codec netty-resolver netty-transport-native-epoll netty-transport-native-unix-common; do
  [ -f "/usr/share/java/$j.jar" ] && jcp="$jcp:/usr/share/java/$j.jar"
done

svc() { # name instance format
  local logf="$work/$2/logs/$2.log"
  [ "$3" = json ] && logf="$work/$2/logs/$2.jsonl"
  $PY "$here/service.py" --name "$1" --instance "$2" --zk "$zkconn" --log-file "$logf" --log-format "$3" --timeout 4 &
  pids+=($!)
  eval "pid_${2//-/_}=$!"
}

svc calc calc-a text
mark "calc-a started (kazoo, pid $pid_calc_a)"
sleep 2
svc calc calc-b text
mark "calc-b started (kazoo, pid $pid_calc_b)"
svc store store-1 json
mark "store-1 started (kazoo, JSON lines, pid $pid_store_1)"
java -Xmx128m -Dservice.log="$work/ledger-1/logs/ledger-1.log" -cp "$jcp" JavaService "$zkconn" ledger ledger-1 4000 >"$work/ledger-1/logs/stdout.txt" 2>&1 &
pid_ledger_1=$!
pids+=($pid_ledger_1)
mark "ledger-1 started (Java client, pid $pid_ledger_1)"
sleep 10

old=$($harness leader --dir "$work/ens")
mark "kill -9 zk$old (the leader)"
$harness kill "$old" --dir "$work/ens"
sleep 1
new=""
for _ in $(seq 1 120); do
  for n in 1 2 3; do
    [ "$n" = "$old" ] && continue
    m=$(echo srvr | timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$((base+n)); cat >&3; cat <&3" 2>/dev/null | sed -n 's/^Mode: //p' || true)
    [ "$m" = leader ] && new=$n
  done
  [ -n "$new" ] && break
  sleep 0.25
done
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
$harness restart "$old" --dir "$work/ens" >/dev/null
sleep 8
mark "zk$old rejoined: $($harness status --dir "$work/ens" | tr '\n' ';')"

cur=$($harness leader --dir "$work/ens")
other=$(for n in 1 2 3; do [ "$n" != "$cur" ] && echo "$n"; done | head -n 1)
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

# Collect.
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
      log.*|snapshot.*) gzip -9 -c "$f" > "$out/zk$n/data/version-2/$b.gz" ;;
      *) cp "$f" "$out/zk$n/data/version-2/$b" ;;
    esac
  done
done
for s in calc-a calc-b store-1 ledger-1; do
  mkdir -p "$out/$s/logs"
  cp "$work/$s"/logs/*.log "$work/$s"/logs/*.jsonl "$out/$s/logs/" 2>/dev/null || true
done
# The timeline lives beside the logs, not among them (it is not a log of the ensemble).
cp "$timeline" "$repo/samples/incident-1.timeline.txt"
echo "== recorded into $out"
du -sh "$out"
trap - EXIT
cleanup
rm -rf "$work"
exit 0
