//! `dory run` and `dory exec -t` on a real terminal: the test owns the master side of a
//! pty and runs dory on the slave as the session leader with it as controlling terminal
//! (as an interactive shell would), types through the master and reads what comes back.
//! Window resizes, signals sent to dory, Ctrl-C and Ctrl-D typed on the terminal, and the
//! caller's terminal mode after dory ends (normally and when the container is killed).
//! Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{run_cmd, Bundle, DORY};
use nix::sys::signal::{kill, Signal};
use nix::sys::termios::{tcgetattr, LocalFlags, Termios};
use nix::unistd::Pid;
use serde_json::Value;

/// How long any one expected output may take (TCG-slow machines included).
const WAIT: Duration = Duration::from_secs(20);

/// A pty whose slave runs a command as session leader (`setsid -c`), and a reader thread
/// that collects everything the master receives.
struct Pty {
    master: OwnedFd,
    /// Kept open so the terminal's mode can be read after the command ends.
    slave: OwnedFd,
    slave_path: String,
    /// The terminal's mode as opened (cooked), before dory ran on it.
    initial: Termios,
    seen: Arc<Mutex<String>>,
    child: Option<Child>,
}

impl Pty {
    /// `dory <args…>` on a new 24x80 pty.
    fn spawn(args: &[&str]) -> Pty {
        let size = nix::pty::Winsize {
            ws_row: 24,
            ws_col: 80,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pty = nix::pty::openpty(Some(&size), None).unwrap();
        let slave_path = std::fs::read_link(format!("/proc/self/fd/{}", pty.slave.as_raw_fd()))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let initial = tcgetattr(pty.slave.as_fd()).unwrap();
        let stdio = |fd: &OwnedFd| Stdio::from(fd.try_clone().unwrap());
        // setsid -c: a new session with the pty as controlling terminal, so dory's process
        // group is the terminal's foreground group (SIGWINCH, job control) as under a shell.
        let child = Command::new("setsid")
            .arg("-c")
            .arg(DORY)
            .args(args)
            .stdin(stdio(&pty.slave))
            .stdout(stdio(&pty.slave))
            .stderr(stdio(&pty.slave))
            .spawn()
            .expect("setsid (util-linux)");
        let seen = Arc::new(Mutex::new(String::new()));
        let reader = pty.master.try_clone().unwrap();
        let sink = Arc::clone(&seen);
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            // EIO once no slave fd is open any more (the test's own copy is closed last).
            while let Ok(n @ 1..) = nix::unistd::read(&reader, &mut buf) {
                sink.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        Pty {
            master: pty.master,
            slave: pty.slave,
            slave_path,
            initial,
            seen,
            child: Some(child),
        }
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.as_ref().unwrap().id()).unwrap()
    }

    fn send(&self, bytes: &str) {
        nix::unistd::write(&self.master, bytes.as_bytes()).unwrap();
    }

    /// Waits until `text` appears after what earlier waits consumed; panics with the
    /// transcript after [`WAIT`].
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            {
                let mut seen = self.seen.lock().unwrap();
                if let Some(at) = seen.find(text) {
                    seen.drain(..at + text.len());
                    return;
                }
                assert!(
                    Instant::now() < deadline,
                    "no {text:?} on the terminal within {WAIT:?}; it showed: {seen:?}"
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Sets the window size as a terminal emulator does (TIOCSWINSZ on the terminal, which
    /// sends SIGWINCH to its foreground process group: dory).
    fn resize(&self, rows: u16, cols: u16) {
        let out = run_cmd(Command::new("stty").args([
            "-F",
            &self.slave_path,
            "rows",
            &rows.to_string(),
            "cols",
            &cols.to_string(),
        ]));
        out.expect_code(0);
    }

    /// Types `command` until `answer` comes back: a signal forwarded to an interactive
    /// shell can discard the line being typed when it lands, so one try may be lost.
    fn until_answers(&self, command: &str, answer: &str) {
        let deadline = Instant::now() + WAIT;
        loop {
            self.send(command);
            std::thread::sleep(Duration::from_millis(300));
            if self.seen.lock().unwrap().contains(answer) {
                return self.wait_for(answer);
            }
            assert!(
                Instant::now() < deadline,
                "no {answer:?} within {WAIT:?}; the terminal showed: {:?}",
                self.seen.lock().unwrap()
            );
        }
    }

    fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap();
    }

    /// Waits for dory to end; its exit code (128+N for signal N).
    fn wait_exit(&mut self) -> i32 {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(st) = child.try_wait().unwrap() {
                use std::os::unix::process::ExitStatusExt;
                return st.code().unwrap_or_else(|| 128 + st.signal().unwrap_or(0));
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!(
                    "dory did not end within {WAIT:?}; the terminal showed: {:?}",
                    self.seen.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn mode(&self) -> Termios {
        tcgetattr(self.slave.as_fd()).unwrap()
    }

    /// Panics unless the terminal is back in the mode it had before dory ran.
    fn assert_mode_restored(&self) {
        assert_eq!(
            mode_flags(&self.mode()),
            mode_flags(&self.initial),
            "terminal mode not restored"
        );
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The parts of a terminal mode that raw mode changes and that must come back.
fn mode_flags(t: &Termios) -> (u64, u64, u64, u64) {
    (
        u64::from(t.input_flags.bits()),
        u64::from(t.output_flags.bits()),
        u64::from(t.local_flags.bits()),
        u64::from(t.control_flags.bits()),
    )
}

/// A bundle whose process is an interactive `sh` on a terminal.
fn shell_bundle(name: &str) -> Bundle {
    let mut b = Bundle::new(name, &["sh"]);
    b.config["process"]["terminal"] = Value::Bool(true);
    b.write_config();
    b
}

fn run_args(b: &Bundle) -> Vec<String> {
    let root = b.state_root.to_string_lossy().into_owned();
    let dir = b.dir.to_string_lossy().into_owned();
    ["--root", &root, "run", "--bundle", &dir, &b.id]
        .map(str::to_owned)
        .to_vec()
}

fn spawn_run(b: &Bundle) -> Pty {
    let args = run_args(b);
    let pty = Pty::spawn(&args.iter().map(String::as_str).collect::<Vec<_>>());
    // The shell is up and relaying when arithmetic it did comes back.
    pty.send("echo up-$((20+22))\n");
    pty.wait_for("up-42");
    pty
}

/// A running detached container (no terminal) to `exec -t` into.
fn detached(name: &str) -> Bundle {
    let b = Bundle::new(name, &["sleep", "1000"]);
    b.write_config();
    let dir = b.dir.to_string_lossy().into_owned();
    run_cmd(&mut b.cmd(&["run", "-d", "--bundle", &dir, &b.id])).expect_code(0);
    b
}

fn spawn_exec(b: &Bundle) -> Pty {
    let root = b.state_root.to_string_lossy().into_owned();
    let pty = Pty::spawn(&["--root", &root, "exec", "-t", &b.id, "sh"]);
    pty.send("echo up-$((20+22))\n");
    pty.wait_for("up-42");
    pty
}

/// Resizes three times in quick succession, then checks the size the container sees and
/// that typing still works (each SIGWINCH used to freeze the relay).
fn check_resizes(pty: &Pty) {
    pty.send("stty size\n");
    pty.wait_for("24 80");
    for (rows, cols) in [(30, 100), (31, 101), (40, 120)] {
        pty.resize(rows, cols);
    }
    // The container's terminal follows asynchronously: ask until it reports the last size.
    pty.until_answers("echo size=$(stty size)=\n", "size=40 120=");
}

/// `sleep` in the foreground, Ctrl-C typed on the terminal: the container's terminal
/// interrupts it and the shell answers again (dory passes the byte, not a host SIGINT).
fn check_ctrl_c(pty: &Pty) {
    pty.send("sleep 600; echo slept\n");
    std::thread::sleep(Duration::from_millis(300));
    pty.send("\x03");
    pty.send("echo after-$((2+3))\n");
    pty.wait_for("after-5");
    assert!(!pty.seen.lock().unwrap().contains("slept"));
}

#[test]
fn run_terminal_follows_resizes() {
    needs_root!();
    let b = shell_bundle("tty-resize");
    let mut pty = spawn_run(&b);
    check_resizes(&pty);
    pty.send("exit 3\n");
    assert_eq!(pty.wait_exit(), 3);
    b.assert_nothing_left();
}

#[test]
fn run_terminal_keeps_working_after_signals_the_shell_ignores() {
    needs_root!();
    // dory forwards them to the container's init; an interactive sh as pid 1 of its pid
    // namespace ignores all three, so the session must go on as before.
    let b = shell_bundle("tty-signals");
    let mut pty = spawn_run(&b);
    for sig in [Signal::SIGHUP, Signal::SIGINT, Signal::SIGTERM] {
        pty.signal(sig);
        let n = sig as i32;
        pty.until_answers(
            &format!("echo still-{n}-$((1+1))\n"),
            &format!("still-{n}-2"),
        );
    }
    pty.send("exit 0\n");
    assert_eq!(pty.wait_exit(), 0);
    b.assert_nothing_left();
}

#[test]
fn run_terminal_ctrl_c_interrupts_and_ctrl_d_ends_restoring_the_mode() {
    needs_root!();
    let b = shell_bundle("tty-ctrl");
    let mut pty = spawn_run(&b);
    // While dory relays, the caller's terminal is raw (no line editing, no echo).
    assert!(!pty.mode().local_flags.contains(LocalFlags::ICANON));
    check_ctrl_c(&pty);
    pty.send("\x04");
    assert_eq!(pty.wait_exit(), 0);
    pty.assert_mode_restored();
    b.assert_nothing_left();
}

#[test]
fn run_terminal_mode_restored_when_the_container_is_killed() {
    needs_root!();
    let b = shell_bundle("tty-killed");
    let mut pty = spawn_run(&b);
    run_cmd(&mut b.cmd(&["kill", &b.id, "KILL"])).expect_code(0);
    assert_eq!(pty.wait_exit(), 137);
    pty.assert_mode_restored();
    b.assert_nothing_left();
}

#[test]
fn exec_terminal_resizes_ctrl_c_ctrl_d_and_mode() {
    needs_root!();
    let b = detached("tty-exec");
    let mut pty = spawn_exec(&b);
    assert!(!pty.mode().local_flags.contains(LocalFlags::ICANON));
    check_resizes(&pty);
    check_ctrl_c(&pty);
    // Forwarded to the exec'd shell, which (interactive) ignores it.
    pty.signal(Signal::SIGINT);
    pty.until_answers("echo alive-$((3+4))\n", "alive-7");
    pty.send("\x04");
    assert_eq!(pty.wait_exit(), 0);
    pty.assert_mode_restored();
    // The container itself runs on.
    let st = run_cmd(&mut b.cmd(&["state", &b.id]));
    st.expect_code(0);
    assert!(st.stdout.contains("running"), "{}", st.stdout);
    run_cmd(&mut b.cmd(&["delete", "--force", &b.id])).expect_code(0);
    b.assert_nothing_left();
}
