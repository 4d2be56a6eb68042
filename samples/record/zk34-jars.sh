#!/usr/bin/env bash
# Fetches the ZooKeeper 3.4.6 server jars for `record-incident-2.py --profile zk34`.
#
#   bash samples/record/zk34-jars.sh [DIR]      # default /tmp/zk34-jars
#
# There is no Maven here, but PyPI is reachable and pyspark 2.4.8's source distribution bundles
# deps/jars/zookeeper-3.4.6.jar with log4j 1.2.17, slf4j-api and slf4j-log4j12 1.7.16 (the
# logging a 3.4 server shipped with). pip must run setup.py to "download" an sdist: pyspark's
# needs `wheel` and, without build isolation, tolerates the missing pypandoc. ~220 MB download.
# ZooKeeper 3.4.6 runs on OpenJDK 17 as QuorumPeerMain (NIO server, no netty needed).
set -euo pipefail
dir="${1:-/tmp/zk34-jars}"
tmp="$(mktemp -d /tmp/zk34-pip.XXXXXX)"
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install -q wheel setuptools
"$tmp/venv/bin/pip" download -q pyspark==2.4.8 --no-deps --no-build-isolation -d "$tmp"
mkdir -p "$dir"
tar xzf "$tmp/pyspark-2.4.8.tar.gz" -C "$dir" --strip-components=3 \
  pyspark-2.4.8/deps/jars/zookeeper-3.4.6.jar pyspark-2.4.8/deps/jars/log4j-1.2.17.jar \
  pyspark-2.4.8/deps/jars/slf4j-api-1.7.16.jar pyspark-2.4.8/deps/jars/slf4j-log4j12-1.7.16.jar
sha256sum "$dir"/*.jar
