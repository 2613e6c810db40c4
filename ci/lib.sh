# shellcheck shell=bash
# Common helpers for ci/* and images/* scripts. Source it; do not run it.
# Resolves the repo root from the calling script's location, never from $PWD or /work.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CACHE="$REPO/.cache"
OUT="$REPO/out"
# Fixed path referenced by .cargo/config.toml (armv7 rustflags `-L`); created by ci/setup.
DORY_ARMV7_LIBDIR=/usr/local/lib/dory-armv7
# A static i386 busybox (ci/setup), run by tests/seccomp_diff.rs.
DORY_I386_BUSYBOX=/usr/local/lib/dory-i386/busybox
export REPO CACHE OUT DORY_ARMV7_LIBDIR
# rustup's cargo and rustup even when the caller's PATH lacks them (CI's environment).
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

die() { printf '%s: error: %s\n' "${0##*/}" "$*" >&2; exit 1; }
note() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }

# Run a command quietly; on failure, show its output and fail.
quiet() {
    local log rc=0
    log="$(mktemp)"
    "$@" >"$log" 2>&1 || rc=$?
    if [ "$rc" -ne 0 ]; then
        cat "$log" >&2
        rm -f "$log"
        die "failed ($rc): $*"
    fi
    rm -f "$log"
}

# arch name (x86_64|aarch64|armv7) -> Rust target / Debian arch / qemu-user binary
rust_target() {
    case "$1" in
        x86_64) echo x86_64-unknown-linux-musl ;;
        aarch64) echo aarch64-unknown-linux-musl ;;
        armv7) echo armv7-unknown-linux-musleabihf ;;
        *) die "unknown arch '$1' (want x86_64, aarch64 or armv7)" ;;
    esac
}
deb_arch() {
    case "$1" in
        x86_64) echo amd64 ;;
        aarch64) echo arm64 ;;
        armv7) echo armhf ;;
        *) die "unknown arch '$1' (want x86_64, aarch64 or armv7)" ;;
    esac
}
qemu_user() {
    case "$1" in
        x86_64) echo "" ;;
        aarch64) echo qemu-aarch64-static ;;
        armv7) echo qemu-arm-static ;;
        *) die "unknown arch '$1'" ;;
    esac
}
host_arch() {
    case "$(uname -m)" in
        x86_64) echo x86_64 ;;
        aarch64) echo aarch64 ;;
        armv7l) echo armv7 ;;
        *) uname -m ;;
    esac
}

# Load board/<name>/board.env (sets ARCH, RUST_TARGET, QEMU_* and CMDLINE).
load_board() {
    local b="$1"
    [ -n "$b" ] || die "usage: ${0##*/} <board>  (boards: $(cd "$REPO/board" && ls -d -- */board.env | sed 's,/board.env,,' | tr '\n' ' '))"
    BOARD_DIR="$REPO/board/$b"
    [ -f "$BOARD_DIR/board.env" ] || die "no such board '$b' (missing $BOARD_DIR/board.env)"
    # A script that loads several boards must not carry one board's optional settings
    # into the next (a disk, a network device).
    unset DISK_SIGNATURE DISK_DEVICE DATA_MB NET_DEVICE QEMU_CPU QEMU_EXTRA QEMU_DTB QEMU_SERIAL \
        DTBS KERNEL_IMAGE CONSOLE QEMU_MEM
    # shellcheck disable=SC1091
    . "$BOARD_DIR/board.env"
    BOARD="$b"
    export BOARD BOARD_DIR
}

# Build release dory for one Rust target (quiet). Prints nothing.
cargo_build_target() {
    local t="$1" var
    # The shipped binary: std rebuilt for size (-Zbuild-std, optimize_for_size), panics
    # abort without formatting machinery, no unwind tables. dory's lints forbid panics
    # outside tests, so nothing is lost; it halves the binary (and PID 1's code pages).
    # Needs rust-src; RUSTC_BOOTSTRAP unlocks the -Z flags on the pinned stable toolchain.
    # armv7 has no prebuilt std at all, so it always builds std. A target's rustflags from
    # .cargo/config.toml are repeated here because the env variable replaces them.
    # -Zshare-generics=n: at opt-level z rustc shares generic instances across crates,
    # which left the binary (a thin bin over the dory lib) 4-11 KiB larger even with LTO.
    var="CARGO_TARGET_$(printf '%s' "$t" | tr 'a-z-' 'A-Z_')_RUSTFLAGS"
    local flags="-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no -Zshare-generics=n"
    [ "$t" = armv7-unknown-linux-musleabihf ] && flags="$flags -Clink-self-contained=no -L $DORY_ARMV7_LIBDIR"
    env RUSTC_BOOTSTRAP=1 "$var=$flags" "$(command -v cargo)" build --quiet --manifest-path "$REPO/Cargo.toml" --release \
        -Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size --target "$t" \
        >"$CACHE/build-$t.log" 2>&1 || { cat "$CACHE/build-$t.log" >&2; die "build for $t failed"; }
}

# rustup installs cargo under ~/.cargo/bin; a fresh login may not have it on PATH yet.
if [ -d "${CARGO_HOME:-$HOME/.cargo}/bin" ]; then
    PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"
fi
export PATH

# deb_extract PKG[:ARCH] -> prints the directory holding the package's extracted files.
# Downloads with `apt-get download` into .cache/debs, extracts into .cache/x/<deb name>/.
# A cached .deb is reused without asking apt (apt-cache is ~2 s with 3 architectures);
# DORY_REFRESH=1 resolves the current candidate again. Foreign arches need ci/setup.
deb_extract() {
    local spec="$1" name arch deb dir
    name="${spec%%:*}"
    arch="${spec#*:}"
    [ "$arch" != "$spec" ] || arch="$(dpkg --print-architecture)"
    mkdir -p "$CACHE/debs" "$CACHE/x"
    deb=""
    if [ "${DORY_REFRESH:-0}" != 1 ]; then
        deb="$(ls -1t "$CACHE/debs/${name}_"*"_${arch}.deb" "$CACHE/debs/${name}_"*"_all.deb" 2>/dev/null | head -1 || true)"
    fi
    if [ -z "$deb" ]; then
        local before
        before="$(ls -1 "$CACHE/debs")"
        (cd "$CACHE/debs" && quiet apt-get download -qq "$name:$arch")
        deb="$(ls -1t "$CACHE/debs/${name}_"*"_${arch}.deb" "$CACHE/debs/${name}_"*"_all.deb" 2>/dev/null | head -1 || true)"
        [ -n "$deb" ] || die "apt-get download $name:$arch left no .deb in $CACHE/debs (before: $before)"
    fi
    dir="$CACHE/x/$(basename "$deb" .deb)"
    if [ ! -e "$dir/.extracted" ]; then
        rm -rf "$dir"
        mkdir -p "$dir"
        quiet dpkg-deb -x "$deb" "$dir"
        : >"$dir/.extracted"
    fi
    printf '%s\n' "$dir"
}
