#!/usr/bin/env bash
# registry.sh: run Debian's docker-registry on 127.0.0.1 for tests, outside
# any service manager (systemd is not PID 1 here).
#
#   registry.sh start  PORT DIR   start it (no-op if already serving), wait for /v2/
#   registry.sh stop   PORT DIR   stop it and wait for it to exit
#   registry.sh status PORT DIR   exit 0 if it is serving, 3 if not
#
# DIR holds config.yml, registry.pid, registry.log and the blobs under storage/.
# No auth and plain http: clients need --tls-verify=false or an insecure
# registries.conf entry for 127.0.0.1:PORT.
set -euo pipefail

BIN=${REGISTRY_BIN:-/usr/bin/docker-registry}
START_TIMEOUT=${REGISTRY_START_TIMEOUT:-15}

die() { echo "registry.sh: error: $*" >&2; exit 1; }
usage() { echo "usage: registry.sh start|stop|status PORT DIR" >&2; exit 2; }

(($# == 3)) || usage
cmd=$1 port=$2 dir=$3
[[ $port =~ ^[0-9]+$ ]] && ((port >= 1 && port <= 65535)) || die "port must be a number from 1 to 65535, got \"$port\""
[[ -n $dir ]] || die "directory must not be empty"

pidfile=$dir/registry.pid
config=$dir/config.yml
logfile=$dir/registry.log
url=http://127.0.0.1:$port/v2/

# our_pid prints the pid from the pid file if that process is still this
# registry (the pid may have been reused since).
our_pid() {
  local pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF "serve $config" || return 1
  echo "$pid"
}

# alive reports whether pid still runs; an exited process that PID 1 has not
# reaped yet is a zombie and counts as gone.
alive() {
  local state
  state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $state && $state != Z ]]
}

answers() {
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$url" 2>/dev/null) == 200 ]]
}

write_config() {
  local abs
  abs=$(cd "$dir" && pwd)
  cat >"$config.tmp" <<CONF
version: 0.1
log:
  level: info
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $abs/storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
CONF
  mv -f "$config.tmp" "$config"
}

start() {
  [[ -x $BIN ]] || die "$BIN not found: run scripts/deps.sh"
  command -v curl >/dev/null || die "curl not found: run scripts/deps.sh"
  mkdir -p "$dir/storage"
  dir=$(cd "$dir" && pwd)
  pidfile=$dir/registry.pid config=$dir/config.yml logfile=$dir/registry.log
  if pid=$(our_pid); then
    answers || die "registry pid $pid is running but $url does not answer"
    return 0
  fi
  if answers; then
    die "something else already answers on $url"
  fi
  write_config
  # setsid detaches it from the caller's session so it outlives the shell
  # that started it and no terminal signal reaches it.
  setsid "$BIN" serve "$config" >>"$logfile" 2>&1 </dev/null &
  local pid=$!
  echo "$pid" >"$pidfile"
  local deadline=$((SECONDS + START_TIMEOUT))
  until answers; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$pidfile"
      tail -n 5 "$logfile" >&2 || true
      die "registry exited during start-up (log: $logfile)"
    fi
    if ((SECONDS >= deadline)); then
      kill "$pid" 2>/dev/null || true
      rm -f "$pidfile"
      die "registry did not answer on $url within ${START_TIMEOUT}s (log: $logfile)"
    fi
    sleep 0.1
  done
}

stop() {
  [[ -d $dir ]] || return 0
  dir=$(cd "$dir" && pwd)
  pidfile=$dir/registry.pid config=$dir/config.yml
  local pid
  if ! pid=$(our_pid); then
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    alive "$pid" || break
    sleep 0.1
  done
  if alive "$pid"; then
    kill -KILL "$pid" 2>/dev/null || true
    sleep 0.2
  fi
  ! alive "$pid" || die "registry pid $pid did not exit"
  rm -f "$pidfile"
}

status() {
  if [[ -d $dir ]]; then
    dir=$(cd "$dir" && pwd)
    pidfile=$dir/registry.pid config=$dir/config.yml
  fi
  if pid=$(our_pid) && answers; then
    echo "registry pid $pid serving $url"
    return 0
  fi
  echo "registry not running on $url"
  return 3
}

case $cmd in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
