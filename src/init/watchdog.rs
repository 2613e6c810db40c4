//! Hardware watchdog: opened at boot, petted every `timeoutSecs / 2`, and closed with the
//! magic 'V' on a clean shutdown so the kernel disarms it (drivers without
//! `nowayout`). If dory hangs, the board resets.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;
use std::sync::Mutex;

use super::console::{now_ms, say};

/// The armed watchdog and when it is next due. Global so that a long step outside the
/// loop (a launch waiting for a hook or for the container's setup, a cgroup emptying)
/// can pet it too, through [`pet_if_due`] registered with `container::waits`.
static ARMED: Mutex<Option<Armed>> = Mutex::new(None);

struct Armed {
    wd: Watchdog,
    next_ms: u64,
}

fn armed() -> std::sync::MutexGuard<'static, Option<Armed>> {
    // PID 1 is single-threaded: a poisoned lock only means a test thread panicked.
    ARMED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Hands the opened watchdog to the global slot; the first pet is due one interval on.
pub fn arm(wd: Watchdog) {
    let next_ms = now_ms().saturating_add(wd.interval_ms);
    *armed() = Some(Armed { wd, next_ms });
}

/// Pets the watchdog if a pet is due; returns when the next one is (None: no watchdog).
pub fn pet_if_due() -> Option<u64> {
    let mut slot = armed();
    let a = slot.as_mut()?;
    let now = now_ms();
    if now >= a.next_ms {
        a.wd.pet();
        a.next_ms = now.saturating_add(a.wd.interval_ms);
    }
    Some(a.next_ms)
}

/// When the next pet is due, without petting.
pub fn next_due() -> Option<u64> {
    armed().as_ref().map(|a| a.next_ms)
}

/// Takes the watchdog back (for the magic close at the end of shutdown).
pub fn disarm_slot() -> Option<Watchdog> {
    armed().take().map(|a| a.wd)
}

pub struct Watchdog {
    file: File,
    /// How often to pet, in ms.
    pub interval_ms: u64,
}

impl Watchdog {
    pub fn open(device: &str, timeout_secs: u32) -> Option<Watchdog> {
        let file = match std::fs::OpenOptions::new().write(true).open(device) {
            Ok(f) => f,
            Err(e) => {
                say!("dory: watchdog {device}: cannot open: {e}; running without it");
                return None;
            }
        };
        let asked = i32::try_from(timeout_secs).unwrap_or(i32::MAX);
        let secs = match crate::sys::init::watchdog_set_timeout(file.as_fd(), asked) {
            Ok(got) if got > 0 => u32::try_from(got).unwrap_or(timeout_secs),
            Ok(_) => timeout_secs,
            Err(e) => {
                say!(
                    "dory: watchdog {device}: cannot set timeout ({e}); assuming {timeout_secs} s"
                );
                timeout_secs
            }
        };
        let interval_ms = (u64::from(secs) * 1000 / 2).max(500);
        say!("dory: watchdog {device}: timeout {secs} s, petting every {interval_ms} ms");
        let mut wd = Watchdog { file, interval_ms };
        wd.pet();
        Some(wd)
    }

    pub fn pet(&mut self) {
        if let Err(e) = self.file.write_all(b"\0") {
            say!("dory: watchdog: pet failed: {e}");
        }
    }

    /// Magic close: write 'V' then close, disarming the watchdog.
    pub fn disarm(mut self) {
        if let Err(e) = self.file.write_all(b"V") {
            say!("dory: watchdog: magic close failed: {e}");
        }
    }
}
