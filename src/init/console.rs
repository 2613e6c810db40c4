//! Console output: each line is formatted into a stack buffer and written with one
//! `write(2)` on fd 1, so lines from dory and from containers never interleave mid-line.
//! Once [`make_nonblocking`] ran, a console that does not drain (a serial line held by
//! flow control, a pipe nobody reads) costs dropped lines, counted and reported when it
//! drains again, never a stalled PID 1.

use core::fmt;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

/// Longest console line; longer text is cut.
pub const MAX_CONSOLE_LINE: usize = 512;

static DEBUG: AtomicBool = AtomicBool::new(false);
static START: OnceLock<Instant> = OnceLock::new();
/// The console reopened non-blocking (see [`make_nonblocking`]); fd 1 until then.
static OUT: OnceLock<OwnedFd> = OnceLock::new();
/// Lines lost to a full console since the last one that got through.
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// A line was cut short by a full console: the next output starts on a new line.
static CUT: AtomicBool = AtomicBool::new(false);

/// Writes dory's console lines through a new, non-blocking open file description of
/// whatever fd 1 is (through /proc/self/fd/1, so /proc must be mounted): fds 0-2 share
/// theirs with the rescue shell's stdin, which must stay blocking. O_APPEND keeps a log
/// file's lines in order with other writers.
pub fn make_nonblocking() -> nix::Result<()> {
    use nix::fcntl::OFlag;
    let fd = nix::fcntl::open(
        "/proc/self/fd/1",
        OFlag::O_WRONLY | OFlag::O_APPEND | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC | OFlag::O_NOCTTY,
        nix::sys::stat::Mode::empty(),
    )?;
    let _ = OUT.set(fd);
    Ok(())
}

pub fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

pub fn debug_on() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

/// Milliseconds on the monotonic clock since dory started (the supervisor's time base).
pub fn now_ms() -> u64 {
    let start = START.get_or_init(Instant::now);
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Seconds with milliseconds, for console lines: `1.234`.
pub struct Secs(pub u64);

impl fmt::Display for Secs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}", self.0 / 1000, self.0 % 1000)
    }
}

struct Line {
    buf: [u8; MAX_CONSOLE_LINE],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; MAX_CONSOLE_LINE],
            len: 0,
        }
    }
    fn push(&mut self, bytes: &[u8]) {
        // Keep room for the final newline.
        let room = MAX_CONSOLE_LINE - 1 - self.len.min(MAX_CONSOLE_LINE - 1);
        let take = bytes.len().min(room);
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            bytes.get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
    }
    fn finish(&mut self) -> &[u8] {
        if let Some(b) = self.buf.get_mut(self.len) {
            *b = b'\n';
            self.len += 1;
        }
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.push(s.as_bytes());
        Ok(())
    }
}

/// Writes as much of `bytes` as the console takes; false when it is full (EAGAIN).
fn write_some(out: BorrowedFd<'_>, mut bytes: &[u8]) -> bool {
    while !bytes.is_empty() {
        match nix::unistd::write(out, bytes) {
            Ok(0) => return true,
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                // Cut mid-line: the next line that gets through starts afresh.
                CUT.store(true, Ordering::Relaxed);
                return false;
            }
            // No console (or a closed pipe in tests): nothing more can be done.
            Err(_) => return true,
        }
    }
    true
}

fn write_all(bytes: &[u8]) {
    let stdout = std::io::stdout();
    let out = OUT.get().map_or(stdout.as_fd(), |fd| fd.as_fd());
    if CUT.swap(false, Ordering::Relaxed) && !write_some(out, b"\n") {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let lost = DROPPED.swap(0, Ordering::Relaxed);
    if lost > 0 {
        let mut note = Line::new();
        let _ = fmt::write(
            &mut note,
            format_args!("dory: console: {lost} lines dropped (the console did not drain)"),
        );
        if !write_some(out, note.finish()) {
            DROPPED.fetch_add(lost + 1, Ordering::Relaxed);
            return;
        }
    }
    if !write_some(out, bytes) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes one formatted line to the console.
pub fn write_say(args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = fmt::write(&mut line, args);
    write_all(line.finish());
}

/// Writes `[id] text` to the console.
pub fn container_line(id: &str, text: &[u8]) {
    let mut line = Line::new();
    line.push(b"[");
    line.push(id.as_bytes());
    line.push(b"] ");
    line.push(text);
    write_all(line.finish());
}

/// `say!("dory: …")`: one console line.
macro_rules! say {
    ($($t:tt)*) => { $crate::init::console::write_say(format_args!($($t)*)) };
}

/// Like `say!`, only with `dory.debug` (or `--debug`).
macro_rules! debug {
    ($($t:tt)*) => {
        if $crate::init::console::debug_on() {
            $crate::init::console::write_say(format_args!($($t)*))
        }
    };
}

pub(crate) use {debug, say};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_cut_and_terminated() {
        let mut l = Line::new();
        l.push(&[b'x'; MAX_CONSOLE_LINE * 2]);
        let out = l.finish();
        assert_eq!(out.len(), MAX_CONSOLE_LINE);
        assert_eq!(out.last(), Some(&b'\n'));
        let mut l = Line::new();
        fmt::write(&mut l, format_args!("dory: {} {}", "a", Secs(1234))).unwrap();
        assert_eq!(l.finish(), b"dory: a 1.234\n");
    }
}
