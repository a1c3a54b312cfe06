# hotpath — the two commands that matter are `make run` and `make test`.
#
#   make build   install missing Debian packages, configure and build (build/)
#   make run     build, then start a local cluster on 127.0.0.1 (Ctrl-C stops it);
#                ARGS='-flag=value …' passes flags to every component
#   make test    build with ASan+UBSan (build-asan/), run every unit and
#                integration test there, then the conformance checks that pass
#   make bench   build, run the benchmarks, print their figures
#   make format  clang-format the C sources
JOBS ?= 2
BUILD ?= build
SAN_BUILD ?= build-asan
DATA ?= ./data
CMAKE_FLAGS ?=
ARGS ?=

.PHONY: all deps build build-asan run test unit conformance bench format clean

all: build

deps:
	@scripts/install-deps

build: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j$(JOBS)

build-asan: deps
	@cmake -S . -B $(SAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DHOTPATH_SANITIZE=ON -DHOTPATH_WERROR=ON $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(SAN_BUILD) -j$(JOBS)

run: build
	@deploy/local/cluster --ingesters 3 --data $(DATA) $(if $(strip $(ARGS)),-- $(ARGS))

test: build build-asan
	@scripts/run-tests $(SAN_BUILD)

bench: build
	@bench/run $(BUILD)

format:
	@clang-format -i $$(git ls-files '*.c' '*.h' '*.cc')

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
