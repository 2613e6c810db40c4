//! The rescue shell: /bin/sh on the console, in its own session with the console as its
//! controlling terminal, so an operator can look at a board whose boot failed.

use nix::sys::signal::{sigprocmask, SigSet, SigmaskHow};
use nix::unistd::Pid;

use crate::sys::init::{exit_now, spawn, ExecArgs};
use crate::sys::set_controlling_tty;

const SHELL_ENV: &[&str] = &[
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME=/",
    "TERM=linux",
];

pub fn spawn_shell() -> nix::Result<Pid> {
    let exec =
        ExecArgs::new(["/bin/sh"], SHELL_ENV.iter().copied()).ok_or(nix::errno::Errno::EINVAL)?;
    spawn(|| {
        let _ = nix::unistd::setsid();
        let stdin = std::io::stdin();
        let _ = set_controlling_tty(std::os::fd::AsFd::as_fd(&stdin));
        let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
        let _ = exec.exec();
        exit_now(127)
    })
}
