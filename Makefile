# siamese — build, test, demo. `make help` lists the targets.
#
# LuaRocks (build type "make") passes CFLAGS, LIBFLAG, LUA_INCDIR and the
# INST_* directories; run by hand, pkg-config supplies the flags.

LUA        ?= lua5.4
BUSTED     ?= busted
# OpenBLAS is the OpenMP build (Debian's libopenblas-openmp-dev), found
# through its own pkg-config file and an rpath, so that it shares the
# OpenMP thread pool of our kernels (see src/threads.c).
BLAS_DIR   ?= /usr/lib/x86_64-linux-gnu/openblas-openmp
BLAS_PC    := PKG_CONFIG_PATH=$(BLAS_DIR)/pkgconfig pkg-config
PKG_CFLAGS := $(shell pkg-config --cflags lua5.4 libpng libjpeg zlib 2>/dev/null) $(shell $(BLAS_PC) --cflags openblas 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs libpng libjpeg zlib 2>/dev/null) $(shell $(BLAS_PC) --libs openblas 2>/dev/null) \
              -Wl,-rpath,$(BLAS_DIR)
LUA_INCDIR ?=
CFLAGS     ?= -O2 -g
WARN       := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
# OPT comes after CFLAGS: the kernels need -O3 to vectorise whatever the
# caller's CFLAGS (LuaRocks passes -O2); `make sanitize` sets OPT=-O1.
OPT        ?= -O3 -fno-math-errno -fno-trapping-math
ALL_CFLAGS := -std=c11 -ffp-contract=off -D_POSIX_C_SOURCE=200809L -fPIC -fopenmp -Isrc $(WARN) $(CFLAGS) $(OPT) $(PKG_CFLAGS) \
              $(if $(LUA_INCDIR),-I$(LUA_INCDIR))
LIBFLAG    ?= -shared
LIBS       := $(PKG_LIBS) -fopenmp -lm -lpthread

BUILD      ?= build
# Runs a script against this checkout (no install needed).
RUN_LUA    = LUA_PATH_5_4="./lua/?.lua;./lua/?/init.lua;;" LUA_CPATH_5_4="./$(BUILD)/?.so;;" $(LUA)
# src/l_pq.c is the module siamese.pq of its own (libpq), not part of core.so;
# src/conv/ is the convolution wing (src/conv/conv.h).
SRC        := $(filter-out src/l_pq.c,$(wildcard src/*.c)) $(wildcard src/conv/*.c)
CORE_SRC   := $(filter-out src/l_%.c src/siamese.c,$(SRC))
OBJ        := $(SRC:src/%.c=$(BUILD)/obj/%.o)
CORE_OBJ   := $(CORE_SRC:src/%.c=$(BUILD)/obj/%.o)
MODULE     := $(BUILD)/siamese/core.so
PQ_MODULE  := $(BUILD)/siamese/pq.so
PQ_CFLAGS  := $(shell pkg-config --cflags libpq 2>/dev/null)
PQ_LIBS    := $(shell pkg-config --libs libpq 2>/dev/null)
CTESTS     := $(patsubst spec/c/%.c,$(BUILD)/ctest/%,$(wildcard spec/c/test_*.c))

INST_LIBDIR ?= $(DESTDIR)/usr/local/lib/lua/5.4
INST_LUADIR ?= $(DESTDIR)/usr/local/share/lua/5.4
INST_BINDIR ?= $(DESTDIR)/usr/local/bin

.PHONY: all deps test ctest ctest-cpus spec sanitize demo bench lfw models oneshot install clean help train-att e2e doc

all: $(MODULE) $(PQ_MODULE)

help:
	@echo "make deps      install missing Debian packages (prints the command when not root)"
	@echo "make           build $(MODULE)"
	@echo "make test      build, plain-C tests of the core (under every OpenBLAS kernel and SIMD level), then every busted spec"
	@echo "make ctest-cpus the plain-C tests under every OpenBLAS kernel and SIMD level this CPU runs"
	@echo "make sanitize  the same suite built with AddressSanitizer + UBSan"
	@echo "make demo      the main job on bundled data"
	@echo "make bench     benchmarks, one JSON object per line"
	@echo "make doc       the API reference from the doc comments (LDoc) into build/doc"
	@echo "make e2e       the web demo driven in headless Chromium (screenshot: build/e2e/page.png), then behind nginx"
	@echo "make lfw       the LFW verification benchmark (10-fold, pairs.txt; LFW_ROOT=$(LFW_ROOT))"
	@echo "make models    re-create models/*.safetensors from the pinned face-api npm package"
	@echo "make oneshot   one-shot AT&T identification checks, trained encoder and face model (ATT_ROOT=$(ATT_ROOT))"
	@echo "make train-att the AT&T experiments (the seed recipe, then 2 protocols x 3 losses; ATT_ROOT=$(ATT_ROOT)), JSON in build/att/"

deps:
	@sh .ci/deps

$(BUILD)/obj/%.o: src/%.c $(wildcard src/*.h src/conv/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# -z nodelete: the module (and the thread pools of libgomp and OpenBLAS
# behind it) stays loaded when lua_close unloads C libraries, so no worker
# thread outlives its code.
$(MODULE): $(OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LIBFLAG) -Wl,-z,nodelete $(CFLAGS) -o $@ $(OBJ) $(LIBS)

$(PQ_MODULE): src/l_pq.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $(PQ_CFLAGS) $(LIBFLAG) $(CFLAGS) -o $@ $< $(PQ_LIBS)

$(BUILD)/ctest/%: spec/c/%.c $(wildcard spec/c/*.h src/*.h src/conv/*.h) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -o $@ $< $(CORE_OBJ) $(LIBS)

ctest: $(CTESTS)
	@set -e; for t in $(CTESTS); do $$t; done

# The plain-C tests under each OpenBLAS kernel and each SIMD level of our
# kernels this CPU runs (spec/c/each_cpu.sh).
ctest-cpus: $(CTESTS)
	@sh spec/c/each_cpu.sh $(CTESTS)

spec: $(MODULE) $(PQ_MODULE)
	$(BUSTED) $(BUSTED_ARGS)

test: deps
	@$(MAKE) --no-print-directory all ctest-cpus spec

# ASan + UBSan over the C tests and the whole busted suite. lua5.4 itself
# is not instrumented, so the runtime is preloaded.
SAN_FLAGS := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
sanitize: deps
	@$(MAKE) --no-print-directory BUILD=build-san CFLAGS="$(SAN_FLAGS)" OPT=-O1 LIBFLAG="-shared $(SAN_FLAGS)" all ctest-san spec-san

ctest-san: $(CTESTS)
	@set -e; for t in $(CTESTS); do ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 $$t; done

spec-san: $(MODULE) $(PQ_MODULE)
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	SIAMESE_BUILD=$(BUILD) $(BUSTED) $(BUSTED_ARGS)

demo: deps
	@$(MAKE) --no-print-directory all
	$(RUN_LUA) examples/demo.lua

bench: deps $(BUILD)/faceapi-bench/node_modules
	@$(MAKE) --no-print-directory all
	@set -e; for f in spec/bench/run.lua spec/bench/bench_*.lua; do \
	  [ -f "$$f" ] || continue; echo "# $$f" >&2; $(RUN_LUA) "$$f"; done

# face-api's own pipeline (tfjs WASM), the reference spec/bench/run.lua times
# in the same run: the packages pinned in spec/bench/faceapi/package-lock.json
# (versions and sha512), from the npm registry. Without node/npm or the
# registry the bench still runs, with face-api's figures measured earlier.
$(BUILD)/faceapi-bench/node_modules: spec/bench/faceapi/package.json spec/bench/faceapi/package-lock.json
	@command -v npm >/dev/null 2>&1 || sh .ci/deps nodejs npm || true
	@mkdir -p $(BUILD)/faceapi-bench
	@cp spec/bench/faceapi/package.json spec/bench/faceapi/package-lock.json $(BUILD)/faceapi-bench/
	@if (cd $(BUILD)/faceapi-bench && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error >/dev/null); \
	then touch $@; else echo "make bench: npm ci failed: face-api's figures will be the ones measured earlier" >&2; fi

# The web demo end to end: siamese serve + chromedriver + headless Chromium.
# The API reference: LDoc (Debian's lua-ldoc) over lua/siamese with
# lua/config.ld, into $(BUILD)/doc (index.html).
doc: deps
	@rm -rf build/doc
	@cd lua && ldoc -c config.ld -i . >/dev/null 2>&1 || (cd lua && ldoc -c config.ld -i .)
	@echo "make doc: build/doc/index.html"

e2e: deps
	@sh .ci/deps chromium chromium-driver nginx-light
	@$(MAKE) --no-print-directory all
	$(RUN_LUA) spec/e2e/run.lua
	$(RUN_LUA) spec/e2e/nginx.lua

LFW_ROOT   ?= ../shared/data/lfw
LFW_ALIGN  ?= dlib
lfw: deps
	@$(MAKE) --no-print-directory all
	bin/siamese eval lfw --pipeline faceapi --root $(LFW_ROOT) --pairs $(LFW_ROOT)/pairs.txt --align $(LFW_ALIGN) --out build/lfw-$(LFW_ALIGN)
	bin/siamese eval lfw --pipeline mobilefacenet --root $(LFW_ROOT) --pairs $(LFW_ROOT)/pairs.txt --out build/lfw-mobilefacenet

# The AT&T training table (examples/README.md, "AT&T training"): the
# seed's classic experiment, then both protocols with each loss, one JSON
# line per run in build/att/ (about an hour on 2 idle cores).
ATT_ROOT   ?= ../shared/data/att_faces
ATT_LOSSES ?= contrastive triplet bce
train-att: deps
	@$(MAKE) --no-print-directory all
	@mkdir -p $(BUILD)/att
	$(RUN_LUA) examples/train_att.lua $(ATT_ROOT) --recipe seed --seed 1 --threads 2 --out $(BUILD)/att/classic_seed \
	  | tail -1 | tee $(BUILD)/att/classic_seed.json
	@set -e; for loss in $(ATT_LOSSES); do \
	  $(RUN_LUA) examples/train_att_unseen.lua $(ATT_ROOT) --loss $$loss --seed 1 --threads 2 --out $(BUILD)/att/unseen_$$loss \
	    | tail -1 | tee $(BUILD)/att/unseen_$$loss.json; \
	  $(RUN_LUA) examples/train_att.lua $(ATT_ROOT) --recipe ours --loss $$loss --seed 1 --threads 2 --out $(BUILD)/att/classic_$$loss \
	    | tail -1 | tee $(BUILD)/att/classic_$$loss.json; \
	done

models: all
	$(LUA) models/convert_faceapi.lua models
	$(LUA) models/convert_mtcnn.lua --fetch models

# One-shot identification on the 10 AT&T people the trained encoder never
# saw (examples/oneshot_att.lua): trained encoder, then the face pipeline.
oneshot: deps
	@$(MAKE) --no-print-directory all
	$(RUN_LUA) examples/oneshot_att.lua $(ATT_ROOT) --model att
	$(RUN_LUA) examples/oneshot_att.lua $(ATT_ROOT) --model face --pipeline faceapi --crop whole
	$(RUN_LUA) examples/oneshot_att.lua $(ATT_ROOT) --model face --pipeline faceapi --crop detect
	$(RUN_LUA) examples/oneshot_att.lua $(ATT_ROOT) --model face --pipeline mobilefacenet --crop whole
	$(RUN_LUA) examples/oneshot_att.lua $(ATT_ROOT) --model face --pipeline mobilefacenet --crop detect

install: $(MODULE) $(PQ_MODULE)
	mkdir -p $(INST_LIBDIR)/siamese $(INST_LUADIR)/siamese/face/models $(INST_BINDIR)
	cp $(MODULE) $(INST_LIBDIR)/siamese/core.so
	cp $(PQ_MODULE) $(INST_LIBDIR)/siamese/pq.so
	cd lua && find siamese -name '*.lua' -exec sh -c 'mkdir -p "$$0/$$(dirname "$$1")" && cp "$$1" "$$0/$$1"' $(INST_LUADIR) {} \;
	cp models/*.safetensors models/*_encoder.lua $(INST_LUADIR)/siamese/face/models/
	cp bin/siamese $(INST_BINDIR)/siamese && chmod 755 $(INST_BINDIR)/siamese

clean:
	rm -rf build build-san
