#!/bin/sh
# keepalived notify reader: records every VRRP transition of the stickmesh instance, in order.
#   vrrp_notify_fifo /run/stickmesh/vrrp-notify.fifo
#   vrrp_notify_fifo_script "/usr/local/lib/stickmesh/stickmesh-notify.sh STATE_FILE"
# keepalived starts this once, appends the FIFO's path to the arguments and writes one line per
# transition to the FIFO: INSTANCE "stickmesh" MASTER|BACKUP|FAULT|STOP PRIORITY.
# STATE_FILE gets one line "STATE PRIORITY UNIX_TIME" (replaced atomically) per transition, for
# monitoring and for scripts that must know whether this node holds the VIP; the transition also
# goes to syslog. Lines are handled one at a time in FIFO order, so the file always ends with the
# latest state. The reader ends when keepalived closes the FIFO (it exits) or stops it.
# Nothing here is needed for the failover itself: stickmesh listens on all addresses and its
# peers mesh already holds the tables, so the new master serves as soon as the VIP arrives.
set -u
state_file=$1
fifo=$2
mkdir -p "$(dirname "$state_file")"
exec 3<"$fifo"
while read -r type name state priority <&3; do
  [ "$type" = INSTANCE ] || continue
  printf '%s %s %s\n' "$state" "$priority" "$(date +%s.%N)" >"$state_file.tmp" && mv -f "$state_file.tmp" "$state_file"
  if command -v logger >/dev/null 2>&1; then
    logger -t stickmesh-vrrp "instance $name entered $state (priority $priority)" || true
  fi
done
exit 0
