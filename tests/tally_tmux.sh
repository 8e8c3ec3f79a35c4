#!/usr/bin/env bash
# tests/tally_tmux.sh - the real tally console in a real terminal.
#
# usage: tests/tally_tmux.sh PATH/TO/tally ASSETS_DIR [remote|tls]
#
# With "remote", tally runs --headless outside tmux and the console is
# `tally console --connect` (the same steps, over the console feed and
# the admin API), then: a second remote console shows the same numbers
# and sees the first one's pause; a bad token is refused on screen; the
# server killed, the console says reconnecting and keeps its numbers;
# the server back on the same port, the console catches up by itself;
# then f + y on a dead receipt's detail refunds its paid gift (the admin
# API says the refund was asked, and the gift ends refunded or its
# refund job dead).
#
# With "tls", the headless tally serves a self-signed certificate made
# here (openssl req -x509): `tally console --connect https://... --ca-file`
# shows the campaigns and "connected" and pauses a campaign by keys (the
# admin API over HTTPS agrees); without --ca-file the console says the
# certificate is not trusted; http:// to the TLS port is refused (400).
#
# Starts `tally --demo` on a free port with a temporary database in a
# detached tmux session (120x30), with a flaky mock processor and one
# attempt per capture so that dead jobs come quickly, and checks through
# `tmux capture-pane` that the console shows the demo campaigns, that
# totals move, that p + y pauses the selected campaign (the HTTP API
# agrees, and answers a gift to it 409 campaign_paused), that r + y
# resumes it; then in the queues view (t) that the
# payments done count rises, that a dead job's detail lists its attempt
# (when, how long, the mock's error), that p + y pauses the payments queue
# (the admin API says paused), that R retries a dead job (the API lists it
# ready, no longer dead), D + y discards one (its gift fails), A + y
# retries the rest, r + y resumes the queue (the API agrees); that declined
# cards from one address (behind 127.0.0.1 as a trusted proxy, with a
# shield that trips at three declines) show in the shield view as a
# blocked address and a campaign up, with the header's alert; that S + y
# lowers the shield (the admin API says down, nothing blocked, the address
# gives again), S raises it and S + y lowers it again, each audited under
# the console's actor; and that q quits with exit status 0. Every wait is bounded; the tmux server and the
# temporary folder go away on every path.
set -u

bin=${1:-}
assets=${2:-assets}
mode=${3:-local}
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
srv=
cleanup() {
	T kill-server >/dev/null 2>&1
	[ -n "$srv" ] && kill "$srv" 2>/dev/null && wait "$srv" 2>/dev/null
	# on a failure tally may still be closing its files after losing the
	# terminal: retry for a while
	for _ in $(seq 1 50); do
		rm -rf "$tmp" 2>/dev/null && break
		sleep 0.1
	done
}
trap cleanup EXIT

fail() {
	echo "tally_tmux: FAIL ($step): $*" >&2
	[ -s "$tmp/screen" ] && { echo "---- screen ----" >&2; cat "$tmp/screen" >&2; }
	[ -s "$tmp/log" ] && { echo "---- log (tail) ----" >&2; tail -n 20 "$tmp/log" >&2; }
	exit 1
}

win=console
capture() { T capture-pane -p -t "$win" >"$tmp/screen" 2>/dev/null; }

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

# http_get PATH [TOKEN]: the answer to GET on the server's port (with the
# bearer token when given), through bash's /dev/tcp.
http_get() {
	local auth=""
	[ -n "${2:-}" ] && auth="Authorization: Bearer $2"$'\r\n'
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'GET %s HTTP/1.1\r\nHost: x\r\n%sConnection: close\r\n\r\n' "$1" "$auth" >&3
	timeout 5 cat <&3
	exec 3<&-
}

# admin_get PATH: GET with the admin token (TALLY_ADMIN_TOKEN=t below).
admin_get() { http_get "$1" t; }

# http_post PATH JSON: the answer to a POST of JSON (ASCII) on the
# server's port, through bash's /dev/tcp.
http_post() {
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"$1" "${#2}" "$2" >&3
	timeout 5 cat <&3
	exec 3<&-
}

# http_post_from ADDRESS PATH JSON: the same, for a client at ADDRESS
# behind the trusted proxy (127.0.0.1 itself is exempt from the shield).
http_post_from() {
	exec 3<>"/dev/tcp/127.0.0.1/$port" || return 1
	printf 'POST %s HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' \
		"$2" "$1" "${#3}" "$3" >&3
	timeout 5 cat <&3
	exec 3<&-
}

# A row of a job detail's attempts table: number, HH:MM:SS, how long, the
# mock's error.
attempt_row='^ +[0-9]+ +[0-9]{2}:[0-9]{2}:[0-9]{2} +[0-9.]+ (ms|s) +processing_error: simulated transient failure'

# The payments row of the queue table, and its columns by the title row
# (Queue State Ready Running Retrying Dead Done ...).
payments_col() { grep -E '^ payments ' "$tmp/screen" | head -n 1 | awk -v n="$1" '{ print $n }' | tr -d ,; }

step="start"
# a shield that trips at three declines (an address's, a campaign's in a
# minute), for clients behind 127.0.0.1 as a proxy
server_args=(--demo --db "$tmp/t.db" --assets "$assets" --mock-fail-rate 0.3 --jobs payments:attempts=1
	--trusted-proxy 127.0.0.1/32 --shield address-declines=3,campaign-declines=3)
ready_port() { grep -o '"event":"ready"[^}]*"port":[0-9]*' "$tmp/log" | grep -o '[0-9]*$' | tail -n 1; }
readies() { cat "$tmp/log" 2>/dev/null | grep -c '"event":"ready"'; }
# start_server PORT: a headless tally in the background (remote mode)
start_server() {
	local deadline=$((SECONDS + 10)) n
	n=$(readies)
	TALLY_ADMIN_TOKEN=t "$bin" --headless --listen "127.0.0.1:$1" --log "$tmp/log" "${server_args[@]}" \
		>/dev/null 2>>"$tmp/server.err" &
	srv=$!
	until [ "$(readies)" -gt "$n" ]; do
		kill -0 "$srv" 2>/dev/null || fail "the server did not start: $(tail -n 3 "$tmp/server.err")"
		[ $SECONDS -lt $deadline ] || fail "the server did not get ready in 10 s"
		sleep 0.05
	done
}
# quit_console: q, then the console's exit status must be 0.
quit_console() {
	step="quit"
	T send-keys -t console q
	local deadline=$((SECONDS + 8))
	while [ ! -s "$tmp/exit" ]; do
		[ $SECONDS -lt $deadline ] || fail "tally did not exit after q"
		sleep 0.1
	done
	grep -q '^exit=0$' "$tmp/exit" || fail "tally exited with $(cat "$tmp/exit")"
}
if [ "$mode" = tls ]; then
	step="certificate"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
		-subj /CN=tally-test -addext "subjectAltName=IP:127.0.0.1,DNS:localhost" \
		-keyout "$tmp/key.pem" -out "$tmp/cert.pem" >/dev/null 2>&1 || fail "openssl req failed"
	chmod 600 "$tmp/key.pem" || fail "chmod"
	server_args+=(--tls-cert "$tmp/cert.pem" --tls-key "$tmp/key.pem")
	step="start"
	start_server 0
	port=$(ready_port)
	[ -n "$port" ] || fail "no port in the log"
	T new-session -d -s console -x 120 -y 30 \
		"cd '$tmp' && TALLY_ADMIN_TOKEN=t '$bin' console --connect https://127.0.0.1:$port \
		 --ca-file '$tmp/cert.pem'; echo \"exit=\$?\" >'$tmp/exit'; sleep 30" ||
		fail "tmux could not start"
	wait_for "Riverside Food Bank" 10
	wait_for "https://127.0.0.1:$port +connected" 5

	step="pause over https"
	T send-keys -t console g
	T send-keys -t console p
	wait_for "[Pp]ause .*\?|y/n" 5
	T send-keys -t console y
	wait_for "paused [a-z-]+" 5
	curl -sS --max-time 5 --cacert "$tmp/cert.pem" "https://127.0.0.1:$port/api/v1/campaigns" |
		grep -q '"status":"paused"' || fail "the API over HTTPS shows no paused campaign"

	step="not trusted without --ca-file"
	T new-window -d -n untrusted \
		"TALLY_ADMIN_TOKEN=t '$bin' console --connect https://127.0.0.1:$port; sleep 30" ||
		fail "no window for the console without --ca-file"
	win=untrusted
	wait_for "reconnecting \([0-9]+ s\): certificate not trusted: self-signed certificate \(use --ca-file\)" 10
	grep -q "Riverside Food Bank" "$tmp/screen" && fail "an untrusted server's campaigns are shown"
	T kill-window -t untrusted

	step="http:// to the TLS port"
	T new-window -d -n plain \
		"TALLY_ADMIN_TOKEN=t '$bin' console --connect http://127.0.0.1:$port; sleep 30" ||
		fail "no window for the http:// console"
	win=plain
	wait_for "reconnecting \([0-9]+ s\): refused \(400\)" 10
	T kill-window -t plain
	win=console

	quit_console
	echo "tally_tmux: ok"
	exit 0
fi
if [ "$mode" = remote ]; then
	start_server 0
	port=$(ready_port)
	[ -n "$port" ] || fail "no port in the log"
	T new-session -d -s console -x 120 -y 30 \
		"cd '$tmp' && TALLY_ADMIN_TOKEN=t '$bin' console --connect http://127.0.0.1:$port; \
		 echo \"exit=\$?\" >'$tmp/exit'; sleep 30" ||
		fail "tmux could not start"
	wait_for "Riverside Food Bank" 10
	wait_for "http://127.0.0.1:$port +connected" 5
else
	T new-session -d -s console -x 120 -y 30 \
		"cd '$tmp' && TALLY_ADMIN_TOKEN=t '$bin' --listen 127.0.0.1:0 --log '$tmp/log' ${server_args[*]@Q}; \
		 echo \"exit=\$?\" >'$tmp/exit'; sleep 30" ||
		fail "tmux could not start"
	wait_for "Riverside Food Bank" 10
	port=$(ready_port)
	[ -n "$port" ] || fail "no port in the log"
fi

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
slug=${slug#'"slug":"'}
slug=${slug%%'"'*}

step="a gift to the paused campaign"
answer=$(http_post "/api/v1/campaigns/$slug/donations" \
	'{"amount_cents":2500,"currency":"USD","donor":{"name":"Ada","email":"ada@example.org"},"payment_token":"tok_visa"}')
status=$(printf '%s\n' "$answer" | head -n 1 | tr -d '\r')
case $status in "HTTP/1.1 409 "*) ;; *) fail "a gift to paused $slug was answered '$status'" ;; esac
printf '%s' "$answer" | grep -q '"code":"campaign_paused"' || fail "the 409 is not campaign_paused: $answer"

step="resume"
T send-keys -t console r
wait_for "[Rr]esume .*\?|y/n" 5
T send-keys -t console y
deadline=$((SECONDS + 5))
while http_get /api/v1/campaigns | grep -q '"status":"paused"'; do
	[ $SECONDS -lt $deadline ] || fail "the campaign stayed paused"
	sleep 0.1
done

step="queues view"
T send-keys -t console t
wait_for 'Queue +State +Ready +Running +Retrying +Dead +Done +Failed' 5
wait_for 'Dead job +Queue +Kind +Gift +Tries +Last error' 5

step="payments done rises"
d1=$(payments_col 7)
[ -n "$d1" ] || fail "no done count on the payments row"
deadline=$((SECONDS + 10))
while :; do
	sleep 0.2
	capture || fail "the console is gone"
	d2=$(payments_col 7)
	[ -n "$d2" ] && [ "$d2" -gt "$d1" ] && break
	[ $SECONDS -lt $deadline ] || fail "payments done stayed at $d1 for 10 s"
done

step="dead jobs"
# one attempt at a 30% failure rate: dead captures come within seconds;
# three, for a retry, a discard and a retry of the rest
deadline=$((SECONDS + 15))
while :; do
	capture || fail "the console is gone"
	dead=$(payments_col 6)
	[ -n "$dead" ] && [ "$dead" -ge 3 ] && break
	[ $SECONDS -lt $deadline ] || fail "fewer than 3 dead payments jobs after 15 s"
	sleep 0.2
done
grep -Eq '^ +[0-9]+ +payments +capture +dn_[0-9]+ +1 +processing_error: simulated' "$tmp/screen" ||
	fail "no dead capture with its error in the list"

step="a dead job's attempts"
# one attempt each: its row in the detail's table, with when, how long and
# the mock's error
T send-keys -t console G Enter
wait_for 'Job [0-9]+ +dead: waits for staff' 5
wait_for 'Attempt +When +Took +Error' 5
wait_for "$attempt_row" 5
T send-keys -t console Escape
wait_for 'Dead job +Queue +Kind +Gift +Tries +Last error' 5

step="pause the payments queue"
T send-keys -t console g p
wait_for 'Pause queue payments\? y/n' 5
T send-keys -t console y
wait_for 'paused queue payments' 5
admin_get /api/v1/admin/queues | grep -q '"name":"payments","paused":true' ||
	fail "the admin API does not say payments is paused"
# captures in flight still finish, and may die: wait for them, so that the
# dead list holds still from here on
deadline=$((SECONDS + 5))
until admin_get /api/v1/admin/queues |
	grep -q '"name":"payments","paused":true,"ready":[0-9]*,"running":0,'; do
	[ $SECONDS -lt $deadline ] || fail "payments captures still running 5 s after the pause"
	sleep 0.1
done

step="retry a dead job"
# paused, the retried job waits in ready where the API can see it
T send-keys -t console G R
wait_for 'retried job [0-9]+ ' 5
job=$(sed -nE 's/.*retried job ([0-9]+) .*/\1/p' "$tmp/screen" | head -n 1)
[ -n "$job" ] || fail "no job id in the message"
admin_get '/api/v1/admin/jobs?queue=payments&state=dead&limit=1000' | grep -q "\"id\":$job," &&
	fail "job $job is still dead"
admin_get '/api/v1/admin/jobs?queue=payments&state=ready&limit=1000' | grep -q "\"id\":$job," ||
	fail "job $job is not ready"

step="discard a dead job"
T send-keys -t console G D
wait_for 'Discard job [0-9]+ \(payments capture dn_[0-9]+\), failing its gift\? y/n' 5
job=$(sed -nE 's/.*Discard job ([0-9]+) .*/\1/p' "$tmp/screen" | head -n 1)
gift=$(sed -nE 's/.*Discard job [0-9]+ \(payments capture (dn_[0-9]+)\).*/\1/p' "$tmp/screen" | head -n 1)
T send-keys -t console y
wait_for "discarded job $job" 5
admin_get '/api/v1/admin/jobs?queue=payments&state=dead&limit=1000' | grep -q "\"id\":$job," &&
	fail "discarded job $job is still dead"
admin_get "/api/v1/admin/donations/$gift" | grep -q '"status":"failed"' ||
	fail "the gift $gift of the discarded capture did not fail"

step="retry all dead jobs"
T send-keys -t console A
wait_for 'Retry all [0-9,]+ dead jobs? of payments\? y/n' 5
T send-keys -t console y
wait_for 'dead jobs of payments are ready again' 5
admin_get /api/v1/admin/queues | grep -q '"name":"payments","paused":true,"ready":[0-9]*,"running":[0-9]*,"scheduled":[0-9]*,"dead":0,' ||
	fail "the admin API still counts dead payments jobs"

step="resume the payments queue"
T send-keys -t console g r
wait_for 'Resume queue payments\? y/n' 5
T send-keys -t console y
wait_for 'resumed queue payments' 5
admin_get /api/v1/admin/queues | grep -q '"name":"payments","paused":false' ||
	fail "the admin API does not say payments runs again"
step="events view"
T send-keys -t console t
wait_for 'Time +Kind +Who +What' 5
# the queue's pause and resume are there, with who did them
wait_for 'staff +[^ ]+ +queue.resume payments' 5
wait_for 'staff +[^ ]+ +queue.pause payments' 5
wait_for 'decline|dead +- +job [0-9]+ \(payments capture' 5

step="a card tester"
# declined cards from one address to one campaign, each its own card and
# email, until the address is blocked (429) and the campaign's shield is up
tester=203.0.113.7
deadline=$((SECONDS + 15))
n=0
until admin_get /api/v1/admin/shield | grep -q '"state":"up"' &&
	admin_get /api/v1/admin/shield | grep -Eq "\"kind\":\"address\",\"key\":\"$tester\",[^}]*\"blocked\":true"; do
	[ $SECONDS -lt $deadline ] || fail "no blocked address and no campaign up after $n declined gifts: $(admin_get /api/v1/admin/shield | tail -n 1)"
	if [ -z "${blocked:-}" ]; then
		n=$((n + 1))
		answer=$(http_post_from "$tester" "/api/v1/campaigns/$slug/donations" \
			"{\"amount_cents\":2500,\"currency\":\"USD\",\"donor\":{\"name\":\"T\",\"email\":\"t$n@example.net\"},\"payment_token\":\"tok_card_t${n}_declined\"}")
		case $(printf '%s\n' "$answer" | head -n 1) in *" 429 "*) blocked=1 ;; esac
	fi
	sleep 0.1
done

step="the shield view"
T send-keys -t console t
wait_for 'Shield UP on 1 campaign +declines/min [1-9]' 5
wait_for "^ $slug +up +[0-9]{2}:[0-9]{2}:[0-9]{2} +0:[0-9]{2}:[0-9]{2} +[1-9][0-9]* +[1-9]" 5
wait_for "^ address +203\.0\.113\.7 +blocked +[1-9][0-9]* +[1-9][0-9]* +0:1[0-9]:[0-9]{2} +[0-9]+ declines of [0-9]+ attempts" 5
wait_for "connected  shield up: $slug" 5

step="the shield lowered by keys"
T send-keys -t console S
wait_for 'Lower the shield up on 1 campaign\? Every block is forgotten\. y/n' 5
T send-keys -t console y
wait_for 'lowered the shield' 5
admin_get /api/v1/admin/shield | grep -q '"state":"down"' || fail "the admin API does not say the shield is down"
admin_get /api/v1/admin/shield | grep -q '"blocked":true' && fail "the admin API still lists a blocked offender"
wait_for 'Shield down' 5
answer=$(http_post_from "$tester" "/api/v1/campaigns/$slug/donations" \
	'{"amount_cents":2500,"currency":"USD","donor":{"name":"T","email":"after@example.net"},"payment_token":"tok_visa"}')
case $(printf '%s\n' "$answer" | head -n 1) in *" 201 "* | *" 200 "* | *" 202 "*) ;;
*) fail "a gift from the unblocked address was answered '$(printf '%s\n' "$answer" | head -n 1)'" ;; esac

step="the shield raised by keys"
T send-keys -t console S
wait_for 'raised the shield on every campaign' 5
admin_get /api/v1/admin/shield | grep -q '"state":"raised"' || fail "the admin API does not say the shield is raised"
wait_for 'Shield RAISED by staff' 5
wait_for 'connected  shield raised' 5
T send-keys -t console S
wait_for 'Lower the shield raised by staff\? .*y/n' 5
T send-keys -t console y
wait_for 'Shield down' 5
admin_get /api/v1/admin/shield | grep -q '"state":"down"' || fail "the admin API does not say the shield is down again"
# audited, with who did it (in-process the console; remotely the token,
# "admin" at start, at the client's address)
audit=$(admin_get '/api/v1/admin/audit?limit=20')
[ "$mode" = remote ] && actor='admin@127\.0\.0\.1' || actor=console
printf '%s' "$audit" | grep -Eq "\"actor\":\"$actor\",\"action\":\"shield\.raise\"" ||
	fail "no shield.raise by $actor in the audit: $audit"
printf '%s' "$audit" | grep -Eq "\"actor\":\"$actor\",\"action\":\"shield\.lower\"" ||
	fail "no shield.lower by $actor in the audit: $audit"
T send-keys -t console t
wait_for 'Campaign +Status +Total' 5

if [ "$mode" = remote ]; then
	step="a second console agrees"
	T send-keys -t console g p
	wait_for "[Pp]ause .*\?|y/n" 5
	T send-keys -t console y
	wait_for "paused [a-z-]+" 5
	paused=$(sed -nE 's/.*paused ([a-z-]+).*/\1/p' "$tmp/screen" | head -n 1)
	row=$(grep -E "\($paused\) +paused" "$tmp/screen" | head -n 1 | sed -E 's/ +/ /g')
	[ -n "$row" ] || fail "no paused row for $paused"
	T new-window -d -n second \
		"TALLY_ADMIN_TOKEN=t '$bin' console --connect http://127.0.0.1:$port; sleep 30" ||
		fail "no second window"
	win=second
	wait_for "\($paused\) +paused" 10
	row2=$(grep -E "\($paused\) +paused" "$tmp/screen" | head -n 1 | sed -E 's/ +/ /g')
	[ "$row" = "$row2" ] || fail "the consoles disagree: '$row' vs '$row2'"
	# what the second one does, the first one sees
	T send-keys -t second g
	for _ in $(seq 1 40); do # select the paused campaign's row
		capture
		grep -E "^>? ?.*\($paused\)" "$tmp/screen" >/dev/null || break
		T send-keys -t second / && break
	done
	T send-keys -t second "$paused" Enter
	wait_for "\($paused\) +paused" 5
	T send-keys -t second r
	wait_for "[Rr]esume .*\?|y/n" 5
	T send-keys -t second y
	win=console
	wait_for "\($paused\) +active" 5
	T kill-window -t second

	step="a campaign in detail, closed by keys"
	T send-keys -t console g Enter
	wait_for 'Recent gifts' 5
	wait_for 'Raised \$[0-9,]+\.[0-9]{2}' 5
	slug=$(sed -nE '3s/^ .* \(([a-z-]+)\) +(active|paused|closed).*/\1/p' "$tmp/screen")
	[ -n "$slug" ] || fail "no campaign slug in the detail's title"
	T send-keys -t console c
	wait_for "Close $slug for good \(no more gifts\)\? y/n" 5
	T send-keys -t console y
	wait_for "closed $slug" 5
	http_get "/api/v1/campaigns/$slug" | grep -q '"status":"closed"' ||
		fail "the API does not say $slug is closed"
	T send-keys -t console Escape
	wait_for 'Campaign +Status +Total' 5

	step="a dead job in detail"
	T send-keys -t console t G Enter
	wait_for 'Job [0-9]+ +dead: waits for staff' 5
	wait_for 'Last error +processing_error: simulated' 5
	wait_for 'Attempt +When +Took +Error' 5
	wait_for "$attempt_row" 5
	T send-keys -t console f
	wait_for 'Refund the gift dn_[0-9]+ \(money back to the donor\)\? y/n' 5
	T send-keys -t console y
	wait_for 'refund dn_[0-9]+ failed: ' 5 # a dead capture's gift was never paid
	T send-keys -t console Escape t t t
	wait_for 'Campaign +Status +Total' 5

	step="a viewer's console cannot act"
	vt=$("$bin" token add night-viewer --role viewer --db "$tmp/t.db" 2>/dev/null)
	[ -n "$vt" ] || fail "tally token add printed no secret"
	T new-window -d -n viewer \
		"TALLY_ADMIN_TOKEN='$vt' '$bin' console --connect http://127.0.0.1:$port; sleep 30" ||
		fail "no window for the viewer"
	win=viewer
	wait_for 'connected +as night-viewer \(viewer\)' 10
	T send-keys -t viewer p
	wait_for 'token night-viewer is a viewer: to pause campaigns it needs the operator role' 5
	T kill-window -t viewer
	win=console

	step="a bad token is refused on screen"
	T new-window -d -n bad \
		"TALLY_ADMIN_TOKEN=wrong '$bin' console --connect http://127.0.0.1:$port; sleep 30" ||
		fail "no window for the bad token"
	win=bad
	wait_for "refused \(401\)" 10
	T kill-window -t bad
	win=console

	step="the server goes away"
	capture
	# the day's total, kept in the database ("gifts" counts since the
	# server started, and starts over with it)
	total=$(grep -Eo 'day \$[0-9,]+\.[0-9]{2}' "$tmp/screen" | head -n 1)
	[ -n "$total" ] || fail "no day total in the header"
	kill -9 "$srv"
	wait "$srv" 2>/dev/null
	srv=
	wait_for "reconnecting \([0-9]+ s\)" 15
	grep -q "Riverside Food Bank" "$tmp/screen" || fail "the campaigns went with the server"

	step="the server comes back"
	# with receipts that cannot go out (nothing listens on port 1) and one
	# attempt each: dead receipts of paid gifts, for the refund below
	server_args+=(--smtp-url smtp://127.0.0.1:1 --jobs receipts:attempts=1)
	start_server "$port"
	wait_for "http://127.0.0.1:$port +connected" 15
	wait_for "Riverside Food Bank" 5
	# the demo donates again: the day's total (stored, unlike the gifts
	# counted since the server started) passes what it was
	deadline=$((SECONDS + 15))
	while :; do
		capture
		now=$(grep -Eo 'day \$[0-9,]+\.[0-9]{2}' "$tmp/screen" | head -n 1)
		[ -n "$now" ] && [ "${now//[^0-9]/}" -gt "${total//[^0-9]/}" ] && break
		[ $SECONDS -lt $deadline ] || fail "the console did not catch up ($total, then $now)"
		sleep 0.2
	done

	step="a gift refunded from a job's detail"
	T send-keys -t console t
	wait_for 'Dead job +Queue +Kind +Gift +Tries +Last error' 5
	# the receipts row counts dead ones (column 6)
	wait_for '^ receipts +[a-z]+ +[0-9,]+ +[0-9,]+ +[0-9,]+ +[1-9]' 15
	# receipts come after payments in the dead list: G takes the last one
	# (pressed until the list has caught up with the queue table)
	for _ in $(seq 1 20); do
		T send-keys -t console G
		sleep 0.25
		capture || fail "the console is gone"
		grep -Eq '^ +[0-9]+ +receipts +receipt +dn_[0-9]+' "$tmp/screen" && break
	done
	wait_for '^ +[0-9]+ +receipts +receipt +dn_[0-9]+' 1
	T send-keys -t console G Enter # once more: the last is a receipt now
	wait_for 'Job [0-9]+ +dead: waits for staff' 5
	wait_for 'Kind +receipt' 5
	T send-keys -t console f
	wait_for 'Refund the gift dn_[0-9]+ \(money back to the donor\)\? y/n' 5
	gift=$(sed -nE 's/.*Refund the gift (dn_[0-9]+) .*/\1/p' "$tmp/screen" | head -n 1)
	[ -n "$gift" ] || fail "no gift in the question"
	T send-keys -t console y
	wait_for "refund of $gift asked" 5
	admin_get "/api/v1/admin/donations/$gift" | grep -q '"refund_requested_at":"' ||
		fail "the admin API has no refund asked for $gift"
	# the refund job runs: the gift ends refunded, or (the mock fails 30 %
	# of attempts, one each here) its refund job is dead
	deadline=$((SECONDS + 10))
	until admin_get "/api/v1/admin/donations/$gift" | grep -q '"status":"refunded"' ||
		admin_get '/api/v1/admin/jobs?queue=payments&state=dead&limit=1000' |
		grep -q "\"kind\":\"refund\"[^}]*\"donation_id\":\"$gift\""; do
		[ $SECONDS -lt $deadline ] || fail "$gift neither refunded nor with a dead refund job after 10 s"
		sleep 0.2
	done
	T send-keys -t console Escape t t t
	wait_for 'Campaign +Status +Total' 5
fi

quit_console
echo "tally_tmux: ok"
