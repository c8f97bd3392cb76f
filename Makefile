# Makefile: builds libpgsqlite-bridge.a, the pgsqlite-bridge binary, the
# Criterion test binaries, the libFuzzer target and the benchmark.
#   make              build/pgsqlite-bridge
#   make test         unit + integration tests against a throwaway Postgres
#   make asan         the same under AddressSanitizer and UBSan
#   make fuzz         run the decoder fuzzer (clang, libFuzzer) for FUZZ_SECONDS
#   make bench        throughput and memory benchmark against pg_recvlogical
#   make chaos        faults against 3 clients + Postgres writers (CHAOS_SECONDS=300)
#   make chaos-short  the same for about a minute, a few faults of each kind
#   make soak         the randomized model test over every mode and strategy
#   make install      PREFIX=/usr/local DESTDIR=
#   make compose-test the docker-compose stack, tested with a real Docker engine
#   make examples-test the six example setups of examples/
#   make docs         render docs/*.dot to SVG (Graphviz)
# Switches: WERROR=0 to drop -Werror, SANITIZER=address,undefined, BUILD=dir.

PREFIX     ?= /usr/local
BUILD      ?= build
WERROR     ?= 1
SANITIZER  ?=
FUZZ_SECONDS ?= 60
CC         ?= cc
PKG_CONFIG ?= pkg-config

PKGS       := libpq sqlite3 inih libcjson libmicrohttpd
PKG_CFLAGS := $(shell $(PKG_CONFIG) --cflags $(PKGS))
PKG_LIBS   := $(shell $(PKG_CONFIG) --libs $(PKGS))
# Debian's libev ships no .pc file: fall back to -lev.
EV_CFLAGS  := $(shell $(PKG_CONFIG) --cflags libev 2>/dev/null)
EV_LIBS    := $(shell $(PKG_CONFIG) --libs libev 2>/dev/null || echo -lev)
CRIT_CFLAGS := $(shell $(PKG_CONFIG) --cflags criterion 2>/dev/null)
CRIT_LIBS  := $(shell $(PKG_CONFIG) --libs criterion 2>/dev/null || echo -lcriterion)

# Our flags, kept apart from the user's CFLAGS.
PROJ_CFLAGS := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wshadow -Wpointer-arith \
	-Wmissing-prototypes -Wstrict-prototypes -Wvla -g -MMD -MP
ifeq ($(WERROR),1)
PROJ_CFLAGS += -Werror
endif
ifneq ($(SANITIZER),)
PROJ_CFLAGS += -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
PROJ_LDFLAGS += -fsanitize=$(SANITIZER)
OPT ?= -O1
else
OPT ?= -O2
endif

ALL_CFLAGS  = $(PROJ_CFLAGS) $(OPT) $(PKG_CFLAGS) $(EV_CFLAGS) $(CFLAGS)
ALL_LDFLAGS = $(PROJ_LDFLAGS) $(LDFLAGS)
LIBS        = $(PKG_LIBS) $(EV_LIBS) -lpthread -lm

LIB_SRCS   := $(wildcard config/*.c decoder/*.c sqlite-side/*.c) \
	$(filter-out bridge/main.c,$(wildcard bridge/*.c))
LIB_OBJS   := $(LIB_SRCS:%.c=$(BUILD)/obj/%.o)
LIB        := $(BUILD)/libpgsqlite-bridge.a
BIN        := $(BUILD)/pgsqlite-bridge

UNIT_SRCS  := $(wildcard tests/unit/*.c)
INTEG_SRCS := $(wildcard tests/integ/*.c) $(wildcard tests/support/*.c)
LATENCY_BIN := $(BUILD)/bench-latency
UNIT_BIN   := $(BUILD)/test-unit
INTEG_BIN  := $(BUILD)/test-integ
CHAOS_COMMON := $(patsubst %.c,$(BUILD)/obj/%.o,tests/chaos/ch_base.c tests/chaos/ch_proc.c tests/chaos/ch_check.c)
CHAOS_BIN  := $(BUILD)/chaos
SOAK_BIN   := $(BUILD)/soak

.PHONY: all deps test test-suite unit asan fuzz bench demo install clean format chaos chaos-short soak
all: $(BIN)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BIN): $(BUILD)/obj/bridge/main.o $(LIB)
	$(CC) $(ALL_LDFLAGS) $^ $(LIBS) -o $@

$(UNIT_BIN): $(UNIT_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB)
	$(CC) $(ALL_LDFLAGS) $^ $(LIBS) $(CRIT_LIBS) -o $@

$(INTEG_BIN): $(INTEG_SRCS:%.c=$(BUILD)/obj/%.o) $(LIB)
	$(CC) $(ALL_LDFLAGS) $^ $(LIBS) $(CRIT_LIBS) -o $@

$(CHAOS_BIN): $(BUILD)/obj/tests/chaos/chaos.o $(CHAOS_COMMON)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

$(SOAK_BIN): $(BUILD)/obj/tests/chaos/soak.o $(BUILD)/obj/tests/chaos/soak_ops.o $(CHAOS_COMMON)
	$(CC) $(ALL_LDFLAGS) $^ $(PKG_LIBS) -lm -o $@

unit: $(UNIT_BIN)
	$(UNIT_BIN)

# Installs missing Debian packages (a no-op when all are there).
deps:
	@tests/deps.sh

# The test command of the README: unit tests, then integration tests
# against a throwaway PostgreSQL 15 cluster that tests/run.sh starts and
# stops.  A second make, so pkg-config runs after deps installed things.
test: deps
	$(MAKE) test-suite

test-suite: $(BIN) $(UNIT_BIN) $(INTEG_BIN) $(SOAK_BIN)
	BUILD=$(BUILD) tests/run.sh

asan: deps
	$(MAKE) BUILD=build-asan SANITIZER=address,undefined test-suite

# The README's example: a throwaway Postgres, a SQLite file, the bridge.
demo: deps
	$(MAKE) all
	BUILD=$(BUILD) tests/demo.sh

# docker/docker-compose.yml as a user runs it, with a real Docker engine
# (started and stopped here if none runs; needs root).  See the README.
.PHONY: compose-test examples-test docs
compose-test:
	tests/compose-test.sh

# The six setups of examples/, each asserting its data moved (make test
# runs them too, after the integration tests).
examples-test: deps
	$(MAKE) all
	BUILD=$(BUILD) tests/examples.sh

# The diagrams of docs/, rendered from their Graphviz sources.
DOCS_DOT := $(wildcard docs/*.dot)
docs: $(DOCS_DOT:.dot=.svg)
docs/%.svg: docs/%.dot
	@command -v dot >/dev/null || $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y \
		--no-install-recommends graphviz
	dot -Tsvg $< -o $@

fuzz:
	@mkdir -p $(BUILD)/fuzz-corpus
	clang -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
		tests/fuzz/fuzz_dec.c $(wildcard decoder/*.c) -o $(BUILD)/fuzz-dec
	$(BUILD)/fuzz-dec -max_total_time=$(FUZZ_SECONDS) -max_len=4096 \
		$(BUILD)/fuzz-corpus tests/fixtures

$(LATENCY_BIN): $(BUILD)/obj/tests/bench/latency.o
	$(CC) $(ALL_LDFLAGS) $^ $(LIBS) -o $@

bench: deps
	$(MAKE) all $(LATENCY_BIN)
	BUILD=$(BUILD) tests/bench/run.sh

# Chaos and soak start their own throwaway cluster (or use PGSB_TEST_PGPORT
# and PGSB_TEST_PGDATA); SEED= replays a run's schedule.
chaos: deps
	$(MAKE) all $(CHAOS_BIN)
	BUILD=$(BUILD) $(CHAOS_BIN)

chaos-short: deps
	$(MAKE) all $(CHAOS_BIN)
	BUILD=$(BUILD) CHAOS_SECONDS=$${CHAOS_SECONDS:-60} CHAOS_KILLS=$${CHAOS_KILLS:-6} \
		CHAOS_PG_RESTARTS=$${CHAOS_PG_RESTARTS:-2} CHAOS_WALSENDER_KILLS=$${CHAOS_WALSENDER_KILLS:-4} \
		CHAOS_PUSH_KILLS=$${CHAOS_PUSH_KILLS:-3} $(CHAOS_BIN)

soak: deps
	$(MAKE) all $(SOAK_BIN)
	BUILD=$(BUILD) $(SOAK_BIN)

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include/pgsqlite-bridge
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/pgsqlite-bridge
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libpgsqlite-bridge.a
	install -m 644 bridge/pgsqlite_bridge.h $(DESTDIR)$(PREFIX)/include/pgsqlite-bridge/

format:
	clang-format -i $(wildcard */*.c */*.h tests/*/*.c tests/*/*.h)

clean:
	rm -rf build build-asan

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
