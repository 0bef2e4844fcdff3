#!/usr/bin/env bash
# Run a real, unmodified Prosody (Debian bookworm 0.12.x) on loopback for tests.
#
#   prosody.sh [start] [DIR]   install if missing, write config+cert into DIR, register users, start
#   prosody.sh stop    [DIR]   stop the instance of DIR (SIGTERM by pid, SIGKILL after 10 s)
#   prosody.sh status  [DIR]   exit 0 if running
#   prosody.sh check   [DIR]   STARTTLS handshake + print the SASL mechanisms offered after TLS
#
# DIR: argument, else $UPSTREAM_DIR, else a fresh mktemp dir (start) / the last dir used (stop, status, check).
# Nothing in /etc/prosody, /var/lib/prosody or the Debian service is used or touched.
#
# Environment (all optional):
#   PROSODY_C2S_PORT      c2s port with STARTTLS            (default 5222)
#   PROSODY_C2S_TLS_PORT  extra direct-TLS c2s port (XEP-0368) (default: none)
#   PROSODY_DOMAIN        virtual host                       (default localhost; MUC is conference.$PROSODY_DOMAIN)
#   PROSODY_USERS         "user:pass user:pass ..."          (default "alice:alicepass bob:bobpass carol:carolpass")
#   PROSODY_LOG_LEVEL     debug|info|warn|error              (default info; log in DIR/prosody.log)
#   PROSODY_RUN_USER      when root: drop to this user (e.g. prosody) via setpriv instead of run_as_root=true
#   PROSODY_START_TIMEOUT seconds to wait for the port        (default 30)
#   PROSODY_SCRAM_ITERATIONS SCRAM iteration count for new passwords (default 4096, like ejabberd; Prosody's own default is 10000)
#   PROSODY_NAGLE         true|false: Nagle on accepted sockets (default false = TCP_NODELAY; Prosody's own default is true)
#   PROSODY_COMPONENT_PORT   XEP-0114 listener for the external component push.$PROSODY_DOMAIN (a test's push
#                            app server, docs/architecture.md §8.6)                    (default: none)
#   PROSODY_COMPONENT_SECRET its handshake secret                                     (default pushsecret)
#   PROSODY_REQUIRE_ENCRYPTION true|false: c2s_require_encryption (default true; false lets a proxy beside the
#                         server log in over plain TCP on loopback: --upstream-tls none, docs/architecture.md §3.6)
#   PROSODY_CLOUD_NOTIFY  1: load XEP-0357 mod_cloud_notify (Debian's prosody-modules, installed if missing) (default 0)
set -euo pipefail

CMD=start
case "${1:-}" in start|stop|status|check) CMD=$1; shift ;; esac
PORT=${PROSODY_C2S_PORT:-5222}
TLS_PORT=${PROSODY_C2S_TLS_PORT:-}
DOMAIN=${PROSODY_DOMAIN:-localhost}
MUC=conference.$DOMAIN
USERS=${PROSODY_USERS:-alice:alicepass bob:bobpass carol:carolpass}
LOG_LEVEL=${PROSODY_LOG_LEVEL:-info}
RUN_USER=${PROSODY_RUN_USER:-}
TIMEOUT=${PROSODY_START_TIMEOUT:-30}
SCRAM_ITER=${PROSODY_SCRAM_ITERATIONS:-4096}
NAGLE=${PROSODY_NAGLE:-false}
REQUIRE_ENCRYPTION=${PROSODY_REQUIRE_ENCRYPTION:-true}
case "$REQUIRE_ENCRYPTION" in true|false) ;; *) echo "prosody.sh: PROSODY_REQUIRE_ENCRYPTION must be true or false, got '$REQUIRE_ENCRYPTION'" >&2; exit 2 ;; esac
COMPONENT_PORT=${PROSODY_COMPONENT_PORT:-}
COMPONENT_SECRET=${PROSODY_COMPONENT_SECRET:-pushsecret}
CLOUD_NOTIFY=""
[ "${PROSODY_CLOUD_NOTIFY:-0}" = 1 ] && CLOUD_NOTIFY='"cloud_notify";'
LAST=${TMPDIR:-/tmp}/upstream-prosody.lastdir

DIR=${1:-${UPSTREAM_DIR:-}}
if [ -z "$DIR" ]; then
  if [ "$CMD" = start ]; then DIR=$(mktemp -d -t upstream-prosody.XXXXXX)
  elif [ -f "$LAST" ]; then DIR=$(cat "$LAST")
  else echo "prosody.sh: no DIR given and no previous instance recorded" >&2; exit 2; fi
fi
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
CFG=$DIR/prosody.cfg.lua
PIDFILE=$DIR/prosody.pid

log() { echo "[prosody.sh] $*" >&2; }

running_pid() {
  local pid
  [ -s "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  # make sure the pid really is a prosody process (pid reuse)
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q prosody || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

do_stop() {
  local pid
  if ! pid=$(running_pid); then log "not running ($DIR)"; rm -f "$PIDFILE"; return 0; fi
  log "stopping pid $pid"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "still alive after 10 s, SIGKILL $pid"; kill -KILL "$pid" 2>/dev/null || true; sleep 0.2; fi
  rm -f "$PIDFILE"
  log "stopped"
}

do_check() {
  # STARTTLS on the c2s port, then open a new stream over TLS and print the features.
  local port=${PORT}
  [ -f "$DIR/upstream.env" ] && port=$(. "$DIR/upstream.env"; echo "$UPSTREAM_PORT")
  local out
  out=$( { sleep 1
           printf "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" "$DOMAIN"
           sleep 2; } | timeout 10 openssl s_client -starttls xmpp -xmpphost "$DOMAIN" -connect "127.0.0.1:$port" -quiet 2>&1 || true)
  local mechs
  mechs=$(grep -o '<mechanism>[^<]*</mechanism>' <<<"$out" | sed 's/<[^>]*>//g' | tr '\n' ' ')
  if grep -q '<mechanisms' <<<"$out"; then
    echo "STARTTLS ok on 127.0.0.1:$port; SASL mechanisms after TLS: $mechs"
  else
    echo "STARTTLS check FAILED on 127.0.0.1:$port; output:"; echo "$out"; return 1
  fi
}

case "$CMD" in
  stop)   do_stop; exit 0 ;;
  status) if pid=$(running_pid); then echo "running pid $pid ($DIR)"; exit 0; else echo "not running ($DIR)"; exit 1; fi ;;
  check)  do_check; exit $? ;;
esac

# ---------------------------------------------------------------- start
if ! command -v prosody >/dev/null 2>&1 || ! command -v prosodyctl >/dev/null 2>&1; then
  log "installing prosody from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y prosody >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y prosody >/dev/null; }
  # Debian's postinst may have started the system service (not in containers whose policy-rc.d denies it).
  if [ -s /run/prosody/prosody.pid ] && kill -0 "$(cat /run/prosody/prosody.pid)" 2>/dev/null; then
    log "stopping the Debian system service started by the package"
    service prosody stop >/dev/null 2>&1 || kill -TERM "$(cat /run/prosody/prosody.pid)" 2>/dev/null || true
  fi
fi
if [ -n "$CLOUD_NOTIFY" ] && [ ! -e /usr/lib/prosody/modules/mod_cloud_notify/mod_cloud_notify.lua ]; then
  log "installing prosody-modules from Debian (mod_cloud_notify)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y prosody-modules >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y prosody-modules >/dev/null; }
fi
command -v openssl >/dev/null 2>&1 || { apt-get install -y openssl >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y openssl >/dev/null; }; }

if pid=$(running_pid); then log "already running as pid $pid in $DIR; use '$0 stop $DIR' first"; exit 1; fi
for p in $PORT $TLS_PORT $COMPONENT_PORT; do
  if port_open "$p"; then log "port $p on 127.0.0.1 is already in use"; exit 1; fi
done

mkdir -p "$DIR/data" "$DIR/certs"
echo "$DIR" > "$LAST"

# self-signed cert covering the host and the MUC component
if [ ! -s "$DIR/certs/$DOMAIN.crt" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$DOMAIN" \
    -addext "subjectAltName=DNS:$DOMAIN,DNS:$MUC,IP:127.0.0.1" \
    -keyout "$DIR/certs/$DOMAIN.key" -out "$DIR/certs/$DOMAIN.crt" >/dev/null 2>&1
  chmod 600 "$DIR/certs/$DOMAIN.key"
fi

AS_ROOT=false
if [ "$(id -u)" = 0 ] && [ -z "$RUN_USER" ]; then AS_ROOT=true; fi
TLS_PORT_LINE=""
[ -n "$TLS_PORT" ] && TLS_PORT_LINE="c2s_direct_tls_ports = { $TLS_PORT }"
COMPONENT_LINES=""; COMPONENT_BLOCK=""
if [ -n "$COMPONENT_PORT" ]; then
  COMPONENT_LINES="component_ports = { $COMPONENT_PORT }
component_interfaces = { \"127.0.0.1\" }"
  COMPONENT_BLOCK="Component \"push.$DOMAIN\"
  component_secret = \"$COMPONENT_SECRET\""
fi

cat > "$CFG" <<EOF
-- generated by prosody.sh; self-contained, does not use /etc/prosody
run_as_root = $AS_ROOT          -- Prosody refuses uid 0 unless this is set
pidfile = "$PIDFILE"
data_path = "$DIR/data"
log = { $LOG_LEVEL = "$DIR/prosody.log" }
-- TCP_NODELAY on accepted sockets (net/server_epoll.lua defaultoptions): with Nagle on, a small write after
-- a TLS 1.3 session ticket waits for the client's delayed ACK, stalling each new connection ~40 ms.
network_settings = { nagle = $NAGLE }
interfaces = { "127.0.0.1" }
local_interfaces = { "127.0.0.1" }
c2s_ports = { $PORT }
$TLS_PORT_LINE
$COMPONENT_LINES
modules_enabled = {
  "roster"; "saslauth"; "tls"; "disco"; "carbons"; "pep"; "private";
  "blocklist"; "vcard4"; "vcard_legacy"; "version"; "uptime"; "time"; "ping";
  "register"; "mam"; "smacks"; "csi_simple"; $CLOUD_NOTIFY
  "bookmarks";   -- XEP-0402 + XEP-0048 compat (urn:xmpp:bookmarks:1#compat), for --bookmarks follow (issue 14)
}
modules_disabled = { "s2s"; "s2s_auth_certs" }   -- no listener on 5269
allow_registration = false
c2s_require_encryption = $REQUIRE_ENCRYPTION
authentication = "internal_hashed"
default_iteration_count = $SCRAM_ITER   -- SCRAM PBKDF2 rounds (Prosody default 10000 costs the JS client ~1.3 s per login)
storage = "internal"
archive_expires_after = "1w"
ssl = { certificate = "$DIR/certs/$DOMAIN.crt"; key = "$DIR/certs/$DOMAIN.key" }

VirtualHost "$DOMAIN"
  ssl = { certificate = "$DIR/certs/$DOMAIN.crt"; key = "$DIR/certs/$DOMAIN.key" }

Component "$MUC" "muc"
  ssl = { certificate = "$DIR/certs/$DOMAIN.crt"; key = "$DIR/certs/$DOMAIN.key" }
  modules_enabled = { "muc_mam" }
  restrict_room_creation = false
  muc_room_locking = false          -- rooms usable right after the first join
  muc_log_by_default = true

$COMPONENT_BLOCK
EOF

if [ -n "$RUN_USER" ] && [ "$(id -u)" = 0 ]; then
  chown -R "$RUN_USER": "$DIR"
  chmod 750 "$DIR"
fi

PCTL=(prosodyctl --config "$CFG")
for up in $USERS; do
  u=${up%%:*}; p=${up#*:}
  # prosodyctl (as root, without run_as_root) switches to the 'prosody' user by itself
  "${PCTL[@]}" register "$u" "$DOMAIN" "$p" >"$DIR/prosodyctl.out" 2>&1 || { cat "$DIR/prosodyctl.out" >&2; exit 1; }
done

log "starting prosody ($DIR)"
if [ -n "$RUN_USER" ] && [ "$(id -u)" = 0 ]; then
  setsid setpriv --reuid="$RUN_USER" --regid="$RUN_USER" --init-groups \
    env HOME="$DIR" prosody --config "$CFG" -F >"$DIR/prosody.stdout" 2>&1 < /dev/null &
else
  setsid prosody --config "$CFG" -F >"$DIR/prosody.stdout" 2>&1 < /dev/null &
fi
LAUNCH_PID=$!
t0=$(date +%s%N)
for _ in $(seq 1 $((TIMEOUT * 10))); do
  if ! kill -0 "$LAUNCH_PID" 2>/dev/null; then
    log "prosody exited during startup; stdout and log:"; cat "$DIR/prosody.stdout" "$DIR/prosody.log" >&2 2>/dev/null || true; exit 1
  fi
  # Prosody does not exit when a listener cannot bind (it logs and runs on without the port): fail fast.
  if grep -q 'Failed to open server port' "$DIR/prosody.log" 2>/dev/null; then
    log "prosody could not bind its port; stopping it:"; grep 'Failed to open server port' "$DIR/prosody.log" >&2 || true
    kill -TERM "$LAUNCH_PID" 2>/dev/null || true; rm -f "$PIDFILE"; exit 1
  fi
  if [ -s "$PIDFILE" ] && port_open "$PORT"; then UP=1; break; fi
  sleep 0.1
done
if [ -z "${UP:-}" ]; then
  log "port $PORT not open after ${TIMEOUT}s; stopping prosody"; tail -n 20 "$DIR/prosody.log" >&2 || true
  kill -TERM "$LAUNCH_PID" 2>/dev/null || true; rm -f "$PIDFILE"; exit 1
fi
PID=$(cat "$PIDFILE")
ms=$(( ($(date +%s%N) - t0) / 1000000 )); STARTUP=$((ms / 1000)).$(printf %03d $((ms % 1000)))

cat > "$DIR/upstream.env" <<EOF
UPSTREAM_KIND=prosody
UPSTREAM_DIR=$DIR
UPSTREAM_PID=$PID
UPSTREAM_HOST=127.0.0.1
UPSTREAM_PORT=$PORT
UPSTREAM_TLS_PORT=$TLS_PORT
UPSTREAM_DOMAIN=$DOMAIN
UPSTREAM_MUC=$MUC
UPSTREAM_USERS="$USERS"
UPSTREAM_CERT=$DIR/certs/$DOMAIN.crt
UPSTREAM_LOG=$DIR/prosody.log
UPSTREAM_COMPONENT_PORT=$COMPONENT_PORT
UPSTREAM_COMPONENT_HOST=push.$DOMAIN
UPSTREAM_COMPONENT_SECRET=$COMPONENT_SECRET
EOF

echo "prosody $(dpkg-query -W -f='${Version}' prosody 2>/dev/null) running: pid $PID, started in ${STARTUP}s"
echo "  dir     $DIR   (config prosody.cfg.lua, log prosody.log, env upstream.env)"
echo "  c2s     127.0.0.1:$PORT (STARTTLS required)${TLS_PORT:+, direct TLS 127.0.0.1:$TLS_PORT}"
echo "  domain  $DOMAIN   muc $MUC"
echo "  users   $(for up in $USERS; do printf '%s@%s:%s ' "${up%%:*}" "$DOMAIN" "${up#*:}"; done)(jid:password)"
echo "  stop    $0 stop $DIR"
