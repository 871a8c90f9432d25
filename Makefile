# vireo build. Sources are found by wildcard, so adding a file under src/ or tests/unit/
# needs no edit here. BUILD selects the output tree so that gcc, clang and sanitizer builds
# can live side by side: make BUILD=build/clang CC=clang.
CC      ?= gcc
BUILD   ?= build
SAN     ?=
OPT     ?= -O2
CFLAGS_BASE := -std=gnu11 -Wall -Wextra -Werror -g $(OPT) -D_GNU_SOURCE -Isrc -pthread \
               -fno-strict-aliasing $(SAN)
CFLAGS  ?=
ALL_CFLAGS := $(CFLAGS_BASE) $(CFLAGS)
LDLIBS  := -pthread -luring -ljson-c -lseccomp

LIB_SRCS  := $(shell find src -name '*.c' ! -name main.c | sort)
LIB_OBJS  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
TEST_SRCS := $(sort $(wildcard tests/unit/test_*.c))
TEST_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRCS))
BENCH_SRCS := $(sort $(wildcard bench/*.c))
BENCH_BINS := $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRCS))

.PHONY: all vireo unit-tests benches test run clean guest fuzz deps
all: $(BUILD)/vireo $(TEST_BINS) $(BENCH_BINS)
vireo: $(BUILD)/vireo

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libvireo.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/vireo: src/main.c $(BUILD)/libvireo.a
	$(CC) $(ALL_CFLAGS) -MMD -MP $< $(BUILD)/libvireo.a $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libvireo.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP $< $(BUILD)/libvireo.a $(LDLIBS) -lcmocka -o $@

$(BUILD)/bench/%: bench/%.c $(BUILD)/libvireo.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP $< $(BUILD)/libvireo.a $(LDLIBS) -o $@

unit-tests: $(TEST_BINS)
benches: $(BENCH_BINS)

# The DMA pin benchmark (S3): ns per page for pin and unpin at batch sizes 1, 8, 64, 512.
.PHONY: bench-pin
bench-pin: $(BUILD)/bench/pin
	$(BUILD)/bench/pin

# Virtqueues: ns per request (vq_pop + vq_push), split and packed, direct and indirect.
.PHONY: bench-virtqueue
bench-virtqueue: $(BUILD)/bench/virtqueue
	$(BUILD)/bench/virtqueue

# Block I/O over vhost-user: vireo's blk backend vs qemu-storage-daemon on the same file, both
# O_DIRECT, driven by bench/blk (vireo's vhost-user front-end); see bench/blk.sh.
# vhost-user net: vireo's loopback backend against DPDK's net_vhost in io mode, both driven by
# testpmd's net_virtio_user (installs dpdk-dev when missing); see bench/net.sh.
.PHONY: bench-net
bench-net: $(BUILD)/vireo
	BUILD=$(BUILD) bash bench/net.sh

.PHONY: bench-blk
bench-blk: $(BUILD)/vireo $(BUILD)/bench/blk
	BUILD=$(BUILD) bash bench/blk.sh

# Request round trips through `vireo run`'s virtio-mmio (in-process blk and rng, blk over
# vhost-user), timed in the guest by the kut virtio kernel; see bench/mmio.sh.
.PHONY: bench-mmio
bench-mmio: $(BUILD)/vireo
	BUILD=$(BUILD) bash bench/mmio.sh

# virtio-vsock throughput (S11): QEMU -accel kvm with vhost-user-vsock-pci on vireo's backend
# and vireo run --vsock (in-process),
# vsockcat perf in the guest and on the host; 64 KiB messages, 1 and 4 connections. Without
# a usable KVM it says so and exits 0 (BENCH_ACCEL=tcg: TCG figures); see bench/vsock.sh.
.PHONY: bench-vsock
bench-vsock: $(BUILD)/vireo $(BUILD)/bench/vsock_dev
	BUILD=$(BUILD) bash bench/vsock.sh

# Boot (issue 5): vireo vs QEMU microvm -accel kvm on the default guest, 1 vCPU, 256 MiB, 10
# interleaved runs each: time to the banner and to exit, vireo's set-up time, VMM memory
# overhead. On a PVM host (no usable Linux boot) the kut kernel instead; see bench/boot.sh.
.PHONY: bench-boot
bench-boot: $(BUILD)/vireo $(BUILD)/bench/boot_once
	BUILD=$(BUILD) bash bench/boot.sh

deps:
	bash scripts/deps.sh

guest: deps
	bash scripts/make-guest.sh

# The whole suite: deps, gcc build + unit tests, ASan/UBSan build + unit tests, clang build,
# integration tests; ends with "N passed, N failed, N skipped".
test: deps
	bash scripts/run-tests.sh

run: deps
	bash scripts/run.sh

# libFuzzer targets (tests/fuzz/fuzz_*.c), each run FUZZ_SECONDS (default 60) on its corpus
# build/fuzz/corpus-NAME; see tests/fuzz/Makefile.
FUZZ_SECONDS ?= 60
fuzz:
	$(MAKE) -f tests/fuzz/Makefile run FUZZ_SECONDS=$(FUZZ_SECONDS)

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
