# Convenience targets; the build itself is CMake (see README.md).
FUZZ_SECONDS ?= 60
.PHONY: build test demo fuzz format
build:
	cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build -j
test:
	./scripts/test.sh
demo:
	./scripts/demo.sh
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) ./scripts/fuzz.sh
format:
	./scripts/format.sh
