//! `kill_cgroup` on this machine's real cgroups (needs root; skips visibly otherwise).

use std::process::Command;

use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::Pid;

use super::kill_cgroup;
use crate::cgroup::{Cgroup, Layout};

/// Field 3 of /proc/<pid>/stat: the scheduler state letter ('Z' for a zombie).
fn state_letter(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// Removes the cgroup when the test ends, passed or not.
struct Guard(Option<Cgroup>);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(cg) = self.0.take() {
            kill_cgroup(&cg);
            let _ = cg.remove();
        }
    }
}

#[test]
// Both children are reaped with waitpid(2) by pid, which is what the test is about.
#[allow(clippy::zombie_processes)]
fn killing_a_cgroup_reaps_only_what_it_lists() {
    const NAME: &str = "container::kill_tests::killing_a_cgroup_reaps_only_what_it_lists";
    if crate::testutil::skip_unless_root(NAME) {
        return;
    }
    // A child of ours outside the cgroup that has already exited: in PID 1 that is another
    // container's init, whose status the supervisor's loop must get.
    let other = Command::new("sh").args(["-c", "exit 7"]).spawn().unwrap();
    let other = Pid::from_raw(i32::try_from(other.id()).unwrap());
    while state_letter(other.as_raw()) != Some('Z') {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    // What the container left behind: a process in its cgroup.
    let layout = Layout::detect().unwrap();
    let path = format!("/dory-test-kill-{}", std::process::id());
    let guard = Guard(Some(Cgroup::create(&layout, &path, None).unwrap()));
    let cg = guard.0.as_ref().unwrap();
    let left = Command::new("sleep").arg("100").spawn().unwrap();
    let left = i32::try_from(left.id()).unwrap();
    cg.add_pid(left).unwrap();

    kill_cgroup(cg);

    assert!(
        cg.pids().unwrap().is_empty(),
        "the cgroup still has processes"
    );
    // Dead: a zombie the caller's loop reaps (PID 1's), or already gone.
    assert!(
        matches!(state_letter(left), None | Some('Z')),
        "the left-over process still runs"
    );
    let _ = waitpid(Pid::from_raw(left), None);
    assert_eq!(
        waitpid(other, None),
        Ok(WaitStatus::Exited(other, 7)),
        "the other child's exit status was taken"
    );
}
