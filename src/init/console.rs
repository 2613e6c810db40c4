//! Console output: each line is formatted into a stack buffer and written with one
//! `write(2)` on fd 1, so lines from dory and from containers never interleave mid-line.
//! Once [`make_nonblocking`] ran, a console that drains slowly paces lines (each may wait
//! [`LINE_WAIT_MS`]), and one that does not drain (a serial line held by flow control, a
//! pipe nobody reads) costs dropped lines, counted and reported when it drains again,
//! never a stalled PID 1.

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
/// The second (of [`now_ms`]) that [`WAITED_MS`] counts waits in.
static WAIT_SECOND: AtomicU64 = AtomicU64::new(0);
/// Milliseconds spent waiting for the console in [`WAIT_SECOND`].
static WAITED_MS: AtomicU64 = AtomicU64::new(0);

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

/// How long one line may wait for a console that is draining (a serial line at 115200
/// baud takes ~575 bytes in that time): a burst of boot lines is paced, not dropped. A
/// console that is not draining costs this once, then lines are dropped without waiting
/// until one gets through again.
const LINE_WAIT_MS: u16 = 50;

/// At most this much of any second goes to waiting for the console, however many lines
/// a flood brings: the supervisor loop (and the watchdog it pets) keeps 3/4 of its time.
const WAIT_BUDGET_MS_PER_SECOND: u64 = 250;

/// How long the next line may wait: [`LINE_WAIT_MS`] within what is left of this
/// second's budget, 0 once lines are being dropped (the console is not draining).
fn line_wait_ms() -> u16 {
    if DROPPED.load(Ordering::Relaxed) > 0 {
        return 0;
    }
    let second = now_ms() / 1000;
    if WAIT_SECOND.swap(second, Ordering::Relaxed) != second {
        WAITED_MS.store(0, Ordering::Relaxed);
    }
    let left = WAIT_BUDGET_MS_PER_SECOND.saturating_sub(WAITED_MS.load(Ordering::Relaxed));
    u16::try_from(left.min(u64::from(LINE_WAIT_MS))).unwrap_or(0)
}

/// Writes as much of `bytes` as the console takes, waiting up to `wait_ms` (spent across
/// calls) for room; false when it stayed full (EAGAIN).
fn write_some(out: BorrowedFd<'_>, mut bytes: &[u8], wait_ms: &mut u16) -> bool {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    while !bytes.is_empty() {
        match nix::unistd::write(out, bytes) {
            Ok(0) => return true,
            Ok(n) => bytes = bytes.get(n..).unwrap_or_default(),
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) if *wait_ms > 0 => {
                let start = Instant::now();
                let mut fds = [PollFd::new(out, PollFlags::POLLOUT)];
                let _ = poll(&mut fds, PollTimeout::from(*wait_ms));
                let spent = u16::try_from(start.elapsed().as_millis()).unwrap_or(u16::MAX);
                *wait_ms = wait_ms.saturating_sub(spent.max(1));
            }
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
    let allowed = line_wait_ms();
    let mut wait_ms = allowed;
    write_line(out, bytes, &mut wait_ms);
    let spent = u64::from(allowed.saturating_sub(wait_ms));
    WAITED_MS.fetch_add(spent, Ordering::Relaxed);
}

fn write_line(out: BorrowedFd<'_>, bytes: &[u8], wait_ms: &mut u16) {
    if CUT.swap(false, Ordering::Relaxed) && !write_some(out, b"\n", wait_ms) {
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
        if !write_some(out, note.finish(), wait_ms) {
            DROPPED.fetch_add(lost + 1, Ordering::Relaxed);
            return;
        }
    }
    if !write_some(out, bytes, wait_ms) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Writes one formatted line to the console.
pub fn write_say(args: fmt::Arguments<'_>) {
    let mut line = Line::new();
    let _ = fmt::write(&mut line, args);
    let bytes = line.finish();
    write_all(bytes);
    super::logfile::line(
        super::logfile::DORY_STREAM,
        bytes.strip_suffix(b"\n").unwrap_or(bytes),
    );
}

/// Writes `[id] text` to the console.
pub fn container_line(id: &str, text: &[u8]) {
    let mut line = Line::new();
    line.push(b"[");
    line.push(id.as_bytes());
    line.push(b"] ");
    line.push(text);
    write_all(line.finish());
    super::logfile::line(id, text);
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
