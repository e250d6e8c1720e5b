# holdfast build.
#
#   make              release build: build/holdfast
#   make asan         AddressSanitizer + UndefinedBehaviorSanitizer build: build-asan/holdfast
#   make unit         cmocka unit tests (sanitizer build)
#   make fuzz         libFuzzer targets (clang): build-fuzz/
#   make simagents    the cluster benchmark's simulated agents: build/hf-simagents
#   make test         everything scripts/test.sh runs after setup
#
# Warnings are errors in every build.

CC      ?= cc
CSTD    := -std=c11 -D_GNU_SOURCE
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
           -Wno-unused-parameter -Wformat=2 -Wvla -Wpointer-arith
INCS    := -Isrc
LIBS    := -lyaml -ljansson -lmicrohttpd -lcurl -lsqlite3 -lcrypto -lm -lpthread
OPT     ?= -O2 -g

LIBSRCS := $(sort $(wildcard src/*/*.c))
SRCS    := $(LIBSRCS) src/main.c

BUILD      := build
ASAN_BUILD := build-asan
FUZZ_BUILD := build-fuzz
SANFLAGS   := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

UNIT_SRCS := $(sort $(wildcard tests/unit/test_*.c))
FUZZ_SRCS := $(sort $(wildcard tests/fuzz/fuzz_*.c))

.PHONY: all asan unit fuzz simagents test clean
all: $(BUILD)/holdfast

$(BUILD)/%.o: src/%.c $(wildcard src/*/*.h src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $(INCS) -c $< -o $@

$(ASAN_BUILD)/%.o: src/%.c $(wildcard src/*/*.h src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -O1 -g $(SANFLAGS) $(INCS) -c $< -o $@

$(BUILD)/holdfast: $(patsubst src/%.c,$(BUILD)/%.o,$(SRCS))
	$(CC) $(OPT) $^ -o $@ $(LIBS)

$(ASAN_BUILD)/holdfast: $(patsubst src/%.c,$(ASAN_BUILD)/%.o,$(SRCS))
	$(CC) -g $(SANFLAGS) $^ -o $@ $(LIBS)

asan: $(ASAN_BUILD)/holdfast

# Unit tests link the library objects of the sanitizer build with cmocka.
$(ASAN_BUILD)/tests/%: tests/unit/%.c $(patsubst src/%.c,$(ASAN_BUILD)/%.o,$(LIBSRCS)) $(wildcard tests/unit/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) -Wno-missing-prototypes -O1 -g $(SANFLAGS) $(INCS) -Itests/unit $< \
	    $(patsubst src/%.c,$(ASAN_BUILD)/%.o,$(LIBSRCS)) -o $@ $(LIBS) -lcmocka

UNIT_BINS := $(patsubst tests/unit/%.c,$(ASAN_BUILD)/tests/%,$(UNIT_SRCS))

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do \
	    echo "== $$t"; HF_TEST_ROOT=$(CURDIR) $$t; done

# Fuzz targets: clang's libFuzzer with ASan + UBSan over the library sources.
FUZZ_CC := clang
$(FUZZ_BUILD)/%: tests/fuzz/%.c $(LIBSRCS) $(wildcard src/*/*.h src/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CSTD) $(WARN) -Wno-missing-prototypes -O1 -g -fsanitize=fuzzer,address,undefined \
	    -fno-sanitize-recover=all $(INCS) $< $(LIBSRCS) -o $@ $(LIBS)

FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(FUZZ_BUILD)/%,$(FUZZ_SRCS))
fuzz: $(FUZZ_BINS)

# The cluster benchmark's simulated agents (bench/cluster.py).
$(BUILD)/hf-simagents: bench/simagents.c
	@mkdir -p $(dir $@)
	$(CC) $(CSTD) $(WARN) $(OPT) $< -o $@ -lcurl -ljansson

simagents: $(BUILD)/hf-simagents

test:
	./scripts/test.sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) $(FUZZ_BUILD)
