#!/usr/bin/env bash
# Run a real, unmodified ejabberd (Debian bookworm 23.01) on loopback for tests.
#
#   ejabberd.sh [start] [DIR]   install if missing, write config+cert into DIR, start, register users
#   ejabberd.sh stop    [DIR]   what 'ejabberdctl stop' does (ctl_eval), then SIGTERM/SIGKILL by pid if still alive
#   ejabberd.sh status  [DIR]   exit 0 if running
#   ejabberd.sh check   [DIR]   STARTTLS handshake + print the SASL mechanisms offered after TLS
#   ejabberd.sh ctl [DIR] -- ARGS...   run ejabberdctl against this instance (e.g. connected_users)
#
# DIR: argument, else $UPSTREAM_DIR, else a fresh mktemp dir (start) / the last dir used (others).
# Nothing in /etc/ejabberd, /var/lib/ejabberd or the Debian service is used. No epmd is started:
# Erlang distribution (needed by ejabberdctl) uses a fixed loopback port (ERL_DIST_PORT) instead.
# When run as root, Debian's ejabberdctl always switches to the 'ejabberd' user (su), so DIR is
# chowned to ejabberd and its parent directories must be traversable by that user (/tmp is fine).
#
# Environment (all optional):
#   EJABBERD_C2S_PORT      c2s port with STARTTLS              (default 15222)
#   EJABBERD_C2S_TLS_PORT  extra direct-TLS c2s port            (default: none)
#   EJABBERD_DIST_PORT     Erlang distribution port (loopback)   (default c2s port + 10000)
#   EJABBERD_DOMAIN        virtual host                          (default localhost; MUC is conference.$EJABBERD_DOMAIN)
#   EJABBERD_USERS         "user:pass user:pass ..."            (default "alice:alicepass bob:bobpass carol:carolpass")
#   EJABBERD_LOG_LEVEL     none|emergency|...|info|debug         (default info; log in DIR/log/ejabberd.log)
#   EJABBERD_MAX_USER_SESSIONS  sessions one account may have   (default 10, ejabberd's own default; the soak needs more)
#   EJABBERD_START_TIMEOUT seconds to wait for the node           (default 60)
#   EJABBERD_COMPONENT_PORT   XEP-0114 listener (ejabberd_service) for the external component push.$EJABBERD_DOMAIN
#                             (a test's push app server, docs/architecture.md §8.6) (default: none)
#   EJABBERD_COMPONENT_SECRET its handshake secret                  (default pushsecret)
#   EJABBERD_STARTTLS_REQUIRED true|false: starttls_required of the c2s listener (default true; false lets a
#                          proxy beside the server log in over plain TCP: --upstream-tls none)
#   EJABBERD_MOD_PUSH      1: load ejabberd's own XEP-0357 mod_push   (default 0: not loaded)
set -euo pipefail

CMD=start
case "${1:-}" in start|stop|status|check|ctl) CMD=$1; shift ;; esac
PORT=${EJABBERD_C2S_PORT:-15222}
TLS_PORT=${EJABBERD_C2S_TLS_PORT:-}
DIST_PORT=${EJABBERD_DIST_PORT:-$((PORT + 10000))}
DOMAIN=${EJABBERD_DOMAIN:-localhost}
MUC=conference.$DOMAIN
USERS=${EJABBERD_USERS:-alice:alicepass bob:bobpass carol:carolpass}
LOG_LEVEL=${EJABBERD_LOG_LEVEL:-info}
MAX_USER_SESSIONS=${EJABBERD_MAX_USER_SESSIONS:-10}
STARTTLS_REQUIRED=${EJABBERD_STARTTLS_REQUIRED:-true}
case "$STARTTLS_REQUIRED" in true|false) ;; *) echo "ejabberd.sh: EJABBERD_STARTTLS_REQUIRED must be true or false, got '$STARTTLS_REQUIRED'" >&2; exit 2 ;; esac
case $MAX_USER_SESSIONS in ''|*[!0-9]*) echo "ejabberd.sh: EJABBERD_MAX_USER_SESSIONS must be a number" >&2; exit 2 ;; esac
TIMEOUT=${EJABBERD_START_TIMEOUT:-60}
COMPONENT_PORT=${EJABBERD_COMPONENT_PORT:-}
COMPONENT_SECRET=${EJABBERD_COMPONENT_SECRET:-pushsecret}
MOD_PUSH=""
[ "${EJABBERD_MOD_PUSH:-0}" = 1 ] && MOD_PUSH="  mod_push: {}"
LAST=${TMPDIR:-/tmp}/upstream-ejabberd.lastdir

DIR=""
if [ $# -gt 0 ] && [ "$1" != "--" ]; then DIR=$1; shift; fi
[ "${1:-}" = "--" ] && shift
DIR=${DIR:-${UPSTREAM_DIR:-}}
if [ -z "$DIR" ]; then
  if [ "$CMD" = start ]; then DIR=$(mktemp -d -t upstream-ejabberd.XXXXXX)
  elif [ -f "$LAST" ]; then DIR=$(cat "$LAST")
  else echo "ejabberd.sh: no DIR given and no previous instance recorded" >&2; exit 2; fi
fi
mkdir -p "$DIR"; DIR=$(cd "$DIR" && pwd)
PIDFILE=$DIR/ejabberd.pid
# an existing instance keeps the ports/node it was created with
if [ "$CMD" != start ] && [ -f "$DIR/upstream.env" ]; then
  PORT=$(. "$DIR/upstream.env"; echo "$UPSTREAM_PORT")
  DIST_PORT=$(. "$DIR/upstream.env"; echo "$UPSTREAM_DIST_PORT")
fi
# the mnesia database in DIR/db belongs to one node name: keep the name the dir was created with
NODE=ejabberd-upstream-$PORT@localhost
[ -s "$DIR/node" ] && NODE=$(cat "$DIR/node")

log() { echo "[ejabberd.sh] $*" >&2; }

ctl() {
  ejabberdctl --config-dir "$DIR" --ctl-config "$DIR/ejabberdctl.cfg" --config "$DIR/ejabberd.yml" \
    --spool "$DIR/db" --logs "$DIR/log" --node "$NODE" "$@"
}

# What `ejabberdctl CMD ARGS` does — ejabberd_ctl:process(["CMD", ARGS...]) on the node, over Erlang
# distribution — for several commands in ONE Erlang VM. Each ejabberdctl call boots two VMs of its own
# (~1 s of CPU on a loaded 2-core machine), which made registering users most of a private instance's
# start-up (13 users for the soak: ~15 s). Same node, cookie, dist port and loopback interface as
# ejabberdctl.cfg; ejabberd_ctl prints its usual messages on our stdout.
#   ctl_eval 'ERLANG EXPR using Node and Ctl(["cmd", "arg", ...]) -> exit code' [PLAIN ARGS...]
ctl_eval() {
  local expr=$1; shift
  ERL_INETRC="$DIR/inetrc" ERL_CRASH_DUMP_BYTES=0 erl -sname "ctl-$$-$NODE" -hidden -noinput \
    -setcookie "$(cat "$DIR/cookie")" -kernel inet_dist_use_interface '{127,0,0,1}' \
    -erl_epmd_port "$DIST_PORT" -start_epmd false -dist_listen false \
    -eval "Node=list_to_atom(\"$NODE\"), Ctl=fun(A)->rpc:call(Node,ejabberd_ctl,process,[A]) end, $expr" -extra "$@"
}

running_pid() {
  local pid
  [ -s "$PIDFILE" ] || return 1
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$NODE" || return 1
  echo "$pid"
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

do_stop() {
  local pid
  if ! pid=$(running_pid); then log "not running ($DIR)"; rm -f "$PIDFILE"; return 0; fi
  log "stopping pid $pid (ejabberd_ctl stop)"
  ctl_eval 'halt(case Ctl(["stop"]) of 0 -> 0; _ -> 1 end).' >/dev/null 2>&1 || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then log "still alive after 15 s, SIGTERM/SIGKILL $pid"; kill -TERM "$pid" 2>/dev/null || true; sleep 2; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$PIDFILE"
  log "stopped"
}

do_check() {
  local out mechs
  out=$( { sleep 1
           printf "<?xml version='1.0'?><stream:stream to='%s' version='1.0' xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams'>" "$DOMAIN"
           sleep 2; } | timeout 10 openssl s_client -starttls xmpp -xmpphost "$DOMAIN" -connect "127.0.0.1:$PORT" -quiet 2>&1 || true)
  mechs=$(grep -o '<mechanism>[^<]*</mechanism>' <<<"$out" | sed 's/<[^>]*>//g' | tr '\n' ' ')
  if grep -q '<mechanisms' <<<"$out"; then
    echo "STARTTLS ok on 127.0.0.1:$PORT; SASL mechanisms after TLS: $mechs"
  else
    echo "STARTTLS check FAILED on 127.0.0.1:$PORT; output:"; echo "$out"; return 1
  fi
}

case "$CMD" in
  stop)   do_stop; exit 0 ;;
  status) if pid=$(running_pid); then echo "running pid $pid ($DIR)"; exit 0; else echo "not running ($DIR)"; exit 1; fi ;;
  check)  do_check; exit $? ;;
  ctl)    ctl "$@"; exit $? ;;
esac

# ---------------------------------------------------------------- start
if ! command -v ejabberdctl >/dev/null 2>&1; then
  log "installing ejabberd from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get install -y ejabberd >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y ejabberd >/dev/null; }
  # Debian's postinst may have started the system service (not in containers whose policy-rc.d denies it).
  if [ -s /run/ejabberd/ejabberd.pid ] && kill -0 "$(cat /run/ejabberd/ejabberd.pid)" 2>/dev/null; then
    log "stopping the Debian system service started by the package"
    service ejabberd stop >/dev/null 2>&1 || kill -TERM "$(cat /run/ejabberd/ejabberd.pid)" 2>/dev/null || true
  fi
fi
command -v openssl >/dev/null 2>&1 || { apt-get install -y openssl >/dev/null 2>&1 || { apt-get update >/dev/null && apt-get install -y openssl >/dev/null; }; }

if pid=$(running_pid); then log "already running as pid $pid in $DIR; use '$0 stop $DIR' first"; exit 1; fi
for p in $PORT $TLS_PORT $DIST_PORT $COMPONENT_PORT; do
  if port_open "$p"; then log "port $p on 127.0.0.1 is already in use"; exit 1; fi
done

mkdir -p "$DIR/db" "$DIR/log" "$DIR/certs"
echo "$DIR" > "$LAST"
echo "$NODE" > "$DIR/node"

if [ ! -s "$DIR/certs/$DOMAIN.pem" ]; then
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$DOMAIN" \
    -addext "subjectAltName=DNS:$DOMAIN,DNS:$MUC,IP:127.0.0.1" \
    -keyout "$DIR/certs/$DOMAIN.key" -out "$DIR/certs/$DOMAIN.crt" >/dev/null 2>&1
  cat "$DIR/certs/$DOMAIN.crt" "$DIR/certs/$DOMAIN.key" > "$DIR/certs/$DOMAIN.pem"
  chmod 600 "$DIR/certs/$DOMAIN.key" "$DIR/certs/$DOMAIN.pem"
fi
[ -s "$DIR/cookie" ] || { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$DIR/cookie"; chmod 600 "$DIR/cookie"; }

# ejabberdctl.cfg: sourced by ejabberdctl (replaces /etc/default/ejabberd)
cat > "$DIR/ejabberdctl.cfg" <<EOF
ERLANG_NODE=$NODE
ERL_OPTIONS="-setcookie $(cat "$DIR/cookie") -env ERL_CRASH_DUMP_BYTES 0"
ERL_DIST_PORT=$DIST_PORT
INET_DIST_INTERFACE=127.0.0.1
EJABBERD_PID_PATH=$PIDFILE
EJABBERD_BYPASS_WARNINGS=true
CONTRIB_MODULES_PATH=$DIR/contrib
CONTRIB_MODULES_CONF_DIR=$DIR/contrib.d
EOF
cp /etc/ejabberd/inetrc "$DIR/inetrc" 2>/dev/null || printf '{lookup,["file","native"]}.\n{host,{127,0,0,1}, ["localhost"]}.\n' > "$DIR/inetrc"

TLS_LISTENER=""
if [ -n "$TLS_PORT" ]; then
  TLS_LISTENER="  - port: $TLS_PORT
    ip: \"127.0.0.1\"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    tls: true"
fi

COMPONENT_LISTENER=""
if [ -n "$COMPONENT_PORT" ]; then
  COMPONENT_LISTENER="  - port: $COMPONENT_PORT
    ip: \"127.0.0.1\"
    module: ejabberd_service
    hosts:
      \"push.$DOMAIN\":
        password: \"$COMPONENT_SECRET\""
fi

cat > "$DIR/ejabberd.yml" <<EOF
# generated by ejabberd.sh; self-contained, does not use /etc/ejabberd
hosts:
  - "$DOMAIN"
loglevel: $LOG_LEVEL
log_rotate_count: 0
certfiles:
  - "$DIR/certs/$DOMAIN.pem"
listen:
  - port: $PORT
    ip: "127.0.0.1"
    module: ejabberd_c2s
    max_stanza_size: 262144
    access: c2s
    starttls_required: $STARTTLS_REQUIRED
$TLS_LISTENER
$COMPONENT_LISTENER
auth_method: internal
auth_password_format: scram
disable_sasl_mechanisms:
  - "digest-md5"
  - "X-OAUTH2"
s2s_access: none
acl:
  local:
    user_regexp: ""
  loopback:
    ip:
      - 127.0.0.0/8
access_rules:
  local:
    allow: local
  c2s:
    deny: blocked
    allow: all
  muc_create:
    allow: local
  pubsub_createnode:
    allow: local
api_permissions:
  "console commands":
    from:
      - ejabberd_ctl
    who: all
    what: "*"
shaper_rules:
  max_user_sessions: $MAX_USER_SESSIONS
  max_user_offline_messages: 100
modules:
  mod_adhoc: {}
  mod_admin_extra: {}
  mod_blocking: {}
  mod_caps: {}
  mod_carboncopy: {}
  mod_client_state: {}
  mod_disco: {}
  mod_last: {}
  mod_mam:
    db_type: mnesia
    default: always
  mod_muc:
    host: "$MUC"
    access: all
    access_create: muc_create
    access_persistent: muc_create
    access_mam: all
    default_room_options:
      mam: true
  mod_offline:
    access_max_user_messages: max_user_offline_messages
  mod_ping: {}
$MOD_PUSH
  mod_privacy: {}
  mod_private: {}
  mod_pubsub:
    access_createnode: pubsub_createnode
    plugins:
      - flat
      - pep
  mod_roster:
    versioning: true
  mod_stream_mgmt:
    resend_on_timeout: if_offline
  mod_vcard:
    search: false
  mod_vcard_xupdate: {}
  mod_version:
    show_os: false
EOF

if [ "$(id -u)" = 0 ]; then chown -R ejabberd:ejabberd "$DIR"; chmod 750 "$DIR"; fi

log "starting ejabberd node $NODE ($DIR)"
t0=$(date +%s%N)
setsid bash -c 'cd "$1" && shift && exec "$@"' _ "$DIR" \
  ejabberdctl --config-dir "$DIR" --ctl-config "$DIR/ejabberdctl.cfg" --config "$DIR/ejabberd.yml" \
    --spool "$DIR/db" --logs "$DIR/log" --node "$NODE" foreground >"$DIR/ejabberd.stdout" 2>&1 < /dev/null &
LAUNCH_PID=$!
for _ in $(seq 1 $((TIMEOUT * 10))); do
  if ! kill -0 "$LAUNCH_PID" 2>/dev/null; then
    # `tail -N` (obsolete syntax) is rejected by coreutils with two files: use -n
    log "ejabberd exited during startup:"; tail -n 30 "$DIR/ejabberd.stdout" "$DIR/log/ejabberd.log" >&2 2>/dev/null || true; exit 1
  fi
  if [ -s "$PIDFILE" ] && port_open "$PORT"; then UP=1; break; fi
  sleep 0.2
done
if [ -z "${UP:-}" ]; then
  log "port $PORT not open after ${TIMEOUT}s; stopping the node"; tail -n 30 "$DIR/log/ejabberd.log" >&2 || true
  do_stop; kill -TERM "$LAUNCH_PID" 2>/dev/null || true; exit 1
fi
PID=$(cat "$PIDFILE")
ms=$(( ($(date +%s%N) - t0) / 1000000 )); STARTUP=$((ms / 1000)).$(printf %03d $((ms % 1000)))

# every user in one VM (ctl_eval): `ejabberdctl register`, or `change_password` if already registered
reg_args=()
for up in $USERS; do reg_args+=("${up%%:*}" "${up#*:}"); done
if [ ${#reg_args[@]} -gt 0 ] && ! out=$(ctl_eval '
    Reg = fun R([U, P | T]) ->
                case Ctl(["register", U, "'"$DOMAIN"'", P]) of
                  0 -> R(T);
                  _ -> case Ctl(["change_password", U, "'"$DOMAIN"'", P]) of 0 -> R(T); E -> io:format("register ~ts failed: ~p~n", [U, E]), 1 end
                end;
              R([]) -> 0
          end,
    halt(Reg(init:get_plain_arguments())).' "${reg_args[@]}" 2>&1); then
  log "registering users failed: $out"; exit 1
fi

cat > "$DIR/upstream.env" <<EOF
UPSTREAM_KIND=ejabberd
UPSTREAM_DIR=$DIR
UPSTREAM_PID=$PID
UPSTREAM_HOST=127.0.0.1
UPSTREAM_PORT=$PORT
UPSTREAM_TLS_PORT=$TLS_PORT
UPSTREAM_DIST_PORT=$DIST_PORT
UPSTREAM_NODE=$NODE
UPSTREAM_DOMAIN=$DOMAIN
UPSTREAM_MUC=$MUC
UPSTREAM_USERS="$USERS"
UPSTREAM_CERT=$DIR/certs/$DOMAIN.crt
UPSTREAM_LOG=$DIR/log/ejabberd.log
UPSTREAM_COMPONENT_PORT=$COMPONENT_PORT
UPSTREAM_COMPONENT_HOST=push.$DOMAIN
UPSTREAM_COMPONENT_SECRET=$COMPONENT_SECRET
EOF

echo "ejabberd $(dpkg-query -W -f='${Version}' ejabberd 2>/dev/null) running: pid $PID, node $NODE, port open after ${STARTUP}s"
echo "  dir     $DIR   (config ejabberd.yml, log log/ejabberd.log, env upstream.env)"
echo "  c2s     127.0.0.1:$PORT (STARTTLS required)${TLS_PORT:+, direct TLS 127.0.0.1:$TLS_PORT}; erlang dist 127.0.0.1:$DIST_PORT"
echo "  domain  $DOMAIN   muc $MUC"
echo "  users   $(for up in $USERS; do printf '%s@%s:%s ' "${up%%:*}" "$DOMAIN" "${up#*:}"; done)(jid:password)"
echo "  ctl     $0 ctl $DIR -- connected_users"
echo "  stop    $0 stop $DIR"
