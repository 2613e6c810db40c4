//! What a signal to PID 1 asks for. BusyBox/toybox `reboot`, `poweroff` and `halt` signal
//! init this way (SIGTERM, SIGUSR2, SIGUSR1); the kernel sends SIGINT for ctrl-alt-del once
//! `reboot(RB_DISABLE_CAD)` is set, and SIGPWR on power failure. SIGCHLD means reap.

use nix::sys::reboot::RebootMode;
use nix::sys::signal::{SigSet, Signal};

/// How the system ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Reboot,
    Poweroff,
    Halt,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Reboot => "reboot",
            Action::Poweroff => "poweroff",
            Action::Halt => "halt",
        }
    }

    /// The `reboot(2)` command for this action.
    pub fn mode(self) -> RebootMode {
        match self {
            Action::Reboot => RebootMode::RB_AUTOBOOT,
            Action::Poweroff => RebootMode::RB_POWER_OFF,
            Action::Halt => RebootMode::RB_HALT_SYSTEM,
        }
    }
}

/// The shutdown a signal requests, or `None` for signals that do not end the system.
pub fn action_for(sig: Signal) -> Option<Action> {
    match sig {
        Signal::SIGTERM | Signal::SIGINT => Some(Action::Reboot),
        Signal::SIGUSR2 | Signal::SIGPWR => Some(Action::Poweroff),
        Signal::SIGUSR1 => Some(Action::Halt),
        _ => None,
    }
}

/// Every signal PID 1 takes through its signalfd (and so blocks).
pub fn handled() -> SigSet {
    let mut s = SigSet::empty();
    for sig in [
        Signal::SIGCHLD,
        Signal::SIGTERM,
        Signal::SIGINT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGPWR,
        Signal::SIGHUP,
    ] {
        s.add(sig);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_convention() {
        assert_eq!(action_for(Signal::SIGTERM), Some(Action::Reboot));
        assert_eq!(action_for(Signal::SIGINT), Some(Action::Reboot));
        assert_eq!(action_for(Signal::SIGUSR2), Some(Action::Poweroff));
        assert_eq!(action_for(Signal::SIGPWR), Some(Action::Poweroff));
        assert_eq!(action_for(Signal::SIGUSR1), Some(Action::Halt));
        assert_eq!(action_for(Signal::SIGCHLD), None);
        assert_eq!(action_for(Signal::SIGHUP), None);
        assert_eq!(Action::Poweroff.mode(), RebootMode::RB_POWER_OFF);
        assert_eq!(Action::Reboot.mode(), RebootMode::RB_AUTOBOOT);
        assert_eq!(Action::Halt.mode(), RebootMode::RB_HALT_SYSTEM);
    }

    #[test]
    fn every_mapped_signal_is_handled() {
        let set = handled();
        for sig in Signal::iterator() {
            if action_for(sig).is_some() {
                assert!(set.contains(sig), "{sig:?}");
            }
        }
        assert!(set.contains(Signal::SIGCHLD));
    }
}
