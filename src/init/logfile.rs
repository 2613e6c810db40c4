//! Logs that survive a reboot: each container's output lines, and dory's own console
//! lines, also go to files in `/data/log/` (boards with `data`).
//!
//! - `<id>.log` per container and `@dory.log` for dory (`@` is never in an id). A file
//!   that would pass `fileBytes` is rotated: `<id>.log` → `<id>.log.1` → … →
//!   `<id>.log.<files-1>`, the oldest deleted. When all of `/data/log` passes
//!   `totalBytes`, the oldest rotated files (of any container) are deleted, and if that is
//!   not enough the largest current file is emptied.
//! - Each file's first line in a boot is `---- boot <boot id>`, so lines of earlier boots
//!   can be told apart.
//! - The supervisor never waits for the disk: lines go through a non-blocking pipe to a
//!   writer process (forked at boot, before any container) that owns the files. A process
//!   and not a thread: PID 1 stays single-threaded, so its container children (raw
//!   clone) never inherit a lock another thread held, and libc's set*id broadcasts work. A full pipe (the disk fell behind) drops the line
//!   and counts it; the next line that fits is preceded by `dory: log: N lines dropped`.
//! - `dory ctl logs --files ID` gets the files' descriptors from PID 1 (oldest first) and
//!   reads them itself: PID 1 reads no file for a client.

use std::io::Write;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{self, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::{self, Mode};

use super::board::Error;
use super::console::say;

/// `logs.fileBytes` when not given, and its bounds.
pub const DEFAULT_FILE_BYTES: u32 = 256 * 1024;
pub const MIN_FILE_BYTES: u32 = 4 * 1024;
pub const MAX_FILE_BYTES: u32 = 64 * 1024 * 1024;
/// `logs.files` (per container, the current one included) when not given, and its bounds.
pub const DEFAULT_FILES: u32 = 4;
pub const MAX_FILES: u32 = 16;
/// `logs.totalBytes` when not given, and its largest value.
pub const DEFAULT_TOTAL_BYTES: u32 = 8 * 1024 * 1024;
pub const MAX_TOTAL_BYTES: u32 = 1024 * 1024 * 1024;
/// The directory below the data root.
pub const LOG_DIR: &str = "log";
/// dory's own file (`@` is not allowed in a container id).
pub const DORY_STREAM: &str = "@dory";
/// Longest stream name in a record (a container id).
const MAX_STREAM: usize = 64;
/// Longest text of one record (a console line is at most 256 bytes plus the prefix).
const MAX_TEXT: usize = 1024;
/// Bytes the pipe holds while the disk is slow (asked with F_SETPIPE_SZ).
const PIPE_BYTES: i32 = 256 * 1024;
/// Streams the writer keeps open (containers plus dory's).
const MAX_STREAMS: usize = 32;
/// The longest a written line waits for fdatasync.
const SYNC_EVERY: Duration = Duration::from_secs(2);

/// The limits from board.json `logs`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub file_bytes: u32,
    pub files: u32,
    pub total_bytes: u32,
    /// `"enabled": false` turns the files off (the console and the ring stay).
    pub enabled: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            file_bytes: DEFAULT_FILE_BYTES,
            files: DEFAULT_FILES,
            total_bytes: DEFAULT_TOTAL_BYTES,
            enabled: true,
        }
    }
}

/// Validates board.json `logs`.
pub fn limits(
    file_bytes: Option<u32>,
    files: Option<u32>,
    total_bytes: Option<u32>,
    enabled: Option<bool>,
) -> Result<Limits, Error> {
    let l = Limits {
        file_bytes: file_bytes.unwrap_or(DEFAULT_FILE_BYTES),
        files: files.unwrap_or(DEFAULT_FILES),
        total_bytes: total_bytes.unwrap_or(DEFAULT_TOTAL_BYTES),
        enabled: enabled.unwrap_or(true),
    };
    let bad = |field: &str, problem: String| Error::Invalid {
        field: format!("logs.{field}"),
        problem,
    };
    if !(MIN_FILE_BYTES..=MAX_FILE_BYTES).contains(&l.file_bytes) {
        return Err(bad(
            "fileBytes",
            format!(
                "{} is outside {MIN_FILE_BYTES}-{MAX_FILE_BYTES} (limit)",
                l.file_bytes
            ),
        ));
    }
    if !(1..=MAX_FILES).contains(&l.files) {
        return Err(bad(
            "files",
            format!("{} is outside 1-{MAX_FILES} (limit)", l.files),
        ));
    }
    // One container's full set of files fits the quota.
    let one_set = u64::from(l.file_bytes) * u64::from(l.files);
    if !(one_set..=u64::from(MAX_TOTAL_BYTES)).contains(&u64::from(l.total_bytes)) {
        return Err(bad(
            "totalBytes",
            format!(
                "{} is outside files × fileBytes ({one_set})-{MAX_TOTAL_BYTES} (limit)",
                l.total_bytes
            ),
        ));
    }
    Ok(l)
}

/// What PID 1 keeps: the pipe's write end, the directory for `ctl logs --files` (a
/// read-only detached mount of it where the kernel has mount_setattr) and the writer's
/// pid. PID 1 has one thread, so the lock is never contended.
struct Shared {
    sender: OwnedFd,
    dir: OwnedFd,
    writer: nix::unistd::Pid,
}

/// A read-only detached mount of `dir`: a descriptor opened below it cannot be reopened
/// for writing through /proc/self/fd (EROFS), even by root in a ctl container. None on
/// kernels without mount_setattr (before 5.12).
fn read_only_view(dir: BorrowedFd<'_>) -> Option<OwnedFd> {
    use crate::sys::mount_api;
    let view = mount_api::clone_mount(dir, false).ok()?;
    let ro = mount_api::MountAttr {
        set: u64::from(linux_raw_sys::general::MOUNT_ATTR_RDONLY),
        ..Default::default()
    };
    mount_api::set_attr(view.as_fd(), false, ro).ok()?;
    Some(view)
}

static SHARED: Mutex<Option<Shared>> = Mutex::new(None);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// How long [`stop`] waits for the writer to finish what the pipe holds.
const STOP_WAIT: Duration = Duration::from_secs(2);

fn shared() -> std::sync::MutexGuard<'static, Option<Shared>> {
    SHARED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Opens (making it if missing) `<data>/log`, never through a link, and starts the writer
/// process. Lines sent before this are only on the console.
/// `ids` are the board's containers: a current file of any other name (a container since
/// removed) is among the first deleted when the directory is over its quota.
pub fn start(data: &str, limits: Limits, ids: &[&str]) -> Result<(), String> {
    let mut guard = shared();
    if !limits.enabled || guard.is_some() {
        return Ok(());
    }
    let dir_flags = OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_RDONLY;
    let data_fd =
        fcntl::open(data, dir_flags, Mode::empty()).map_err(|e| format!("{data}: {e}"))?;
    match stat::mkdirat(data_fd.as_fd(), LOG_DIR, Mode::from_bits_truncate(0o700)) {
        Ok(()) | Err(Errno::EEXIST) => {}
        Err(e) => return Err(format!("{data}/{LOG_DIR}: mkdir: {e}")),
    }
    let dir = fcntl::openat(data_fd.as_fd(), LOG_DIR, dir_flags, Mode::empty())
        .map_err(|e| format!("{data}/{LOG_DIR}: {e}"))?;
    let (read_end, write_end) =
        nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|e| format!("pipe: {e}"))?;
    let _ = fcntl::fcntl(write_end.as_fd(), fcntl::F_SETPIPE_SZ(PIPE_BYTES));
    fcntl::fcntl(write_end.as_fd(), fcntl::F_SETFL(OFlag::O_NONBLOCK))
        .map_err(|e| format!("pipe: {e}"))?;
    // The writer is forked with the lock held: it must never take it (it never says!).
    let pid = crate::sys::clone_fork(0).map_err(|e| format!("writer process: {e}"))?;
    if pid == 0 {
        // The writer: only the read end; it ends when PID 1 closes the write end.
        drop(write_end);
        let mut known: Vec<String> = ids.iter().map(|id| name_of(id, 0)).collect();
        known.push(name_of(DORY_STREAM, 0));
        writer(read_end, dir, limits, known);
        crate::sys::exit_now(0);
    }
    drop(read_end);
    let dir = read_only_view(dir.as_fd()).unwrap_or(dir);
    *guard = Some(Shared {
        sender: write_end,
        dir,
        writer: nix::unistd::Pid::from_raw(pid),
    });
    Ok(())
}

/// Closes the pipe and waits (at most [`STOP_WAIT`], the watchdog petted) for the writer
/// to write what it holds, sync and close its files: at shutdown, before the kill-all and
/// before `/data` is unmounted. A writer that does not finish (a hung card) is sent
/// SIGKILL and left to be reaped: PID 1 never waits on it without a deadline.
pub fn stop() {
    use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
    let Some(sh) = shared().take() else { return };
    drop(sh.sender);
    drop(sh.dir);
    let deadline = Instant::now() + STOP_WAIT;
    loop {
        let _ = super::watchdog::pet_if_due();
        match waitpid(sh.writer, Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::StillAlive) if Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Ok(WaitStatus::StillAlive) => {
                say!("dory: log: the writer did not finish in {STOP_WAIT:?}; killed");
                let _ = nix::sys::signal::kill(sh.writer, nix::sys::signal::Signal::SIGKILL);
                return;
            }
            Err(Errno::EINTR) => {}
            // Exited (or already reaped by the supervisor's loop).
            _ => return,
        }
    }
}

/// Called by the supervisor for a child it does not know: true (and the files given up)
/// if it was the log writer, so a later stop never waits on a pid reused by another.
pub fn reaped(pid: nix::unistd::Pid) -> bool {
    let mut guard = shared();
    if guard.as_ref().is_some_and(|sh| sh.writer == pid) {
        *guard = None;
        return true;
    }
    false
}

/// Sends one line of `stream` (a container id, or [`DORY_STREAM`]) to the files; never
/// blocks. A line that does not fit is counted and reported with the next one that does.
pub fn line(stream: &str, text: &[u8]) {
    let mut guard = shared();
    let Some(sh) = guard.as_ref() else { return };
    let fd = sh.sender.as_fd();
    let lost = DROPPED.swap(0, Ordering::Relaxed);
    let mut sent = Sent::Yes;
    if lost > 0 {
        let note = format!("dory: log: {lost} lines dropped (the log files fell behind)");
        sent = send(fd, DORY_STREAM, note.as_bytes());
        if sent != Sent::Yes {
            DROPPED.fetch_add(lost, Ordering::Relaxed);
        }
    }
    if sent == Sent::Yes {
        sent = send(fd, stream, text);
    }
    match sent {
        Sent::Yes => {}
        Sent::Full => {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
        Sent::Gone => {
            // The writer died (a crash, the disk gone): no files from here on.
            *guard = None;
            drop(guard);
            say!("dory: log: the log writer is gone; lines go to the console only");
        }
    }
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    Yes,
    /// The pipe is full: dropped, counted.
    Full,
    /// No reader (EPIPE).
    Gone,
}

/// One record: stream length (1 byte), stream, text length (2 bytes LE), text. At most
/// PIPE_BUF bytes, so the kernel writes it whole or not at all.
fn send(fd: BorrowedFd<'_>, stream: &str, text: &[u8]) -> Sent {
    let stream = stream.as_bytes();
    let stream = stream.get(..MAX_STREAM).unwrap_or(stream);
    let text = text.get(..MAX_TEXT).unwrap_or(text);
    let mut rec = [0u8; 3 + MAX_STREAM + MAX_TEXT];
    let (Ok(slen), Ok(tlen)) = (u8::try_from(stream.len()), u16::try_from(text.len())) else {
        return Sent::Full;
    };
    let end = 3 + stream.len() + text.len();
    let Some(out) = rec.get_mut(..end) else {
        return Sent::Full;
    };
    let (head, rest) = out.split_at_mut(1);
    head.copy_from_slice(&[slen]);
    let (s, rest) = rest.split_at_mut(stream.len());
    s.copy_from_slice(stream);
    let (l, t) = rest.split_at_mut(2);
    l.copy_from_slice(&tlen.to_le_bytes());
    t.copy_from_slice(text);
    match nix::unistd::write(fd, out) {
        Ok(n) if n == end => Sent::Yes,
        Err(Errno::EPIPE) => Sent::Gone,
        _ => Sent::Full,
    }
}

/// The files of `id` (`<id>.log.<files-1>` … `<id>.log`), oldest first, opened read-only
/// beneath the log directory without following links; for `dory ctl logs --files`.
pub fn open_files(id: &str) -> Vec<OwnedFd> {
    let guard = shared();
    let Some(dir) = guard.as_ref().map(|sh| &sh.dir) else {
        return Vec::new();
    };
    let flags = OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
    (0..=MAX_FILES)
        .rev()
        .filter_map(|k| {
            fcntl::openat(dir.as_fd(), name_of(id, k).as_str(), flags, Mode::empty()).ok()
        })
        .filter(|fd| {
            stat::fstat(fd.as_fd()).is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFREG)
        })
        .collect()
}

/// `<id>.log` (k = 0) or `<id>.log.<k>`.
fn name_of(id: &str, k: u32) -> String {
    if k == 0 {
        format!("{id}.log")
    } else {
        format!("{id}.log.{k}")
    }
}

/// The writer process: records from the pipe into the files, until the pipe closes.
fn writer(pipe: OwnedFd, dir: OwnedFd, limits: Limits, known: Vec<String>) {
    let mut w = Writer {
        dir,
        limits,
        known,
        streams: Vec::new(),
        total: 0,
        boot: boot_id(),
        dirty: false,
        last_sync: Instant::now(),
    };
    w.total = w.dir_bytes();
    let mut buf = vec![0u8; 64 * 1024];
    let mut have = 0usize;
    loop {
        // Lines written are on disk within SYNC_EVERY (a power cut loses no more).
        let wait = if w.dirty {
            PollTimeout::try_from(SYNC_EVERY).unwrap_or(PollTimeout::MAX)
        } else {
            PollTimeout::NONE
        };
        let mut fds = [PollFd::new(pipe.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, wait) {
            Ok(0) => {
                w.sync();
                continue;
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(_) => return,
        }
        let Some(free) = buf.get_mut(have..) else {
            return;
        };
        match nix::unistd::read(pipe.as_fd(), free) {
            Ok(0) => {
                // PID 1 closed the pipe (shutdown): everything on disk before /data goes.
                w.sync();
                return;
            }
            Ok(n) => have += n,
            Err(Errno::EINTR) => continue,
            Err(_) => return,
        }
        let mut at = 0;
        while let Some((stream, text, next)) = record(buf.get(at..have).unwrap_or_default()) {
            let stream = String::from_utf8_lossy(stream).into_owned();
            let text = text.to_vec();
            w.write(&stream, &text);
            at += next;
        }
        buf.copy_within(at..have, 0);
        have -= at;
        if w.dirty && w.last_sync.elapsed() >= SYNC_EVERY {
            w.sync();
        }
    }
}

/// The first whole record of `b`: (stream, text, its length).
fn record(b: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    let slen = usize::from(*b.first()?);
    let stream = b.get(1..1 + slen)?;
    let l = b.get(1 + slen..3 + slen)?;
    let tlen = usize::from(u16::from_le_bytes([*l.first()?, *l.get(1)?]));
    let text = b.get(3 + slen..3 + slen + tlen)?;
    Some((stream, text, 3 + slen + tlen))
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

struct Stream {
    name: String,
    file: std::fs::File,
    size: u64,
}

struct Writer {
    dir: OwnedFd,
    limits: Limits,
    /// The current files of the board's containers and dory's.
    known: Vec<String>,
    streams: Vec<Stream>,
    /// Bytes of every file in the directory.
    total: u64,
    boot: String,
    /// Lines written since the last fdatasync.
    dirty: bool,
    last_sync: Instant,
}

impl Writer {
    fn write(&mut self, name: &str, text: &[u8]) {
        let len = u64::try_from(text.len())
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        let Some(i) = self.stream(name) else { return };
        let full = self.streams.get(i).is_some_and(|s| {
            s.size > 0 && s.size.saturating_add(len) > u64::from(self.limits.file_bytes)
        });
        if full && !self.rotate(i) {
            // No new file (the disk full, the directory gone): the stream is dropped and
            // opened again at its next line, never rotated again on every line.
            if i < self.streams.len() {
                self.streams.remove(i);
            }
            return;
        }
        if let Some(s) = self.streams.get_mut(i) {
            let mut line = Vec::with_capacity(text.len() + 1);
            line.extend_from_slice(text);
            line.push(b'\n');
            if s.file.write_all(&line).is_ok() {
                s.size = s.size.saturating_add(len);
                self.total = self.total.saturating_add(len);
                self.dirty = true;
            }
        }
        if self.total > u64::from(self.limits.total_bytes) {
            self.enforce_quota();
        }
    }

    /// fdatasync(2) of every open file (a file rotated meanwhile keeps what the kernel
    /// writes back on its own).
    fn sync(&mut self) {
        for s in &self.streams {
            let _ = s.file.sync_data();
        }
        self.dirty = false;
        self.last_sync = Instant::now();
    }

    /// The index of `name`'s open stream, opening it (and marking the boot) if needed.
    fn stream(&mut self, name: &str) -> Option<usize> {
        if let Some(i) = self.streams.iter().position(|s| s.name == name) {
            return Some(i);
        }
        if self.streams.len() >= MAX_STREAMS {
            return None;
        }
        let s = self.open(name)?;
        self.streams.push(s);
        let i = self.streams.len().checked_sub(1)?;
        let mark = format!("---- boot {}", self.boot);
        self.write(name, mark.as_bytes());
        Some(i)
    }

    fn open(&self, name: &str) -> Option<Stream> {
        let flags = OFlag::O_WRONLY
            | OFlag::O_APPEND
            | OFlag::O_CREAT
            | OFlag::O_NOFOLLOW
            | OFlag::O_CLOEXEC;
        let fd = fcntl::openat(
            self.dir.as_fd(),
            name_of(name, 0).as_str(),
            flags,
            Mode::from_bits_truncate(0o600),
        )
        .ok()?;
        let st = stat::fstat(fd.as_fd()).ok()?;
        if st.st_mode & libc::S_IFMT != libc::S_IFREG {
            return None;
        }
        Some(Stream {
            name: name.to_string(),
            file: std::fs::File::from(fd),
            size: u64::try_from(st.st_size).unwrap_or(0),
        })
    }

    /// `<id>.log.<k-1>` → `<id>.log.<k>` from the oldest down, then a new `<id>.log`;
    /// false if the new file could not be opened.
    fn rotate(&mut self, i: usize) -> bool {
        let Some(s) = self.streams.get(i) else {
            return false;
        };
        let name = s.name.clone();
        let last = self.limits.files.saturating_sub(1);
        if last == 0 {
            // One file: emptied instead.
            if let Some(s) = self.streams.get_mut(i) {
                let _ = s.file.set_len(0);
                self.total = self.total.saturating_sub(s.size);
                s.size = 0;
            }
            return true;
        }
        let _ = self.unlink(&name_of(&name, last));
        for k in (1..=last).rev() {
            let _ = fcntl::renameat(
                self.dir.as_fd(),
                name_of(&name, k - 1).as_str(),
                self.dir.as_fd(),
                name_of(&name, k).as_str(),
            );
        }
        match (self.open(&name), self.streams.get_mut(i)) {
            (Some(fresh), Some(s)) => {
                *s = fresh;
                true
            }
            _ => false,
        }
    }

    fn unlink(&mut self, file: &str) -> Option<u64> {
        let st = stat::fstatat(self.dir.as_fd(), file, fcntl::AtFlags::AT_SYMLINK_NOFOLLOW).ok()?;
        nix::unistd::unlinkat(
            self.dir.as_fd(),
            file,
            nix::unistd::UnlinkatFlags::NoRemoveDir,
        )
        .ok()?;
        let size = u64::try_from(st.st_size).unwrap_or(0);
        self.total = self.total.saturating_sub(size);
        Some(size)
    }

    /// Deletes the oldest rotated files until the directory fits `totalBytes`; empties
    /// the largest current file if only current files are left.
    fn enforce_quota(&mut self) {
        self.total = self.dir_bytes();
        let quota = u64::from(self.limits.total_bytes);
        while self.total > quota {
            let files = self.files();
            // Deletable: rotated files, and current files of no container of this board
            // (one since removed): oldest first. A container that has not written yet in
            // this boot keeps its file (its previous boot's lines).
            let live = |f: &FileInfo| {
                !f.rotated
                    && (self.known.contains(&f.name)
                        || self.streams.iter().any(|s| name_of(&s.name, 0) == f.name))
            };
            let oldest = files
                .iter()
                .filter(|f| !live(f))
                .min_by_key(|f| (f.mtime, std::cmp::Reverse(f.name.clone())));
            if let Some(f) = oldest {
                let name = f.name.clone();
                if self.unlink(&name).is_none() {
                    return;
                }
                continue;
            }
            let largest = self
                .streams
                .iter_mut()
                .max_by_key(|s| s.size)
                .filter(|s| s.size > 0);
            match largest {
                Some(s) => {
                    let _ = s.file.set_len(0);
                    s.size = 0;
                }
                None => return,
            }
            self.total = self.dir_bytes();
        }
    }

    /// The regular files of the directory with their sizes and ages.
    fn files(&self) -> Vec<FileInfo> {
        let Ok(dup) = self.dir.try_clone() else {
            return Vec::new();
        };
        let Ok(mut d) = nix::dir::Dir::from_fd(dup) else {
            return Vec::new();
        };
        let _ = nix::unistd::lseek(&d, 0, nix::unistd::Whence::SeekSet);
        let dirfd = self.dir.as_fd();
        d.iter()
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().to_str().ok()?.to_string();
                let st = stat::fstatat(dirfd, name.as_str(), fcntl::AtFlags::AT_SYMLINK_NOFOLLOW)
                    .ok()?;
                (st.st_mode & libc::S_IFMT == libc::S_IFREG).then(|| FileInfo {
                    rotated: !name.ends_with(".log"),
                    size: u64::try_from(st.st_size).unwrap_or(0),
                    mtime: (st.st_mtime, st.st_mtime_nsec),
                    name,
                })
            })
            .collect()
    }

    fn dir_bytes(&self) -> u64 {
        self.files().iter().map(|f| f.size).sum()
    }
}

struct FileInfo {
    name: String,
    rotated: bool,
    size: u64,
    mtime: (libc::time_t, libc::c_long),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_default_and_bounds_name_the_field() {
        assert_eq!(limits(None, None, None, None).unwrap(), Limits::default());
        let e = |r: Result<Limits, Error>| r.unwrap_err().to_string();
        assert_eq!(
            e(limits(Some(100), None, None, None)),
            "logs.fileBytes: 100 is outside 4096-67108864 (limit)"
        );
        assert_eq!(
            e(limits(None, Some(0), None, None)),
            "logs.files: 0 is outside 1-16 (limit)"
        );
        assert_eq!(
            e(limits(Some(8192), Some(3), Some(16384), None)),
            "logs.totalBytes: 16384 is outside files × fileBytes (24576)-1073741824 (limit)"
        );
    }

    /// Found by a hostile review: a current file no stream of this boot owns (a container
    /// since removed) kept the directory over its quota, and every line then emptied a
    /// live file.
    #[test]
    fn files_of_a_removed_container_go_before_live_logs_are_emptied() {
        let tmp = std::env::temp_dir().join(format!("dory-logfile-stale-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        std::fs::write(tmp.join("old.log"), vec![b'o'; 9000]).unwrap();
        let dir = fcntl::open(&tmp, OFlag::O_DIRECTORY | OFlag::O_RDONLY, Mode::empty()).unwrap();
        // "silent" is a container of the board that has not written yet in this boot.
        std::fs::write(tmp.join("silent.log"), vec![b's'; 100]).unwrap();
        let mut w = Writer {
            dir,
            limits: limits(Some(4096), Some(2), Some(8192), None).unwrap(),
            known: vec!["app.log".into(), "silent.log".into()],
            streams: Vec::new(),
            total: 0,
            boot: "b".into(),
            dirty: false,
            last_sync: Instant::now(),
        };
        w.total = w.dir_bytes();
        for i in 0..10 {
            w.write("app", format!("line-{i}").as_bytes());
        }
        let app = std::fs::read_to_string(tmp.join("app.log")).unwrap();
        assert!(!tmp.join("old.log").exists(), "the stale file stayed");
        assert!(
            tmp.join("silent.log").exists(),
            "a silent container's log was deleted"
        );
        let _ = std::fs::remove_dir_all(&tmp);
        assert!(
            app.contains("line-0") && app.contains("line-9"),
            "live log emptied: {app:?}"
        );
    }

    #[test]
    fn records_round_trip_and_partial_ones_wait() {
        let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).unwrap();
        assert_eq!(send(w.as_fd(), "app", b"hello"), Sent::Yes);
        assert_eq!(send(w.as_fd(), DORY_STREAM, b""), Sent::Yes);
        let mut buf = [0u8; 64];
        let n = nix::unistd::read(r.as_fd(), &mut buf).unwrap();
        let (s, t, len) = record(&buf[..n]).unwrap();
        assert_eq!((s, t, len), (&b"app"[..], &b"hello"[..], 11));
        let (s, t, _) = record(&buf[len..n]).unwrap();
        assert_eq!((s, t), (DORY_STREAM.as_bytes(), &b""[..]));
        assert!(record(&buf[..len - 1]).is_none());
        // No reader: the writer is gone (SIGPIPE ignored here, as PID 1 never dies of it).
        drop(r);
        let _ignored = crate::sys::SigpipeIgnored::new();
        assert_eq!(send(w.as_fd(), "app", b"x"), Sent::Gone);
    }

    fn files_in(dir: &std::path::Path) -> Vec<(String, u64)> {
        let mut v: Vec<(String, u64)> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect();
        v.sort();
        v
    }

    #[test]
    fn rotation_keeps_the_file_count_and_the_quota_holds() {
        let tmp = std::env::temp_dir().join(format!("dory-logfile-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(&tmp).unwrap();
        let dir = fcntl::open(&tmp, OFlag::O_DIRECTORY | OFlag::O_RDONLY, Mode::empty()).unwrap();
        let limits = limits(Some(4096), Some(3), Some(20_000), None).unwrap();
        let mut w = Writer {
            dir,
            limits,
            known: Vec::new(),
            streams: Vec::new(),
            total: 0,
            boot: "b1".into(),
            dirty: false,
            last_sync: Instant::now(),
        };
        let line = [b'x'; 99];
        for _ in 0..1000 {
            w.write("flood", &line);
        }
        let files = files_in(&tmp);
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["flood.log", "flood.log.1", "flood.log.2"]);
        assert!(files.iter().all(|(_, s)| *s <= 4096), "{files:?}");
        // A second stream: the quota (20,000 B) is shared, the oldest rotated files go.
        for _ in 0..1000 {
            w.write("other", &line);
        }
        let total: u64 = files_in(&tmp).iter().map(|(_, s)| s).sum();
        assert!(total <= 20_000, "{total} bytes: {:?}", files_in(&tmp));
        assert!(files_in(&tmp).iter().any(|(n, _)| n == "other.log.2"));
        // A stream's first file of a boot starts with the boot's mark.
        w.write("third", b"one line");
        let third = std::fs::read_to_string(tmp.join("third.log")).unwrap();
        assert_eq!(third, "---- boot b1\none line\n");
        let _ = std::fs::remove_dir_all(&tmp);
    }
}
