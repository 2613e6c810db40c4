//! `bpf(2)` for cgroup v2 device programs: load one and attach it to a cgroup.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use nix::errno::Errno;

use crate::cgroup::devices_bpf::Insn;

const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_PROG_ATTACH: libc::c_long = 8;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// `bpf(BPF_PROG_LOAD)` of a `BPF_PROG_TYPE_CGROUP_DEVICE` program.
pub fn load_device_program(insns: &[Insn]) -> Result<OwnedFd, Errno> {
    let license = c"Apache-2.0";
    // union bpf_attr for PROG_LOAD: prog_type u32, insn_cnt u32, insns u64, license u64,
    // then log fields left zero. 128 zeroed bytes cover every field the kernel reads.
    let mut attr = [0u8; 128];
    let cnt = u32::try_from(insns.len()).map_err(|_| Errno::E2BIG)?;
    let fields: [(usize, &[u8]); 4] = [
        (0, &BPF_PROG_TYPE_CGROUP_DEVICE.to_ne_bytes()),
        (4, &cnt.to_ne_bytes()),
        (8, &(insns.as_ptr() as u64).to_ne_bytes()),
        (16, &(license.as_ptr() as u64).to_ne_bytes()),
    ];
    for (off, bytes) in fields {
        if let Some(slot) = attr.get_mut(off..off + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
    }
    // SAFETY: `attr` is a valid bpf_attr of the stated size; the pointers in it refer to
    // `insns` and `license`, which outlive the call.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_LOAD, attr.as_ptr(), attr.len()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    // SAFETY: the kernel returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

/// `bpf(BPF_PROG_ATTACH)` of a device program to a cgroup directory (multi-attach, so a
/// parent's programs still apply, as the kernel requires for nested containers).
pub fn attach_device_program(cgroup: BorrowedFd<'_>, prog: BorrowedFd<'_>) -> Result<(), Errno> {
    let mut attr = [0u8; 128];
    let fields: [(usize, u32); 4] = [
        (0, cgroup.as_raw_fd() as u32),
        (4, prog.as_raw_fd() as u32),
        (8, BPF_CGROUP_DEVICE),
        (12, BPF_F_ALLOW_MULTI),
    ];
    for (off, v) in fields {
        if let Some(slot) = attr.get_mut(off..off + 4) {
            slot.copy_from_slice(&v.to_ne_bytes());
        }
    }
    // SAFETY: `attr` is a valid bpf_attr of the stated size holding only integers.
    let ret = unsafe { libc::syscall(libc::SYS_bpf, BPF_PROG_ATTACH, attr.as_ptr(), attr.len()) };
    if ret < 0 {
        return Err(Errno::last());
    }
    Ok(())
}
