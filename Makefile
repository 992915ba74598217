# Strata — one non-recursive GNU make.
#   make            build build/strata
#   make test       unit tests, end-to-end tests (pytest), then the fuzzers for a while
#   make unit       unit tests only
#   make browser    the dashboard in headless chromium (tests/browser, playwright-core
#                   from npm: `npm ci` on first use; screenshots in build/browser)
#   make SAN=address,undefined ...   sanitizer build (separate build dir)
#   make fuzz       build every tests/fuzz/fuzz_*.c with libFuzzer and run each for
#                   FUZZ_SECONDS (default 15) over its corpus (tests/fuzz/corpus/NAME)
#   make bench      run bench/run.sh (L4) and bench/http.sh (HTTP); installs HAProxy and NGINX
#   make bench-http only bench/http.sh
#   make bench-tls  only bench/tls.sh (TLS termination)
#   make bench-h2   only bench/h2.sh (HTTP/2 from clients and gRPC; pinned layout)
#   make format     clang-format every source file
#   make man        regenerate doc/strata.8 from the command table and the config schema
#   make help       this text

CC      ?= cc
PKGS    := yaml-0.1 libpcre2-8 libssl libcrypto libnghttp2 jansson libmaxminddb hiredis libcurl \
           libcrypt zlib modsecurity liburing
SAN     ?=
comma   := ,
BUILD   := build$(if $(SAN),-$(subst $(comma),-,$(SAN)))

CFLAGS  ?= -O2 -g
# -Wno-missing-field-initializers: members a positional initializer leaves out are zero,
# which slices rely on ((struct hstr){p, len}: nothing known of its bytes, http/msg-t.h).
CFLAGS  += -std=gnu11 -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Wno-missing-field-initializers -fno-strict-aliasing \
           -D_GNU_SOURCE -Isrc -pthread \
           $(shell pkg-config --cflags $(PKGS))
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -pthread -lm
ifneq ($(SAN),)
CFLAGS  += -fsanitize=$(SAN) -fno-sanitize-recover=all -fno-omit-frame-pointer -O1
LDFLAGS += -fsanitize=$(SAN)
endif

SRCS      := $(filter-out src/main.c,$(shell find src -name '*.c' | sort))
WEB_FILES := $(sort $(wildcard web/*))
OBJS      := $(SRCS:%.c=$(BUILD)/%.o) $(BUILD)/gen/web_assets.o
UNIT_SRCS := $(shell find tests/unit -name '*.c' | sort)
UNIT_OBJS := $(UNIT_SRCS:%.c=$(BUILD)/%.o)
BENCH_SRCS := $(wildcard bench/*.c)

FUZZ_SRCS  := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BUILD := build-fuzz
FUZZ_CC    := clang
FUZZ_FLAGS := -g -O1 -std=gnu11 -D_GNU_SOURCE -Isrc -pthread -fno-omit-frame-pointer \
              $(shell pkg-config --cflags $(PKGS))
FUZZ_SECONDS ?= 15

.PHONY: all test unit e2e browser bench bench-http bench-tls bench-h2 fuzz format man help clean
all: $(BUILD)/strata $(if $(SAN),,strata)

# ./strata is a convenience link to the last build
strata: $(BUILD)/strata
	ln -sf $(BUILD)/strata strata

$(BUILD)/libstrata.a: $(OBJS)
	@mkdir -p $(@D)
	ar rcs $@ $^

$(BUILD)/strata: $(BUILD)/src/main.o $(BUILD)/libstrata.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/unit-tests: $(UNIT_OBJS) $(BUILD)/libstrata.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -MMD -MP -c -o $@ $<

# The dashboard (web/) embedded into the binary (src/admin/admin_web.c).
$(BUILD)/gen/web_assets.c: $(WEB_FILES) scripts/embed-web.sh
	@mkdir -p $(@D)
	scripts/embed-web.sh $@ $(WEB_FILES)

$(BUILD)/gen/web_assets.o: $(BUILD)/gen/web_assets.c
	$(CC) $(CFLAGS) -c -o $@ $<

$(BUILD)/bench/%: bench/%.c
	@mkdir -p $(@D)
	$(CC) -O2 -Wall -Wextra -Werror -D_GNU_SOURCE -pthread -o $@ $<

unit: $(BUILD)/unit-tests
	$(BUILD)/unit-tests

e2e: $(BUILD)/strata $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
	STRATA_BIN=$(abspath $(BUILD)/strata) STRATA_TOOLS=$(abspath $(BUILD)/bench) \
	    /usr/bin/python3 -m pytest -q tests/e2e

# playwright-core drives Debian's chromium: no browser is downloaded.
tests/browser/node_modules/.package-lock.json: tests/browser/package-lock.json
	cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --silent

browser: $(BUILD)/strata tests/browser/node_modules/.package-lock.json
	STRATA_BIN=$(abspath $(BUILD)/strata) BROWSER_OUT=$(abspath $(BUILD)/browser) \
	    node tests/browser/dashboard.test.js
	STRATA_BIN=$(abspath $(BUILD)/strata) node tests/browser/bot_challenge.test.js

# The fuzzers run once, with the plain build (they have their own sanitizers).
test: unit e2e browser $(if $(SAN),,fuzz)

bench: $(BUILD)/strata $(BENCH_SRCS:bench/%.c=$(BUILD)/bench/%)
	STRATA_BIN=$(abspath $(BUILD)/strata) STRATA_TOOLS=$(abspath $(BUILD)/bench) bench/run.sh
	STRATA_BIN=$(abspath $(BUILD)/strata) bench/http.sh

bench-http: $(BUILD)/strata
	STRATA_BIN=$(abspath $(BUILD)/strata) bench/http.sh

bench-tls: $(BUILD)/strata
	STRATA_BIN=$(abspath $(BUILD)/strata) bench/tls.sh

bench-h2: $(BUILD)/strata
	STRATA_BIN=$(abspath $(BUILD)/strata) bench/h2.sh

# Fuzzers: the library rebuilt with clang and coverage instrumentation, one binary a target.
$(FUZZ_BUILD)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link,address,undefined -MMD -MP -c -o $@ $<

$(FUZZ_BUILD)/libstrata.a: $(SRCS:%.c=$(FUZZ_BUILD)/obj/%.o)
	ar rcs $@ $^

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libstrata.a
	$(FUZZ_CC) $(FUZZ_FLAGS) -fsanitize=fuzzer,address,undefined -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
	@for f in $^; do \
	    name=$${f##*/fuzz_}; corpus=tests/fuzz/corpus/$$name; log=$(FUZZ_BUILD)/$$name.log; \
	    mkdir -p $$corpus $(FUZZ_BUILD)/corpus-$$name; \
	    dict=$$( [ -f tests/fuzz/$$name.dict ] && echo -dict=tests/fuzz/$$name.dict ); \
	    echo "fuzz: $$name for $(FUZZ_SECONDS)s"; \
	    if ! $$f -max_total_time=$(FUZZ_SECONDS) $$dict $(FUZZ_BUILD)/corpus-$$name $$corpus \
	            >$$log 2>&1; then tail -60 $$log; exit 1; fi; \
	    grep -E '^Done [0-9]+ runs' $$log | tail -1; \
	done

format:
	clang-format -i $(SRCS) src/main.c $(shell find src tests/unit -name '*.h') $(UNIT_SRCS)

man: $(BUILD)/strata
	$(BUILD)/strata man-page > doc/strata.8

help:
	@awk 'NR > 1 && !/^#/ { exit } NR > 1 { sub(/^# ? ? ?/, ""); print }' Makefile

clean:
	rm -rf build build-* strata

-include $(OBJS:.o=.d) $(UNIT_OBJS:.o=.d) $(BUILD)/src/main.d $(SRCS:%.c=$(FUZZ_BUILD)/obj/%.d)
