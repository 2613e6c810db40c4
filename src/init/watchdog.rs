//! Hardware watchdog: opened at boot, petted every `timeoutSecs / 2`, and closed with the
//! magic 'V' on a clean shutdown so the kernel disarms it (drivers without
//! `nowayout`). If dory hangs, the board resets.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;

use super::console::say;

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
