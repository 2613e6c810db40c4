//! PID 1: brings a small board up, starts the containers of its board.json, supervises
//! them and shuts down cleanly. PID 1 must never exit or panic (the kernel panics), so
//! every failure ends in the rescue path, never in a return.
//!
//! Entry points:
//! - [`main_as_pid1`]: the kernel started dory as init (`init=/sbin/dory`, `/init`).
//! - [`main_from_cli`]: `dory init [--config FILE] [--test] [--boot-root DIR] [--debug]
//!   [--ctl-socket PATH]`, a test mode that runs the same supervisor without being the
//!   board's init: no reboot(2) at the end (prints `dory: shutdown complete (ACTION)` and
//!   exits 0), no rescue shell, no `kill(-1)` unless it is PID 1 of a pid namespace,
//!   no early boot unless `--boot-root DIR` says where to do it (mounts go under DIR;
//!   hostname and `lo` are set too, so run it in its own uts/net namespaces).
//!   Test mode is on when getpid() != 1, or with `--test` when dory is PID 1 of a pid
//!   namespace other than the machine's (the tests run it so). Nothing in the
//!   environment turns it on: the kernel puts every unknown `KEY=VALUE` word of its
//!   command line into init's environment, and a test-mode PID 1 exits at shutdown,
//!   which panics the kernel. The machine's init ignores `--test` too (the kernel passes
//!   unknown words of its command line as init's arguments); see [`is_machine_init`].
//! - `dory init --check [--config FILE]`: reads and validates the board config as PID 1
//!   would and exits (0 and `ok`, or 1 and the error); starts nothing.
//! - [`ctl_main`]: `dory ctl …` (see [`ctl`]).
//!
//! Kernel command-line options are described in [`cmdline`]; the board format in [`board`].

pub mod board;
pub mod boot;
pub mod cmdline;
pub mod console;
pub mod ctl;
pub mod logfile;
pub mod net;
pub mod order;
pub mod policy;
pub mod probe;
pub mod realroot;
pub mod rescue;
pub mod ring;
pub mod signals;
pub mod supervisor;
pub mod watchdog;

use std::time::Duration;

use nix::sys::signal::{sigprocmask, SigmaskHow};

pub use ctl::ctl_main;

use self::board::{Board, MAX_BOARD_BYTES};
use self::console::{debug, say};
use self::signals::Action;
use self::supervisor::{Mode, Supervisor};

/// Board config read when neither `dory.config=` nor `--config` names one.
pub const DEFAULT_BOARD: &str = "/etc/dory/board.json";
/// Where a board's data partition is mounted (board.json `data`).
const DATA_DIR: &str = "/data";
/// Inode number of the initial pid namespace (`PROC_PID_INIT_INO`, fixed since Linux 3.8).
const PROC_PID_INIT_INO: u64 = 0xEFFF_FFFC;

/// How this run of PID 1 was asked for.
#[derive(Debug, Clone, Default)]
pub(crate) struct Options {
    config: Option<String>,
    test: bool,
    /// Where early boot mounts go: `/` on a board, a scratch dir in tests, none = skip.
    boot_root: Option<String>,
    debug: bool,
    ctl_socket: String,
    /// `--check`: validate the board config and exit.
    check: bool,
}

const USAGE: &str =
    "usage: dory init [--config FILE] [--test] [--boot-root DIR] [--debug] [--ctl-socket PATH]
       dory init --check [--config FILE]";

/// Whether this process is the machine's init: PID 1 of the initial pid namespace. When
/// that cannot be told (no /proc yet, as at boot), it is assumed: the safe side, since
/// the machine's init must never exit.
pub fn is_machine_init() -> bool {
    if std::process::id() != 1 {
        return false;
    }
    let path = "/proc/self/ns/pid";
    let nsfs = nix::sys::statfs::statfs(path)
        .is_ok_and(|f| f.filesystem_type() == nix::sys::statfs::NSFS_MAGIC);
    let ino = nix::sys::stat::stat(path).ok().map(|st| st.st_ino);
    !(nsfs && ino.is_some_and(|i| i != PROC_PID_INIT_INO))
}

/// The kernel started dory as init (or dory is PID 1 of a pid namespace).
pub fn main_as_pid1() -> i32 {
    // args_os: std::env::args() panics on a word that is not UTF-8, and the kernel passes
    // the words of its command line it does not know as init's arguments.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let code = if args.get(1).map(String::as_str) == Some("init") {
        main_from_cli(args.get(2..).unwrap_or_default())
    } else {
        run(Options {
            test: false,
            boot_root: Some("/".into()),
            ctl_socket: ctl::CTL_SOCKET.into(),
            ..Options::default()
        })
    };
    if is_machine_init() {
        // Unreachable (only test mode returns, and the machine's init never has it); if it
        // ever is reached, exiting would panic the kernel.
        say!("dory: PID 1 must not exit; halting here");
        loop {
            std::thread::sleep(Duration::from_secs(3600));
        }
    }
    code
}

/// The flags `dory init` takes, for the unit tests that check that [`parse_options`]
/// knows each and that `dory init --help` names each.
#[cfg(test)]
pub const FLAGS: &[&str] = &[
    "--config",
    "--boot-root",
    "--ctl-socket",
    "--test",
    "--debug",
    "--check",
];

/// The options of `dory init ARGS…`, and the first word not understood.
pub(crate) fn parse_options(args: &[String]) -> (Options, Option<String>) {
    let mut o = Options {
        ctl_socket: ctl::CTL_SOCKET.into(),
        ..Options::default()
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--config" => o.config = it.next().cloned(),
            "--boot-root" => o.boot_root = it.next().cloned(),
            "--ctl-socket" => {
                if let Some(p) = it.next() {
                    o.ctl_socket = p.clone();
                }
            }
            "--test" => o.test = true,
            "--debug" => o.debug = true,
            "--check" => o.check = true,
            other => return (o, Some(other.to_string())),
        }
    }
    (o, None)
}

/// `dory init ARGS…` (`args` are the words after `init`).
pub fn main_from_cli(args: &[String]) -> i32 {
    let (mut o, bad) = parse_options(args);
    // The machine's init never exits, so it never just checks (nor stops on a bad word).
    if o.check && !is_machine_init() {
        if let Some(word) = bad {
            eprintln!("dory init: unknown argument \"{word}\"\n{USAGE}");
            return 2;
        }
        return check_board(o.config.as_deref().unwrap_or(DEFAULT_BOARD));
    }
    let pid1 = std::process::id() == 1;
    if o.test && is_machine_init() {
        eprintln!("dory init: --test ignored: this is the machine's PID 1, which must not exit");
        o.test = false;
    }
    o.test = o.test || !pid1;
    if let Some(word) = bad {
        eprintln!("dory init: unknown argument \"{word}\"\n{USAGE}");
        if o.test {
            return 2;
        }
        // A real PID 1 must not exit: carry on with what was understood.
    }
    if !o.test && o.boot_root.is_none() {
        o.boot_root = Some("/".into());
    }
    run(o)
}

/// `dory init --check`: reads and validates the board as PID 1 would, starts nothing;
/// prints `ok` (exit 0) or the error naming the field and the limit (exit 1).
fn check_board(path: &str) -> i32 {
    let mut buf = vec![0u8; MAX_BOARD_BYTES];
    let checked = board::read(path, &mut buf).and_then(|text| board::parse(text).map(|_| ()));
    match checked {
        Ok(()) => {
            println!("ok");
            0
        }
        Err(e) => {
            eprintln!("dory init: {path}: {e}");
            1
        }
    }
}

/// Boot, supervise, shut down. Returns only in test mode.
fn run(o: Options) -> i32 {
    let _ = console::now_ms(); // start the clock
    let real = !o.test;
    console::set_debug(o.debug);

    // Block the signals PID 1 handles before anything else: from here on they queue for
    // the signalfd instead of killing us (test mode) or being lost (PID 1).
    if let Err(e) = sigprocmask(SigmaskHow::SIG_BLOCK, Some(&signals::handled()), None) {
        say!("dory: blocking signals failed: {e}");
    }
    // Console on stdio first, so every later step can report (a kernel-provided console
    // is kept if /dev does not exist yet; retried after devtmpfs).
    let mut have_console = real && boot::console_stdio("/");
    // The kernel's release: what runs where, in a field log (fallbacks depend on it).
    let uname = nix::sys::utsname::uname().ok();
    say!(
        "dory: starting{} (Linux {})",
        if o.test { " (test mode)" } else { " as PID 1" },
        uname
            .as_ref()
            .and_then(|u| u.release().to_str())
            .unwrap_or("?")
    );

    // Off the initramfs before anything is mounted on it: the copy sees one filesystem
    // and nothing has to be moved or unmounted; every container then gets a root that
    // pivot_root(2) can leave. On success dory is re-executed from the new root (this
    // call does not return) and the boot starts over there.
    // A board with a real root (board.json "root") is switched to it instead: modules,
    // devices and mounts, then dory re-executed from there (this does not return).
    if real && o.boot_root.as_deref() == Some("/") {
        enter_real_root(o.config.as_deref());
    }
    let stuck_on_initramfs = if real && o.boot_root.as_deref() == Some("/") {
        match boot::leave_initramfs() {
            boot::Root::NotInitramfs => None,
            boot::Root::Switched(e) => {
                say!("dory: boot: / is a tmpfs, but re-executing dory from it failed ({e}); carrying on");
                None
            }
            boot::Root::Initramfs(e) => {
                say!("dory: boot: cannot leave the initramfs root: {e}");
                Some(e)
            }
        }
    } else {
        None
    };

    // Early mounts: proc first (cmdline, /proc/<pid>/ns), /dev before its children, /run
    // for state and the ctl socket, cgroup2 for container limits.
    let mut mounts = boot::Mounts::default();
    if let Some(root) = &o.boot_root {
        mounts.mount_all(root);
        if real && !have_console {
            have_console = boot::console_stdio("/");
        }
    }
    let _ = have_console;

    // From here console lines never block PID 1 (a full console drops and counts them):
    // needs /proc, just mounted.
    if let Err(e) = console::make_nonblocking() {
        say!("dory: console stays blocking: cannot reopen it: {e}");
    }

    // Kernel command line: needs /proc; picks the board and debug/rescue before they matter.
    let cmdline_text = if real {
        // Lossy: one word that is not UTF-8 must not cost the others (dory.config=…).
        std::fs::read("/proc/cmdline")
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    } else {
        String::new()
    };
    let kopts = cmdline::parse(&cmdline_text);
    for w in &kopts.unknown {
        say!("dory: unknown kernel option {w}, ignored");
    }
    if kopts.debug {
        console::set_debug(true);
    }
    debug!(
        "dory: early mounts and kernel options done, t={}",
        console::Secs(console::now_ms())
    );

    // Ctrl-alt-del becomes SIGINT to us (an orderly reboot) instead of an instant reset.
    if real {
        if let Err(e) = nix::sys::reboot::set_cad_enabled(false) {
            say!("dory: reboot(RB_DISABLE_CAD): {e}");
        }
    }
    // Orphans must come to us to be reaped even when we are not PID 1 (test mode).
    if std::process::id() != 1 {
        if let Err(e) = nix::sys::prctl::set_child_subreaper(true) {
            say!("dory: PR_SET_CHILD_SUBREAPER: {e}");
        }
    }

    // Board config: after the mounts (it may live anywhere) and the cmdline (dory.config=).
    let path = o
        .config
        .clone()
        .or_else(|| kopts.config.map(str::to_string))
        .unwrap_or_else(|| DEFAULT_BOARD.into());
    // On the heap, allocated once: PID 1's stack stays small (it is trimmed after deep calls
    // but the frames of this function live for ever).
    let mut buf = vec![0u8; MAX_BOARD_BYTES];
    let (board, rescue) = if kopts.rescue {
        (
            empty_board(),
            Some("dory.rescue on the kernel command line".into()),
        )
    } else {
        load_board(&path, &mut buf)
    };

    // Hostname: from the board, before containers start (they copy it into their uts ns).
    if let Some(boot_root) = &o.boot_root {
        // A board without a real root loads its modules here (one with a root loaded
        // them in the initramfs, before looking for its devices).
        if real && board.root.is_none() {
            if let Err(e) = realroot::load_modules(&board.modules) {
                say!("dory: boot: {e}");
            }
        }
        if let Some(h) = board.hostname {
            if let Err(e) = nix::unistd::sethostname(h) {
                say!("dory: sethostname {h}: {e}");
            }
        }
        // Loopback up: containers sharing the board's network expect 127.0.0.1.
        if let Err(e) = crate::sys::interface_up("lo") {
            say!("dory: bringing up lo: {e}");
        }
        // The board's interfaces: before the first container, which may serve on them.
        net::configure(boot_root, &board.network);
    }
    // Logs on /data: from here every console line and container line also goes to a file.
    let logs = board
        .logs
        .or(board.data.map(|_| logfile::Limits::default()));
    if let Some(limits) = logs.filter(|l| l.enabled) {
        let ids: Vec<&str> = board.containers.iter().map(|c| c.id).collect();
        match logfile::start(DATA_DIR, limits, &ids) {
            Ok(()) => say!(
                "dory: log: files in {DATA_DIR}/{} ({} files of {} bytes per container, {} bytes in all)",
                logfile::LOG_DIR,
                limits.files,
                limits.file_bytes,
                limits.total_bytes
            ),
            Err(e) => say!("dory: log: no log files: {e}"),
        }
    }

    // No silent fallback: where pivot_root is impossible, containers fail to start unless
    // the board (or the kernel command line) opted in to the unsafe MS_MOVE + chroot.
    let allow_no_pivot = board.unsafe_no_pivot || kopts.nopivot;
    if allow_no_pivot {
        say!("dory: WARNING: unsafeNoPivot/dory.nopivot: where pivot_root is refused, containers fall back to MS_MOVE + chroot and the board's root stays mounted under them");
    }
    if stuck_on_initramfs.is_some() && !allow_no_pivot {
        say!("dory: the board is still on its initramfs root, which pivot_root cannot leave: containers will fail to start (opt in, unsafely, with \"unsafeNoPivot\": true in board.json or dory.nopivot)");
    }

    debug!("dory: board read, t={}", console::Secs(console::now_ms()));
    let order = order::start_order(&board).unwrap_or_default();
    let mode = Mode {
        test: o.test,
        pid1: std::process::id() == 1,
        ctl_socket: o.ctl_socket.clone(),
        allow_no_pivot,
    };
    let (action, watchdog) = match Supervisor::new(mode, &board, order) {
        Ok(sup) => sup.run(rescue),
        Err(e) => {
            say!("dory: FATAL: signalfd: {e}");
            (Action::Reboot, None)
        }
    };
    finish(&o, action, &mut mounts, watchdog)
}

/// When `/` is the initramfs (a ramfs or tmpfs) and its board.json names a `root`: boots
/// onto it (does not return). A board that cannot be read is left to the normal path,
/// which reports it; a failed switch is reported and the boot carries on here.
fn enter_real_root(config: Option<&str>) {
    let magic = nix::sys::statfs::statfs("/").map(|s| i128::from(s.filesystem_type().0));
    if !matches!(magic, Ok(0x8584_58f6 | 0x0102_1994)) {
        return;
    }
    let path = config.unwrap_or(DEFAULT_BOARD);
    let mut buf = vec![0u8; MAX_BOARD_BYTES];
    let Ok(text) = board::read(path, &mut buf) else {
        return;
    };
    let Ok(b) = board::parse(text) else {
        return;
    };
    if let Some(e) = realroot::enter(&b) {
        say!("dory: boot: cannot switch to the real root: {e}; staying on the initramfs");
    }
}

fn empty_board<'a>() -> Box<Board<'a>> {
    Box::new(Board {
        hostname: None,
        watchdog: None,
        step_timeout_secs: board::DEFAULT_STEP_TIMEOUT_SECS,
        unsafe_no_pivot: false,
        modules: heapless::Vec::new(),
        root: None,
        root_timeout_secs: board::DEFAULT_ROOT_TIMEOUT_SECS,
        data: None,
        network: heapless::Vec::new(),
        logs: None,
        containers: heapless::Vec::new(),
    })
}

/// Reads and validates the board; on failure an empty board and the rescue reason.
#[inline(never)]
fn load_board<'b>(path: &str, buf: &'b mut [u8]) -> (Box<Board<'b>>, Option<String>) {
    match board::read(path, buf).and_then(board::parse) {
        Ok(b) => {
            say!("dory: board {path}: {} containers", b.containers.len());
            (Box::new(b), None)
        }
        Err(e) => (empty_board(), Some(format!("{path}: {e}"))),
    }
}

/// The last steps: sync, unmount, read-only root, disarm the watchdog, reboot(2).
fn finish(
    o: &Options,
    action: Action,
    mounts: &mut boot::Mounts,
    watchdog: Option<watchdog::Watchdog>,
) -> i32 {
    // The log writer closes its files on /data before /data is unmounted.
    logfile::stop();
    if let Some(root) = &o.boot_root {
        net::unmount(root);
    }
    say!("dory: syncing filesystems");
    nix::unistd::sync();
    mounts.unmount_all();
    if !o.test {
        boot::remount_root_readonly();
        nix::unistd::sync();
    }
    if let Some(w) = watchdog {
        w.disarm();
    }
    say!("dory: shutdown complete ({})", action.name());
    if o.test {
        return 0;
    }
    let Err(e) = nix::sys::reboot::reboot(action.mode());
    say!("dory: reboot(2) failed: {e}; halting here");
    // PID 1 never returns.
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_flag_is_parsed() {
        for f in FLAGS {
            let args = [f.to_string(), "value".to_string()];
            let (_, bad) = parse_options(&args[..1]);
            assert_eq!(bad, None, "{f} alone");
            let (_, bad) = parse_options(&args);
            // Flags with a value take "value"; switches leave it as an unknown word.
            assert!(bad.is_none() || bad.as_deref() == Some("value"), "{f}");
        }
        let (o, bad) = parse_options(&["--check".into(), "--config".into(), "/b.json".into()]);
        assert!(o.check && bad.is_none());
        assert_eq!(o.config.as_deref(), Some("/b.json"));
        let (_, bad) = parse_options(&["--chek".into()]);
        assert_eq!(bad.as_deref(), Some("--chek"));
    }
}
