//! Helpers for unit tests that need root or the real host.

use std::io::Write;

/// Reports a skipped test where CI sees it: straight to fd 2, past libtest's capture
/// (which swallows `eprintln!` of passing tests), as `SKIPPED: <test>: <why>`. ci/test
/// fails a root run on any such line.
pub fn skip(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
}

/// Reports a test that does not apply to this run by design (e.g. a syscall qemu-user
/// does not emulate, in the qemu-user pass of a test that also runs natively): not a
/// skip, and said so, past the capture too.
pub fn not_applicable(test: &str, why: &str) {
    let _ = writeln!(std::io::stderr(), "NOT APPLICABLE: {test}: {why}");
}

/// True (after reporting the skip) when not root: the caller returns.
pub fn skip_unless_root(test: &str) -> bool {
    let root = nix::unistd::geteuid().is_root();
    if !root {
        skip(test, "needs root");
    }
    !root
}
