#!/usr/bin/env bash
# tests/install_unit.sh - the systemd unit in INSTALL, as an operator
# would copy it: systemd-analyze verify finds nothing to say (ExecStart
# pointed at the built tally), systemd-analyze security --offline rates
# its exposure at most 1.5, and INSTALL states the score it gets.
#
# usage: tests/install_unit.sh PATH/TO/tally [INSTALL]
set -u

bin=${1:-}
install=${2:-INSTALL}
if [ -z "$bin" ] || [ ! -x "$bin" ] || [ ! -r "$install" ]; then
	echo "usage: $0 PATH/TO/tally [INSTALL]" >&2
	exit 2
fi
case $bin in /*) ;; *) bin=$PWD/$bin ;; esac

fail() {
	echo "install_unit: FAIL: $*" >&2
	exit 1
}

command -v systemd-analyze >/dev/null 2>&1 ||
	fail "systemd-analyze is missing: scripts/deps --check installs systemd"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tally-unit.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
unit=$tmp/tally.service

# The unit is the indented block from [Unit] to WantedBy=.
awk '/^  \[Unit\]$/ { on = 1 }
     on { sub(/^  /, ""); print }
     on && /^WantedBy=/ { exit }' "$install" >"$unit"
grep -q '^\[Service\]$' "$unit" && grep -q '^WantedBy=' "$unit" ||
	fail "no unit ([Unit] ... WantedBy=) in $install"
grep -q '^ExecStart=/usr/local/bin/tally ' "$unit" ||
	fail "ExecStart does not run /usr/local/bin/tally"
sed -i "s#^ExecStart=/usr/local/bin/tally #ExecStart=$bin #" "$unit"

said=$(systemd-analyze verify "$unit" 2>&1) || fail "systemd-analyze verify: $said"
[ -z "$said" ] || fail "systemd-analyze verify: $said"

report=$(systemd-analyze security --offline=yes --threshold=15 "$unit" 2>&1)
rc=$?
score=$(printf '%s\n' "$report" | sed -n 's/.*Overall exposure level for tally.service: \([0-9.]*\) .*/\1/p')
[ -n "$score" ] || fail "no overall score from systemd-analyze security: $report"
[ $rc -eq 0 ] || fail "exposure $score is above 1.5; what counts:
$(printf '%s\n' "$report" | grep '✗')"
grep -q "rates this unit $score " "$install" ||
	fail "INSTALL does not say 'rates this unit $score' (the score systemd-analyze gives now)"
echo "install_unit: ok (exposure $score)"
