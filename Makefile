# Build, test and install bootc. `make help` lists the targets.
GO       ?= go
PREFIX   ?= /usr
DESTDIR  ?=
BINDIR   := $(PREFIX)/bin
LIBEXEC  := $(PREFIX)/libexec/bootc
UNITDIR  := $(PREFIX)/lib/systemd/system
GENDIR   := $(PREFIX)/lib/systemd/system-generators
DRACUTDIR := $(PREFIX)/lib/dracut/modules.d/51bootc
DOCDIR   := $(PREFIX)/share/doc/bootc
OUT      := bin
STEPS    := bootc-fetch bootc-stage bootc-finalize bootc-kargs bootc-bound-images bootc-install bootc-status bootc-health
TOOLS    := bootc $(STEPS)
# containers/image needs build tags (pure-Go OpenPGP; no btrfs headers): one list, shared with
# the tests' own builds.
empty    :=
space    := $(empty) $(empty)
comma    := ,
TAGS     := $(subst $(space),$(comma),$(strip $(shell cat tools/bootc-fetch/TAGS)))
export GOFLAGS := -buildvcs=false -tags=$(TAGS)
# Static, reproducible binaries: no cgo, no local paths, no symbol tables.
GOBUILD  := CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w'
PKGS     := gobootc.dev/lib/... gobootc.dev/tools/... gobootc.dev/generators/... gobootc.dev/tests/...

.PHONY: all help deps build test check vet install sizes demo e2e bench fuzz clean
all: build

help:
	@echo "make deps     install what the build and tests need on this host (idempotent)"
	@echo "make build    build every tool into $(OUT)/"
	@echo "make test     deps + build + the unit and black-box tests, then the skipped ones and why"
	@echo "make check    deps + build + vet + test + e2e (what CI runs, ~30 min)"
	@echo "make demo     the main job: build and show bootc at work on this host"
	@echo "make install  install into DESTDIR/PREFIX"
	@echo "make sizes    print the size of each tool binary"
	@echo "make e2e      VM tests: install, boot, upgrade, roll back the sample image under QEMU"
	@echo "make bench    figures against podman and skopeo (time, bytes, disk, memory, /etc merge)"
	@echo "make fuzz     run every fuzz target for FUZZTIME (default 30s) each; not part of check"

deps:
	@scripts/deps.sh

build:
	@mkdir -p $(OUT)
	@for t in $(TOOLS); do $(GOBUILD) -o $(OUT)/$$t ./tools/$$t || exit 1; done
	@$(GOBUILD) -o $(OUT)/bootc-root-setup ./generators/cmd/bootc-root-setup
	@$(GOBUILD) -o $(OUT)/bootc-systemd-generator ./generators/cmd/bootc-systemd-generator

# scripts/testsupport.go: test support (a package whose name ends in "test") is for tests only;
# scripts/importgroups.go: imports grouped as goimports -local gobootc.dev groups them.
vet:
	$(GO) vet $(PKGS)
	@for f in scripts/*.go; do $(GO) vet $$f || exit 1; done
	@test -z "$$(gofmt -l lib tools generators tests scripts)" || { echo "not gofmt-formatted:"; gofmt -l lib tools generators tests scripts; exit 1; }
	@$(GO) run scripts/testsupport.go gobootc.dev/lib/... gobootc.dev/tools/... gobootc.dev/generators/...
	@$(GO) run scripts/importgroups.go lib tools generators tests scripts

# go test's usual lines, then the tests that were skipped and why (scripts/testsummary.go). bash
# for pipefail: the recipe fails when go test does. deps first: without its packages and
# settings tests fail or skip, and it takes a fraction of a second when nothing is missing.
TEST_SUMMARY := $(OUT)/test-summary.txt
test: SHELL := /bin/bash
test: deps build
	@set -o pipefail; BOOTC_TEST_BIN=$(CURDIR)/$(OUT) $(GO) test -json -count=1 $(PKGS) \
		| $(GO) run scripts/testsummary.go -o $(TEST_SUMMARY)

# What CI runs: everything, the VM tests included (about 55 minutes here; `make test` is the
# quick path while developing). The summary of what `make test` skipped closes the output; the
# VM tests it lists are the ones `make e2e` then runs.
check: deps build vet test e2e
	@echo "make test:"; cat $(TEST_SUMMARY)

sizes: build
	@cd $(OUT) && for t in $(TOOLS); do printf '%-20s %6s KiB\n' $$t $$(( $$(stat -c %s $$t) / 1024 )); done

install: build
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(LIBEXEC) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(GENDIR) $(DESTDIR)$(DRACUTDIR)
	install -m 0755 $(OUT)/bootc $(DESTDIR)$(BINDIR)/bootc
	for t in $(STEPS) bootc-root-setup; do install -m 0755 $(OUT)/$$t $(DESTDIR)$(LIBEXEC)/$$t; done
	install -m 0755 dracut/51bootc/module-setup.sh $(DESTDIR)$(DRACUTDIR)/
	install -m 0755 $(OUT)/bootc-systemd-generator $(DESTDIR)$(GENDIR)/bootc-systemd-generator
	install -D -m 0644 units/90-bootc-offline-update.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/90-bootc-offline-update.rules
	install -D -m 0644 units/80-bootc.preset $(DESTDIR)$(PREFIX)/lib/systemd/system-preset/80-bootc.preset
	install -d $(DESTDIR)$(UNITDIR)/local-fs.target.wants
	ln -sfn ../bootc-remount.service $(DESTDIR)$(UNITDIR)/local-fs.target.wants/bootc-remount.service
	find units -maxdepth 1 -type f \( -name '*.service' -o -name '*.timer' -o -name '*.path' -o -name '*.target' \) \
		-exec install -m 0644 {} $(DESTDIR)$(UNITDIR)/ \;
	install -d -m 0755 $(DESTDIR)$(PREFIX)/lib/bootc/kargs.d $(DESTDIR)$(PREFIX)/lib/bootc/bound-images.d $(DESTDIR)$(PREFIX)/lib/bootc/install
	# Bound images live in bootc's own container storage on the physical root.
	ln -sfn ../../../sysroot/bootc/storage $(DESTDIR)$(PREFIX)/lib/bootc/storage
	# The units' Documentation= lines name these; docs/ keeps its place so README's links work.
	install -d $(DESTDIR)$(DOCDIR)/docs
	install -m 0644 README.md $(DESTDIR)$(DOCDIR)/README.md
	install -m 0644 docs/*.md $(DESTDIR)$(DOCDIR)/docs/

# The lifecycle in a VM, narrated: install from the image's container, boot, upgrade, rollback,
# power cut during finalize (GRUB under SeaBIOS). DEMO_FLAGS go to the demo, e.g.
# DEMO_FLAGS='-bootloader systemd -power-cut=false'.
demo: deps build
	@scripts/demo.sh $(DEMO_FLAGS)

# VM tests under QEMU (TCG), one VM at a time: a disk laid out by hand (TestBootPath), then the
# lifecycle with GRUB under SeaBIOS and systemd-boot under OVMF (TestLifecycle: install from the
# image's container, upgrade, /etc merge, kargs.d, rollback, power cut during finalize, two bad
# updates that fall back by themselves), then
# updates nobody types (TestUpdates: a USB stick with no network, bound images, the update
# services). The console log of every boot is kept under BOOTC_TEST_ARTIFACTS.
BOOTC_TEST_ARTIFACTS ?= /var/tmp/bootc-e2e-artifacts
e2e: deps build
	@mkdir -p $(BOOTC_TEST_ARTIFACTS)
	@BOOTC_TEST_BIN=$(CURDIR)/$(OUT) BOOTC_VM_TESTS=1 BOOTC_TEST_ARTIFACTS=$(BOOTC_TEST_ARTIFACTS) \
		$(GO) test -count=1 -timeout 70m -run 'TestBootPath|TestLifecycle|TestUpdates' -v ./tests/integration; \
		rc=$$?; echo "e2e: the console log of every boot is in $(BOOTC_TEST_ARTIFACTS)"; exit $$rc

# Figures against podman and skopeo on a real Debian image from a local registry; the JSON copy
# goes to $(BOOTC_BENCH_OUT) or a temporary file, named at the end.
bench: deps build
	$(GO) run ./tests/integration/cmd/bench -bin $(CURDIR)/$(OUT)

# Every fuzz target in turn, FUZZTIME each (default 30s); `go test` already replays their seed
# corpora and every crasher kept in testdata/fuzz.
fuzz:
	@FUZZTIME=$(or $(FUZZTIME),30s) scripts/fuzz.sh $(FUZZ)

clean:
	rm -rf $(OUT)
