//! Entry points of the fuzz targets in `fuzz/` (built only with `--cfg fuzzing`, which
//! cargo-fuzz sets; the shipped binary has none of this).
//!
//! Each takes the fuzzer's bytes through the code dory runs on them, and panics where an
//! invariant breaks (libFuzzer then keeps the input as a crash):
//! - [`config`]: config.json as `dory run` and `create` take it before anything exists:
//!   the structural scan, serde-json-core, validation (which compiles the seccomp
//!   profile), then the plan for a bundle with an empty rootfs.
//! - [`board`]: board.json as PID 1 takes it: scan, parse, validation, start order, and
//!   the restart policy of each service over its retries.
//! - [`cli`]: the words of a command line (NUL-separated), see `cli/fuzz.rs`.
//! - [`seccomp_compile`] and [`CheckedBpf`]: for the seccomp target, which writes the
//!   profiles and judges the programs against its own evaluation of the rules.
#![allow(
    clippy::panic,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "a fuzz target reports a broken invariant by panicking"
)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::init::board::{self, Kind};
use crate::init::policy::{backoff_ms, Decision, Exit, RestartState};
use crate::plan::Plan;
use crate::seccomp::interp;
use crate::spec::{self, ErrorKind};

/// A bundle directory with an empty `rootfs` (and an `/etc/passwd` for the home
/// directory lookup), made once per process under the temporary directory.
fn bundle() -> &'static Path {
    static BUNDLE: OnceLock<PathBuf> = OnceLock::new();
    BUNDLE.get_or_init(|| {
        let uid = nix::unistd::geteuid().as_raw();
        let dir = std::env::temp_dir().join(format!("dory-fuzz-{uid}/bundle"));
        let etc = dir.join("rootfs/etc");
        std::fs::create_dir_all(&etc).expect("create the fuzz bundle");
        std::fs::write(
            etc.join("passwd"),
            "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n",
        )
        .expect("write the fuzz bundle's passwd");
        dir
    })
}

/// config.json bytes: parse (scan, serde, validate) and plan.
pub fn config(data: &[u8]) {
    let spec = match spec::parse(data) {
        Ok(s) => s,
        Err(e) => {
            // The scanner is meant to catch everything serde-json-core would refuse, so
            // that every error names a position or a field.
            if let ErrorKind::Parser(p) = e.kind() {
                panic!("the scanner accepted what serde-json-core refuses: {p:?}");
            }
            let text = e.to_string();
            assert!(
                text.starts_with("config.json: ") && text.len() > 13,
                "{text}"
            );
            return;
        }
    };
    match Plan::build(&spec, data.len(), bundle()) {
        Ok(plan) => {
            // The seccomp program the child would load passes the kernel's checks.
            if let Some(prog) = &plan.seccomp {
                interp::check(prog.as_slice()).unwrap_or_else(|e| panic!("{e}"));
            }
        }
        Err(e) => assert!(!e.field.is_empty() && !e.message.is_empty(), "{e:?}"),
    }
}

/// board.json bytes: what PID 1 (and `dory init --check`) does with them.
pub fn board(data: &[u8]) {
    if data.len() > board::MAX_BOARD_BYTES {
        // board::read refuses a larger file before parsing.
        return;
    }
    let b = match board::parse(data) {
        Ok(b) => b,
        Err(e) => {
            assert!(
                !matches!(e, board::Error::Parse),
                "the scanner accepted what serde-json-core refuses"
            );
            let _ = e.to_string();
            return;
        }
    };
    // Every service exactly once, each after the services it names.
    let order = crate::init::order::start_order(&b).expect("parse checked the order");
    let services = b
        .containers
        .iter()
        .filter(|c| c.kind == Kind::Service)
        .count();
    assert_eq!(order.len(), services);
    for (pos, &i) in order.iter().enumerate() {
        let c = &b.containers[i];
        assert_eq!(c.kind, Kind::Service);
        assert!(!order[..pos].contains(&i), "{} twice", c.id);
        for dep in &c.after {
            let d = b.containers.iter().position(|o| o.id == *dep).unwrap();
            if b.containers[d].kind == Kind::Service {
                assert!(order[..pos].contains(&d), "{} before {dep}", c.id);
            }
        }
    }
    for c in &b.containers {
        restarts(c);
    }
}

/// A service's restart policy over its whole budget: the first delay is
/// `min(initialDelayMs, maxDelayMs)`, delays never shrink nor pass `maxDelayMs`, and the
/// service is given up after `maxRetries` retries. A crash loop is simulated for a budget
/// of up to 1000 retries; delays are probed up to the end of any budget.
fn restarts(c: &board::Container<'_>) {
    let spec = &c.restart;
    let cap = u64::from(spec.max_delay_ms);
    let first = u64::from(spec.initial_delay_ms).min(cap);
    let mut last = first;
    let end = spec.max_retries.saturating_sub(1);
    let mut probes = [0, 1, 2, 31, 32, 33, 64, end / 2, end];
    probes.sort_unstable();
    for n in probes {
        if n > end {
            continue;
        }
        let d = backoff_ms(spec, n);
        assert!(
            d <= cap && d >= last,
            "{}: retry {n}: {d} ms after {last}",
            c.id
        );
        assert!(n > 0 || d == first, "{}: first delay {d}", c.id);
        last = d;
    }
    let mut state = RestartState::default();
    let mut now = 0u64;
    let budget = spec.max_retries.min(1000);
    for i in 0..=budget {
        // A crash right after each start: the window never resets the count.
        match state.on_exit(spec, now, now, Exit::Code(1)) {
            Decision::Restart {
                at_ms,
                delay_ms,
                retry,
            } => {
                assert!(
                    i < spec.max_retries,
                    "{}: restart {retry} past the budget",
                    c.id
                );
                assert_eq!(retry, i + 1);
                assert!(delay_ms <= cap && at_ms == now.saturating_add(delay_ms));
                now = at_ms;
            }
            Decision::GiveUp { retries } => {
                assert_eq!(retries, spec.max_retries, "{}", c.id);
                break;
            }
            Decision::Stay => {
                assert!(spec.policy == crate::init::policy::Policy::Never);
                break;
            }
        }
    }
}

/// The words of a command line, separated by NUL bytes (a word that is not UTF-8 is
/// refused as `dory` refuses it).
pub fn cli(data: &[u8]) {
    let words = data.split(|&b| b == 0).map(|w| {
        use std::os::unix::ffi::OsStrExt;
        std::ffi::OsStr::from_bytes(w).to_os_string()
    });
    let Ok(argv) = crate::cli::utf8_args(words) else {
        return;
    };
    let _ = crate::cli::fuzz::words(&argv);
}

/// A BPF program checked as the kernel checks it at load time, and the call data it
/// judges (see `seccomp/interp.rs`).
pub use crate::seccomp::interp::{Checked as CheckedBpf, Data as SeccompData};

/// Compiles the `linux.seccomp` of a config.json text for this machine: the program, or
/// the error as dory prints it. `Ok(None)`: the config has no seccomp section. (Parsed
/// without the validation pass, whose seccomp part is this same compilation.)
pub fn seccomp_compile(config: &[u8]) -> Result<Option<Vec<libc::sock_filter>>, String> {
    let spec = spec::parse_unvalidated(config).map_err(|e| e.to_string())?;
    match spec.linux.as_ref().and_then(|l| l.seccomp.as_ref()) {
        Some(s) => crate::seccomp::compile(s)
            .map(|p| Some(p.as_slice().to_vec()))
            .map_err(|e| e.to_string()),
        None => Ok(None),
    }
}
