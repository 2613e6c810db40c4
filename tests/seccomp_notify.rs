//! Seccomp user notification (`SCMP_ACT_NOTIFY`, `linux.seccomp.listenerPath`): a small
//! agent in the test process listens on a unix socket, receives the container process
//! state and the listener fd from dory, checks the state and answers the container's
//! notified `mkdir` calls. The container's output shows the agent's answers. Needs root;
//! skips visibly otherwise.
// The agent's ioctls (SECCOMP_IOCTL_NOTIF_RECV/SEND) and the fd SCM_RIGHTS brings have no
// safe wrapper; dory itself needs neither, so they are libc calls here, each with its
// SAFETY note.
#![allow(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::collections::VecDeque;
use std::io::{IoSliceMut, Read};
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::{run_cmd, Bundle, Out, TIMEOUT};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::socket::{recvmsg, ControlMessageOwned, MsgFlags};
use serde_json::{json, Value};

/// What the agent does with a notified call.
#[derive(Debug, Clone, Copy)]
enum Answer {
    /// Fail it with this errno.
    Errno(i32),
    /// Let the kernel run it (`SECCOMP_USER_NOTIF_FLAG_CONTINUE`).
    Continue,
    /// Receive it, never answer, and close the listener (as if the agent were killed).
    Vanish,
}

/// A ContainerProcessState and the `NSpid` line of its `pid`.
type Seen = (Value, String);

/// What the agent saw.
#[derive(Debug)]
enum Event {
    /// A ContainerProcessState, and the `NSpid` line of its `pid` read on arrival.
    State(Value, String),
    /// A notified syscall (number) and the answer given.
    Call(i64, &'static str),
}

/// A seccomp agent on a thread: accepts connections at `path`, one listener each, and
/// answers notified calls from a shared script (then CONTINUE). Stops and joins its
/// threads on drop; the socket lives in the bundle's temp dir.
struct Agent {
    path: PathBuf,
    stop: Arc<AtomicBool>,
    events: Receiver<Event>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    acceptor: Option<JoinHandle<()>>,
}

impl Agent {
    fn start(b: &Bundle, answers: &[Answer]) -> Agent {
        let path = b.base.join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, events) = mpsc::channel();
        let script = Arc::new(Mutex::new(answers.iter().copied().collect::<VecDeque<_>>()));
        let threads = Arc::new(Mutex::new(Vec::new()));
        let (s, t) = (stop.clone(), threads.clone());
        let acceptor = std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let (s, tx, script) = (s.clone(), tx.clone(), script.clone());
                        let h = std::thread::spawn(move || serve(conn, &s, &tx, &script));
                        t.lock().unwrap().push(h);
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Agent {
            path,
            stop,
            events,
            threads,
            acceptor: Some(acceptor),
        }
    }

    fn path(&self) -> &str {
        self.path.to_str().unwrap()
    }

    /// Every event until `n` states arrived and `calls` calls were answered, or
    /// `TIMEOUT`.
    fn collect(&self, states: usize, calls: usize) -> (Vec<Seen>, Vec<(i64, &str)>) {
        let (mut st, mut cs) = (Vec::new(), Vec::new());
        let deadline = Instant::now() + TIMEOUT;
        while st.len() < states || cs.len() < calls {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(Event::State(v, nspid)) => st.push((v, nspid)),
                Ok(Event::Call(nr, a)) => cs.push((nr, a)),
                Err(_) => break,
            }
        }
        (st, cs)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(a) = self.acceptor.take() {
            let _ = a.join();
        }
        for h in self.threads.lock().unwrap().drain(..) {
            let _ = h.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// One connection: the state JSON with the listener fd, then the listener's calls.
fn serve(
    conn: UnixStream,
    stop: &AtomicBool,
    tx: &Sender<Event>,
    script: &Mutex<VecDeque<Answer>>,
) {
    let (text, listener) = receive(conn);
    let state: Value = serde_json::from_slice(&text).unwrap_or(Value::Null);
    // The pid named is alive now (its notified calls wait for us): whose is it?
    let pid = state["pid"].as_i64().unwrap_or(0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .unwrap_or("")
        .to_owned();
    let _ = tx.send(Event::State(state, nspid));
    let Some(listener) = listener else { return };
    while !stop.load(Ordering::SeqCst) {
        if !readable(&listener) {
            continue;
        }
        let Some(n) = notif_recv(&listener) else {
            // Every process using the filter is gone (POLLHUP), or the call was withdrawn.
            if hung_up(&listener) {
                return;
            }
            continue;
        };
        let answer = script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Answer::Continue);
        let said = match answer {
            Answer::Errno(e) => {
                notif_send(&listener, n.id, -e, 0);
                "errno"
            }
            Answer::Continue => {
                notif_send(
                    &listener,
                    n.id,
                    0,
                    libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
                );
                "continue"
            }
            Answer::Vanish => "vanish",
        };
        let _ = tx.send(Event::Call(i64::from(n.data.nr), said));
        if said == "vanish" {
            return; // drops (closes) the listener with the call unanswered
        }
    }
}

/// The message and the fd dory sends: one sendmsg with SCM_RIGHTS, then EOF.
fn receive(conn: UnixStream) -> (Vec<u8>, Option<OwnedFd>) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut cmsg = nix::cmsg_space!([RawFd; 2]);
    let (n, fd) = {
        let mut iov = [IoSliceMut::new(&mut buf)];
        let msg = recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        )
        .unwrap();
        let fd = msg.cmsgs().unwrap().find_map(|c| match c {
            ControlMessageOwned::ScmRights(fds) => fds.first().copied(),
            _ => None,
        });
        (msg.bytes, fd)
    };
    buf.truncate(n);
    let mut rest = Vec::new();
    let _ = (&conn).read_to_end(&mut rest);
    buf.extend(rest);
    // SAFETY: SCM_RIGHTS installed this fd in our table; nothing else owns it.
    (buf, fd.map(|f| unsafe { OwnedFd::from_raw_fd(f) }))
}

fn poll_listener(fd: &OwnedFd) -> PollFlags {
    let mut p = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
    match poll(&mut p, PollTimeout::from(50u8)) {
        Ok(n) if n > 0 => p[0].revents().unwrap_or(PollFlags::empty()),
        _ => PollFlags::empty(),
    }
}

fn readable(fd: &OwnedFd) -> bool {
    poll_listener(fd).intersects(PollFlags::POLLIN | PollFlags::POLLHUP)
}

fn hung_up(fd: &OwnedFd) -> bool {
    poll_listener(fd).contains(PollFlags::POLLHUP)
}

/// `SECCOMP_IOCTL_NOTIF_RECV` (seccomp_unotify(2)).
fn notif_recv(fd: &OwnedFd) -> Option<libc::seccomp_notif> {
    // The kernel wants it zeroed.
    let mut n = libc::seccomp_notif {
        id: 0,
        pid: 0,
        flags: 0,
        data: libc::seccomp_data {
            nr: 0,
            arch: 0,
            instruction_pointer: 0,
            args: [0; 6],
        },
    };
    // SAFETY: the ioctl writes one seccomp_notif into `n`, which outlives the call.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut n) };
    (r == 0).then_some(n)
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: `error` is a negated errno (0 with CONTINUE).
fn notif_send(fd: &OwnedFd, id: u64, error: i32, flags: u32) {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val: 0,
        error,
        flags,
    };
    // SAFETY: the ioctl reads one seccomp_notif_resp from `resp`.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
    assert_eq!(r, 0, "NOTIF_SEND: {}", std::io::Error::last_os_error());
}

fn arch() -> &'static str {
    if cfg!(target_arch = "x86_64") {
        "SCMP_ARCH_X86_64"
    } else {
        "SCMP_ARCH_AARCH64"
    }
}

/// A profile that allows everything but notifies `names`.
fn notify_profile(listener: &str, names: &[&str]) -> Value {
    json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": [arch()],
        "listenerPath": listener,
        "listenerMetadata": "meta \"42\"",
        "syscalls": [{"names": names, "action": "SCMP_ACT_NOTIFY"}],
    })
}

/// Syscall numbers of mkdir here (busybox calls mkdir on x86_64, mkdirat elsewhere).
fn is_mkdir(nr: i64) -> bool {
    #[cfg(target_arch = "x86_64")]
    let mkdir = nr == libc::SYS_mkdir;
    #[cfg(not(target_arch = "x86_64"))]
    let mkdir = false;
    mkdir || nr == libc::SYS_mkdirat
}

const MKDIRS: &[&str] = &["mkdir", "mkdirat"];
/// Two mkdirs: the agent refuses the first and lets the second run.
const TWO_MKDIRS: &str =
    "mkdir /dev/shm/a; echo rc1=$?; mkdir /dev/shm/b; echo rc2=$?; test -d /dev/shm/b && echo b=made; test -d /dev/shm/a || echo a=absent";

/// The state the agent got for a container's init: every ContainerProcessState field.
fn check_init_state(b: &Bundle, st: &Value, nspid: &str, status: &str) {
    assert!(
        st["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{st}"
    );
    assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
    assert_eq!(st["metadata"], "meta \"42\"", "{st}");
    let s = &st["state"];
    assert_eq!(s["id"], b.id.as_str(), "{st}");
    assert_eq!(s["status"], status, "{st}");
    assert_eq!(s["pid"], st["pid"], "{st}");
    assert_eq!(s["bundle"], b.dir.to_str().unwrap(), "{st}");
    // The pid is the host pid of the container's init: pid 1 in its own namespace.
    assert!(nspid.ends_with("\t1"), "NSpid of {}: {nspid:?}", st["pid"]);
}

fn check_two_mkdirs(out: &Out) {
    assert_eq!(out.value("rc1"), Some("1"), "{out:?}");
    assert!(out.stderr.contains("No medium found"), "{out:?}");
    assert_eq!(out.value("rc2"), Some("0"), "{out:?}");
    assert_eq!(out.value("b"), Some("made"), "{out:?}");
    assert_eq!(out.value("a"), Some("absent"), "{out:?}");
}

/// Waits for `child` at most `TIMEOUT` (killed then).
fn wait_for(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("did not finish within {TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `run`, filter loaded before the capabilities go (noNewPrivileges false): the agent
/// gets the state and the listener, and its answers (ENOMEDIUM, then CONTINUE) are what
/// the container's two mkdirs see.
#[test]
fn run_agent_answers_mkdir() {
    needs_root!();
    let mut b = Bundle::new("notify-run", &["sh", "-c", TWO_MKDIRS]);
    let agent = Agent::start(&b, &[Answer::Errno(libc::ENOMEDIUM), Answer::Continue]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = notify_profile(agent.path(), MKDIRS);
    let out = b.run();
    out.expect_code(0);
    check_two_mkdirs(&out);
    let (states, calls) = agent.collect(1, 2);
    assert_eq!(states.len(), 1, "one connection per listener: {states:?}");
    check_init_state(&b, &states[0].0, &states[0].1, "creating");
    assert_eq!(calls.len(), 2, "{calls:?}");
    assert!(calls.iter().all(|(nr, _)| is_mkdir(*nr)), "{calls:?}");
    assert_eq!(calls[0].1, "errno");
    assert_eq!(calls[1].1, "continue");
    b.assert_nothing_left();
}

/// `create` + `start` with noNewPrivileges (the filter loaded last, before the start
/// gate): the listener reaches the agent during `create`; the calls after `start` are
/// answered.
#[test]
fn create_start_agent_answers_mkdir() {
    needs_root!();
    let mut b = Bundle::new("notify-create", &["sh", "-c", TWO_MKDIRS]);
    let agent = Agent::start(&b, &[Answer::Errno(libc::ENOMEDIUM), Answer::Continue]);
    b.config["process"]["noNewPrivileges"] = json!(true);
    b.config["linux"]["seccomp"] = notify_profile(agent.path(), MKDIRS);
    b.write_config();
    let log = b.base.join("out");
    let dir = b.dir.to_str().unwrap().to_owned();
    // The container's output goes to a file: `create` returns while it waits.
    let f = std::fs::File::create(&log).unwrap();
    let mut create = b
        .cmd(&["create", "--bundle", &dir, &b.id])
        .stdin(std::process::Stdio::null())
        .stdout(f.try_clone().unwrap())
        .stderr(f)
        .spawn()
        .unwrap();
    let created = wait_for(&mut create);
    assert!(
        created.success(),
        "create: {created:?}: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    let (states, _) = agent.collect(1, 0);
    assert_eq!(states.len(), 1, "the agent heard nothing during create");
    check_init_state(&b, &states[0].0, &states[0].1, "creating");
    run_cmd(&mut b.cmd(&["start", &b.id])).expect_code(0);
    let (_, calls) = agent.collect(0, 2);
    assert_eq!(calls.len(), 2, "{calls:?}");
    let deadline = Instant::now() + TIMEOUT;
    let mut text = String::new();
    while Instant::now() < deadline && !text.contains("a=") {
        std::thread::sleep(Duration::from_millis(10));
        text = std::fs::read_to_string(&log).unwrap_or_default();
    }
    check_two_mkdirs(&Out {
        code: 0,
        stdout: text.clone(),
        stderr: text,
    });
    let _ = run_cmd(&mut b.cmd(&["delete", "--force", &b.id]));
    b.assert_nothing_left();
}

/// `exec`: the exec'd process gets the filter and a listener of its own; the agent gets
/// its pid and the container's (running) state with the init's pid.
#[test]
fn exec_gets_its_own_listener() {
    needs_root!();
    let mut b = Bundle::new("notify-exec", &["sleep", "30"]);
    let agent = Agent::start(&b, &[Answer::Errno(libc::ENOMEDIUM)]);
    b.config["linux"]["seccomp"] = notify_profile(agent.path(), MKDIRS);
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    run_cmd(&mut b.cmd(&["run", "-d", "--bundle", &dir, &b.id])).expect_code(0);
    let init = b.wait_state().pid;
    let (states, _) = agent.collect(1, 0);
    assert_eq!(states.len(), 1, "init's listener");
    let e = run_cmd(&mut b.cmd(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "mkdir /dev/shm/e; echo rc=$?; echo ppid=$PPID",
    ]));
    e.expect_code(0);
    assert_eq!(e.value("rc"), Some("1"), "{e:?}");
    assert!(e.stderr.contains("No medium found"), "{e:?}");
    let (states, calls) = agent.collect(1, 1);
    assert_eq!(states.len(), 1, "exec's listener");
    assert_eq!(calls.len(), 1, "{calls:?}");
    let (st, nspid) = &states[0];
    assert_eq!(st["fds"], json!(["seccompFd"]), "{st}");
    assert_eq!(st["state"]["pid"], init, "{st}");
    assert_eq!(st["state"]["status"], "running", "{st}");
    assert_ne!(st["pid"], init, "{st}");
    // The exec'd process is in the container's pid namespace, not its init.
    assert!(
        !nspid.ends_with("\t1") && nspid.split('\t').count() == 3,
        "{nspid:?}"
    );
    // The agent gone: exec fails naming the field, and its process does not stay.
    drop(agent);
    let gone = run_cmd(&mut b.cmd(&["exec", &b.id, "sleep", "20"]));
    assert_ne!(gone.code, 0, "{gone:?}");
    assert!(
        gone.stderr
            .contains("linux.seccomp.listenerPath: connect to the seccomp agent"),
        "{gone:?}"
    );
    let ps = run_cmd(&mut b.cmd(&["ps", "--format", "json", &b.id]));
    let pids: Vec<i32> = serde_json::from_str(&ps.stdout).unwrap();
    assert_eq!(pids, vec![init], "{ps:?}");
    let _ = run_cmd(&mut b.cmd(&["delete", "--force", &b.id]));
    b.assert_nothing_left();
}

/// An agent that receives a call and vanishes without answering: the call fails with
/// ENOSYS instead of hanging (dory keeps no copy of the listener open), and later
/// notified calls fail at once.
#[test]
fn vanished_agent_gives_enosys_not_a_hang() {
    needs_root!();
    let mut b = Bundle::new(
        "notify-vanish",
        &[
            "sh",
            "-c",
            "mkdir /dev/shm/v; echo rc1=$?; mkdir /dev/shm/w; echo rc2=$?",
        ],
    );
    let agent = Agent::start(&b, &[Answer::Vanish]);
    b.config["process"]["noNewPrivileges"] = json!(false);
    b.config["linux"]["seccomp"] = notify_profile(agent.path(), MKDIRS);
    let started = Instant::now();
    let out = b.run();
    out.expect_code(0);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(out.value("rc1"), Some("1"), "{out:?}");
    assert_eq!(out.value("rc2"), Some("1"), "{out:?}");
    assert!(out.stderr.contains("Function not implemented"), "{out:?}");
    let (_, calls) = agent.collect(1, 1);
    assert_eq!(calls.len(), 1, "{calls:?}");
    b.assert_nothing_left();
}

/// Bad input: a clear error naming the field, non-zero exit, nothing left behind.
#[test]
fn bad_listener_configs_are_refused_cleanly() {
    needs_root!();
    let cases: [(&str, Value, &str); 5] = [
        (
            "no-path",
            json!({"defaultAction": "SCMP_ACT_ALLOW",
                   "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}]}),
            "linux.seccomp.listenerPath: must be set when a rule uses SCMP_ACT_NOTIFY",
        ),
        (
            "long-path",
            notify_profile(&format!("/tmp/{}", "x".repeat(103)), MKDIRS),
            "linux.seccomp.listenerPath: longer than 107 bytes",
        ),
        (
            "absent-agent",
            notify_profile("/tmp/dory-test-no-such-agent.sock", MKDIRS),
            "linux.seccomp.listenerPath: connect to the seccomp agent at /tmp/dory-test-no-such-agent.sock",
        ),
        (
            "write",
            notify_profile("/tmp/x.sock", &["write"]),
            "linux.seccomp.syscalls[0].names: SCMP_ACT_NOTIFY cannot be used for the write syscall",
        ),
        (
            "default",
            json!({"defaultAction": "SCMP_ACT_NOTIFY", "listenerPath": "/tmp/x.sock"}),
            "linux.seccomp.defaultAction: SCMP_ACT_NOTIFY cannot be used as default action",
        ),
    ];
    for (name, profile, message) in cases {
        let mut b = Bundle::new(&format!("notify-bad-{name}"), &["true"]);
        b.config["linux"]["seccomp"] = profile;
        let out = b.run();
        assert_ne!(out.code, 0, "{name}: {out:?}");
        assert!(out.stderr.contains(message), "{name}: {out:?}");
        b.assert_nothing_left();
    }
}

/// `listenerPath` without a NOTIFY rule is ignored, as in runc (no connection is made).
#[test]
fn listener_path_without_notify_is_ignored() {
    needs_root!();
    let mut b = Bundle::new(
        "notify-unused",
        &["sh", "-c", "mkdir /dev/shm/u && echo made=yes"],
    );
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": "/tmp/dory-test-no-such-agent.sock",
    });
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("made"), Some("yes"), "{out:?}");
    b.assert_nothing_left();
}
