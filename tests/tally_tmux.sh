#!/usr/bin/env bash
# tests/tally_tmux.sh - the real tally console in a real terminal.
#
# usage: tests/tally_tmux.sh PATH/TO/tally ASSETS_DIR
#
# Starts `tally --demo` on a free port with a temporary database in a
# detached tmux session (120x30), and checks through `tmux capture-pane`
# that the console shows the demo campaigns, that totals move, that p + y
# pauses the selected campaign (and the HTTP API agrees), that r + y
# resumes it, and that q quits with exit status 0. Every wait is bounded;
# the tmux server and the temporary folder go away on every path.
set -u

bin=${1:-}
assets=${2:-assets}
if [ -z "$bin" ] || [ ! -x "$bin" ]; then
	echo "usage: $0 PATH/TO/tally ASSETS_DIR" >&2
	exit 2
fi
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac
case $assets in /*) ;; *) assets=$PWD/$assets ;; esac

sock="tally-console-test-$$"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tally-console.XXXXXX") || exit 1
step=setup
T() { tmux -L "$sock" -f /dev/null "$@"; }
cleanup() {
	T kill-server >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "tally_tmux: FAIL ($step): $*" >&2
	[ -s "$tmp/screen" ] && { echo "---- screen ----" >&2; cat "$tmp/screen" >&2; }
	[ -s "$tmp/log" ] && { echo "---- log (tail) ----" >&2; tail -n 20 "$tmp/log" >&2; }
	exit 1
}

capture() { T capture-pane -p -t console >"$tmp/screen" 2>/dev/null; }

# wait_for REGEX [SECONDS]: until the screen matches.
wait_for() {
	local deadline=$((SECONDS + ${2:-8}))
	while [ $SECONDS -lt $deadline ]; do
		capture || fail "the console is gone"
		grep -Eq -- "$1" "$tmp/screen" && return 0
		sleep 0.1
	done
	fail "screen never matched /$1/"
}

# http_get PATH: body of GET on the server's port, through bash's /dev/tcp.
http_get() {
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' "$1" >&3
	timeout 5 cat <&3
	exec 3<&-
}

step="start"
T new-session -d -s console -x 120 -y 30 \
	"cd '$tmp' && TALLY_ADMIN_TOKEN=t '$bin' --demo --listen 127.0.0.1:0 --db '$tmp/t.db' \
	 --assets '$assets' --log '$tmp/log'; echo \"exit=\$?\" >'$tmp/exit'; sleep 30" ||
	fail "tmux could not start"
wait_for "Riverside Food Bank" 10
port=$(grep -o '"event":"ready"[^}]*"port":[0-9]*' "$tmp/log" | grep -o '[0-9]*$' | head -n 1)
[ -n "$port" ] || fail "no port in the log"

step="totals move"
wait_for '\$[0-9,]+\.[0-9]{2}' 5
first=$(grep -Eo '\$[0-9,]+\.[0-9]{2}' "$tmp/screen" | tr '\n' ' ')
moved=0
for _ in $(seq 1 50); do
	sleep 0.2
	capture || fail "the console is gone"
	now=$(grep -Eo '\$[0-9,]+\.[0-9]{2}' "$tmp/screen" | tr '\n' ' ')
	if [ "$now" != "$first" ]; then moved=1; break; fi
done
[ $moved = 1 ] || fail "totals did not change in 10 s"

step="pause"
T send-keys -t console g
T send-keys -t console p
wait_for "[Pp]ause .*\?|y/n" 5
T send-keys -t console y
wait_for "paused" 5
slug=$(http_get /api/v1/campaigns | grep -o '"slug":"[a-z-]*"[^}]*"status":"paused"' | head -n 1)
[ -n "$slug" ] || fail "the API shows no paused campaign"

step="resume"
T send-keys -t console r
wait_for "[Rr]esume .*\?|y/n" 5
T send-keys -t console y
deadline=$((SECONDS + 5))
while http_get /api/v1/campaigns | grep -q '"status":"paused"'; do
	[ $SECONDS -lt $deadline ] || fail "the campaign stayed paused"
	sleep 0.1
done

step="quit"
T send-keys -t console q
deadline=$((SECONDS + 8))
while [ ! -s "$tmp/exit" ]; do
	[ $SECONDS -lt $deadline ] || fail "tally did not exit after q"
	sleep 0.1
done
grep -q '^exit=0$' "$tmp/exit" || fail "tally exited with $(cat "$tmp/exit")"
echo "tally_tmux: ok"
