#!/usr/bin/env bash
# tests/tui_tmux.sh - drive the console through a real terminal.
#
# usage: tests/tui_tmux.sh PATH/TO/console_demo
#
# Runs the demo (tests/console_demo.c, built by the caller) in a detached tmux
# session of 120x30 on a private tmux server, reads the screen with
# `tmux capture-pane -p` and checks: campaign names, money and the header
# render; totals change between captures; p+y pauses the selected campaign,
# p+n cancels, r+y resumes, pausing a closed campaign shows the error; the
# / filter narrows the list and Esc clears it; o on a campaign's detail asks
# an offline gift's amount (a bad one cancels), method, name and note, then
# y records it; ? and Tab show help and Esc
# goes back; t shows the queues view: queue counts (done rising), dead jobs
# with their errors (an escape sequence in one shown as "?"), p+y pauses the
# selected queue and r+y resumes it, R retries a dead job (and the next one
# slides under the cursor), D+y discards one, A+y retries all of a queue,
# the source's own error text shows when an action fails; t on to the
# events view and the shield view: the state, the campaign up and the one
# declining, the blocked address and card and the watched email, the
# counts, the header's alert; S+n keeps it, S+y lowers it (offenders
# forgotten, the alert gone), S raises it (the header says so), S+y lowers
# it again; resizing
# relayouts, down to "terminal too small" and back; q quits and the demo
# exits 0 with nothing on stderr (so a sanitizer build fails the test on any
# report); a second run, with 60 more dead jobs, scrolls the dead list to its
# end, shows a dead job's attempts table and the shield view whole at
# 80x24 and ends on SIGTERM
# through the stop flag. Every wait is bounded (5 s,
# or $TUI_TMUX_TIMEOUT seconds for a slow machine); the tmux server and
# temporary files go away on every exit path.
set -u

demo=${1:-}
if [ -z "$demo" ] || [ ! -x "$demo" ]; then
	echo "usage: $0 PATH/TO/console_demo (an executable)" >&2
	exit 2
fi
if ! command -v tmux >/dev/null 2>&1; then
	echo "tui_tmux: FAIL: tmux is not installed" >&2
	exit 1
fi
case $demo in /*) ;; *) demo=$PWD/$demo ;; esac

timeout_s=${TUI_TMUX_TIMEOUT:-5}
case $timeout_s in '' | *[!0-9]* | 0) echo "TUI_TMUX_TIMEOUT must be whole seconds" >&2; exit 2 ;; esac
polls=$((timeout_s * 10)) # waits poll every 0.1 s

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tally-tui.XXXXXX") || exit 1
sock="$tmp/tmux.sock" # a private server, removed with $tmp
session=console
step="setup"

T() { tmux -S "$sock" -f /dev/null "$@"; }

cleanup() {
	T kill-server >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'echo "tui_tmux: interrupted during: $step" >&2; exit 1' INT TERM HUP

fail() {
	echo "tui_tmux: FAIL ($step): $*" >&2
	if [ -s "$tmp/screen" ]; then
		echo "---- last screen ----" >&2
		cat "$tmp/screen" >&2
		echo "---------------------" >&2
	fi
	if [ -s "$tmp/stderr" ]; then
		echo "---- demo stderr ----" >&2
		cat "$tmp/stderr" >&2
	fi
	exit 1
}

alive() { T has-session -t "$session" >/dev/null 2>&1; }

# Capture the pane into $tmp/screen; fails when the session is gone.
cap() {
	T capture-pane -p -t "$session" >"$tmp/screen.new" 2>/dev/null || return 1
	mv "$tmp/screen.new" "$tmp/screen"
}

# wait_for ERE [DESCRIPTION]: until the screen matches, at most $timeout_s s.
wait_for() {
	local _
	for _ in $(seq "$polls"); do
		if cap && grep -Eq -- "$1" "$tmp/screen"; then
			return 0
		fi
		alive || fail "the demo exited while waiting for ${2:-/$1/}"
		sleep 0.1
	done
	fail "timed out after ${timeout_s}s waiting for ${2:-/$1/}"
}

# wait_gone ERE [DESCRIPTION]: until the screen no longer matches.
wait_gone() {
	local _
	for _ in $(seq "$polls"); do
		if cap && ! grep -Eq -- "$1" "$tmp/screen"; then
			return 0
		fi
		alive || fail "the demo exited while waiting for ${2:-/$1/} to go"
		sleep 0.1
	done
	fail "timed out after ${timeout_s}s waiting for ${2:-/$1/} to disappear"
}

keys() { T send-keys -t "$session" "$@" || fail "send-keys $*"; }

# The line of the table that shows campaign SLUG.
row_of() { grep -F -- "($1)" "$tmp/screen" | head -n 1; }

# The line of the queue table that shows queue NAME, and its Done column.
queue_row() { grep -E -- "^ $1 " "$tmp/screen" | head -n 1; }
done_of() { queue_row "$1" | awk '{ print $7 }' | tr -d ,; }

money_re='\$[0-9]{1,3}(,[0-9]{3})*\.[0-9]{2}'
any_money_re='(\$|€|£|[A-Z]{3} )-?[0-9]{1,3}(,[0-9]{3})*(\.[0-9]+)?'

# start_demo [ARGS...]: the demo in session $session, 120x30, UTF-8 locale.
# Its pid goes to $tmp/pid, its stderr to $tmp/stderr, its exit status to
# $tmp/rc.
start_demo() {
	local cmd wrapped size args
	rm -f "$tmp/pid" "$tmp/rc" "$tmp/stderr" "$tmp/screen"
	printf -v args ' %q' "$@"
	printf -v cmd 'echo $$ >%q; exec %q%s 2>%q' "$tmp/pid" "$demo" "$args" "$tmp/stderr"
	printf -v wrapped 'LC_ALL=C.UTF-8 LANG=C.UTF-8 sh -c %q; echo $? >%q' "$cmd" "$tmp/rc"
	T new-session -d -s "$session" -x 120 -y 30 "$wrapped" || fail "cannot start tmux"
	size=$(T display-message -p -t "$session" '#{window_width}x#{window_height}')
	[ "$size" = "120x30" ] || fail "window is $size, expected 120x30"
}

# wait_exit: until the session has ended, then expect status 0 and a silent
# stderr (sanitizer reports land there).
wait_exit() {
	local rc
	for _ in $(seq "$polls"); do
		alive || break
		sleep 0.1
	done
	alive && fail "the demo still runs after ${timeout_s}s"
	for _ in $(seq "$polls"); do
		[ -s "$tmp/rc" ] && break
		sleep 0.1
	done
	rc=$(cat "$tmp/rc" 2>/dev/null)
	[ "$rc" = "0" ] || fail "the demo exited with status '${rc:-unknown}', expected 0"
	if [ -s "$tmp/stderr" ]; then
		fail "the demo wrote to stderr"
	fi
}

# ---- start ----------------------------------------------------------------
step="start"
start_demo

# ---- first screen -----------------------------------------------------------
step="first screen"
wait_for 'Spring Gala 2025' "the campaign name Spring Gala 2025"
wait_for 'Library Renovation Fund' "the campaign name Library Renovation Fund"
wait_for 'connected' "the connection state in the header"
grep -Eq -- "$money_re" "$tmp/screen" || fail "no dollar total like \$12,345.67"
grep -Fq -- '€' "$tmp/screen" || fail "no euro total"
grep -Fq -- '£' "$tmp/screen" || fail "no pound total"
grep -Eq -- 'CAD [0-9,]+\.[0-9]{2}' "$tmp/screen" || fail "no CAD total"
grep -Fq -- 'Café Crème Scholarship' "$tmp/screen" || fail "UTF-8 name not shown intact"
grep -Fq -- '東京 Relief Fund' "$tmp/screen" || fail "wide-character name not shown intact"
grep -Eq -- 'Campaign +Status +Total' "$tmp/screen" || fail "no table header"
grep -Eq -- 'q/F10 Quit' "$tmp/screen" || fail "no key bar"
step="header"
# the day's total in the currency most campaigns use, the others counted
grep -Eq -- '^ day \$[0-9,]+\.[0-9]{2} \(\+[0-9]+ campaigns in other currencies\)' "$tmp/screen" ||
	fail "no day total on the header's second row"
grep -Eq -- 'gifts/s [0-9.]+ [▁▂▃▄▅▆▇█]+' "$tmp/screen" || fail "no gifts/s sparkline"
grep -Fq -- 'processor failing: 2 captures retrying' "$tmp/screen" ||
	fail "the header does not say captures are retrying"
grep -Eq -- 'backlog [0-9,]+' "$tmp/screen" || fail "no queue backlog in the header"

# ---- totals move ---------------------------------------------------------------
step="totals change"
first=$(row_of library-fund | grep -Eo -- "$money_re")
[ -n "$first" ] || fail "no total on the library-fund row"
changed=""
for _ in $(seq "$polls"); do
	sleep 0.1
	cap || fail "capture failed"
	now=$(row_of library-fund | grep -Eo -- "$money_re")
	if [ -n "$now" ] && [ "$now" != "$first" ]; then
		changed=$now
		break
	fi
done
[ -n "$changed" ] || fail "library-fund total stayed at $first for ${timeout_s}s"

# ---- pause / resume the selected campaign ------------------------------------------
step="pause cancelled"
keys g
keys p
wait_for 'Pause [a-z0-9-]+ \(.*\)\? y/n' "the pause confirmation prompt"
keys n
wait_for 'cancelled' "cancelled after n"

step="pause"
keys p
wait_for 'Pause [a-z0-9-]+ \(.*\)\? y/n' "the pause confirmation prompt"
slug=$(sed -nE 's/.*Pause ([a-z0-9-]+) \(.*/\1/p' "$tmp/screen" | head -n 1)
[ -n "$slug" ] || fail "cannot read the slug from the prompt"
keys y
wait_for "paused $slug" "the message 'paused $slug'"
row=$(row_of "$slug")
case $row in *paused*) ;; *) fail "row of $slug does not say paused: $row" ;; esac
# a paused campaign's total stands still over a few ticks
t1=$(row_of "$slug" | grep -Eo -- "$any_money_re" | head -n 1)
sleep 0.8
cap || fail "capture failed"
t2=$(row_of "$slug" | grep -Eo -- "$any_money_re" | head -n 1)
if [ -z "$t1" ] || [ "$t1" != "$t2" ]; then
	fail "paused $slug total moved: '$t1' -> '$t2'"
fi

step="resume"
keys r
wait_for "Resume $slug \(" "the resume confirmation prompt"
keys y
wait_for "resumed $slug" "the message 'resumed $slug'"
row=$(row_of "$slug")
case $row in *active*) ;; *) fail "row of $slug does not say active: $row" ;; esac

# ---- filter ----------------------------------------------------------------------------
step="filter"
keys /
wait_for '^Filter:' "the filter prompt"
keys -l 'old'
wait_gone 'Spring Gala 2025' "Spring Gala filtered out"
wait_for 'Old Campaign 2019' "the filtered campaign"
keys Enter
wait_for 'filter "old": 1 of' "the filter status line"

step="error from set_paused"
keys p
wait_for 'Pause old-campaign \(' "the pause prompt for the closed campaign"
keys y
wait_for 'pause old-campaign failed: ' "the error from set_paused"

step="filter cleared"
keys Escape
wait_for 'Spring Gala 2025' "the full list after Esc"

step="campaign detail shows the category"
keys g Enter
wait_for 'Category: Arts & Letters' "the category in the campaign's detail"
keys Escape
wait_for 'Campaign +Status +Total' "the campaigns view after Esc"

# ---- an offline gift from a campaign's detail ---------------------------------------
step="offline gift"
keys /
wait_for '^Filter:' "the filter prompt"
keys -l 'tokyo'
wait_gone 'Spring Gala 2025' "Spring Gala filtered out"
keys Enter
wait_for 'filter "tokyo": 1 of' "the filter status line"
keys Enter
wait_for 'Relief Fund \(tokyo-relief\)' "the campaign's detail"
grep -Eq -- 'o Offline' "$tmp/screen" || fail "the detail's key bar misses o Offline"
keys o
wait_for 'Offline gift to tokyo-relief: amount in JPY:' "the amount prompt"
keys -l '12.5'
keys Enter
wait_for "offline gift cancelled: '12.5' is not an amount of JPY" "a yen amount with decimals refused"
keys o
wait_for 'amount in JPY:' "the amount prompt again"
keys -l '5000'
keys Enter
wait_for 'Method: cheque, cash, daf or other' "the method prompt"
keys -l 'cash'
keys Enter
wait_for "Donor's name:" "the name prompt"
keys -l 'Ada'
keys Enter
wait_for 'Note for staff' "the note prompt"
keys -l 'bake sale'
keys Enter
wait_for 'Record .*5,000 by cash from Ada to tokyo-relief, note: bake sale\? y/n' "the offline gift's confirmation"
keys y
wait_for 'recorded dn_9001: .*5,000 cash from Ada' "the offline gift recorded"
keys Escape
wait_for 'filter "tokyo"' "the list after Esc"
keys Escape
wait_for 'Spring Gala 2025' "the full list after Esc"

# ---- help ------------------------------------------------------------------------------
step="help"
keys '?'
wait_for 'tally console - keys' "the help screen"
grep -Fq -- 'pause the selected campaign' "$tmp/screen" || fail "help misses the pause key"
grep -Fq -- 'Esc Back' "$tmp/screen" || fail "help's key bar misses Esc Back"
keys Escape
wait_for 'Campaign +Status +Total' "the campaigns view after Esc"
keys Tab
wait_for 'tally console - keys' "the help screen after Tab"
keys Tab
wait_for 'Campaign +Status +Total' "the campaigns view after a second Tab"

# ---- queues view ---------------------------------------------------------------------
step="queues view"
keys t
wait_for 'Queue +State +Ready +Running +Retrying +Dead +Done +Failed +Done/s +p50 +p99' \
	"the queue table"
wait_for 'Dead job +Queue +Kind +Gift +Tries +Last error' "the dead-job list"
grep -Eq -- '^ payments +active +[0-9]+ +1 +2 +3 ' "$tmp/screen" || fail "no payments row"
grep -Eq -- '^ +101 +payments +capture +dn_41 +8 +processing_error: simulated' "$tmp/screen" ||
	fail "no dead job 101 with its error"
grep -Fq -- 'hook said bad?]0;pwned? reply' "$tmp/screen" ||
	fail "the escape sequence in an error was not shown as ?"
grep -Fq -- 'point de terminaison: réponse 410' "$tmp/screen" || fail "UTF-8 error not intact"
grep -Fq -- '6 dead jobs' "$tmp/screen" || fail "the header does not count the dead jobs"
grep -Fq -- 't Events' "$tmp/screen" || fail "no queues key bar"
grep -Eq -- '120 ms +1\.25 s' "$tmp/screen" || fail "latencies not shown"

step="queue done counts rise"
d1=$(done_of payments)
[ -n "$d1" ] || fail "no done count on the payments row"
rose=""
for _ in $(seq "$polls"); do
	sleep 0.1
	cap || fail "capture failed"
	d2=$(done_of payments)
	if [ -n "$d2" ] && [ "$d2" -gt "$d1" ]; then
		rose=1
		break
	fi
done
[ -n "$rose" ] || fail "payments done stayed at $d1"

step="queue pause"
keys g p
wait_for 'Pause queue payments\? y/n' "the queue pause prompt"
keys n
wait_for 'cancelled' "cancelled after n"
keys p
wait_for 'Pause queue payments\? y/n' "the queue pause prompt"
keys y
wait_for 'paused queue payments' "the message 'paused queue payments'"
queue_row payments | grep -q paused || fail "payments row does not say paused"
grep -Fq -- 'payments paused' "$tmp/screen" || fail "the header does not name the paused queue"
d1=$(done_of payments)
sleep 0.8
cap || fail "capture failed"
[ "$(done_of payments)" = "$d1" ] || fail "paused payments queue kept finishing jobs"
keys p
wait_for 'queue payments is already paused' "the already-paused warning"

step="retry dead jobs"
keys j j j
keys R
wait_for 'retried job 101 \(payments capture dn_41\)' "the message 'retried job 101'"
wait_gone '^ +101 +payments' "job 101 in the dead list"
keys R # the next job slid under the cursor
wait_for 'retried job 102 ' "the message 'retried job 102'"
keys R
wait_for 'retry job 103 failed: an attempt of this job is in flight \(demo\)' \
	"the source's own error text"

step="discard"
keys D
wait_for 'Discard job 103 \(payments capture dn_58\), failing its gift\? y/n' "the discard prompt"
keys y
wait_for 'discard job 103 failed: an attempt' "the error of the refused discard"
keys j D
wait_for 'Discard job 205 \(receipts receipt dn_12\)\? y/n' "the discard prompt for 205"
keys n
wait_for 'cancelled' "cancelled after n"
grep -Eq -- '^ +205 +receipts' "$tmp/screen" || fail "job 205 went after n"
keys Delete
wait_for 'Discard job 205 ' "the discard prompt after Delete"
keys y
wait_for 'discarded job 205' "the message 'discarded job 205'"
wait_gone '^ +205 +receipts' "job 205 in the dead list"

step="retry all dead jobs of a queue"
keys A # the cursor is on job 306 now, of webhooks
wait_for 'Retry all 2 dead jobs of webhooks\? y/n' "the retry-all prompt"
keys y
wait_for 'dead jobs of webhooks are ready again' "the retry-all message"
wait_gone '^ +30[67] +webhooks' "the webhooks dead jobs"
grep -Fq -- '1 dead job ' "$tmp/screen" || fail "the header does not say 1 dead job"
keys g R
wait_for 'select a dead job \(Down/j\) to retry it' "the hint on a queue row"

step="queue resume"
keys r
wait_for 'Resume queue payments\? y/n' "the queue resume prompt"
keys y
wait_for 'resumed queue payments' "the message 'resumed queue payments'"
queue_row payments | grep -q active || fail "payments row does not say active"

step="queues help and back"
keys '?'
wait_for 'tally console - keys' "the help screen"
# page_to ERE DESCRIPTION: PgDn through the help (at most 8 pages) until
# the screen matches
page_to() {
	local _
	for _ in $(seq 8); do
		cap && grep -Eq -- "$1" "$tmp/screen" && return 0
		keys NPage
		sleep 0.2
	done
	wait_for "$1" "$2"
}
page_to 'retry all dead jobs of the queue' "help lists the queue keys"
page_to 'Events view' "help lists the events keys"
page_to 'Shield view' "help lists the shield keys"
page_to 'raise the shield on every campaign' "help lists S"
page_to 'Job view \(Enter on a dead job\)' "help lists the job view's keys"
page_to 'refund this job.s gift' "help lists the refund key"
keys Escape
wait_for 'Queue +State +Ready' "the queues view after Esc"
keys Tab
wait_for '^Esc Back' "the help screen after Tab"
keys Tab
wait_for 'Queue +State +Ready' "the queues view after a second Tab"
keys t
wait_for 'Time +Kind +Who +What' "the events view after t"
wait_for 'no events yet' "the empty events view"

step="shield view"
keys t
wait_for 'Shield UP on 1 campaign +declines/min 64 +attempts/min 140 +trips 1' "the shield view after t"
grep -Eq -- 'connected  shield up: animal-rescue  ' "$tmp/screen" || fail "no shield alert in the header"
grep -Eq -- '^ Campaign +Shield +Since +Down in +Declines/min +Attempts/min' "$tmp/screen" ||
	fail "no campaign table"
grep -Eq -- '^ animal-rescue +up +[0-9]{2}:[0-9]{2}:[0-9]{2} +0:0[0-9]:[0-9]{2} +61 +70' "$tmp/screen" ||
	fail "animal-rescue is not up, with since, down in and its rates"
grep -Eq -- '^ spring-gala +- +- +- +3 +70' "$tmp/screen" || fail "no spring-gala row, declining, not up"
grep -Eq -- '^ address +203\.0\.113\.7 +blocked +58 +60 +0:1[0-9]:[0-9]{2} +58 declines of 60 attempts' \
	"$tmp/screen" || fail "no blocked address with its counts, time left and why"
grep -Eq -- '^ card +fp_9Xk2mQ +blocked +3 +3 ' "$tmp/screen" || fail "no blocked card"
grep -Eq -- '^ email +carder@example\.net +watched +2 +0 +- +-' "$tmp/screen" || fail "no watched email"
grep -Eq -- 'blocked since start: 1 address, 0 emails, 1 card' "$tmp/screen" || fail "no block counts"
grep -Eq -- 'refused: 37 blocked, 5 below the least gift, 0 CAPTCHA, 3 captures' "$tmp/screen" ||
	fail "no refusal counts"
grep -Eq -- '^S Raise/lower  t Campaigns ' "$tmp/screen" || fail "no shield key bar"
keys S
wait_for 'Lower the shield up on 1 campaign\? Every block is forgotten\. y/n' "the lower prompt"
keys n
wait_for 'cancelled' "the lower cancelled"
grep -Fq -- 'Shield UP' "$tmp/screen" || fail "n lowered the shield"
keys S
wait_for 'y/n' "the lower prompt again"
keys y
wait_for 'lowered the shield: every campaign.s is down, blocks forgotten' "the lower's message"
wait_for 'Shield down +declines/min 0' "the shield down"
wait_for 'no offender: nobody declined in the window' "the offenders forgotten"
grep -Fq -- 'shield up' "$tmp/screen" && fail "the header still says the shield is up"
keys S
wait_for 'raised the shield on every campaign until lowered' "the raise's message"
wait_for 'Shield RAISED by staff on every campaign' "the shield raised"
wait_for 'connected  shield raised  ' "the header's alert for a raised shield"
wait_for '^ animal-rescue +up +[0-9:]+ +when lowered' "a raised campaign up until lowered"
keys S
wait_for 'Lower the shield raised by staff\? .* y/n' "the lower prompt of a raised shield"
keys y
wait_for 'Shield down' "the shield down again"
wait_gone 'shield raised' "the header's alert"
keys t
wait_for 'Campaign +Status +Total' "the campaigns view after t"

# ---- resize ----------------------------------------------------------------------------
step="resize 80x24"
T resize-window -t "$session" -x 80 -y 24 || fail "resize-window failed"
wait_for 'Spring Gala' "names after resizing to 80x24"
wait_for 'q/F10 Quit' "the key bar after resizing to 80x24"
lines=$(wc -l <"$tmp/screen")
[ "$lines" -le 24 ] || fail "capture has $lines lines after resizing to 24"
widest=$(LC_ALL=C.UTF-8 wc -L <"$tmp/screen")
[ "$widest" -le 80 ] || fail "a line is $widest columns wide after resizing to 80"

step="resize too small"
T resize-window -t "$session" -x 30 -y 8 || fail "resize-window failed"
wait_for 'terminal too small' "the too-small message at 30x8"

step="resize back"
T resize-window -t "$session" -x 120 -y 30 || fail "resize-window failed"
wait_for 'Library Renovation Fund' "the full table again at 120x30"
wait_gone 'terminal too small' "the too-small message"

# ---- quit ------------------------------------------------------------------------------
step="quit"
keys q
wait_exit

# ---- the stop flag: SIGTERM makes console_run return 0 -----------------------------
step="a long dead list scrolls"
start_demo 0 60
wait_for 'Spring Gala 2025' "the first screen of the second run"
grep -Fq -- '66 dead jobs' "$tmp/screen" || fail "the header does not count 66 dead jobs"
keys t G
wait_for '66 dead jobs, showing 31-50 of 50 listed' "the end of the dead list"
grep -Eq -- '^ +307 +webhooks' "$tmp/screen" || fail "the last dead job is not shown"
keys PPage
wait_for 'showing 30-49 of 50 listed' "one page up (the selection 20 rows up)"

step="a dead job's attempts at 80x24"
T resize-window -t "$session" -x 80 -y 24 || fail "resize-window failed"
keys G Enter
wait_for 'Job 307 +dead: waits for staff' "the detail of job 307"
wait_for 'Attempts +12 \(the last 10 below\)' "its attempts, the last 10 listed"
grep -Eq -- '^ Last error +point de terminaison: réponse 410' "$tmp/screen" ||
	fail "no last error in the detail"
grep -Eq -- '^ Attempt +When +Took +Error' "$tmp/screen" || fail "no attempts table"
grep -Eq -- '^ +3 +[0-9]{2}:[0-9]{2}:[0-9]{2} +40\.0 ms +point de terminaison: réponse 410' \
	"$tmp/screen" || fail "no row of attempt 3, the oldest kept"
grep -Eq -- '^ +4 +[0-9]{2}:[0-9]{2}:[0-9]{2} +55\.0 ms +connect timeout after 10000 ms' \
	"$tmp/screen" || fail "no row of attempt 4"
grep -Eq -- '^ +12 +[0-9]{2}:[0-9]{2}:[0-9]{2} +175 ms +point de terminaison: réponse 410' \
	"$tmp/screen" || fail "no row of attempt 12, the newest (last)"
lines=$(wc -l <"$tmp/screen")
[ "$lines" -le 24 ] || fail "the job detail takes $lines lines at 80x24"
widest=$(LC_ALL=C.UTF-8 wc -L <"$tmp/screen")
[ "$widest" -le 80 ] || fail "a line of the job detail is $widest columns wide at 80x24"
grep -Fq -- 'Esc Back' "$tmp/screen" || fail "no key bar under the job detail"
keys Escape
wait_for 'Dead job +Queue' "the queues view after Esc"

step="the shield view at 80x24"
keys t t
wait_for '^ address +203\.0\.113\.7 +blocked' "the shield view"
lines=$(wc -l <"$tmp/screen")
[ "$lines" -le 24 ] || fail "the shield view takes $lines lines at 80x24"
widest=$(LC_ALL=C.UTF-8 wc -L <"$tmp/screen")
[ "$widest" -le 80 ] || fail "a line of the shield view is $widest columns wide at 80x24"
grep -Eq -- '^ animal-rescue +up ' "$tmp/screen" || fail "no campaign up at 80x24"

step="stop flag"
pid=$(cat "$tmp/pid" 2>/dev/null)
[ -n "$pid" ] || fail "no pid file"
kill -TERM "$pid" || fail "cannot signal the demo ($pid)"
wait_exit

echo "tui_tmux: PASS"
