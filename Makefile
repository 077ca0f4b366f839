# pcache - a page cache in user space.
#
#   make                        build/libpcache.{a,so}, build/pcache and
#                               build/libpcache-preload.so (docs/preload.md),
#                               build/pcache-fuse (docs/fuse.md),
#                               build/fuse-passthrough (bench/fio.sh's yardstick)
#   make demo                   build, then run the main job: build/pcache demo
#   make check                  build and run every test (per-test timeout)
#   make check SANITIZE=address,undefined   or   SANITIZE=thread
#   make DEBUG=1                -O0, invariant checks on
#   make install PREFIX=/usr/local

CC      ?= cc
PREFIX  ?= /usr/local
LIBDIR  ?= $(PREFIX)/lib
INCDIR  ?= $(PREFIX)/include
BINDIR  ?= $(PREFIX)/bin

SOVERSION := 0
VERSION   := 0.1.0

comma := ,
ifeq ($(SANITIZE),)
BUILD   ?= build
SANFLAGS :=
else
BUILD   ?= build/san-$(subst $(comma),-,$(SANITIZE))
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer
endif

ifeq ($(DEBUG),1)
OPT := -O0 -DPCACHE_DEBUG
else
OPT := -O2
endif

CFLAGS  ?=
CFLAGS  += -std=gnu11 -g $(OPT) -Wall -Wextra -Wno-unused-parameter \
	   -Wno-sign-compare -fPIC -D_GNU_SOURCE $(SANFLAGS)
CPPFLAGS += -Iinclude
LDLIBS  += -lpthread -luring
LDFLAGS += $(SANFLAGS)

LIB_SRCS := $(wildcard src/base/*.c src/lib/*.c src/mm/*.c src/fs/*.c src/backends/*.c)
LIB_OBJS := $(LIB_SRCS:%.c=$(BUILD)/%.o)
TOOL_SRCS := $(wildcard tools/*.c)
TOOL_OBJS := $(TOOL_SRCS:%.c=$(BUILD)/%.o)
TEST_SRCS := $(wildcard tests/test_*.c)
TEST_BINS := $(TEST_SRCS:tests/%.c=$(BUILD)/tests/%)
TEST_SCRIPTS := $(wildcard tests/test_*.sh)
PRELOAD_SRCS := $(wildcard frontends/preload*.c)
PRELOAD_OBJS := $(PRELOAD_SRCS:%.c=$(BUILD)/%.o)
# Programs the preload tests run under the shim: plain libc, no libpcache.
PRELOAD_HELPERS := $(patsubst tests/%.c,$(BUILD)/tests/%,$(wildcard tests/preload_*.c))
# pcache-fuse (docs/fuse.md): libfuse3's high-level API.
FUSE_SRCS := $(wildcard frontends/fuse*.c)
FUSE_OBJS := $(FUSE_SRCS:%.c=$(BUILD)/%.o)
FUSE_CFLAGS := $(shell pkg-config --cflags fuse3 2>/dev/null)
FUSE_LIBS := $(shell pkg-config --libs fuse3 2>/dev/null)
LD      ?= ld
OBJCOPY ?= objcopy

all: $(BUILD)/libpcache.a $(BUILD)/libpcache.so $(BUILD)/pcache \
	$(BUILD)/libpcache-preload.so $(BUILD)/pcache-fuse $(BUILD)/fuse-passthrough

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

$(BUILD)/libpcache.a: $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/libpcache.so: $(LIB_OBJS) src/libpcache.map
	$(CC) -shared -Wl,-soname,libpcache.so.$(SOVERSION) \
		-Wl,--version-script=src/libpcache.map -Wl,--no-undefined \
		$(LDFLAGS) -o $@ $(LIB_OBJS) $(LDLIBS)

# -rdynamic: the lock validator's backtraces name the functions.
$(BUILD)/pcache: $(TOOL_OBJS) $(BUILD)/libpcache.a
	$(CC) $(LDFLAGS) -rdynamic -o $@ $(TOOL_OBJS) $(BUILD)/libpcache.a $(LDLIBS)

# Tests link the static library, so they can reach internals too.
$(BUILD)/tests/%: $(BUILD)/tests/%.o $(BUILD)/libpcache.a
	$(CC) $(LDFLAGS) -rdynamic -o $@ $< $(BUILD)/libpcache.a $(LDLIBS)

$(BUILD)/tests/%.o: tests/%.c tests/harness.h tests/watchdog.h
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) -Isrc $(CFLAGS) -MMD -MP -c -o $@ $<

# The LD_PRELOAD shim: its own objects, plus the library objects with their
# calls of interposed libc symbols renamed to preload_libc_* (so the cache
# calls libc, never the shim); only the symbols in preload.syms leave it,
# unversioned, so they stand in for any version of libc's.
$(PRELOAD_OBJS): CFLAGS += -fvisibility=hidden -U_FORTIFY_SOURCE

$(BUILD)/frontends/preload.redefine: frontends/preload.syms
	@mkdir -p $(dir $@)
	sed -e '/^#/d' -e '/^$$/d' -e 's/.*/& preload_libc_&/' $< >$@

$(BUILD)/frontends/preload.map: frontends/preload.syms
	@mkdir -p $(dir $@)
	{ echo '{ global:'; sed -e '/^#/d' -e '/^$$/d' -e 's/.*/	&;/' $<; \
	  echo 'local: *; };'; } >$@

$(BUILD)/frontends/pcache-lib.o: $(LIB_OBJS) $(BUILD)/frontends/preload.redefine
	$(LD) -r -o $@.tmp $(LIB_OBJS)
	$(OBJCOPY) --redefine-syms=$(BUILD)/frontends/preload.redefine $@.tmp $@
	@rm -f $@.tmp

$(BUILD)/libpcache-preload.so: $(PRELOAD_OBJS) $(BUILD)/frontends/pcache-lib.o \
		$(BUILD)/frontends/preload.map
	$(CC) -shared -Wl,--version-script=$(BUILD)/frontends/preload.map \
		-Wl,--no-undefined $(LDFLAGS) -o $@ $(PRELOAD_OBJS) \
		$(BUILD)/frontends/pcache-lib.o $(LDLIBS) -ldl

$(BUILD)/tests/preload_%: tests/preload_%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(LDLIBS)

$(FUSE_OBJS): CFLAGS += $(FUSE_CFLAGS)

$(BUILD)/pcache-fuse: $(FUSE_OBJS) $(BUILD)/libpcache.a
	$(CC) $(LDFLAGS) -o $@ $(FUSE_OBJS) $(BUILD)/libpcache.a $(FUSE_LIBS) $(LDLIBS)

# A plain libfuse passthrough with the writeback cache on, for bench/fio.sh
# (docs/performance.md); no libpcache.
$(BUILD)/fuse-passthrough: bench/passthrough.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(FUSE_CFLAGS) $(LDFLAGS) -o $@ $< $(FUSE_LIBS)

demo: all
	$(BUILD)/pcache demo

check: all $(TEST_BINS) $(PRELOAD_HELPERS)
	@BUILD=$(BUILD) SANITIZE=$(SANITIZE) sh tests/run.sh $(TEST_BINS) $(TEST_SCRIPTS)

install: all
	install -d $(DESTDIR)$(LIBDIR) $(DESTDIR)$(INCDIR) $(DESTDIR)$(BINDIR) \
		$(DESTDIR)$(LIBDIR)/pkgconfig
	install -m 644 include/pcache.h $(DESTDIR)$(INCDIR)/
	install -m 644 $(BUILD)/libpcache.a $(DESTDIR)$(LIBDIR)/
	install -m 755 $(BUILD)/libpcache.so $(DESTDIR)$(LIBDIR)/libpcache.so.$(VERSION)
	ln -sf libpcache.so.$(VERSION) $(DESTDIR)$(LIBDIR)/libpcache.so.$(SOVERSION)
	ln -sf libpcache.so.$(SOVERSION) $(DESTDIR)$(LIBDIR)/libpcache.so
	install -m 755 $(BUILD)/pcache $(BUILD)/pcache-fuse $(DESTDIR)$(BINDIR)/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
	    -e 's|@INCDIR@|$(INCDIR)|' -e 's|@VERSION@|$(VERSION)|' \
	    src/pcache.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/pcache.pc

clean:
	rm -rf build

.PHONY: all demo check install clean
.SECONDARY:

-include $(LIB_OBJS:.o=.d) $(TOOL_OBJS:.o=.d) $(TEST_BINS:=.d) $(PRELOAD_OBJS:.o=.d) \
	$(FUSE_OBJS:.o=.d)
