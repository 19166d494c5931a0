#!/bin/sh
# keepalived notify reader: records every VRRP transition of the stickmesh instance, in order.
#   vrrp_notify_fifo /run/stickmesh/vrrp-notify.fifo
#   vrrp_notify_fifo_script "/usr/local/lib/stickmesh/stickmesh-notify.sh STATE_FILE"
# keepalived starts this once, appends the FIFO's path to the arguments and writes one line per
# event to the FIFO: INSTANCE "stickmesh" EVENT PRIORITY.
# STATE_FILE gets one line "STATE PRIORITY UNIX_TIME" (replaced atomically) per state change
# (EVENT MASTER, BACKUP, FAULT or STOP), for monitoring and for scripts that must know whether this
# node holds the VIP. Other events (MASTER_RX_LOWER_PRI when a master hears a lower-priority
# master, MASTER_PRIORITY / BACKUP_PRIORITY with notify_priority_changes) leave the state as it
# is. Every INSTANCE line also goes to syslog. Lines are handled one at a time in FIFO order, so
# the file always ends with the latest state.
# The reader ends at EOF (keepalived exited, or closed the FIFO on a reload) or once it has
# recorded STOP, which keepalived writes only while shutting down. Once the FIFO is open, SIGTERM
# is ignored: keepalived sends it to its scripts before it writes STOP, and closes the FIFO only
# after they have exited, so a reader that died on SIGTERM would leave the state before the stop
# in the file. It cannot outlive keepalived: keepalived holds the only write end, so its exit
# (even on SIGKILL) is EOF here, and it kills a script still running 1 s into its shutdown. Until
# the FIFO is open SIGTERM ends the reader (keepalived's parent-death signal, should it die
# before opening the FIFO).
# Nothing here is needed for the failover itself: stickmesh listens on all addresses and its
# peers mesh already holds the tables, so the new master serves as soon as the VIP arrives.
set -u
state_file=$1
fifo=$2
# Per reader: after a reload the old reader may still drain its FIFO while the new one starts.
tmp=$state_file.$$
mkdir -p "$(dirname "$state_file")"
exec 3<"$fifo"
trap '' TERM
while read -r type name event priority <&3; do
  [ "$type" = INSTANCE ] || continue
  case $event in
    MASTER | BACKUP | FAULT | STOP)
      printf '%s %s %s\n' "$event" "$priority" "$(date +%s.%N)" >"$tmp" && mv -f "$tmp" "$state_file"
      ;;
  esac
  if command -v logger >/dev/null 2>&1; then
    logger -t stickmesh-vrrp "instance $name: $event (priority $priority)" || true
  fi
  [ "$event" = STOP ] && break
done
exit 0
