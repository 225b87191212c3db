# SisyphusDB — a thin wrapper over CMake (as neovim's Makefile is).
#
#   make          build (release-ish, binaries in build/bin/)
#   make check    install missing packages, build with ASan+UBSan in
#                 build-check/, run every test through ctest; also runs the
#                 simulator seeds and the valgrind leak run on build/
#   make demo     start a local cluster and open the shell on it
#   make bench    run the benchmarks (docs/BENCHMARKS.md)
#   make fuzz     run the fuzz targets with libFuzzer (FUZZ_SECONDS=60)
#
# Knobs: BUILD_DIR, CHECK_DIR, JOBS, CTEST_ARGS.

BUILD_DIR ?= build
CHECK_DIR ?= build-check
FUZZ_DIR ?= build-fuzz
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE ?= cmake
CTEST ?= ctest
CTEST_ARGS ?=
FUZZ_SECONDS ?= 60
DEPS = sh packaging/install-deps.sh

.PHONY: all build deps check check-only demo bench fuzz clean format deb

all: build

deps:
	@$(DEPS) build

$(BUILD_DIR)/CMakeCache.txt:
	$(CMAKE) -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD_DIR)/CMakeCache.txt
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)

$(CHECK_DIR)/CMakeCache.txt:
	$(CMAKE) -S . -B $(CHECK_DIR) -DCMAKE_BUILD_TYPE=Debug -DSISY_SANITIZE=ON -DSISY_WERROR=ON

# Two builds: everything runs under ASan+UBSan in $(CHECK_DIR); the
# simulator's large seed sweep and the valgrind run need a build without
# sanitizers, which is $(BUILD_DIR).
check:
	@$(DEPS) check
	$(MAKE) check-only

check-only: $(CHECK_DIR)/CMakeCache.txt $(BUILD_DIR)/CMakeCache.txt
	$(CMAKE) --build $(CHECK_DIR) -j $(JOBS)
	$(CMAKE) --build $(BUILD_DIR) -j $(JOBS)
	$(CTEST) --test-dir $(CHECK_DIR) --output-on-failure -j $(JOBS) -LE 'nosan' $(CTEST_ARGS)
	$(CTEST) --test-dir $(BUILD_DIR) --output-on-failure -j $(JOBS) -L 'nosan' $(CTEST_ARGS)

demo: build
	@sh tests/demo.sh $(BUILD_DIR)

bench: deps
	@$(DEPS) bench
	$(MAKE) build
	sh bench/run-all.sh $(BUILD_DIR)

fuzz:
	@$(DEPS) fuzz
	CC=clang $(CMAKE) -S . -B $(FUZZ_DIR) -DSISY_FUZZ=ON -DSISY_SANITIZE=ON -DSISY_TESTS=ON
	$(CMAKE) --build $(FUZZ_DIR) -j $(JOBS)
	sh tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS)

format:
	git ls-files '*.c' '*.h' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(CHECK_DIR) $(FUZZ_DIR)

deb:
	@$(DEPS) package
	sh packaging/deb/build.sh build-deb
