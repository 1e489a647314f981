# Makefile -- build, test, install and uninstall the smtp package with the targets every
# Tcl extension has (TEA's). cargo does the building; this file only knows where things go.
#
#   make                  release build: target/release/libtclsmtp.so and its pkgIndex.tcl
#   make test             every test: scripts/test.sh, the README's test command
#   make doc              the manual from doc/smtp.man (tcllib's dtplite): target/manual/
#                         smtp.n (man page, section n) and smtp.html
#   make install          the library and pkgIndex.tcl into $(pkgdir), which is on the
#                         auto_path of Debian's tclsh8.6 for PREFIX /usr/local and /usr;
#                         smtp.n into $(mandir) (Debian's tcllib has its smtp manual in
#                         section 3tcl, so `man n smtp` is ours); smtp.html into $(htmldir)
#   make uninstall        removes what install put there
#   make clean            cargo clean
#
# Variables (on the command line): PREFIX (/usr/local), DESTDIR (a staging root, for
# packaging: files go to $(DESTDIR)$(PREFIX)/...), PROFILE (release; debug installs the
# debug build), CARGO_TARGET_DIR (target, as for cargo).
#
# `make && sudo make install`: install builds only when the build is missing or older
# than the sources, so root needs no cargo once make has run.

PREFIX = /usr/local
DESTDIR =
PROFILE = release
CARGO_TARGET_DIR = target
export CARGO_TARGET_DIR
CARGO = cargo
DTPLITE = dtplite
INSTALL = install

# The version lives in Cargo.toml only (the version line of its [package] table).
VERSION := $(shell sed -n '/^\[package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
ifeq ($(VERSION),)
$(error no version found in the [package] table of Cargo.toml)
endif

pkgdir = $(PREFIX)/lib/tcltk/smtp$(VERSION)
mandir = $(PREFIX)/share/man/mann
htmldir = $(PREFIX)/share/doc/tclsmtp

build = $(CARGO_TARGET_DIR)/$(PROFILE)
manual = $(CARGO_TARGET_DIR)/manual
# cargo's profile for target/debug is called dev.
cargo_profile = $(if $(filter debug,$(PROFILE)),dev,$(PROFILE))
# rustup puts cargo in ~/.cargo/bin, which a fresh shell may not have on PATH yet.
export PATH := $(HOME)/.cargo/bin:$(PATH)

sources := Cargo.toml Cargo.lock build.rs pkgIndex.tcl.in $(shell find src tcl -type f)

.PHONY: all doc test install uninstall clean

all: $(build)/.built

# cargo builds the library and build.rs writes pkgIndex.tcl next to it; the stamp tells
# make when that was last done (cargo leaves pkgIndex.tcl alone when only src/ changed).
$(build)/.built: $(sources)
	$(CARGO) build --lib --profile $(cargo_profile)
	touch $@

doc: $(manual)/smtp.n $(manual)/smtp.html

# dtplite renders doc/smtp.man with [vset VERSION] set to the version of Cargo.toml, the one
# place the version is written (the manual has no copy of it).
$(manual)/smtp.n $(manual)/smtp.html &: doc/smtp.man Cargo.toml
	@command -v $(DTPLITE) >/dev/null || \
	    { echo "make: $(DTPLITE) not found: it comes with tcllib (apt-get install tcllib)" >&2; exit 1; }
	mkdir -p $(manual)
	{ echo '[vset VERSION $(VERSION)]'; cat doc/smtp.man; } > $(manual)/smtp.man
	$(DTPLITE) -o $(manual)/smtp.n nroff $(manual)/smtp.man
	$(DTPLITE) -o $(manual)/smtp.html html $(manual)/smtp.man

test:
	scripts/test.sh

install: all doc
	$(INSTALL) -d $(DESTDIR)$(pkgdir) $(DESTDIR)$(mandir) $(DESTDIR)$(htmldir)
	$(INSTALL) -m 644 $(build)/libtclsmtp.so $(build)/pkgIndex.tcl $(DESTDIR)$(pkgdir)
	$(INSTALL) -m 644 $(manual)/smtp.n $(DESTDIR)$(mandir)
	$(INSTALL) -m 644 $(manual)/smtp.html $(DESTDIR)$(htmldir)

# The package's own directories go with their files; the directories that hold them or
# the man page (lib/tcltk, share/doc, share/man/mann) only when that leaves them empty:
# install makes them on a stock Debian, which has none of them under /usr/local.
uninstall:
	rm -f $(DESTDIR)$(pkgdir)/libtclsmtp.so $(DESTDIR)$(pkgdir)/pkgIndex.tcl
	rm -f $(DESTDIR)$(mandir)/smtp.n $(DESTDIR)$(htmldir)/smtp.html
	for d in $(DESTDIR)$(pkgdir) $(DESTDIR)$(htmldir); do [ ! -d $$d ] || rmdir $$d; done
	for d in $(DESTDIR)$(PREFIX)/lib/tcltk $(DESTDIR)$(PREFIX)/share/doc $(DESTDIR)$(mandir); do \
	    [ ! -d $$d ] || rmdir --ignore-fail-on-non-empty $$d; done

clean:
	$(CARGO) clean
