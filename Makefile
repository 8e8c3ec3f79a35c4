# tally - build, run, test, install.
#   make            build ./tally
#   make run        install missing packages, build, start the demo console
#   make check      install missing packages, build, run the whole test suite
#   make check SAN=1  the same under AddressSanitizer + UBSan
#   make check TSAN=1 the same under ThreadSanitizer (CK_RUN_SUITES="engine live jobs")
#   make check-deps which folder may include which (make check runs it first)
#   make format-check  fail when a tracked .c/.h differs from .clang-format
#   make bench      benchmarks (prints tables; not part of make check)
#   make valgrind   the integration suites with every tally server under valgrind
#                   (VALGRIND_SUITES="..." to pick suites)
#   make fuzz       libFuzzer on every parser of untrusted input (FUZZ_SECONDS=60 each,
#                   FUZZ_JOBS=2 two at a time)
#   make torture    crash loop: SIGKILL under load, then the invariants
#                   (ROUNDS=50, SEED=N to replay a run)
#   make install PREFIX=/usr/local DESTDIR=

VERSION    := 0.1.0
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
DATADIR    ?= $(PREFIX)/share/tally
MANDIR     ?= $(PREFIX)/share/man
CC         ?= cc
CLANG_FORMAT ?= clang-format
PKG_CONFIG ?= pkg-config
PKGS       := libwebsockets libuv sqlite3 jansson ncursesw libcurl libssl libcrypto
SAN        ?= 0
TSAN       ?= 0

ifeq ($(SAN)$(TSAN),11)
$(error SAN=1 and TSAN=1 are exclusive: ASan and TSan cannot share a process)
endif
ifeq ($(SAN),1)
BUILD      := build/san
SANFLAGS   := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
OPT        := -O1
else ifeq ($(TSAN),1)
BUILD      := build/tsan
SANFLAGS   := -fsanitize=thread -fno-omit-frame-pointer
OPT        := -O1
else
BUILD      := build/release
SANFLAGS   :=
OPT        := -O2
endif

# Recursive (=) so pkg-config runs when a recipe needs it, after deps.
PKG_CFLAGS  = $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS    = $(shell $(PKG_CONFIG) --libs $(PKGS))
CHECK_FLAGS = $(shell $(PKG_CONFIG) --cflags --libs check)
CFLAGS     ?=
WARN       := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
ALL_CFLAGS  = -std=c11 -D_GNU_SOURCE $(WARN) $(OPT) -g $(SANFLAGS) -I. -MMD -MP \
	      -DTALLY_VERSION='"$(VERSION)"' -DTALLY_ASSETS_DIR='"$(DATADIR)/assets"' \
	      $(PKG_CFLAGS) $(CFLAGS)
LDLIBS_ALL  = $(PKG_LIBS) -lpthread -lm

BASE_OBJS := base/util.o base/log.o base/buf.o base/err.o base/model.o base/watchdog.o base/currency.o base/events.o base/hour.o base/fee.o
CORE_OBJS := core/validate.o core/idem.o core/engine.o core/campaigns.o core/boards.o core/publish.o core/commit.o core/intake.o core/staff.o core/day.o core/day_staff.o \
	     core/demo.o core/jobs.o core/work.o core/processor.o core/receipt.o core/webhook.o \
	     core/transfer.o core/tokens.o core/tokendb.o core/match.o core/pools.o core/bonus.o core/challenges.o core/export.o core/shield.o core/captcha.o
DB_OBJS   := db/db.o db/store.o db/writer.o db/pools.o db/challenges.o db/export.o
WS_OBJS   := ws/acceptor.o ws/addrcount.o ws/pacer.o ws/admin.o ws/feed.o ws/uvloop.o ws/server.o ws/http.o ws/uri.o ws/api.o ws/live.o ws/live_msg.o ws/wsproto.o ws/assets.o ws/ratelimit.o ws/proxy.o ws/console_feed.o \
	     ws/tls.o ws/tls_ctx.o ws/tls_pump.o ws/csv.o ws/export.o ws/shield.o ws/captcha.o
TUI_OBJS  := tui/console.o tui/console_draw.o tui/view_campaigns.o tui/view_queues.o tui/view_help.o tui/view_events.o tui/view_shield.o tui/view_campaign.o tui/view_job.o \
	     tui/console_fmt.o tui/console_mirror.o tui/remote.o tui/remote_conn.o
LIB_OBJS  := $(addprefix $(BUILD)/,$(BASE_OBJS) $(CORE_OBJS) $(DB_OBJS) $(WS_OBJS) $(TUI_OBJS))
MAIN_OBJ  := $(BUILD)/tally.o $(BUILD)/tally_console.o $(BUILD)/tally_token.o

TEST_SRCS := tests/main.c tests/itest.c tests/itest_csv.c tests/test_util.c tests/test_validate.c \
	     tests/test_buf.c tests/test_db.c tests/test_engine.c tests/test_console.c \
	     tests/test_http.c tests/test_live.c tests/test_restart.c tests/test_e2e.c \
	     tests/test_jobs.c tests/test_acceptor.c \
	     tests/test_watchdog.c tests/test_storage.c \
	     tests/test_pacer.c tests/test_privacy.c tests/test_feed.c tests/test_tokens.c \
	     tests/test_tls.c \
	     tests/test_logs.c \
	     tests/test_outage.c tests/test_giving.c tests/test_reconcile.c \
	     tests/test_export.c \
	     tests/test_gifts.c tests/test_boards.c \
	     tests/test_day.c tests/test_shield.c tests/test_captcha.c
TEST_OBJS := $(addprefix $(BUILD)/,$(TEST_SRCS:.c=.o))

.PHONY: all run check check-deps test deps install uninstall clean format format-check bench fuzz \
	torture valgrind

all: tally

tally: $(BUILD)/tally
	cp $< $@

$(BUILD)/tally: $(LIB_OBJS) $(MAIN_OBJ)
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/tests/%.o: tests/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(shell $(PKG_CONFIG) --cflags check) -c -o $@ $<

$(BUILD)/tally-tests: $(TEST_OBJS) $(LIB_OBJS)
	$(CC) $(SANFLAGS) -o $@ $^ $(CHECK_FLAGS) $(LDLIBS_ALL)

$(BUILD)/console-demo: $(BUILD)/tests/console_demo.o $(TUI_OBJS:%=$(BUILD)/%) $(BUILD)/base/util.o \
		$(BUILD)/base/buf.o
	$(CC) $(SANFLAGS) -o $@ $^ $(LDLIBS_ALL)

deps:
	@scripts/deps --check

run:
	@scripts/deps
	@$(MAKE) --no-print-directory tally
	./tally --demo

# Which folder may include which (scripts/check-deps states the rules).
check-deps:
	@command -v python3 >/dev/null 2>&1 || scripts/deps --check
	@scripts/check-deps

# The whole suite: the include rules first, then unit tests, integration
# tests against the real binary, the console under tmux. Each suite runs
# in its own runner, CHECK_JOBS at a time (tests/run-suites), which adds
# up Check's summary lines; CHECK_JOBS=1 runs them one after another.
CHECK_JOBS ?= 2
ifeq ($(TSAN),1)
# TSan: every process (the runner, its forks, the tally servers it starts)
# writes its reports to $(BUILD)/tsan-reports, so one from a server whose
# stderr a test swallows still fails the run. gcc 12's runtime cannot
# map its shadow memory when the kernel randomises mmap with more than 28
# bits (FATAL: ThreadSanitizer: unexpected memory mapping); setarch -R
# turns randomisation off for the runner and every child it starts, with
# no root and no system-wide change of vm.mmap_rnd_bits.
TSAN_REPORTS = $(BUILD)/tsan-reports
check: check-deps
	@scripts/deps --check
	@$(MAKE) --no-print-directory $(BUILD)/tally $(BUILD)/tally-tests $(BUILD)/console-demo
	@rm -rf $(TSAN_REPORTS) && mkdir -p $(TSAN_REPORTS)
	@norand=""; if setarch "$$(uname -m)" -R true 2>/dev/null; then \
		norand="setarch $$(uname -m) -R"; fi; \
	opts="halt_on_error=1 second_deadlock_stack=1 $(if $(wildcard tests/tsan.supp),suppressions=$(CURDIR)/tests/tsan.supp )log_path=$(CURDIR)/$(TSAN_REPORTS)/tsan $$TSAN_OPTIONS"; \
	echo "TSAN_OPTIONS=\"$$opts\" tests/run-suites $(CHECK_JOBS) $$norand ./$(BUILD)/tally-tests"; \
	TSAN_OPTIONS="$$opts" \
	TALLY_BIN=$(BUILD)/tally TALLY_CONSOLE_DEMO=$(BUILD)/console-demo \
	TALLY_ASSETS=assets tests/run-suites $(CHECK_JOBS) $$norand ./$(BUILD)/tally-tests; rc=$$?; \
	if [ -n "$$(ls $(TSAN_REPORTS))" ]; then \
		grep -h '^SUMMARY' $(TSAN_REPORTS)/* | sort -u | while read -r sum; do \
			cat "$$(grep -lxF "$$sum" $(TSAN_REPORTS)/* | head -n 1)"; done; \
		echo "ThreadSanitizer: $$(ls $(TSAN_REPORTS) | wc -l) processes reported;" \
			"one report of each kind above, all in $(TSAN_REPORTS):"; \
		grep -h '^SUMMARY' $(TSAN_REPORTS)/* | sort | uniq -c; \
		exit 1; \
	fi; \
	exit $$rc
else
check: check-deps
	@scripts/deps --check
	@$(MAKE) --no-print-directory $(BUILD)/tally $(BUILD)/tally-tests $(BUILD)/console-demo
	TALLY_BIN=$(BUILD)/tally TALLY_CONSOLE_DEMO=$(BUILD)/console-demo \
	TALLY_ASSETS=assets tests/run-suites $(CHECK_JOBS) ./$(BUILD)/tally-tests
endif

test: check

# The integration suites with every tally server they start under valgrind
# (memcheck, definite and indirect leaks are errors): TALLY_BIN is
# tests/valgrind-tally, which execs valgrind on $(BUILD)/tally and writes
# each process's findings to $(BUILD)/valgrind-reports/vg.<pid>. Servers
# get longer deadlines to start and stop (TALLY_VALGRIND) and Check's
# timeouts are multiplied. Any non-empty report fails the run, printed.
# Left out: the suites that start no server (util, buf, validate, db,
# engine, console, watchdog, pacer) and e2e, whose browser case holds the
# widgets to the page's own deadlines (reconnecting across a restart
# within seconds) that a server under valgrind misses; its terminal and
# metrics cases pass under valgrind (VALGRIND_SUITES=e2e runs it).
VALGRIND_SUITES ?= acceptor http live restart jobs storage privacy logs
VALGRIND_REPORTS = $(BUILD)/valgrind-reports
valgrind: check-deps
	@scripts/deps --valgrind
	@$(MAKE) --no-print-directory $(BUILD)/tally $(BUILD)/tally-tests
	@rm -rf $(VALGRIND_REPORTS) && mkdir -p $(VALGRIND_REPORTS)
	@start=$$(date +%s); \
	CK_RUN_SUITES="$(VALGRIND_SUITES)" CK_TIMEOUT_MULTIPLIER=10 TALLY_VALGRIND=1 \
	TALLY_VALGRIND_BIN=$(CURDIR)/$(BUILD)/tally \
	TALLY_VALGRIND_REPORTS=$(CURDIR)/$(VALGRIND_REPORTS) \
	TALLY_BIN=$(CURDIR)/tests/valgrind-tally TALLY_ASSETS=assets ./$(BUILD)/tally-tests; rc=$$?; \
	n=$$(ls $(VALGRIND_REPORTS) | grep -c '^vg\.'); \
	bad=$$(find $(VALGRIND_REPORTS) -type f -name 'vg.*' -size +0c | sort); \
	for f in $$bad; do \
		echo "== $$f: tally $$(cat "$(VALGRIND_REPORTS)/cmd.$${f##*/vg.}" 2>/dev/null)"; \
		cat "$$f"; \
	done; \
	if [ -n "$$bad" ]; then \
		echo "valgrind: $$(echo "$$bad" | wc -l) of $$n tally processes reported (above)"; \
		exit 1; \
	fi; \
	echo "valgrind: $$n tally processes, no leak and no error ($$(( $$(date +%s) - start )) s)"; \
	exit $$rc

bench:
	@scripts/deps --bench
	@$(MAKE) --no-print-directory $(BUILD)/tally $(BUILD)/fanout $(BUILD)/cardtest
	tests/bench/run $(BUILD)/tally

# The live fan-out load tool (tests/bench/fanout drives it): libc only.
$(BUILD)/fanout: tests/bench/fanout.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -o $@ $<

# The card-testing load tool (tests/bench/cardtest drives it): libc only.
$(BUILD)/cardtest: tests/bench/cardtest.c
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_GNU_SOURCE $(WARN) -O2 -g -o $@ $<

# libFuzzer (clang) on every parser of untrusted input, one harness per
# tests/fuzz/fuzz_<name>.c, each with its seeds in tests/fuzz/corpus/<name>/.
# The library is built again with clang, ASan, UBSan (every report fatal)
# and coverage into build/fuzz/libtally.a; a harness links what it needs.
#   make fuzz                       every harness FUZZ_SECONDS (60) each
#   make fuzz FUZZ_SECONDS=N        N seconds each
#   make fuzz FUZZ_JOBS=2           two harnesses at a time (one core each)
#   make fuzz FUZZ=uri FUZZ_RUNS=10000000   one harness, stop at N inputs
# Inputs that found new paths collect in build/fuzz/corpus/<name>/; a
# crash is saved as build/fuzz/crash-<name>-* and fails the run. With
# FUZZ_JOBS above 1 each harness's output is printed whole when it ends,
# and every harness runs even when one fails (make -k).
FUZZ_SECONDS ?= 60
FUZZ_RUNS    ?= -1
FUZZ_JOBS    ?= 1
FUZZ_ALL     := donation campaign uri live_msg idem receipt giving
FUZZ         ?= $(FUZZ_ALL)
FUZZ_CC      ?= clang
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE $(WARN) -O1 -g $(FUZZ_SAN) -I. -MMD -MP \
	        -DTALLY_VERSION='"$(VERSION)"' -DTALLY_ASSETS_DIR='"$(DATADIR)/assets"' $(PKG_CFLAGS)
FUZZ_OBJS    := $(addprefix build/fuzz/,$(BASE_OBJS) $(CORE_OBJS) $(DB_OBJS) $(WS_OBJS))
# The longest input worth trying: bodies up to 4 KiB (the 16 KiB cap is a
# length check), a /live message up to its 1024-byte limit and a little
# more, a request target up to its two 512-byte limits and a little more,
# a few hundred operations on the idempotency table.
FUZZ_MAX_LEN_donation := 4096
FUZZ_MAX_LEN_campaign := 4096
FUZZ_MAX_LEN_uri      := 1200
FUZZ_MAX_LEN_live_msg := 1200
FUZZ_MAX_LEN_idem     := 1024
FUZZ_MAX_LEN_receipt  := 4096
FUZZ_MAX_LEN_giving   := 4096

build/fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

build/fuzz/libtally.a: $(FUZZ_OBJS)
	rm -f $@
	ar rcs $@ $^

build/fuzz/fuzz_%: tests/fuzz/fuzz_%.c build/fuzz/libtally.a
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< build/fuzz/libtally.a $(LDLIBS_ALL)

# One harness's run (make fuzz builds them all first).
fuzz-run-%:
	@mkdir -p build/fuzz/corpus/$*
	build/fuzz/fuzz_$* -max_total_time=$(FUZZ_SECONDS) -runs=$(FUZZ_RUNS) \
		-max_len=$(FUZZ_MAX_LEN_$*) -print_final_stats=1 \
		-artifact_prefix=build/fuzz/crash-$*- build/fuzz/corpus/$* tests/fuzz/corpus/$*

fuzz:
	@scripts/deps --fuzz
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) $(addprefix build/fuzz/fuzz_,$(FUZZ))
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) $(if $(filter-out 1,$(FUZZ_JOBS)),-k -Otarget) \
		$(addprefix fuzz-run-,$(FUZZ))

# Crash loop (tests/torture/crashloop.py): ROUNDS rounds of mixed load,
# each ended by SIGKILL at a random moment, then a restart and the
# invariants (nothing acknowledged lost or doubled, nothing charged twice,
# totals equal to the database, no job lost). Prints its seed; SEED=N
# replays the same plan.
ROUNDS ?= 50
SEED   ?=
torture:
	@scripts/deps --check
	@$(MAKE) --no-print-directory $(BUILD)/tally
	tests/torture/crashloop.py --tally $(BUILD)/tally --rounds $(ROUNDS) $(if $(SEED),--seed $(SEED))

install: tally
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(DATADIR)/assets $(DESTDIR)$(MANDIR)/man1
	install -m 0755 tally $(DESTDIR)$(BINDIR)/tally
	install -m 0644 assets/* $(DESTDIR)$(DATADIR)/assets/
	install -m 0644 man/tally.1 $(DESTDIR)$(MANDIR)/man1/tally.1

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/tally $(DESTDIR)$(MANDIR)/man1/tally.1
	rm -rf $(DESTDIR)$(DATADIR)

format:
	@scripts/deps --format
	$(CLANG_FORMAT) -i $$(git ls-files '*.c' '*.h')

# Every tracked .c/.h must be as clang-format leaves it; shows the first
# few differences of each file, then how many files differ.
format-check:
	@scripts/deps --format
	@bad=0; n=0; for f in $$(git ls-files '*.c' '*.h'); do n=$$((n + 1)); \
		$(CLANG_FORMAT) --dry-run --Werror --ferror-limit=3 "$$f" || bad=$$((bad + 1)); \
	done; \
	if [ $$bad -ne 0 ]; then \
		echo "format-check: $$bad of $$n files differ from .clang-format (make format fixes them)"; \
		exit 1; \
	fi; \
	echo "format-check: $$n files, all formatted"

clean:
	rm -rf build tally

-include $(shell find build -name '*.d' 2>/dev/null)
