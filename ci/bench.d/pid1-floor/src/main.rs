//! The PID 1 floor for ci/bench, booted as /init in the qemu-aarch64 initramfs.
//!
//! From its own start it clones one child with the six namespaces of the board's `hello`
//! container (mount, pid, uts, ipc, net, cgroup), chroots it into /containers/rootfs and
//! execs the same command as `hello` with stdout on a pipe; it prints the time until the
//! first byte arrives, the figure dory prints as "dory: boot: first container output at
//! +N ms". No mounts, cgroups, pivot_root, devices, capabilities or config parsing: a
//! lower bound for any runtime on this machine, not a competitor. Then it powers off.
use std::ffi::CString;
use std::time::Instant;

fn main() {
    let t0 = Instant::now();
    let mut pipe = [0i32; 2];
    // SAFETY: pipe() writes two fds into the two-element array.
    if unsafe { libc::pipe(pipe.as_mut_ptr()) } != 0 {
        finish("pipe failed");
    }
    let words = ["sh", "-c", "echo \"DORY-MARKER hello from $(hostname)\""];
    let args: Vec<CString> = words.iter().map(|w| CString::new(*w).unwrap()).collect();
    let mut argv: Vec<*const libc::c_char> = args.iter().map(|a| a.as_ptr()).collect();
    argv.push(std::ptr::null());
    let envp = [c"PATH=/bin".as_ptr(), std::ptr::null()];
    let flags = libc::CLONE_NEWNS
        | libc::CLONE_NEWPID
        | libc::CLONE_NEWUTS
        | libc::CLONE_NEWIPC
        | libc::CLONE_NEWNET
        | libc::CLONE_NEWCGROUP
        | libc::SIGCHLD;
    // SAFETY: a fork-like clone (no CLONE_VM, no new stack): the child continues below.
    let pid = unsafe { libc::syscall(libc::SYS_clone, flags as libc::c_ulong, 0usize, 0usize, 0usize, 0usize) };
    if pid == 0 {
        // SAFETY: the child only makes async-signal-safe calls on prepared C strings.
        unsafe {
            libc::dup2(pipe[1], 1);
            libc::chroot(c"/containers/rootfs".as_ptr());
            libc::chdir(c"/".as_ptr());
            libc::execve(c"/bin/sh".as_ptr(), argv.as_ptr(), envp.as_ptr());
            libc::_exit(127);
        }
    }
    if pid < 0 {
        finish("clone failed");
    }
    // SAFETY: closing our copy of the write end; reading into a local buffer.
    let mut buf = [0u8; 256];
    let n = unsafe {
        libc::close(pipe[1]);
        libc::read(pipe[0], buf.as_mut_ptr().cast(), buf.len())
    };
    let ms = t0.elapsed().as_millis();
    let line = String::from_utf8_lossy(buf.get(..n.max(0) as usize).unwrap_or_default());
    println!("pid1-floor: first container output at +{ms} ms: {}", line.trim());
    finish("done");
}

fn finish(why: &str) -> ! {
    println!("pid1-floor: {why}, powering off");
    // SAFETY: plain syscalls; as PID 1 we must not return.
    unsafe {
        libc::sync();
        libc::reboot(libc::RB_POWER_OFF);
        loop {
            libc::pause();
        }
    }
}
