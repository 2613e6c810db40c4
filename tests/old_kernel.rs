//! dory on a kernel without `mount_setattr` (5.12) or `close_range(CLOSE_RANGE_CLOEXEC)`
//! (5.11), as Linux 5.10 LTS is, tried on this host: `dory run` starts under a seccomp
//! filter that answers those calls as such a kernel does (ENOSYS; EINVAL for the flag).
//! The container must come out the same: read-only root, a read-only bind with its flags,
//! readonlyPaths, no leaked fd; what needs 5.12 is refused naming the mount. (The same
//! board boots on Debian bullseye's real 5.10 kernel in `ci/test`.) Needs root.
// The filter is installed between fork and exec (pre_exec), as only unsafe code can.
#![allow(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::os::unix::process::CommandExt;
use std::process::Command;

use common::{run_cmd, Bundle, Out};
use serde_json::json;

/// The fd the caller leaves open (not close-on-exec) for dory: it must not reach the
/// container.
const LEAKED_FD: i32 = 60;

/// `seccomp_data` offsets: nr, arch, args[2] (low half on a little-endian host).
const NR: u32 = 0;
const ARCH: u32 = 4;
const ARG2_LO: u32 = 32;

fn stmt(code: u32, k: u32) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump(code: u32, k: u32, jt: u8, jf: u8) -> libc::sock_filter {
    libc::sock_filter {
        code: code as u16,
        jt,
        jf,
        k,
    }
}

/// A filter that makes this (x86_64) kernel look like 5.10 to dory: `mount_setattr`
/// gets ENOSYS, `close_range` with CLOSE_RANGE_CLOEXEC gets EINVAL; all else runs.
fn old_kernel_filter() -> Vec<libc::sock_filter> {
    const AUDIT_ARCH_X86_64: u32 = 0xc000_003e;
    let ld = libc::BPF_LD | libc::BPF_W | libc::BPF_ABS;
    let jeq = libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K;
    let jset = libc::BPF_JMP | libc::BPF_JSET | libc::BPF_K;
    let ret = libc::BPF_RET | libc::BPF_K;
    let errno = |e: i32| libc::SECCOMP_RET_ERRNO | (e as u32);
    vec![
        stmt(ld, ARCH),
        jump(jeq, AUDIT_ARCH_X86_64, 1, 0),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
        stmt(ld, NR),
        jump(jeq, libc::SYS_mount_setattr as u32, 0, 1),
        stmt(ret, errno(libc::ENOSYS)),
        jump(jeq, libc::SYS_close_range as u32, 0, 3),
        stmt(ld, ARG2_LO),
        jump(jset, libc::CLOSE_RANGE_CLOEXEC, 0, 1),
        stmt(ret, errno(libc::EINVAL)),
        stmt(ret, libc::SECCOMP_RET_ALLOW),
    ]
}

/// `cmd` run under [`old_kernel_filter`], with [`LEAKED_FD`] open and inheritable.
fn as_on_linux_5_10(mut cmd: Command) -> Out {
    let filter = old_kernel_filter();
    let leak = std::fs::File::open("/dev/null").unwrap();
    let leak_fd = std::os::fd::AsRawFd::as_raw_fd(&leak);
    // SAFETY: pre_exec's closure makes only async-signal-safe calls (dup2, prctl) on
    // memory made before the fork (the filter), as the child of fork may.
    unsafe {
        cmd.pre_exec(move || {
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::dup2(leak_fd, LEAKED_FD) != LEAKED_FD
                || libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0
                || libc::prctl(
                    libc::PR_SET_SECCOMP,
                    libc::SECCOMP_MODE_FILTER,
                    &prog as *const libc::sock_fprog,
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = run_cmd(&mut cmd);
    drop(leak);
    out
}

#[test]
fn without_mount_setattr_and_cloexec_close_range_the_container_is_the_same() {
    if common::skip_unless_root(
        "without_mount_setattr_and_cloexec_close_range_the_container_is_the_same",
    ) {
        return;
    }
    let script = format!(
        "f=; touch /rw-probe 2>/dev/null && f=\"$f root-writable\"; \
         touch /mnt/ro/rw-probe 2>/dev/null && f=\"$f bind-writable\"; \
         grep -q ' /mnt/ro ro,nosuid,nodev' /proc/self/mountinfo || f=\"$f bind-flags\"; \
         awk '$5==\"/proc/sys\" && $6 ~ /^ro/ {{ok=1}} END {{exit !ok}}' /proc/self/mountinfo \
           || f=\"$f readonlyPaths\"; \
         [ -e /proc/self/fd/{LEAKED_FD} ] && f=\"$f fd-{LEAKED_FD}-leaked\"; \
         echo \"result:${{f:- ok}}\""
    );
    let mut b = Bundle::new("oldk", &["sh", "-c", &script]);
    let src = b.base.join("ro-src");
    std::fs::create_dir(&src).unwrap();
    assert_eq!(
        b.config["root"]["readonly"],
        json!(true),
        "the spec's default"
    );
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/ro",
        "type": "bind",
        "source": src,
        "options": ["bind", "ro", "nosuid", "nodev"]
    }));
    b.write_config();
    let out = as_on_linux_5_10(b.run_cmd());
    out.expect_code(0);
    assert!(
        out.stdout.contains("result: ok"),
        "inside the container:\n{}\nstderr:\n{}",
        out.stdout,
        out.stderr
    );
    assert!(
        std::fs::read_dir(&src).unwrap().next().is_none(),
        "the read-only bind's source was written"
    );
    b.assert_nothing_left();
}

#[test]
fn without_mount_setattr_recursive_attributes_are_refused_naming_the_mount() {
    if common::skip_unless_root(
        "without_mount_setattr_recursive_attributes_are_refused_naming_the_mount",
    ) {
        return;
    }
    let mut b = Bundle::new("oldk-rro", &["sh", "-c", "echo ran"]);
    let src = b.base.join("rro-src");
    std::fs::create_dir(&src).unwrap();
    b.config["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/mnt/rro",
        "type": "bind",
        "source": src,
        "options": ["rbind", "rro"]
    }));
    let index = b.config["mounts"].as_array().unwrap().len() - 1;
    b.write_config();
    let out = as_on_linux_5_10(b.run_cmd());
    assert_ne!(
        out.code, 0,
        "rro ran without mount_setattr:\n{}",
        out.stdout
    );
    assert!(!out.stdout.contains("ran"), "the program ran");
    let msg = out.message();
    assert!(
        msg.contains(&format!("mounts[{index}].options")) && msg.contains("5.12"),
        "error does not name the mount and the kernel it needs: {msg}"
    );
    b.assert_nothing_left();
}
