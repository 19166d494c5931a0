#!/bin/sh
# keepalived notify hook: records every VRRP transition of the stickmesh instance.
#   notify "/usr/local/lib/stickmesh/stickmesh-notify.sh STATE_FILE"
# keepalived appends: TYPE (INSTANCE) NAME STATE (MASTER|BACKUP|FAULT|STOP) PRIORITY.
# STATE_FILE gets one line "STATE PRIORITY UNIX_TIME" (replaced atomically), for monitoring and
# for scripts that must know whether this node holds the VIP; the transition also goes to syslog.
# Nothing here is needed for the failover itself: stickmesh listens on all addresses and its
# peers mesh already holds the tables, so the new master serves as soon as the VIP arrives.
set -u
state_file=$1
type=${2:-} name=${3:-} state=${4:-} priority=${5:-}
mkdir -p "$(dirname "$state_file")"
printf '%s %s %s\n' "$state" "$priority" "$(date +%s.%N)" >"$state_file.tmp" && mv -f "$state_file.tmp" "$state_file"
if command -v logger >/dev/null 2>&1; then
  logger -t stickmesh-vrrp "$type $name entered $state (priority $priority)" || true
fi
exit 0
