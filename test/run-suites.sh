#!/usr/bin/env bash
# The whole vitest suite as `npm test` runs it: two vitest processes side by side. Every test file runs
# exactly once, but the files parametrized by server (upstreamServers()): once per server.
#
#  - prosody:  MINIMIX_TEST_UPSTREAMS=prosody: every file under proxy/, test/ and bench/ (the proxy's unit
#              tests, Prosody-only suites, the bench smoke run, and the Prosody half of every suite
#              parametrized by server);
#  - ejabberd: MINIMIX_TEST_UPSTREAMS=ejabberd and MINIMIX_TEST_SERVER_AGNOSTIC=skip: the ejabberd half of
#              the parametrized files, without the blocks in them that need a server but not a particular
#              one (they ran in the Prosody run: serverAgnosticBlocks() in test/support/servers.ts); and the
#              pure unit tests of core/ and tls/, which need no server, to balance the two runs.
#
# Why: vitest runs CPUs − 1 files at a time, i.e. one on a 2-core machine, and the integration files
# cannot simply run side by side against one server — they share its accounts (alice, bob, carol) and
# some resources. Against two different servers they share nothing, so the suite takes about half the
# time. (A third process for the server-independent files was tried: about a minute faster on 2 cores,
# but the added load made timing-sensitive suites flaky.) With arguments (e.g. a file filter) it is one
# plain `vitest run ARGS` against both servers.
set -uo pipefail
cd "$(dirname "$0")/.."

# Install what the suites need first, in one apt-get: two processes installing at once would fight over
# dpkg's lock on a fresh machine. A service the packages start is stopped (the tests run private instances).
need=()
command -v prosodyctl >/dev/null 2>&1 || need+=(prosody)
[ -e /usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua ] || need+=(prosody-modules)
command -v ejabberdctl >/dev/null 2>&1 || need+=(ejabberd)
command -v redis-server >/dev/null 2>&1 || need+=(redis-server)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
/usr/bin/python3 -c "import slixmpp" >/dev/null 2>&1 || need+=(python3-slixmpp) # another client library: test/integration/slixmpp.test.ts
if [ ${#need[@]} -gt 0 ]; then
  echo "[test] installing from Debian: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y "${need[@]}" >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y "${need[@]}" >/dev/null; } || {
    echo "[test] apt-get install ${need[*]} failed" >&2
    exit 1
  }
  for svc in prosody ejabberd redis-server; do service "$svc" stop >/dev/null 2>&1 || true; done
fi

[ $# -gt 0 ] && exec npx vitest run "$@"

# every test file vitest.config.ts includes, split as above
mapfile -t onProsody < <(find proxy test bench -name '*.test.ts' | sort)
mapfile -t units < <(find core tls -name '*.test.ts' | sort)
mapfile -t parametrized < <(grep -l "upstreamServers()" "${onProsody[@]}")

logdir=$(mktemp -d)
trap 'rm -rf "$logdir"' EXIT
MINIMIX_TEST_UPSTREAMS=prosody npx vitest run "${onProsody[@]}" >"$logdir/prosody.log" 2>&1 &
p1=$!
MINIMIX_TEST_UPSTREAMS=ejabberd MINIMIX_TEST_SERVER_AGNOSTIC=skip npx vitest run "${parametrized[@]}" "${units[@]}" >"$logdir/ejabberd.log" 2>&1 &
p2=$!
echo "[test] vitest against Prosody (${#onProsody[@]} files) and against ejabberd (${#parametrized[@]} files, and the ${#units[@]} unit files of core/ and tls/) side by side; their output follows when each ends"
wait "$p1"; r1=$?
echo
echo "==================== vitest against prosody (exit $r1) ===================="
cat "$logdir/prosody.log"
wait "$p2"; r2=$?
echo
echo "==================== vitest against ejabberd (exit $r2) ===================="
cat "$logdir/ejabberd.log"
echo
echo "[test] prosody run: exit $r1; ejabberd run: exit $r2"
[ "$r1" -eq 0 ] && [ "$r2" -eq 0 ]
