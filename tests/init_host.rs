//! Host tests of PID 1 mode: `dory init --test --config BOARD` runs as PID 1 of a fresh
//! pid + mount (+ uts, ipc) namespace with a private /run, supervising real containers
//! (busybox rootfs built from /bin/busybox, bundles made from the seed config).
//! Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

const DORY: &str = env!("CARGO_BIN_EXE_dory");
const SEED: &str = include_str!("fixtures/seed-config.json");

fn is_root(name: &str) -> bool {
    // SAFETY-free check: /proc/self/status Uid line, effective uid is the second field.
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let euid = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .and_then(|l| l.split_whitespace().nth(2))
        .unwrap_or("1");
    if euid != "0" {
        // Straight to fd 2: libtest captures eprintln! of a passing test, and CI must see it.
        let _ = std::io::Write::write_fmt(
            &mut std::io::stderr(),
            format_args!("SKIPPED: {name}: needs root\n"),
        );
        return false;
    }
    for tool in ["/bin/busybox", "/usr/bin/unshare"] {
        assert!(
            Path::new(tool).exists(),
            "{name}: {tool} is required (apt-get install busybox-static util-linux)"
        );
    }
    true
}

/// A scratch directory removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("dory-init-{tag}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&p);
        fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// A busybox rootfs: /bin/busybox plus a symlink per applet.
fn rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "run"] {
        fs::create_dir_all(r.join(d)).unwrap();
    }
    fs::copy("/bin/busybox", r.join("bin/busybox")).unwrap();
    let list = Command::new("/bin/busybox").arg("--list").output().unwrap();
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        if applet != "busybox" && !applet.is_empty() {
            let _ = symlink("busybox", r.join("bin").join(applet));
        }
    }
    r
}

fn json_str(s: &str) -> String {
    let mut o = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o.push('"');
    o
}

/// A bundle whose config is the seed with these args, no terminal, the shared rootfs, and
/// (unless `pid_ns`) no pid namespace, so orphans reparent to dory.
fn bundle(dir: &Path, rootfs: &Path, name: &str, script: &str, pid_ns: bool) -> PathBuf {
    let b = dir.join(name);
    fs::create_dir_all(&b).unwrap();
    let args = format!(
        "[{}, {}, {}]",
        json_str("/bin/sh"),
        json_str("-c"),
        json_str(script)
    );
    let mut cfg = SEED
        .replace("\"terminal\": true", "\"terminal\": false")
        .replace(
            "\"args\": [\n      \"sh\"\n    ]",
            &format!("\"args\": {args}"),
        )
        .replace(
            "\"path\": \"rootfs\"",
            &format!("\"path\": {}", json_str(rootfs.to_str().unwrap())),
        );
    if !pid_ns {
        cfg = cfg.replace("{\n        \"type\": \"pid\"\n      },", "");
    }
    assert!(
        cfg.contains(&args),
        "seed layout changed: args not replaced"
    );
    fs::write(b.join("config.json"), cfg).unwrap();
    b
}

/// dory as PID 1 of a new pid namespace; killed (and with it the namespace) on drop.
struct Init {
    child: Child,
    pid: i32,
    log: PathBuf,
    ids: Vec<String>,
    status: Option<ExitStatus>,
}

const SCRIPT: &str = "mount -t tmpfs tmpfs /run && mount -t proc proc /proc && \
     { [ -z \"$DORY_TEST_DATA\" ] || mount --bind \"$DORY_TEST_DATA\" /data; } && \
     exec \"$0\" init --test \"$@\"";

impl Init {
    fn start(dir: &Path, ids: &[&str], unshare_extra: &[&str], args: &[&str]) -> Init {
        let log = dir.join("console.log");
        let out = fs::File::create(&log).unwrap();
        Init::start_on(out.into(), log, ids, unshare_extra, args)
    }

    /// Like [`Init::start`] with the console on `out` (`log` is where [`Init::log`] reads).
    fn start_on(
        out: std::os::fd::OwnedFd,
        log: PathBuf,
        ids: &[&str],
        unshare_extra: &[&str],
        args: &[&str],
    ) -> Init {
        Init::start_with_data(out, log, ids, unshare_extra, args, None)
    }

    /// Like [`Init::start_on`]; `data` (a host directory) is bound at /data in the board's
    /// mount namespace (the host's /data must exist as a mount point).
    fn start_with_data(
        out: std::os::fd::OwnedFd,
        log: PathBuf,
        ids: &[&str],
        unshare_extra: &[&str],
        args: &[&str],
        data: Option<&Path>,
    ) -> Init {
        let out = fs::File::from(out);
        let mut cmd = Command::new("unshare");
        cmd.args([
            "--pid",
            "--fork",
            "--kill-child",
            "--mount",
            "--uts",
            "--ipc",
            "--propagation",
            "private",
        ]);
        cmd.args(unshare_extra);
        cmd.args(["sh", "-c", SCRIPT, DORY]).args(args);
        cmd.env(
            "DORY_TEST_DATA",
            data.map(Path::as_os_str).unwrap_or_default(),
        );
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        let child = cmd.spawn().unwrap();
        let mut init = Init {
            child,
            pid: 0,
            log,
            ids: ids.iter().map(|s| s.to_string()).collect(),
            status: None,
        };
        // The namespace's init is unshare's child once it has exec'd dory.
        let upid = init.child.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            let kids = fs::read_to_string(format!("/proc/{upid}/task/{upid}/children"))
                .unwrap_or_default();
            if let Some(p) = kids
                .split_whitespace()
                .next()
                .and_then(|p| p.parse::<i32>().ok())
            {
                let comm = fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
                if comm.trim() == "dory" {
                    init.pid = p;
                    return init;
                }
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("dory did not start; console:\n{}", init.log());
    }

    fn log(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.log).unwrap_or_default()).into_owned()
    }

    /// Waits until the console shows `pat`; returns the console text.
    fn wait_for(&self, pat: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.log();
            if text.contains(pat) {
                return text;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {pat:?}; console:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until `pat` occurs `n` times on the console.
    fn wait_count(&self, pat: &str, n: usize, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let text = self.log();
            if text.matches(pat).count() >= n {
                return text;
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {n} x {pat:?}; console:\n{text}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid.to_string())
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn ctl(&self, args: &[&str]) -> (i32, String, String) {
        let sock = format!("/proc/{}/root/run/dory/ctl.sock", self.pid);
        let out = Command::new(DORY)
            .arg("ctl")
            .arg("--socket")
            .arg(sock)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Waits for the namespace (unshare) to end; returns its exit status.
    fn wait_exit(&mut self, secs: u64) -> ExitStatus {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                self.status = Some(st);
                return st;
            }
            if Instant::now() > deadline {
                panic!("dory did not exit; console:\n{}", self.log());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Init {
    fn drop(&mut self) {
        if self.status.is_none() {
            if self.pid > 0 {
                let _ = Command::new("kill")
                    .args(["-KILL", &self.pid.to_string()])
                    .status();
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        // Containers killed with the namespace leave their cgroups behind.
        for _ in 0..50 {
            let mut left = 0;
            for h in fs::read_dir("/sys/fs/cgroup")
                .into_iter()
                .flatten()
                .flatten()
            {
                for base in [h.path().join("dory"), h.path().join("unified/dory")] {
                    for id in &self.ids {
                        let d = base.join(id);
                        if d.exists() && fs::remove_dir(&d).is_err() {
                            left += 1;
                        }
                    }
                }
            }
            if fs::metadata("/sys/fs/cgroup/cgroup.controllers").is_ok() {
                for id in &self.ids {
                    let d = Path::new("/sys/fs/cgroup/dory").join(id);
                    if d.exists() && fs::remove_dir(&d).is_err() {
                        left += 1;
                    }
                }
            }
            if left == 0 {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// `t=` values (seconds) of console lines starting with `prefix`.
fn times(log: &str, prefix: &str) -> Vec<f64> {
    log.lines()
        .filter(|l| l.starts_with(prefix))
        .filter_map(|l| l.rsplit("t=").next())
        .filter_map(|t| t.trim_end_matches(')').parse::<f64>().ok())
        .collect()
}

fn pos(log: &str, pat: &str) -> usize {
    log.find(pat)
        .unwrap_or_else(|| panic!("{pat:?} not on the console:\n{log}"))
}

fn vm_rss_kib(pid: i32) -> u64 {
    let s = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

const POLITE: &str =
    "trap 'echo bye; exit 0' TERM; i=0; while :; do echo tick $i; i=$((i+1)); sleep 0.2; done";

#[test]
fn init_oneshot_then_services_ctl_and_poweroff() {
    if !is_root("init_oneshot_then_services_ctl_and_poweroff") {
        return;
    }
    let d = TempDir::new("boot");
    let r = rootfs(&d.0);
    let hello = bundle(&d.0, &r, "hello", "echo hello from oneshot", true);
    let ticker = bundle(&d.0, &r, "ticker", POLITE, true);
    let last = bundle(
        &d.0,
        &r,
        "last",
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        true,
    );
    let board = format!(
        r#"{{"containers":[
        {{"id":"ib-last","bundle":"{}","after":["ib-ticker"],"stopGraceMs":3000}},
        {{"id":"ib-hello","bundle":"{}","kind":"oneshot"}},
        {{"id":"ib-ticker","bundle":"{}","stopGraceMs":3000,
          "health":{{"args":["/bin/sh","-c","test -e /tmp"],"intervalMs":300,"timeoutMs":1000,"failures":2}}}}]}}"#,
        last.display(),
        hello.display(),
        ticker.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["ib-last", "ib-hello", "ib-ticker"],
        &[],
        &[
            "--debug",
            "--config",
            d.0.join("board.json").to_str().unwrap(),
        ],
    );
    let log = init.wait_for("dory: boot complete (2 services started)", 20);
    // The oneshot ran and exited 0 before any service started; `after` reorders.
    assert!(
        pos(&log, "[ib-hello] hello from oneshot") < pos(&log, "dory: ib-hello exited (status 0)")
    );
    assert!(pos(&log, "dory: ib-hello exited (status 0)") < pos(&log, "dory: started ib-ticker"));
    assert!(pos(&log, "dory: started ib-ticker") < pos(&log, "dory: started ib-last"));
    init.wait_for("[ib-ticker] tick 2", 10);
    init.wait_for("dory: ib-ticker health probe ok", 10);
    // Idle memory of PID 1 with two services (debug build; see the report for release).
    eprintln!("dory init VmRSS: {} KiB", vm_rss_kib(init.pid));

    let (code, out, err) = init.ctl(&["status"]);
    assert_eq!(code, 0, "{err}");
    let row = |id: &str| {
        out.lines()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("{out}"))
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert_eq!(row("ib-hello")[1], "exited");
    assert_eq!(row("ib-ticker")[1], "running");
    assert_eq!(row("ib-last")[1], "running");
    let ticker_pid = row("ib-ticker")[2].clone();

    let (code, out, _) = init.ctl(&["logs", "ib-ticker"]);
    assert_eq!(code, 0);
    assert!(out.contains("tick 0\ntick 1\n"), "{out}");

    let (code, out, _) = init.ctl(&["stop", "ib-last"]);
    assert_eq!(
        (code, out.as_str()),
        (0, "ok: stopping ib-last (SIGTERM, grace 3000 ms)\n")
    );
    init.wait_for("dory: ib-last exited", 10);
    let (_, out, _) = init.ctl(&["status"]);
    assert!(
        out.lines()
            .any(|l| l.starts_with("ib-last") && l.contains("stopped")),
        "{out}"
    );
    // A stopped service stays stopped (no restart by policy).
    std::thread::sleep(Duration::from_millis(300));
    assert!(!init.log().contains("restarting ib-last"));
    let (code, out, _) = init.ctl(&["start", "ib-last"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("ok: started ib-last (pid "), "{out}");

    let (code, _, _) = init.ctl(&["restart", "ib-ticker"]);
    assert_eq!(code, 0);
    init.wait_for("[ib-ticker] bye", 10);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, out, _) = init.ctl(&["status"]);
        let r = row_of(&out, "ib-ticker");
        if r[1] == "running" && r[2] != ticker_pid {
            assert_eq!(r[3], "1", "{out}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ticker not restarted:\n{out}\n{}",
            init.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let (code, _, err) = init.ctl(&["stop", "nosuch"]);
    assert_eq!(code, 1);
    assert!(err.contains("no container \"nosuch\""), "{err}");
    let (code, _, err) = init.ctl(&["start", "ib-ticker"]);
    assert_eq!(code, 1);
    assert!(err.contains("already running"), "{err}");

    // SIGUSR2 (busybox poweroff): services stop in reverse start order.
    init.signal("USR2");
    let st = init.wait_exit(20);
    let log = init.log();
    assert!(st.success(), "{log}");
    assert!(log.contains("dory: SIGUSR2 received: poweroff"), "{log}");
    let a = pos(&log, "dory: stopping ib-last (SIGTERM, grace 3000 ms)");
    let b = pos(&log, "dory: stopping ib-ticker (SIGTERM, grace 3000 ms)");
    assert!(a < b, "reverse order:\n{log}");
    assert!(pos(&log, "dory: ib-last exited") < b);
    assert!(
        log.trim_end()
            .ends_with("dory: shutdown complete (poweroff)"),
        "{log}"
    );
}

fn row_of(out: &str, id: &str) -> Vec<String> {
    out.lines()
        .find(|l| l.starts_with(id))
        .unwrap_or_else(|| panic!("{id} not in\n{out}"))
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

#[test]
fn init_crash_loop_backs_off_and_gives_up() {
    if !is_root("init_crash_loop_backs_off_and_gives_up") {
        return;
    }
    let d = TempDir::new("crash");
    let r = rootfs(&d.0);
    let crasher = bundle(&d.0, &r, "crasher", "echo crashing; exit 3", true);
    let clean = bundle(&d.0, &r, "clean", "echo done", true);
    let board = format!(
        r#"{{"containers":[
        {{"id":"ic-crasher","bundle":"{c}","restart":{{"policy":"on-failure","initialDelayMs":200,"factor":2,"maxDelayMs":800,"maxRetries":4,"resetWindowSecs":60}}}},
        {{"id":"ic-always","bundle":"{k}","restart":{{"policy":"always","initialDelayMs":100,"maxRetries":1}}}},
        {{"id":"ic-onfail","bundle":"{k}","restart":{{"policy":"on-failure"}}}},
        {{"id":"ic-never","bundle":"{c}","restart":{{"policy":"never"}}}}]}}"#,
        c = crasher.display(),
        k = clean.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["ic-crasher", "ic-always", "ic-onfail", "ic-never"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    let log = init.wait_for("dory: giving up on ic-crasher after 4 restarts", 30);
    // Delays 200, 400, 800, 800 (capped): each start comes that long after the exit.
    let starts = times(&log, "dory: started ic-crasher");
    let exits = times(&log, "dory: ic-crasher exited");
    assert_eq!(starts.len(), 5, "{log}");
    assert_eq!(exits.len(), 5, "{log}");
    for (n, want) in [0.2, 0.4, 0.8, 0.8].iter().enumerate() {
        let gap = starts[n + 1] - exits[n];
        assert!(
            gap >= want - 0.001 && gap < want + 0.3,
            "retry {n}: gap {gap} s, want {want} s\n{log}"
        );
    }
    for n in 1..=4 {
        assert!(log.contains(&format!(
            "dory: restarting ic-crasher in {} ms (retry {n}/4)",
            [200, 400, 800, 800][n - 1]
        )));
    }
    // always: a clean exit restarts too (once, then gives up); on-failure: clean exit stays
    // down; never: a failure stays down.
    let log = init.wait_for("dory: giving up on ic-always after 1 restarts", 10);
    assert!(
        log.contains("dory: restarting ic-always in 100 ms (retry 1/1)"),
        "{log}"
    );
    assert!(
        log.contains("dory: ic-onfail not restarted (policy on-failure)"),
        "{log}"
    );
    assert!(
        log.contains("dory: ic-never not restarted (policy never)"),
        "{log}"
    );
    assert!(!log.contains("restarting ic-onfail") && !log.contains("restarting ic-never"));
    let (_, out, _) = init.ctl(&["status"]);
    assert_eq!(row_of(&out, "ic-crasher")[1..], ["gave-up", "-", "4"]);
    assert_eq!(row_of(&out, "ic-onfail")[1], "exited");
    // No process is left after giving up: waiting state only.
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(times(&init.log(), "dory: started ic-crasher").len(), 5);
    init.signal("USR2");
    assert!(init.wait_exit(20).success());
    assert!(init.log().contains("dory: shutdown complete (poweroff)"));
}

#[test]
fn init_failing_health_probe_restarts_service() {
    if !is_root("init_failing_health_probe_restarts_service") {
        return;
    }
    let d = TempDir::new("health");
    let r = rootfs(&d.0);
    let svc = bundle(
        &d.0,
        &r,
        "svc",
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        true,
    );
    let board = format!(
        r#"{{"containers":[
        {{"id":"ih-sick","bundle":"{s}","stopGraceMs":2000,"restart":{{"policy":"on-failure","initialDelayMs":100}},
          "health":{{"args":["/bin/sh","-c","test -e /nonexistent"],"intervalMs":200,"timeoutMs":1000,"failures":2}}}},
        {{"id":"ih-slow","bundle":"{s}","stopGraceMs":2000,
          "health":{{"args":["/bin/sleep","5"],"intervalMs":200,"timeoutMs":200,"failures":100}}}}]}}"#,
        s = svc.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["ih-sick", "ih-slow"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    let log = init.wait_for("dory: ih-sick is unhealthy; restarting it", 20);
    assert!(
        log.contains("dory: ih-sick health probe failed (status 1), 1/2 in a row"),
        "{log}"
    );
    assert!(
        log.contains("dory: ih-sick health probe failed (status 1), 2/2 in a row"),
        "{log}"
    );
    let log = init.wait_for("dory: restarting ih-sick in 100 ms (retry 1/5)", 10);
    assert!(log.contains("dory: ih-sick exited (status 0)"), "{log}");
    // The restarted service is probed again from a clean count.
    init.wait_count("dory: started ih-sick", 2, 10);
    init.wait_count(
        "dory: ih-sick health probe failed (status 1), 1/2 in a row",
        2,
        10,
    );
    // A probe that hangs is killed at its timeout and counts as a failure.
    init.wait_for(
        "dory: ih-slow health probe failed (timed out after 200 ms), 1/100 in a row",
        10,
    );
    init.signal("USR2");
    assert!(init.wait_exit(20).success());
}

/// A hostile image's health check: its `/bin/healthcheck` mounts a procfs of its own and
/// writes a host-wide sysctl (kernel.printk_ratelimit), and reports the capabilities it
/// runs with. Probes used to run with PID 1's privileges outside the container's cgroup,
/// where the write worked (exit 4) and the capabilities were all of them (exit 3);
/// through the exec path the probe has the container's three capabilities, and every
/// probe passes with the host's value untouched.
#[test]
fn init_health_probe_from_the_image_gets_only_the_containers_privileges() {
    use std::os::unix::fs::PermissionsExt;
    if !is_root("init_health_probe_from_the_image_gets_only_the_containers_privileges") {
        return;
    }
    let d = TempDir::new("probe-escape");
    let r = rootfs(&d.0);
    const SYSCTL: &str = "/proc/sys/kernel/printk_ratelimit";
    let before = fs::read_to_string(SYSCTL).unwrap();
    struct Restore(String);
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = fs::write(SYSCTL, &self.0);
        }
    }
    let _restore = Restore(before.clone());
    let hostile: u32 = before.trim().parse::<u32>().unwrap() + 1234;
    // The seed's capabilities: AUDIT_WRITE (29), KILL (5), NET_BIND_SERVICE (10).
    let script = format!(
        "#!/bin/sh\n\
         mkdir -p /dev/p\n\
         mount -t proc proc /dev/p 2>/dev/null && echo {hostile} >/dev/p/sys/kernel/printk_ratelimit && exit 4\n\
         grep -q \"^CapEff:.0000000020000420$\" /proc/self/status || exit 3\n\
         exit 0\n"
    );
    let hc = r.join("bin/healthcheck");
    fs::write(&hc, script).unwrap();
    fs::set_permissions(&hc, fs::Permissions::from_mode(0o755)).unwrap();
    let svc = bundle(
        &d.0,
        &r,
        "svc",
        "trap 'exit 0' TERM; while :; do sleep 0.1; done",
        true,
    );
    let board = format!(
        r#"{{"containers":[
        {{"id":"ih-probed","bundle":"{s}","stopGraceMs":2000,
          "health":{{"args":["/bin/healthcheck"],"intervalMs":200,"timeoutMs":2000,"failures":100}}}}]}}"#,
        s = svc.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["ih-probed"],
        &[],
        &[
            "--config",
            d.0.join("board.json").to_str().unwrap(),
            "--debug",
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let log = init.log();
        assert!(
            !log.contains("health probe failed"),
            "the image's health check wrote a host sysctl (status 4) or held other \
             capabilities than the container's (status 3):\n{log}"
        );
        assert_eq!(fs::read_to_string(SYSCTL).unwrap(), before, "{log}");
        if log.matches("dory: ih-probed health probe ok").count() >= 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no three probes ran; console:\n{log}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    init.signal("USR2");
    assert!(init.wait_exit(20).success());
}

#[test]
fn init_reaps_orphans() {
    if !is_root("init_reaps_orphans") {
        return;
    }
    let d = TempDir::new("zombie");
    let r = rootfs(&d.0);
    // No pid namespace: the double-forked sleeps are orphaned to dory when the subshells
    // exit and must be reaped by it.
    let svc = bundle(
        &d.0,
        &r,
        "svc",
        "(sleep 0.2 &); (sleep 0.3 &); (sleep 0.4 &); exec sleep 100",
        false,
    );
    let board = format!(
        r#"{{"containers":[{{"id":"iz-orphans","bundle":"{}","stopGraceMs":500}}]}}"#,
        svc.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["iz-orphans"],
        &[],
        &[
            "--debug",
            "--config",
            d.0.join("board.json").to_str().unwrap(),
        ],
    );
    init.wait_for("dory: started iz-orphans", 20);
    let log = {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let log = init.log();
            if log.matches("dory: reaped pid").count() >= 3 {
                break log;
            }
            assert!(Instant::now() < deadline, "orphans not reaped:\n{log}");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    assert!(log.contains("(status 0)"), "{log}");
    // No zombie whose parent is dory is left.
    let mut zombies = vec![];
    for e in fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        let Some(rest) = stat.rsplit_once(") ").map(|(_, r)| r) else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.first() == Some(&"Z") && f.get(1) == Some(&init.pid.to_string().as_str()) {
            zombies.push(stat);
        }
    }
    assert!(zombies.is_empty(), "zombies under dory: {zombies:?}");
    init.signal("USR2");
    assert!(init.wait_exit(20).success());
}

/// Thaws a v1 freezer cgroup when the test ends, passed or not.
struct Thaw(PathBuf);

impl Drop for Thaw {
    fn drop(&mut self) {
        let _ = fs::write(self.0.join("freezer.state"), "THAWED");
    }
}

#[test]
fn init_moving_on_from_an_unkillable_container_destroys_it() {
    if !is_root("init_moving_on_from_an_unkillable_container_destroys_it") {
        return;
    }
    // A frozen process ignores SIGKILL until thawed: dory gives up waiting for its exit
    // ("moving on"). It must still remove the state entry and the cgroup, so the next
    // start works (before: "already exists", and a leaked, frozen cgroup).
    let d = TempDir::new("moveon");
    let r = rootfs(&d.0);
    let svc = bundle(&d.0, &r, "svc", "echo up; exec sleep 1000", true);
    let board = format!(
        r#"{{"containers":[{{"id":"mo-svc","bundle":"{b}","stopGraceMs":100,"restart":{{"policy":"never"}}}}]}}"#,
        b = svc.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["mo-svc"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    init.wait_for("[mo-svc] up", 20);
    let freezer = PathBuf::from("/sys/fs/cgroup/freezer/dory/mo-svc");
    assert!(
        freezer.join("freezer.state").exists(),
        "this test needs the v1 freezer: {} missing",
        freezer.display()
    );
    let _thaw = Thaw(freezer.clone());
    fs::write(freezer.join("freezer.state"), "FROZEN").unwrap();
    let (code, out, err) = init.ctl(&["stop", "mo-svc"]);
    assert_eq!(code, 0, "{out}{err}");
    init.wait_for("mo-svc (pid", 10);
    let log = init.wait_for("ms after SIGKILL; moving on", 10);
    let state = PathBuf::from(format!("/proc/{}/root/run/dory/mo-svc", init.pid));
    let deadline = Instant::now() + Duration::from_secs(10);
    while (state.exists() || freezer.exists()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!state.exists(), "state entry left behind\n{log}");
    assert!(!freezer.exists(), "cgroup left behind\n{log}");
    let (code, out, err) = init.ctl(&["start", "mo-svc"]);
    assert_eq!(code, 0, "second start: {out}{err}\n{}", init.log());
    init.wait_count("[mo-svc] up", 2, 20);
    init.signal("USR2");
    assert!(init.wait_exit(20).success(), "{}", init.log());
}

fn fd_count(pid: i32) -> usize {
    fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

#[test]
fn init_memory_and_fds_stay_flat_over_1000_restarts() {
    if !is_root("init_memory_and_fds_stay_flat_over_1000_restarts") {
        return;
    }
    // Weeks of a crash-looping service, compressed: restarted 1000 times with a 1 ms
    // backoff. PID 1's resident memory and open fds after 1000 restarts must be where
    // they were after the first 10.
    const RESTARTS: usize = 1000;
    const RSS_SLACK_KIB: u64 = 256;
    const FD_SLACK: usize = 2;
    let d = TempDir::new("flat");
    let r = rootfs(&d.0);
    let svc = bundle(&d.0, &r, "svc", "exit 3", true);
    let board = format!(
        r#"{{"containers":[{{"id":"fl-svc","bundle":"{b}","restart":{{"policy":"always","initialDelayMs":1,"factor":1,"maxDelayMs":1,"maxRetries":{max},"resetWindowSecs":86400}}}}]}}"#,
        b = svc.display(),
        max = RESTARTS + 10
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["fl-svc"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    // A restart every few ms: what is open at one instant depends on the phase (a
    // container running has its log pipe and pidfd open), so take the highest of many
    // samples. A leak of even one fd or a few bytes per restart would show as hundreds.
    let sample = |pid: i32| {
        let mut top = (0u64, 0usize);
        for _ in 0..50 {
            top = (top.0.max(vm_rss_kib(pid)), top.1.max(fd_count(pid)));
            std::thread::sleep(Duration::from_millis(5));
        }
        top
    };
    init.wait_count("dory: started fl-svc (", 10, 60);
    let (rss0, fds0) = sample(init.pid);
    init.wait_count("dory: started fl-svc (", RESTARTS, 600);
    let (rss1, fds1) = sample(init.pid);
    // Printed for the log (and the issue's figures), straight past libtest's capture.
    let _ = std::io::Write::write_fmt(
        &mut std::io::stderr(),
        format_args!(
            "init_memory_and_fds_stay_flat: after 10 restarts VmRSS {rss0} KiB, {fds0} fds; after {RESTARTS}: VmRSS {rss1} KiB, {fds1} fds (highest of 50 samples)\n"
        ),
    );
    assert!(rss0 > 0, "no VmRSS for pid {}", init.pid);
    assert!(
        rss1 <= rss0 + RSS_SLACK_KIB,
        "PID 1 grew from {rss0} KiB to {rss1} KiB over {RESTARTS} restarts"
    );
    assert!(
        fds1 <= fds0 + FD_SLACK,
        "PID 1 went from {fds0} to {fds1} open fds over {RESTARTS} restarts"
    );
    init.signal("USR2");
    assert!(init.wait_exit(30).success(), "{}", init.log());
}

/// Bytes of the fake watchdog file (each pet is one NUL byte).
fn pets(wd: &Path) -> u64 {
    fs::metadata(wd).map_or(0, |m| m.len())
}

#[test]
fn init_console_that_does_not_drain_never_stalls_the_loop() {
    if !is_root("init_console_that_does_not_drain_never_stalls_the_loop") {
        return;
    }
    // The console is a pipe nobody reads (as a serial line held by flow control) and a
    // service floods it. dory must keep petting the watchdog and answering ctl, drop
    // console lines meanwhile, and say how many once the console drains. Before: the
    // first full write blocked PID 1 for good.
    let d = TempDir::new("nodrain");
    let r = rootfs(&d.0);
    let flood = bundle(
        &d.0,
        &r,
        "flood",
        "while :; do echo flood-0123456789abcdef0123456789abcdef; done",
        true,
    );
    let wd = d.0.join("watchdog");
    fs::write(&wd, "").unwrap();
    let board = format!(
        r#"{{"watchdog":{{"device":"{w}","timeoutSecs":2}},"containers":[{{"id":"nd-flood","bundle":"{b}"}}]}}"#,
        w = wd.display(),
        b = flood.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    let mut init = Init::start_on(
        write_end,
        d.0.join("unused.log"),
        &["nd-flood"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    // The flood fills the pipe's 64 KiB within moments; then watch the loop for 4 s.
    std::thread::sleep(Duration::from_millis(1500));
    let before = pets(&wd);
    std::thread::sleep(Duration::from_secs(4));
    let after = pets(&wd);
    assert!(
        after >= before + 3,
        "watchdog petted {} times in 4 s with a full console (every 1 s expected)",
        after - before
    );
    let (code, out, err) = init.ctl(&["status"]);
    assert_eq!(code, 0, "ctl with a full console: {out}{err}");
    assert!(out.contains("nd-flood"), "{out}");
    // Drain: the next line that gets through says how many were lost.
    let mut console = fs::File::from(read_end);
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = String::new();
    let mut buf = vec![0u8; 1 << 16];
    while !seen.contains("lines dropped (the console did not drain)") {
        assert!(
            Instant::now() < deadline,
            "no dropped-lines notice after draining"
        );
        let n = std::io::Read::read(&mut console, &mut buf).unwrap();
        seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        if seen.len() > 1 << 20 {
            seen.drain(..seen.len() - 4096);
        }
    }
    // Keep draining while it shuts down, so its last lines cannot block a blocking build.
    let drain = std::thread::spawn(move || {
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut console, &mut rest);
    });
    init.signal("USR2");
    assert!(init.wait_exit(30).success());
    drop(init);
    drain.join().unwrap();
}

#[test]
fn init_console_that_drains_slowly_loses_no_lines() {
    if !is_root("init_console_that_drains_slowly_loses_no_lines") {
        return;
    }
    // A console that drains, only slower than a burst arrives (a serial line at boot): a
    // 4 KiB pipe read 256 bytes every 2 ms. A service prints 300 numbered lines at once;
    // every one must reach the console, in order, with no "lines dropped". Before: the
    // first write that met a full pipe dropped its line (boots lost lines this way).
    const LINES: usize = 300;
    let d = TempDir::new("slowdrain");
    let r = rootfs(&d.0);
    let burst = bundle(
        &d.0,
        &r,
        "burst",
        "i=0; while [ $i -lt 300 ]; do echo burst-line-$i-0123456789abcdef; i=$((i+1)); done; exec sleep 1000",
        true,
    );
    let board = format!(
        r#"{{"containers":[{{"id":"sd-burst","bundle":"{b}"}}]}}"#,
        b = burst.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let (read_end, write_end) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).unwrap();
    nix::fcntl::fcntl(&write_end, nix::fcntl::FcntlArg::F_SETPIPE_SZ(4096)).unwrap();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
    let reader = std::thread::spawn(move || {
        let mut console = fs::File::from(read_end);
        let mut seen = Vec::new();
        let mut buf = [0u8; 256];
        let deadline = Instant::now() + Duration::from_secs(60);
        while stop_rx.try_recv().is_err() && Instant::now() < deadline {
            match std::io::Read::read(&mut console, &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        // Then drain without pacing until dory closes the pipe.
        let _ = std::io::Read::read_to_end(&mut console, &mut seen);
        String::from_utf8_lossy(&seen).into_owned()
    });
    let mut init = Init::start_on(
        write_end,
        d.0.join("unused.log"),
        &["sd-burst"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    // The burst takes well under a second to drain at this pace; give it ten.
    std::thread::sleep(Duration::from_secs(10));
    let _ = stop_tx.send(());
    init.signal("USR2");
    let ended = init.wait_exit(30).success();
    drop(init);
    let console = reader.join().unwrap();
    assert!(ended, "dory init did not end cleanly:\n{console}");
    assert!(
        !console.contains("lines dropped"),
        "a draining console lost lines:\n{console}"
    );
    let got: Vec<usize> = console
        .lines()
        .filter_map(|l| l.split("burst-line-").nth(1))
        .filter_map(|rest| rest.split('-').next()?.parse().ok())
        .collect();
    assert_eq!(
        got,
        (0..LINES).collect::<Vec<_>>(),
        "the burst's lines, in order, each once:\n{console}"
    );
}

/// Adds a read-write bind of `source` at `dest` to a bundle's config.json.
fn with_bind(bundle: &Path, source: &str, dest: &str) {
    let path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    cfg["mounts"].as_array_mut().unwrap().push(
        serde_json::json!({"destination": dest, "type": "bind", "source": source,
                           "options": ["rbind", "rw"]}),
    );
    fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

/// The host's /data for the duration of a test: made (and removed after) when missing,
/// as the mount point tests bind their own data directory onto in a private namespace.
struct HostData(bool);

impl HostData {
    fn ensure() -> HostData {
        HostData(fs::create_dir("/data").is_ok())
    }
}

impl Drop for HostData {
    fn drop(&mut self) {
        if self.0 {
            let _ = fs::remove_dir("/data");
        }
    }
}

#[test]
fn init_data_symlink_left_by_a_container_is_not_followed_to_the_host() {
    if !is_root("init_data_symlink_left_by_a_container_is_not_followed_to_the_host") {
        return;
    }
    // Two board containers share /data/writer: "writer" (hostile) replaces the shared
    // volume's directory with a symlink to a host directory; "victim" binds
    // /data/writer/shared. Following the link would bind the host directory into the
    // victim. Before: the victim listed the host's secret.
    let _host_data = HostData::ensure();
    let d = TempDir::new("datalink");
    let r = rootfs(&d.0);
    let data = d.0.join("data");
    fs::create_dir_all(data.join("writer/shared")).unwrap();
    let secret = d.0.join("host-secret");
    fs::create_dir(&secret).unwrap();
    fs::write(secret.join("token"), "host-only").unwrap();
    for dest in ["/w", "/shared"] {
        fs::create_dir_all(r.join(dest.trim_start_matches('/'))).unwrap();
    }
    let writer = bundle(
        &d.0,
        &r,
        "writer",
        &format!(
            "rm -rf /w/shared && ln -s {} /w/shared && echo writer-linked",
            secret.display()
        ),
        true,
    );
    with_bind(&writer, "/data/writer", "/w");
    let victim = bundle(
        &d.0,
        &r,
        "victim",
        "if [ -e /shared/token ]; then echo ESCAPED-$(cat /shared/token); else echo victim-safe; fi",
        true,
    );
    with_bind(&victim, "/data/writer/shared", "/shared");
    let board = format!(
        r#"{{"containers":[
        {{"id":"dl-writer","bundle":"{w}","kind":"oneshot","onFailure":"ignore","data":true}},
        {{"id":"dl-victim","bundle":"{v}","kind":"oneshot","onFailure":"ignore"}},
        {{"id":"dl-idle","bundle":"{i}","kind":"service"}}]}}"#,
        w = writer.display(),
        v = victim.display(),
        i = bundle(&d.0, &r, "idle", "echo idle-up; exec sleep 1000", true).display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let log = d.0.join("console.log");
    let out = fs::File::create(&log).unwrap();
    let mut init = Init::start_with_data(
        out.into(),
        log,
        &["dl-writer", "dl-victim", "dl-idle"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
        Some(&data),
    );
    let text = init.wait_for("idle-up", 30);
    init.signal("USR2");
    let _ = init.wait_exit(30);
    assert!(
        text.contains("writer-linked"),
        "the attack did not run:\n{text}"
    );
    assert!(
        fs::symlink_metadata(data.join("writer/shared"))
            .unwrap()
            .file_type()
            .is_symlink(),
        "the writer's link is not there"
    );
    assert!(
        !text.contains("ESCAPED"),
        "the victim saw the host directory through the link:\n{text}"
    );
    assert!(
        text.contains("cannot start dl-victim") && !text.contains("victim-safe"),
        "the victim should fail to start on the link (ELOOP), naming its mount:\n{text}"
    );
}

#[test]
fn init_data_volume_directories_are_made_and_links_are_not_followed() {
    if !is_root("init_data_volume_directories_are_made_and_links_are_not_followed") {
        return;
    }
    // A new /data: "vol" binds /data/dv-vol/cache/a, which does not exist yet; dory makes
    // it (a fresh card would otherwise fail the container). "linked" binds
    // /data/dv-linked/v/w where v is a link to a host directory: making w through it would
    // write on the host, so the start fails and the host directory stays empty.
    let _host_data = HostData::ensure();
    let d = TempDir::new("datavol");
    let r = rootfs(&d.0);
    let data = d.0.join("data");
    let outside = d.0.join("outside");
    fs::create_dir_all(data.join("dv-linked")).unwrap();
    fs::create_dir(&outside).unwrap();
    std::os::unix::fs::symlink(&outside, data.join("dv-linked/v")).unwrap();
    fs::create_dir_all(r.join("vol")).unwrap();
    let vol = bundle(
        &d.0,
        &r,
        "vol",
        "echo kept > /vol/file && echo vol-wrote",
        true,
    );
    with_bind(&vol, "/data/dv-vol/cache/a", "/vol");
    let linked = bundle(&d.0, &r, "linked", "echo linked-ran", true);
    with_bind(&linked, "/data/dv-linked/v/w", "/vol");
    let board = format!(
        r#"{{"containers":[
        {{"id":"dv-vol","bundle":"{v}","kind":"oneshot","onFailure":"ignore","data":true}},
        {{"id":"dv-linked","bundle":"{l}","kind":"oneshot","onFailure":"ignore","data":true}},
        {{"id":"dv-idle","bundle":"{i}","kind":"service"}}]}}"#,
        v = vol.display(),
        l = linked.display(),
        i = bundle(&d.0, &r, "idle", "echo idle-up; exec sleep 1000", true).display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let log = d.0.join("console.log");
    let out = fs::File::create(&log).unwrap();
    let mut init = Init::start_with_data(
        out.into(),
        log,
        &["dv-vol", "dv-linked", "dv-idle"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
        Some(&data),
    );
    let text = init.wait_for("idle-up", 30);
    init.signal("USR2");
    let _ = init.wait_exit(30);
    assert!(
        text.contains("vol-wrote"),
        "the volume was not made:\n{text}"
    );
    assert_eq!(
        fs::read_to_string(data.join("dv-vol/cache/a/file")).unwrap(),
        "kept\n"
    );
    assert!(
        text.contains("cannot start dv-linked") && !text.contains("linked-ran"),
        "a volume through a link should fail to start:\n{text}"
    );
    assert!(
        fs::read_dir(&outside).unwrap().next().is_none(),
        "dory made a directory through the link, on the host"
    );
}

/// Adds `hooks.createRuntime` = [`sh -c script`] to a bundle's config.json.
fn with_create_runtime_hook(bundle: &Path, script: &str) {
    let path = bundle.join("config.json");
    let mut cfg: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
    cfg["hooks"] =
        serde_json::json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", script]}]});
    fs::write(&path, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
}

#[test]
fn init_stuck_start_steps_end_at_the_step_timeout_and_the_watchdog_is_petted() {
    if !is_root("init_stuck_start_steps_end_at_the_step_timeout_and_the_watchdog_is_petted") {
        return;
    }
    // Two starts that never finish on their own: a createRuntime hook without a timeout
    // that sleeps for ever, and a container whose setup never answers (the hook stops it
    // with SIGSTOP). With stepTimeoutSecs 3 each must fail after 3 s, the watchdog must be
    // petted all along, and the board must go on to start the next service. Before: PID 1
    // waited for ever, the watchdog unpetted.
    let d = TempDir::new("stuck");
    let r = rootfs(&d.0);
    let sleeper = bundle(&d.0, &r, "sleeper", "echo never", true);
    with_create_runtime_hook(&sleeper, "exec sleep 1000");
    let stall = bundle(&d.0, &r, "stall", "echo never", true);
    with_create_runtime_hook(
        &stall,
        r#"read -r s; p=${s#*\"pid\":}; kill -STOP ${p%%,*}"#,
    );
    let fine = bundle(&d.0, &r, "fine", "echo fine-started; exec sleep 1000", true);
    let wd = d.0.join("watchdog");
    fs::write(&wd, "").unwrap();
    let board = format!(
        r#"{{"stepTimeoutSecs":3,"watchdog":{{"device":"{w}","timeoutSecs":2}},"containers":[
        {{"id":"st-sleeper","bundle":"{a}","restart":{{"policy":"never"}}}},
        {{"id":"st-stall","bundle":"{b}","restart":{{"policy":"never"}},"after":["st-sleeper"]}},
        {{"id":"st-fine","bundle":"{c}","after":["st-stall"]}}]}}"#,
        w = wd.display(),
        a = sleeper.display(),
        b = stall.display(),
        c = fine.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let t0 = Instant::now();
    let mut init = Init::start(
        &d.0,
        &["st-sleeper", "st-stall", "st-fine"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    let log = init.wait_for("[st-fine] fine-started", 40);
    let waited = t0.elapsed();
    assert!(
        log.contains("dory: cannot start st-sleeper:") && log.contains("timed out after 3 s"),
        "{log}"
    );
    assert!(
        log.contains("dory: cannot start st-stall:") && log.contains("did not answer"),
        "{log}"
    );
    // Two stalls of 3 s with a pet due every second: at least 5 pets in that time.
    let n = pets(&wd);
    assert!(
        n >= 5,
        "{n} watchdog pets in {waited:?} of stalled starts\n{log}"
    );
    init.signal("USR2");
    assert!(init.wait_exit(30).success(), "{}", init.log());
}

/// Copies the shared libraries the (debug, dynamically linked) dory binary needs into
/// `rootfs`, at the paths `ldd` names, so a container can run it as its ctl client.
fn add_dory_libs(rootfs: &Path) {
    let out = Command::new("ldd").arg(DORY).output().unwrap();
    for word in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        if word.starts_with('/') {
            let to = rootfs.join(word.trim_start_matches('/'));
            fs::create_dir_all(to.parent().unwrap()).unwrap();
            fs::copy(word, &to).unwrap();
        }
    }
}

#[test]
fn init_ctl_opt_in_gives_a_container_the_control_socket_read_only() {
    if !is_root("init_ctl_opt_in_gives_a_container_the_control_socket_read_only") {
        return;
    }
    // "ctl": true binds the control socket and the dory binary into the container, so
    // its shell can run `dory ctl status`; a container without it has neither. Both
    // binds are read-only: the client cannot be replaced from inside.
    let d = TempDir::new("ctlin");
    let r = rootfs(&d.0);
    add_dory_libs(&r);
    let with = bundle(
        &d.0,
        &r,
        "with",
        "/run/dory/bin/dory ctl status; echo x > /run/dory/bin/dory || echo client-read-only; sleep 1000",
        true,
    );
    let without = bundle(
        &d.0,
        &r,
        "without",
        // (Empty mount points the other container's binds left in the shared rootfs may
        // exist; a socket or a non-empty client may not.)
        "test -S /run/dory/ctl.sock || test -s /run/dory/bin/dory || echo no-ctl-here; sleep 1000",
        true,
    );
    let board = format!(
        r#"{{"containers":[{{"id":"ci-with","bundle":"{a}","ctl":true}},{{"id":"ci-without","bundle":"{b}"}}]}}"#,
        a = with.display(),
        b = without.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["ci-with", "ci-without"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    let log = init.wait_for("[ci-with] client-read-only", 30);
    // The status table, printed from inside the container, lists both containers.
    let rows: Vec<&str> = log
        .lines()
        .filter(|l| l.starts_with("[ci-with] "))
        .collect();
    assert!(
        rows.iter().any(|l| l.contains("ci-without"))
            && rows.iter().any(|l| l.contains("ci-with ")),
        "no status table from inside the container:\n{log}"
    );
    init.wait_for("[ci-without] no-ctl-here", 10);
    init.signal("USR2");
    assert!(init.wait_exit(30).success(), "{}", init.log());
}

#[test]
fn init_shutdown_honours_grace_then_kills() {
    if !is_root("init_shutdown_honours_grace_then_kills") {
        return;
    }
    let d = TempDir::new("grace");
    let r = rootfs(&d.0);
    let stubborn = bundle(
        &d.0,
        &r,
        "stubborn",
        "trap '' TERM; while :; do sleep 0.1; done",
        true,
    );
    let polite = bundle(&d.0, &r, "polite", POLITE, true);
    let board = format!(
        r#"{{"containers":[
        {{"id":"ig-stubborn","bundle":"{s}","stopGraceMs":700}},
        {{"id":"ig-polite","bundle":"{p}","stopSignal":"TERM","stopGraceMs":5000}}]}}"#,
        s = stubborn.display(),
        p = polite.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let mut init = Init::start(
        &d.0,
        &["ig-stubborn", "ig-polite"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
    );
    init.wait_for("[ig-polite] tick 1", 20);
    // SIGTERM to PID 1 is busybox `reboot`.
    init.signal("TERM");
    let st = init.wait_exit(30);
    let log = init.log();
    assert!(st.success(), "{log}");
    assert!(log.contains("dory: SIGTERM received: reboot"), "{log}");
    let p = pos(&log, "dory: stopping ig-polite (SIGTERM, grace 5000 ms)");
    let bye = pos(&log, "[ig-polite] bye");
    let s = pos(&log, "dory: stopping ig-stubborn (SIGTERM, grace 700 ms)");
    assert!(
        p < bye && bye < s,
        "polite first, it exits on SIGTERM:\n{log}"
    );
    let k = pos(
        &log,
        "dory: ig-stubborn did not exit within 700 ms; sending SIGKILL",
    );
    assert!(s < k);
    assert!(
        log.contains("dory: ig-stubborn exited (signal SIGKILL)"),
        "{log}"
    );
    // Grace honoured: the stubborn one ran ≥ 700 ms after its stop signal.
    // Its stop signal went out when ig-polite had exited; SIGKILL came 700 ms later.
    let t0 = times(&log, "dory: ig-polite exited").pop().unwrap();
    let exit_t = times(&log, "dory: ig-stubborn exited").pop().unwrap();
    assert!(exit_t - t0 >= 0.7 && exit_t - t0 < 1.5, "{log}");
    assert!(
        log.trim_end().ends_with("dory: shutdown complete (reboot)"),
        "{log}"
    );
}

#[test]
fn init_bad_board_goes_to_rescue_and_waits() {
    if !is_root("init_bad_board_goes_to_rescue_and_waits") {
        return;
    }
    let d = TempDir::new("rescue");
    let board = d.0.join("board.json");
    fs::write(
        &board,
        r#"{"containers":[{"id":"a","bundle":"/a"},{"id":"b","bundle":"/b"},
           {"id":"c","bundle":"/c","restart":{"policy":"sometimes"}}]}"#,
    )
    .unwrap();
    let mut init = Init::start(&d.0, &[], &[], &["--config", board.to_str().unwrap()]);
    let log = init.wait_for("dory: test mode: no rescue shell; waiting for a signal", 20);
    let want = format!(
        "dory: FATAL: {}: containers[2].restart.policy: unknown policy \"sometimes\" (expected always, on-failure or never)",
        board.display()
    );
    assert!(log.contains(&want), "{log}");
    // Keeps running (never exits on its own) …
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        init.child.try_wait().unwrap().is_none(),
        "dory exited:\n{}",
        init.log()
    );
    // … and ctl still answers.
    let (code, out, _) = init.ctl(&["status"]);
    assert_eq!(code, 0);
    assert!(out.starts_with("ID"), "{out}");
    init.signal("USR2");
    assert!(init.wait_exit(20).success());
    assert!(init.log().contains("dory: shutdown complete (poweroff)"));

    // A missing board file takes the same path.
    let d2 = TempDir::new("rescue2");
    let mut init = Init::start(&d2.0, &[], &[], &["--config", "/nonexistent/board.json"]);
    init.wait_for(
        "dory: FATAL: /nonexistent/board.json: cannot read: ENOENT",
        20,
    );
    let (code, out, _) = init.ctl(&["poweroff"]);
    assert_eq!((code, out.as_str()), (0, "ok: poweroff\n"));
    assert!(init.wait_exit(20).success());
}

#[test]
fn init_early_boot_mounts_hostname_lo_and_watchdog() {
    if !is_root("init_early_boot_mounts_hostname_lo_and_watchdog") {
        return;
    }
    let d = TempDir::new("early");
    let root = d.0.join("root");
    fs::create_dir_all(&root).unwrap();
    let board = d.0.join("board.json");
    // A plain file stands in for /dev/watchdog: pets are NUL bytes, the magic close a 'V'
    // (WDIOC_SETTIMEOUT fails on it, so dory keeps the configured 2 s: a pet every 1 s).
    let wd = d.0.join("watchdog");
    fs::write(&wd, "").unwrap();
    fs::write(
        &board,
        format!(
            r#"{{"hostname":"dory-test-board","watchdog":{{"device":"{}","timeoutSecs":2}},"containers":[]}}"#,
            wd.display()
        ),
    )
    .unwrap();
    let mut init = Init::start(
        &d.0,
        &[],
        &["--net"],
        &[
            "--boot-root",
            root.to_str().unwrap(),
            "--config",
            board.to_str().unwrap(),
        ],
    );
    init.wait_for("dory: boot complete (0 services started)", 20);
    let mountinfo = fs::read_to_string(format!("/proc/{}/mountinfo", init.pid)).unwrap();
    let r = root.to_str().unwrap();
    for (target, fstype) in [
        ("/proc", "proc"),
        ("/sys", "sysfs"),
        ("/dev", "devtmpfs"),
        ("/dev/pts", "devpts"),
        ("/dev/shm", "tmpfs"),
        ("/dev/mqueue", "mqueue"),
        ("/run", "tmpfs"),
        ("/tmp", "tmpfs"),
        ("/sys/fs/cgroup", "cgroup2"),
    ] {
        let path = format!("{r}{target}");
        let found = mountinfo.lines().any(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let sep = f.iter().position(|x| *x == "-").unwrap_or(0);
            f.get(4) == Some(&path.as_str()) && f.get(sep + 1) == Some(&fstype)
        });
        assert!(found, "{path} ({fstype}) not mounted:\n{mountinfo}");
    }
    let host = Command::new("nsenter")
        .args(["-t", &init.pid.to_string(), "-u", "hostname"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&host.stdout).trim(),
        "dory-test-board"
    );
    let lo = Command::new("nsenter")
        .args([
            "-t",
            &init.pid.to_string(),
            "-n",
            "/bin/busybox",
            "ip",
            "link",
            "show",
            "lo",
        ])
        .output()
        .unwrap();
    let lo = String::from_utf8_lossy(&lo.stdout).into_owned();
    assert!(lo.contains(",UP"), "lo is not up: {lo}");
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_millis(2500));
    init.signal("USR2");
    assert!(init.wait_exit(20).success());
    let ran = t0.elapsed().as_millis() as usize;
    let log = init.log();
    assert!(log.contains("dory: shutdown complete (poweroff)"), "{log}");
    assert!(log.contains("petting every 1000 ms"), "{log}");
    let pets = fs::read(&wd).unwrap();
    let (last, nuls) = pets.split_last().unwrap();
    assert_eq!(*last, b'V', "magic close missing: {pets:?}");
    assert!(nuls.iter().all(|&b| b == 0));
    // One pet at open, then one per second while running.
    assert!(
        nuls.len() >= 3 && nuls.len() <= 2 + ran / 1000 + 1,
        "{} pets in {ran} ms",
        nuls.len()
    );
}

/// Deletes a host network interface when dropped (the test's end of a veth pair).
struct HostLink(&'static str);

impl Drop for HostLink {
    fn drop(&mut self) {
        let _ = Command::new("/bin/busybox")
            .args(["ip", "link", "del", self.0])
            .output();
    }
}

fn busybox_ok(args: &[&str]) -> String {
    let out = Command::new("/bin/busybox").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "busybox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// board.json `network`: a static interface that appears seconds after boot (as USB
/// Ethernet does) gets its address, link, default route and name servers, and answers a
/// ping from the host through a veth pair; a DHCP interface that is not there is left to
/// its client without holding up the boot.
#[test]
fn init_board_network_static_interface_answers_from_the_host() {
    const NAME: &str = "init_board_network_static_interface_answers_from_the_host";
    if !is_root(NAME) {
        return;
    }
    let d = TempDir::new("net");
    let root = d.0.join("root");
    fs::create_dir_all(&root).unwrap();
    let board = d.0.join("board.json");
    fs::write(
        &board,
        r#"{"network":[
 {"interface":"eth0","address":"10.231.0.2/24","gateway":"10.231.0.1","dns":["10.231.0.1","10.231.0.53"],"timeoutSecs":30},
 {"interface":"wlan9","dhcp":true}],
 "containers":[]}"#,
    )
    .unwrap();
    let _ = Command::new("/bin/busybox")
        .args(["ip", "link", "del", "dory-nt0"])
        .output();
    let mut init = Init::start(
        &d.0,
        &[],
        &["--net"],
        &[
            "--boot-root",
            root.to_str().unwrap(),
            "--config",
            board.to_str().unwrap(),
        ],
    );
    // The interface arrives late: dory is waiting for it (boot not complete yet).
    std::thread::sleep(Duration::from_millis(700));
    assert!(
        !init.log().contains("dory: boot complete"),
        "the boot did not wait for eth0: {}",
        init.log()
    );
    let pid = init.pid.to_string();
    let ok = Command::new("ip")
        .args([
            "link", "add", "dory-nt0", "type", "veth", "peer", "name", "eth0",
        ])
        .args(["netns", &pid])
        .status()
        .unwrap();
    assert!(ok.success(), "ip link add veth failed");
    let _link = HostLink("dory-nt0");
    busybox_ok(&["ip", "addr", "add", "10.231.0.1/24", "dev", "dory-nt0"]);
    busybox_ok(&["ip", "link", "set", "dory-nt0", "up"]);
    init.wait_for(
        "dory: net: eth0 10.231.0.2/24 via 10.231.0.1 dns 10.231.0.1 dns 10.231.0.53",
        20,
    );
    init.wait_for(
        "dory: net: wlan9 not present yet: left to the DHCP client",
        20,
    );
    init.wait_for("dory: boot complete", 20);

    let inside = |args: &[&str]| {
        let out = Command::new("nsenter")
            .args(["-t", &pid, "-n", "/bin/busybox"])
            .args(args)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let addr = inside(&["ip", "addr", "show", "eth0"]);
    assert!(addr.contains("inet 10.231.0.2/24"), "{addr}");
    assert!(addr.contains(",UP"), "eth0 is not up: {addr}");
    let route = inside(&["ip", "route"]);
    assert!(
        route.contains("default via 10.231.0.1 dev eth0"),
        "no default route: {route}"
    );
    // Real traffic: the host reaches the board's address over the veth.
    busybox_ok(&["ping", "-c", "1", "-W", "5", "10.231.0.2"]);
    let resolv = fs::read_to_string(format!(
        "/proc/{pid}/root{}/run/net/resolv.conf",
        root.display()
    ))
    .unwrap();
    assert_eq!(resolv, "nameserver 10.231.0.1\nnameserver 10.231.0.53\n");

    init.signal("USR2");
    assert!(init.wait_exit(20).success());
}

fn dir_files(dir: &Path) -> Vec<(String, u64)> {
    let mut v: Vec<(String, u64)> = fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| {
                let e = e.unwrap();
                (
                    e.file_name().into_string().unwrap(),
                    e.metadata().unwrap().len(),
                )
            })
            .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// board.json `logs`: container output and dory's lines go to /data/log, rotated within
/// the quota while a container floods; the files outlive a restart of PID 1 (a reboot),
/// and `dory ctl logs --files` reads both boots while `dory ctl logs` has only this one.
#[test]
fn init_logs_survive_a_restart_within_their_quota() {
    const NAME: &str = "init_logs_survive_a_restart_within_their_quota";
    if !is_root(NAME) {
        return;
    }
    let _host_data = HostData::ensure();
    let d = TempDir::new("logs");
    let r = rootfs(&d.0);
    let data = d.0.join("data");
    fs::create_dir_all(&data).unwrap();
    let flood = bundle(
        &d.0,
        &r,
        "flood",
        "i=0; while [ $i -lt 3000 ]; do echo flood-line-$i-abcdefghijklmnopqrstuvwxyz; i=$((i+1)); done; echo flood-done",
        true,
    );
    let boot = |idle_text: &str, with_flood: bool| {
        let idle = bundle(
            &d.0,
            &r,
            "idle",
            &format!("echo {idle_text}; exec sleep 1000"),
            true,
        );
        let flood_entry = if with_flood {
            format!(
                r#"{{"id":"lg-flood","bundle":"{}","kind":"oneshot","onFailure":"ignore"}},"#,
                flood.display()
            )
        } else {
            String::new()
        };
        let board = format!(
            r#"{{"logs":{{"fileBytes":8192,"files":3,"totalBytes":24576}},"containers":[
            {flood_entry}
            {{"id":"lg-idle","bundle":"{}","kind":"service"}}]}}"#,
            idle.display()
        );
        fs::write(d.0.join("board.json"), board).unwrap();
        let log = d.0.join("console.log");
        let out = fs::File::create(&log).unwrap();
        Init::start_with_data(
            out.into(),
            log,
            &["lg-flood", "lg-idle"],
            &[],
            &["--config", d.0.join("board.json").to_str().unwrap()],
            Some(&data),
        )
    };
    let logdir = data.join("log");

    // Boot 1: a flood of 3,000 lines (about 140 KB) through files of 8 KiB.
    let mut init = boot("idle-first-boot", true);
    init.wait_for("flood-done", 60);
    init.wait_for("idle-first-boot", 30);
    init.wait_for(
        "dory: log: files in /data/log (3 files of 8192 bytes per container, 24576 bytes in all)",
        10,
    );
    std::thread::sleep(Duration::from_millis(500)); // the writer catches up
    let (code, files_out, err) = init.ctl(&["logs", "--files", "lg-flood"]);
    assert_eq!(code, 0, "{err}");
    assert!(
        files_out.contains("flood-line-2999-") && files_out.ends_with("flood-done\n"),
        "the newest flood lines are not in the files:\n{:.300}",
        files_out
    );
    assert!(
        !files_out.contains("flood-line-0-"),
        "the oldest lines were not rotated away"
    );
    // The descriptors a ctl client gets cannot be reopened for writing (a root client
    // could otherwise rewrite any container's logs through /proc/self/fd).
    let reopen = Command::new("python3")
        .arg("-c")
        .arg(
            "import os, socket, sys\n\
             s = socket.socket(socket.AF_UNIX)\n\
             s.connect(sys.argv[1])\n\
             s.sendall(b'logs --files lg-flood\\n')\n\
             s.shutdown(socket.SHUT_WR)\n\
             fds = []\n\
             while True:\n\
             \x20   data, got, _, _ = socket.recv_fds(s, 4096, 4)\n\
             \x20   fds += got\n\
             \x20   if not data: break\n\
             for fd in fds:\n\
             \x20   try:\n\
             \x20       os.open('/proc/self/fd/%d' % fd, os.O_WRONLY | os.O_APPEND)\n\
             \x20       print('REOPENED-FOR-WRITING')\n\
             \x20   except OSError as e:\n\
             \x20       print('refused', e.errno)\n\
             print('fds', len(fds))\n",
        )
        .arg(format!("/proc/{}/root/run/dory/ctl.sock", init.pid))
        .output()
        .unwrap();
    let reopen = String::from_utf8_lossy(&reopen.stdout).into_owned();
    assert!(
        reopen.contains("fds 3") && !reopen.contains("REOPENED-FOR-WRITING"),
        "{reopen}"
    );
    assert!(
        reopen.contains(&format!("refused {}", libc::EROFS)),
        "{reopen}"
    );
    init.signal("USR2");
    assert!(init.wait_exit(30).success());
    let files = dir_files(&logdir);
    let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"lg-flood.log"), "{files:?}");
    assert!(names.contains(&"@dory.log"), "{files:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("lg-flood.log.3")),
        "more than 3 files: {files:?}"
    );
    let total: u64 = files.iter().map(|(_, s)| s).sum();
    assert!(
        total <= 24576,
        "{total} bytes over the 24576 quota: {files:?}"
    );
    assert!(files.iter().all(|(_, s)| *s <= 8192), "{files:?}");
    let dory_log = fs::read_to_string(logdir.join("@dory.log")).unwrap();
    assert!(
        dory_log.contains("dory: shutting down (poweroff)"),
        "dory's own lines up to the shutdown are not in @dory.log:\n{dory_log}"
    );

    // Boot 2 (same /data): the first boot's lines are still there, and this boot's too.
    let mut init = boot("idle-second-boot", false);
    init.wait_for("idle-second-boot", 30);
    std::thread::sleep(Duration::from_millis(500));
    let (code, both, err) = init.ctl(&["logs", "--files", "lg-idle"]);
    assert_eq!(code, 0, "{err}");
    let first = both.find("idle-first-boot");
    let second = both.find("idle-second-boot");
    assert!(
        first.is_some() && second.is_some() && first < second,
        "both boots, oldest first, expected in the files:\n{both}"
    );
    assert_eq!(both.matches("---- boot ").count(), 2, "{both}");
    let (code, ring, _) = init.ctl(&["logs", "lg-idle"]);
    assert_eq!(code, 0);
    assert!(
        ring.contains("idle-second-boot") && !ring.contains("idle-first-boot"),
        "{ring}"
    );
    init.signal("USR2");
    assert!(init.wait_exit(30).success());
}

/// Attack (found by a hostile review): the DHCP client's container owns /run/net (bound
/// read-write, as the boards ship it) and replaces resolv.conf with a link, to a host file
/// or to dory's control socket. Its siblings bind /run/net/resolv.conf (as the README
/// says): before, they got the link's target, a host secret to read or the control socket
/// to stop, start and power off the board with. Now the source is opened beneath /run/net
/// without following links, and only a regular file or directory is bound: the siblings
/// fail to start (ELOOP) instead.
#[test]
fn init_resolv_conf_link_left_by_the_dhcp_container_is_not_followed() {
    const NAME: &str = "init_resolv_conf_link_left_by_the_dhcp_container_is_not_followed";
    if !is_root(NAME) {
        return;
    }
    let d = TempDir::new("resolvlink");
    let r = rootfs(&d.0);
    let root = d.0.join("bootroot");
    fs::create_dir_all(&root).unwrap();
    let secret = d.0.join("host-secret");
    fs::write(&secret, "HOST-ONLY-SECRET\n").unwrap();
    fs::create_dir_all(r.join("r")).unwrap();
    // The namespace's /run (a tmpfs of the test harness, where dory keeps its state and
    // control socket) gets a net/resolv.conf, as PID 1 makes it on a board.
    let prep = bundle(
        &d.0,
        &r,
        "prep",
        "mkdir -p /r/net && echo nameserver 10.9.8.7 > /r/net/resolv.conf && echo prep-done",
        true,
    );
    with_bind(&prep, "/run", "/r");
    let dhcp = |name: &str, target: &str| {
        let b = bundle(
            &d.0,
            &r,
            name,
            &format!("rm -f /run/net/resolv.conf && ln -s {target} /run/net/resolv.conf && echo {name}-linked"),
            true,
        );
        with_bind(&b, "/run/net", "/run/net");
        b
    };
    let sibling = |name: &str, script: &str| {
        let b = bundle(&d.0, &r, name, script, true);
        with_bind(&b, "/run/net/resolv.conf", "/etc/resolv.conf");
        b
    };
    let before = sibling(
        "sib-0",
        "echo SIB-0-READS-$(cat /etc/resolv.conf | tr ' ' -)",
    );
    let to_file = dhcp("dhcp-a", secret.to_str().unwrap());
    let sib_a = sibling("sib-a", "echo SIB-A-READS-$(cat /etc/resolv.conf)");
    let to_socket = dhcp("dhcp-b", "/run/dory/ctl.sock");
    let sib_b = sibling(
        "sib-b",
        "if [ -S /etc/resolv.conf ]; then echo SIB-B-GOT-THE-CTL-SOCKET; else echo sib-b-plain; fi",
    );
    let idle = bundle(&d.0, &r, "idle", "echo idle-up; exec sleep 1000", true);
    let entries: Vec<String> = [
        ("rl-prep", &prep),
        ("rl-sib-0", &before),
        ("rl-dhcp-a", &to_file),
        ("rl-sib-a", &sib_a),
        ("rl-dhcp-b", &to_socket),
        ("rl-sib-b", &sib_b),
    ]
    .iter()
    .map(|(id, b)| {
        format!(
            r#"{{"id":"{id}","bundle":"{}","kind":"oneshot","onFailure":"ignore"}}"#,
            b.display()
        )
    })
    .collect();
    let board = format!(
        r#"{{"containers":[{},{{"id":"rl-idle","bundle":"{}","kind":"service"}}]}}"#,
        entries.join(","),
        idle.display()
    );
    fs::write(d.0.join("board.json"), &board).unwrap();
    let mut init = Init::start(
        &d.0,
        &[
            "rl-prep",
            "rl-sib-0",
            "rl-dhcp-a",
            "rl-sib-a",
            "rl-dhcp-b",
            "rl-sib-b",
            "rl-idle",
        ],
        &[],
        &[
            "--boot-root",
            root.to_str().unwrap(),
            "--config",
            d.0.join("board.json").to_str().unwrap(),
        ],
    );
    let text = init.wait_for("idle-up", 60);
    init.signal("USR2");
    let _ = init.wait_exit(30);
    // The attack ran, and the bind worked before it.
    assert!(text.contains("SIB-0-READS-nameserver-10.9.8.7"), "{text}");
    assert!(
        text.contains("dhcp-a-linked") && text.contains("dhcp-b-linked"),
        "{text}"
    );
    assert!(
        !text.contains("SIB-A-READS-HOST-ONLY-SECRET"),
        "a host file reached the sibling through the link:\n{text}"
    );
    assert!(
        !text.contains("SIB-B-GOT-THE-CTL-SOCKET"),
        "dory's control socket reached the sibling through the link:\n{text}"
    );
    assert!(
        text.contains("cannot start rl-sib-a") && text.contains("cannot start rl-sib-b"),
        "the siblings should fail to start on the link:\n{text}"
    );
}

/// A log writer that does not drain (stopped here; a hung SD card in the field) holds the
/// shutdown at most logs' 2 s deadline, and the watchdog is petted meanwhile (found by a
/// hostile review: PID 1 slept through the wait without petting, and then waited for
/// the killed writer without a deadline).
#[test]
fn init_stuck_log_writer_neither_holds_the_shutdown_nor_starves_the_watchdog() {
    const NAME: &str = "init_stuck_log_writer_neither_holds_the_shutdown_nor_starves_the_watchdog";
    if !is_root(NAME) {
        return;
    }
    let _host_data = HostData::ensure();
    let d = TempDir::new("stuckwriter");
    let r = rootfs(&d.0);
    let data = d.0.join("data");
    fs::create_dir_all(&data).unwrap();
    // The watchdog is a fifo read by this test, which notes when each pet arrives.
    let wd = d.0.join("watchdog");
    assert!(Command::new("mkfifo").arg(&wd).status().unwrap().success());
    let fifo = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&wd)
        .unwrap();
    let pets = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Instant, u8)>::new()));
    let seen = pets.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut fifo = fifo;
        let mut b = [0u8; 1];
        while fifo.read_exact(&mut b).is_ok() {
            seen.lock().unwrap().push((Instant::now(), b[0]));
            if b[0] == b'V' {
                break;
            }
        }
    });
    let idle = bundle(&d.0, &r, "idle", "echo idle-up; exec sleep 1000", true);
    let board = format!(
        r#"{{"watchdog":{{"device":"{}","timeoutSecs":2}},"logs":{{}},
        "containers":[{{"id":"sw-idle","bundle":"{}","kind":"service","stopGraceMs":500}}]}}"#,
        wd.display(),
        idle.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let log = d.0.join("console.log");
    let out = fs::File::create(&log).unwrap();
    let mut init = Init::start_with_data(
        out.into(),
        log,
        &["sw-idle"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
        Some(&data),
    );
    init.wait_for("idle-up", 30);
    // The writer: PID 1's child running PID 1's own binary.
    let kids = fs::read_to_string(format!("/proc/{0}/task/{0}/children", init.pid)).unwrap();
    let me = fs::read_link(format!("/proc/{}/exe", init.pid)).unwrap();
    let writers: Vec<&str> = kids
        .split_whitespace()
        .filter(|p| fs::read_link(format!("/proc/{p}/exe")).ok().as_ref() == Some(&me))
        .collect();
    assert_eq!(writers.len(), 1, "log writer not found among {kids}");
    assert!(Command::new("kill")
        .args(["-STOP", writers[0]])
        .status()
        .unwrap()
        .success());
    let t0 = Instant::now();
    init.signal("USR2");
    init.wait_for("dory: log: the writer did not finish in 2s; killed", 20);
    assert!(init.wait_exit(20).success());
    let took = t0.elapsed();
    // The longest time without a pet from the poweroff request to the magic close.
    std::thread::sleep(Duration::from_millis(200));
    let pets = pets.lock().unwrap().clone();
    let mut last = t0;
    let mut gap = Duration::ZERO;
    for (t, _) in pets.iter().filter(|(t, _)| *t > t0) {
        gap = gap.max(t.duration_since(last));
        last = *t;
    }
    println!("shutdown {took:?}, longest gap between pets {gap:?}");
    assert!(took < Duration::from_secs(8), "the shutdown took {took:?}");
    assert!(
        gap < Duration::from_millis(1600),
        "no pet for {gap:?} (pets due every 1 s): the watchdog starved while PID 1 waited for the writer"
    );
}

/// /data/log belongs to dory's log writer: a board container that binds it (or all of
/// /data) would rewrite its siblings' logs; it fails to start, naming the mount. Found by
/// a hostile review of the log files.
#[test]
fn init_board_container_cannot_bind_the_log_directory() {
    const NAME: &str = "init_board_container_cannot_bind_the_log_directory";
    if !is_root(NAME) {
        return;
    }
    let _host_data = HostData::ensure();
    let d = TempDir::new("logbind");
    let r = rootfs(&d.0);
    let data = d.0.join("data");
    fs::create_dir_all(data.join("log")).unwrap();
    fs::create_dir_all(r.join("l")).unwrap();
    let peek_log = bundle(&d.0, &r, "peek-log", "echo PEEK-LOG-RAN; ls /l", true);
    with_bind(&peek_log, "/data/log", "/l");
    let peek_data = bundle(&d.0, &r, "peek-data", "echo PEEK-DATA-RAN; ls /l", true);
    with_bind(&peek_data, "/data", "/l");
    let idle = bundle(&d.0, &r, "idle", "echo idle-up; exec sleep 1000", true);
    let board = format!(
        r#"{{"logs":{{}},"containers":[
        {{"id":"lb-peek-log","bundle":"{}","kind":"oneshot","onFailure":"ignore"}},
        {{"id":"lb-peek-data","bundle":"{}","kind":"oneshot","onFailure":"ignore"}},
        {{"id":"lb-idle","bundle":"{}","kind":"service"}}]}}"#,
        peek_log.display(),
        peek_data.display(),
        idle.display()
    );
    fs::write(d.0.join("board.json"), board).unwrap();
    let log = d.0.join("console.log");
    let out = fs::File::create(&log).unwrap();
    let mut init = Init::start_with_data(
        out.into(),
        log,
        &["lb-peek-log", "lb-peek-data", "lb-idle"],
        &[],
        &["--config", d.0.join("board.json").to_str().unwrap()],
        Some(&data),
    );
    let text = init.wait_for("idle-up", 30);
    init.signal("USR2");
    let _ = init.wait_exit(30);
    assert!(
        !text.contains("PEEK-LOG-RAN") && !text.contains("PEEK-DATA-RAN"),
        "a container got the log directory:\n{text}"
    );
    assert!(
        text.contains("cannot start lb-peek-log") && text.contains("cannot start lb-peek-data"),
        "{text}"
    );
}
