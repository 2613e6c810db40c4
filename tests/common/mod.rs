//! Shared harness of the integration tests: runs the real `dory` binary as root on a real
//! busybox rootfs.
//!
//! Every test gets its own [`Bundle`]: a temporary directory holding the bundle (config
//! derived from `dory spec`), its own `--root` state directory, a unique container id and
//! the cgroup path `/dory-test/<id>`. Dropping the bundle cleans up whatever a run left
//! behind, even when the test failed: it kills the container's processes (state pid and
//! cgroup members), removes the cgroup directories, unmounts anything under the test's
//! paths that leaked to the host and removes the directories.
//!
//! The busybox rootfs is built once from Debian's busybox-static (`/bin/busybox`) and
//! shared by the tests that run at the same time; the last user removes it.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary under test.
pub const DORY: &str = env!("CARGO_BIN_EXE_dory");
/// Where the rootfs's busybox comes from (Debian package busybox-static).
pub const BUSYBOX: &str = "/bin/busybox";
/// Longest a single dory invocation may take before the test fails (containers start in
/// milliseconds; this only catches hangs).
pub const TIMEOUT: Duration = Duration::from_secs(20);
/// Parent of every cgroup the tests create (`linux.cgroupsPath` = `/dory-test/<id>`).
pub const CGROUP_PARENT: &str = "dory-test";
/// The seed config `dory spec` must write, byte for byte.
pub const SEED_CONFIG: &str = include_str!("../fixtures/seed-config.json");

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// Returns from the calling test, with a visible `SKIPPED: <module::test>: needs root`
/// on stderr, unless it runs as root.
#[macro_export]
macro_rules! needs_root {
    () => {{
        fn here() {}
        let name = std::any::type_name_of_val(&here);
        let name = name.strip_suffix("::here").unwrap_or(name);
        if $crate::common::skip_unless_root(name) {
            return;
        }
    }};
}

/// True (and a visible SKIPPED line on stderr, even when output is captured) when the
/// test cannot run: not root.
/// CI runs as root and fails when it finds "SKIPPED" in the output.
pub fn skip_unless_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return false;
    }
    // Straight to fd 2: libtest captures eprintln! of passing tests, and CI greps the
    // output for SKIPPED.
    let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: needs root");
    true
}

/// A name unique to this process and call: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    format!("{prefix}-{}-{n}", std::process::id())
}

// ---------------------------------------------------------------------------------------
// Temporary directories

/// A directory removed (with everything below it) when dropped. Mounts below it that
/// leaked to the host are detached first, so removal never descends into a mount.
pub struct TempDir {
    pub path: PathBuf,
}

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        TempDir::named(&unique(&format!("dory-test-{name}")))
    }

    /// `<tmp>/<name>` exactly (must not exist yet).
    pub fn named(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(name);
        std::fs::create_dir(&path).unwrap_or_else(|e| panic!("mkdir {}: {e}", path.display()));
        TempDir { path }
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        detach_mounts_under(&self.path);
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// Lines of the host's /proc/self/mountinfo.
pub fn host_mountinfo() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .expect("read /proc/self/mountinfo")
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Host mountinfo lines that mention `path` (as mount point or root).
pub fn mounts_mentioning(path: &Path) -> Vec<String> {
    let p = path.to_string_lossy();
    host_mountinfo()
        .into_iter()
        .filter(|l| l.contains(p.as_ref()))
        .collect()
}

/// Lazily unmounts every host mount point at or below `path`, deepest first.
pub fn detach_mounts_under(path: &Path) {
    let mut points: Vec<PathBuf> = host_mountinfo()
        .iter()
        .filter_map(|l| l.split(' ').nth(4).map(unescape_mountinfo))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(path))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

// ---------------------------------------------------------------------------------------
// The busybox rootfs

/// The applets of the host's busybox (without "busybox" itself: linking it would replace
/// the binary with a symlink to itself).
fn applets() -> &'static [String] {
    static APPLETS: OnceLock<Vec<String>> = OnceLock::new();
    APPLETS.get_or_init(|| {
        let out = Command::new(BUSYBOX)
            .arg("--list")
            .output()
            .unwrap_or_else(|e| panic!("{BUSYBOX} --list: {e} (install Debian's busybox-static)"));
        assert!(out.status.success(), "{BUSYBOX} --list failed");
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::trim)
            .filter(|a| !a.is_empty() && *a != "busybox" && !a.contains('/'))
            .map(str::to_owned)
            .collect()
    })
}

/// Builds a busybox rootfs in `dir` (created): bin/busybox, an applet symlink for each
/// command, and the empty mount points the seed config uses.
pub fn build_rootfs(dir: &Path) {
    for sub in ["bin", "proc", "sys", "dev", "etc", "tmp", "mnt"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::copy(BUSYBOX, dir.join("bin/busybox"))
        .unwrap_or_else(|e| panic!("copy {BUSYBOX}: {e} (install Debian's busybox-static)"));
    for a in applets() {
        symlink("busybox", dir.join("bin").join(a)).unwrap();
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/:/bin/sh\n").unwrap();
    std::fs::write(dir.join("etc/group"), "root:x:0:\ntty:x:5:\n").unwrap();
}

/// The shared rootfs, counted by its users; the last [`RootfsLease`] removes it.
struct SharedRootfs {
    users: usize,
    dir: Option<TempDir>,
}

static SHARED: Mutex<SharedRootfs> = Mutex::new(SharedRootfs {
    users: 0,
    dir: None,
});

/// A use of the shared busybox rootfs.
pub struct RootfsLease {
    pub path: PathBuf,
}

impl RootfsLease {
    pub fn acquire() -> RootfsLease {
        let mut s = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if s.dir.is_none() {
            let t = TempDir::new("rootfs");
            build_rootfs(&t.path);
            s.dir = Some(t);
        }
        s.users += 1;
        RootfsLease {
            path: s.dir.as_ref().unwrap().path.clone(),
        }
    }
}

impl Drop for RootfsLease {
    fn drop(&mut self) {
        let mut s = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        s.users -= 1;
        if s.users == 0 {
            s.dir = None;
        }
    }
}

// ---------------------------------------------------------------------------------------
// Cgroups

/// Mount points of the host's cgroup hierarchies (v1 controllers and cgroup2).
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = host_mountinfo()
        .iter()
        .filter_map(|l| {
            let (pre, post) = l.split_once(" - ")?;
            let fstype = post.split(' ').next()?;
            let point = pre.split(' ').nth(4)?;
            (fstype == "cgroup" || fstype == "cgroup2")
                .then(|| PathBuf::from(unescape_mountinfo(point)))
        })
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Every directory the cgroup `/dory-test/<id>` has on this host that exists now.
pub fn cgroup_dirs(id: &str) -> Vec<PathBuf> {
    cgroup_mounts()
        .into_iter()
        .map(|m| m.join(CGROUP_PARENT).join(id))
        .filter(|d| d.is_dir())
        .collect()
}

/// Number of live bundles in this process; the parent cgroups exist while it is > 0.
static CGROUP_USERS: Mutex<usize> = Mutex::new(0);

/// Holds `/dory-test` in every hierarchy while tests run. The harness makes the parent
/// itself so that parallel tests never race one dory's removal of an empty parent against
/// another's creation of its leaf; the last lease removes the parents (if empty).
struct CgroupParentLease;

impl CgroupParentLease {
    fn acquire() -> CgroupParentLease {
        let mut n = CGROUP_USERS.lock().unwrap_or_else(|e| e.into_inner());
        if *n == 0 {
            for m in cgroup_mounts() {
                let parent = m.join(CGROUP_PARENT);
                if std::fs::create_dir(&parent).is_ok() {
                    // v1 cpuset: a new cgroup starts empty and no task could join below it.
                    for f in ["cpuset.cpus", "cpuset.mems"] {
                        if let Ok(v) = std::fs::read_to_string(m.join(f)) {
                            let _ = std::fs::write(parent.join(f), v.trim());
                        }
                    }
                }
            }
        }
        *n += 1;
        CgroupParentLease
    }
}

impl Drop for CgroupParentLease {
    fn drop(&mut self) {
        let mut n = CGROUP_USERS.lock().unwrap_or_else(|e| e.into_inner());
        *n -= 1;
        if *n == 0 {
            for m in cgroup_mounts() {
                let _ = std::fs::remove_dir(m.join(CGROUP_PARENT));
            }
        }
    }
}

/// Kills every process in the cgroup `/dory-test/<id>` and removes its directories.
fn remove_cgroup(id: &str) {
    let dirs = cgroup_dirs(id);
    let deadline = Instant::now() + Duration::from_secs(5);
    for d in dirs {
        loop {
            if let Ok(procs) = std::fs::read_to_string(d.join("cgroup.procs")) {
                for pid in procs.lines().filter_map(|p| p.trim().parse::<i32>().ok()) {
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
            match std::fs::remove_dir(&d) {
                Ok(()) => break,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(e) if Instant::now() > deadline => {
                    eprintln!("cleanup: rmdir {}: {e}", d.display());
                    break;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(5)),
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Processes

/// What a finished dory invocation gave.
#[derive(Debug)]
pub struct Out {
    /// Exit code, or 128 + signal when dory itself died of a signal.
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Out {
    /// stderr with runc's `msg="…"` quoting undone (`\"` back to `"`), for matching
    /// messages that quote something.
    pub fn message(&self) -> String {
        self.stderr.replace("\\\"", "\"")
    }

    /// Panics with both streams when the exit code is not `code`.
    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// The value of `key=value` in stdout (first match).
    pub fn value(&self, key: &str) -> Option<&str> {
        self.stdout
            .lines()
            .find_map(|l| l.trim().strip_prefix(key)?.strip_prefix('='))
    }
}

fn code_of(status: std::process::ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
}

/// A pipe read to the end on a thread.
pub struct Drain {
    rx: Receiver<Vec<u8>>,
    got: Vec<u8>,
}

impl Drain {
    /// What arrived until EOF, or until `grace` passed without EOF: a process the
    /// container left behind may hold the pipe open (the test then fails on its own
    /// checks instead of hanging).
    pub fn collect(mut self, grace: Duration) -> String {
        let deadline = Instant::now() + grace;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(chunk) => self.got.extend(chunk),
                Err(_) => break,
            }
        }
        String::from_utf8_lossy(&self.got).into_owned()
    }
}

/// Reads a pipe to the end on a thread, chunk by chunk.
fn drain<R: Read + Send + 'static>(r: Option<R>) -> Drain {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let Some(mut r) = r else { return };
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    Drain {
        rx,
        got: Vec::new(),
    }
}

/// How long to wait for a pipe's EOF after the process exited.
pub const PIPE_GRACE: Duration = Duration::from_secs(2);

/// Waits for `child` at most `TIMEOUT`; on timeout kills it and panics.
fn wait_timeout(child: &mut Child, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().expect("try_wait") {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Runs a command with stdin from /dev/null, capturing stdout and stderr, with a timeout.
pub fn run_cmd(cmd: &mut Command) -> Out {
    run_cmd_input(cmd, None)
}

/// Runs a command with `input` (or /dev/null) on stdin, capturing stdout and stderr,
/// with a timeout.
pub fn run_cmd_input(cmd: &mut Command, input: Option<&str>) -> Out {
    let what = format!("{cmd:?}");
    let (out, err) = (Capture::new(), Capture::new());
    let mut child = cmd
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(out.stdio())
        .stderr(err.stdio())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {what}: {e}"));
    if let (Some(mut w), Some(text)) = (child.stdin.take(), input) {
        let text = text.to_owned();
        std::thread::spawn(move || {
            let _ = w.write_all(text.as_bytes());
        });
    }
    let st = wait_timeout(&mut child, &what);
    Out {
        code: code_of(st),
        stdout: out.text(),
        stderr: err.text(),
    }
}

/// An unlinked temporary file capturing a child's output. Unlike a pipe, reading it never
/// waits for processes the child left behind (a detached `dory create`, a leaked container
/// process) to close their copy.
struct Capture(std::fs::File);

impl Capture {
    fn new() -> Capture {
        let path = std::env::temp_dir().join(unique("dory-test-capture"));
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
        let _ = std::fs::remove_file(&path);
        Capture(f)
    }

    fn stdio(&self) -> Stdio {
        Stdio::from(self.0.try_clone().expect("dup capture file"))
    }

    /// Everything written so far.
    fn text(mut self) -> String {
        use std::io::Seek;
        let mut v = Vec::new();
        self.0
            .seek(std::io::SeekFrom::Start(0))
            .expect("seek capture file");
        self.0.read_to_end(&mut v).expect("read capture file");
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// `dory <args>` (no --root), captured.
pub fn dory(args: &[&str]) -> Out {
    run_cmd(Command::new(DORY).args(args))
}

/// A `dory run` in progress: stdin and stdout are pipes, stdout arrives line by line.
pub struct Running {
    child: Option<Child>,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Option<Drain>,
}

impl Running {
    /// Starts `cmd` with stdin, stdout and stderr as pipes.
    pub fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn dory run");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let stderr = drain(child.stderr.take());
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running {
            child: Some(child),
            stdin,
            lines: rx,
            seen: Vec::new(),
            stderr: Some(stderr),
        }
    }

    /// The host pid of the `dory run` process.
    pub fn dory_pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    /// Waits until a stdout line equal to `line` arrives; panics after `TIMEOUT`.
    pub fn wait_line(&mut self, line: &str) {
        self.wait_for(&format!("a line {line:?}"), |l| l == line);
    }

    /// Waits for the first stdout line (from the start) starting with `prefix` and
    /// returns it; panics after `TIMEOUT`.
    pub fn wait_prefix(&mut self, prefix: &str) -> String {
        self.wait_for(&format!("a line starting {prefix:?}"), |l| {
            l.starts_with(prefix)
        })
    }

    /// Waits for a line starting with one of `prefixes`; returns that prefix.
    pub fn wait_for_any(&mut self, prefixes: &[&str]) -> String {
        let l = self.wait_for(&format!("a line starting with one of {prefixes:?}"), |l| {
            prefixes.iter().any(|p| l.starts_with(p))
        });
        prefixes
            .iter()
            .find(|p| l.starts_with(**p))
            .unwrap()
            .to_string()
    }

    fn wait_for(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(l) = self.seen.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => self.seen.push(l),
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {what} within {TIMEOUT:?}; got {:?}", self.seen)
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let code = self.child.as_mut().map(|c| c.wait().map(code_of));
                    let err = self
                        .stderr
                        .take()
                        .map(|d| d.collect(PIPE_GRACE))
                        .unwrap_or_default();
                    panic!(
                        "dory ended ({code:?}) before printing {what}; stdout {:?}; stderr:\n{err}",
                        self.seen
                    )
                }
            }
        }
    }

    /// The stdout lines received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Writes `text` to the container's stdin.
    pub fn send(&mut self, text: &str) {
        let s = self.stdin.as_mut().expect("stdin still open");
        s.write_all(text.as_bytes()).unwrap();
        s.flush().unwrap();
    }

    /// Closes stdin and waits for dory to exit.
    pub fn finish(mut self) -> Out {
        self.stdin = None;
        let mut child = self.child.take().unwrap();
        let st = wait_timeout(&mut child, "dory run");
        let mut stdout: Vec<String> = std::mem::take(&mut self.seen);
        while let Ok(l) = self.lines.recv_timeout(PIPE_GRACE) {
            stdout.push(l);
        }
        let mut text = stdout.join("\n");
        text.push('\n');
        Out {
            code: code_of(st),
            stdout: text,
            stderr: self
                .stderr
                .take()
                .map(|d| d.collect(PIPE_GRACE))
                .unwrap_or_default(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------
// Bundles

/// What state.json says about a container.
#[derive(Debug, Clone)]
pub struct StateInfo {
    pub pid: i32,
    pub json: Value,
}

/// One test's container: bundle, state root, id, cgroup; cleans everything up on drop.
pub struct Bundle {
    pub id: String,
    /// Temporary directory holding `bundle/` and `state/`.
    pub base: PathBuf,
    /// The bundle directory (holds config.json).
    pub dir: PathBuf,
    /// The `--root` state directory.
    pub state_root: PathBuf,
    /// The rootfs (absolute), as written to `root.path`.
    pub rootfs: PathBuf,
    /// config.json as JSON, written by [`Bundle::write_config`] / [`Bundle::run`].
    pub config: Value,
    /// Host paths outside `base` the test made (removed on drop).
    pub extra: Vec<PathBuf>,
    // Fields drop in order: the cleanup in Drop runs first, then the temp dir goes, then
    // the leases.
    tmp: TempDir,
    _rootfs: Option<RootfsLease>,
    _cgroups: CgroupParentLease,
}

impl Bundle {
    /// A bundle using the shared rootfs, config from `dory spec` with `terminal` false,
    /// `args` as given and `linux.cgroupsPath` = `/dory-test/<id>`.
    pub fn new(name: &str, args: &[&str]) -> Bundle {
        Bundle::make(name, args, None)
    }

    /// Like [`Bundle::new`] but with its own rootfs at `<bundle>/rootfs` (`root.path`
    /// "rootfs", relative as `dory spec` writes it) that the test may change.
    pub fn with_private_rootfs(name: &str, args: &[&str]) -> Bundle {
        Bundle::make(name, args, Some(()))
    }

    fn make(name: &str, args: &[&str], private: Option<()>) -> Bundle {
        let cgroups = CgroupParentLease::acquire();
        let id = unique(name);
        let tmp = TempDir::named(&format!("dory-test-{id}"));
        let base = tmp.path.clone();
        let dir = base.join("bundle");
        let state_root = base.join("state");
        std::fs::create_dir(&dir).unwrap();
        let spec = run_cmd(Command::new(DORY).args(["spec", "--bundle"]).arg(&dir));
        spec.expect_code(0);
        let text =
            std::fs::read_to_string(dir.join("config.json")).expect("dory spec wrote config.json");
        let mut config: Value = serde_json::from_str(&text).expect("dory spec output is JSON");
        let (lease, rootfs) = match private {
            Some(()) => {
                let r = dir.join("rootfs");
                build_rootfs(&r);
                config["root"]["path"] = Value::from("rootfs");
                (None, r)
            }
            None => {
                let l = RootfsLease::acquire();
                let r = l.path.clone();
                config["root"]["path"] = Value::from(r.to_string_lossy().as_ref());
                (Some(l), r)
            }
        };
        config["process"]["terminal"] = Value::Bool(false);
        config["process"]["args"] =
            Value::from(args.iter().map(|a| Value::from(*a)).collect::<Vec<_>>());
        config["linux"]["cgroupsPath"] = Value::from(format!("/{CGROUP_PARENT}/{id}"));
        Bundle {
            id,
            base,
            dir,
            state_root,
            rootfs,
            config,
            extra: Vec::new(),
            tmp,
            _rootfs: lease,
            _cgroups: cgroups,
        }
    }

    /// A bundle another tool writes: `make(base, id)` must create `<base>/bundle` (its
    /// config.json and rootfs); the config is read as written, then `linux.cgroupsPath`
    /// is set as for every test bundle (write it with [`Bundle::write_config`] or
    /// [`Bundle::run`]). Cleans up as [`Bundle::new`]'s does.
    pub fn made_by(name: &str, make: impl FnOnce(&Path, &str)) -> Bundle {
        let cgroups = CgroupParentLease::acquire();
        let id = unique(name);
        let tmp = TempDir::named(&format!("dory-test-{id}"));
        let base = tmp.path.clone();
        let dir = base.join("bundle");
        let state_root = base.join("state");
        make(&base, &id);
        let text = std::fs::read_to_string(dir.join("config.json"))
            .unwrap_or_else(|e| panic!("{}/config.json: {e}", dir.display()));
        let mut config: Value = serde_json::from_str(&text).expect("config.json is JSON");
        let rootfs = dir.join(config["root"]["path"].as_str().expect("root.path"));
        config["linux"]["cgroupsPath"] = Value::from(format!("/{CGROUP_PARENT}/{id}"));
        Bundle {
            id,
            base,
            dir,
            state_root,
            rootfs,
            config,
            extra: Vec::new(),
            tmp,
            _rootfs: None,
            _cgroups: cgroups,
        }
    }

    pub fn config_path(&self) -> PathBuf {
        self.dir.join("config.json")
    }

    pub fn write_config(&self) {
        std::fs::write(
            self.config_path(),
            serde_json::to_string_pretty(&self.config).unwrap(),
        )
        .unwrap();
    }

    /// `dory --root <state> <args…>`.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(DORY);
        c.arg("--root").arg(&self.state_root).args(args);
        c
    }

    /// The `run` command for this bundle and id.
    pub fn run_cmd(&self) -> Command {
        let mut c = self.cmd(&["run", "--bundle"]);
        c.arg(&self.dir).arg(&self.id);
        c
    }

    /// Writes the config and runs the container to completion (stdin /dev/null).
    pub fn run(&self) -> Out {
        self.write_config();
        run_cmd(&mut self.run_cmd())
    }

    /// Writes the config and returns the `run` command.
    pub fn run_cmd_written(&self) -> Command {
        self.write_config();
        self.run_cmd()
    }

    /// Writes the config and starts the container without waiting (stdin and stdout are
    /// pipes the test drives).
    pub fn spawn(&self) -> Running {
        Running::spawn(self.run_cmd_written())
    }

    /// `<state root>/<id>`.
    pub fn state_dir(&self) -> PathBuf {
        self.state_root.join(&self.id)
    }

    /// state.json, if present and readable.
    pub fn state(&self) -> Option<StateInfo> {
        let text = std::fs::read_to_string(self.state_dir().join("state.json")).ok()?;
        let json: Value = serde_json::from_str(&text).ok()?;
        let pid = i32::try_from(json["pid"].as_i64()?).ok()?;
        Some(StateInfo { pid, json })
    }

    /// Waits for state.json to name a pid (dory writes it right after the container's
    /// exec); panics after `TIMEOUT`.
    pub fn wait_state(&self) -> StateInfo {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(s) = self.state().filter(|s| s.pid > 0) {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "no state.json with a pid in {}",
                self.state_dir().display()
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// Panics unless the run left nothing behind: no state entry, no cgroup directory,
    /// no host mount mentioning the bundle or the rootfs.
    pub fn assert_nothing_left(&self) {
        assert!(
            !self.state_dir().exists(),
            "state entry {} left behind",
            self.state_dir().display()
        );
        let cg = cgroup_dirs(&self.id);
        assert!(cg.is_empty(), "cgroup directories left behind: {cg:?}");
        for p in [&self.base, &self.rootfs] {
            let m = mounts_mentioning(p);
            assert!(
                m.is_empty(),
                "host mounts mentioning {} left behind: {m:#?}",
                p.display()
            );
        }
    }
}

impl Drop for Bundle {
    fn drop(&mut self) {
        // The container's init, if still alive (only when its start time matches, so a
        // recycled pid is left alone).
        if let Some(s) = self.state() {
            let start = s.json["startTime"].as_u64();
            if s.pid > 0 && start.is_some() && proc_start_time(s.pid) == start {
                let _ = nix::sys::signal::kill(
                    nix::unistd::Pid::from_raw(s.pid),
                    nix::sys::signal::Signal::SIGKILL,
                );
            }
        }
        remove_cgroup(&self.id);
        detach_mounts_under(&self.rootfs);
        for p in &self.extra {
            detach_mounts_under(p);
            let _ = std::fs::remove_dir_all(p);
            let _ = std::fs::remove_file(p);
        }
        // The temp dir (bundle, state, private rootfs) goes when `tmp` drops.
    }
}

/// Field 22 of /proc/<pid>/stat (start time in ticks), None when gone or a zombie.
pub fn proc_start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 1..];
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    f.nth(18)?.parse().ok()
}

/// Capability numbers of the names the tests use.
pub fn cap_number(name: &str) -> u32 {
    match name {
        "CAP_CHOWN" => 0,
        "CAP_KILL" => 5,
        "CAP_NET_BIND_SERVICE" => 10,
        "CAP_SYS_ADMIN" => 21,
        "CAP_MKNOD" => 27,
        "CAP_AUDIT_WRITE" => 29,
        other => panic!("cap_number: add {other}"),
    }
}

/// The mask of a capability list of the config (`process.capabilities.<set>`).
pub fn cap_mask(config: &Value, set: &str) -> u64 {
    config["process"]["capabilities"][set]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| 1u64 << cap_number(c.as_str().unwrap()))
                .fold(0, |m, b| m | b)
        })
        .unwrap_or(0)
}
