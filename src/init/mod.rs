//! PID 1.

pub fn main_as_pid1() -> i32 {
    0
}

/// `dory init --config FILE` (wired by the init module).
pub fn main_from_cli(_args: &[String]) -> i32 {
    eprintln!("dory init: not built yet");
    1
}

/// `dory ctl ...` (wired by the init module).
pub fn ctl_main(_args: &[String]) -> i32 {
    eprintln!("dory ctl: not built yet");
    1
}
