//! `tmpcopyup`: fill a fresh tmpfs with a copy of the directory it covers, in the child,
//! without allocation (stack buffers, bounded depth).

use std::ffi::CStr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

use nix::errno::Errno;
use nix::fcntl::{openat, AtFlags, OFlag};
use nix::sys::stat::{fchmod, fstatat, mkdirat, Mode};
use nix::unistd::{fchown, fchownat, symlinkat, Gid, Uid};

use super::fs::StackPath;
use crate::sys;

/// Deepest directory level copied; deeper trees fail with ELOOP rather than overflow.
const MAX_COPY_DEPTH: u32 = 16;

fn open_dir(dir: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    openat(
        dir,
        name,
        OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
        Mode::empty(),
    )
}

/// Copies the contents of `from` into `to` (both open directories), keeping modes and
/// owners; `to`'s own mode and owner become `from`'s.
/// `proc` is the verified host procfs root: regular files are reopened for reading through
/// it, from an `O_PATH` fd checked to be a regular file (a sibling swapping in a fifo or a
/// device between the check and the open cannot make dory block or read a device).
pub fn copy_tree(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    proc: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let st = nix::sys::stat::fstat(from)?;
    fchmod(to, Mode::from_bits_truncate(st.st_mode & 0o7777))?;
    fchown(
        to,
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    )?;
    copy_entries(from, to, 0, proc)
}

fn copy_entries(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    depth: u32,
    proc: BorrowedFd<'_>,
) -> Result<(), Errno> {
    if depth > MAX_COPY_DEPTH {
        return Err(Errno::ELOOP);
    }
    let mut buf = [0u8; 2048];
    loop {
        let n = sys::getdents64(from, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        let mut off = 0;
        // linux_dirent64: d_ino u64, d_off i64, d_reclen u16, d_type u8, d_name NUL-terminated.
        while let Some(rec) = buf.get(off..n) {
            let (Some(&r0), Some(&r1)) = (rec.get(16), rec.get(17)) else {
                break;
            };
            let reclen = usize::from(u16::from_ne_bytes([r0, r1]));
            if reclen == 0 {
                break;
            }
            let name_bytes = rec.get(19..reclen.min(rec.len())).unwrap_or_default();
            let name_len = name_bytes
                .iter()
                .position(|b| *b == 0)
                .unwrap_or(name_bytes.len());
            let name = name_bytes.get(..name_len).unwrap_or_default();
            off += reclen;
            if name == b"." || name == b".." || name.is_empty() {
                continue;
            }
            let mut n_buf = StackPath::new();
            n_buf.push(name)?;
            let c = n_buf.as_cstr().ok_or(Errno::EINVAL)?;
            copy_entry(from, to, c, depth, proc)?;
        }
    }
}

fn copy_entry(
    from: BorrowedFd<'_>,
    to: BorrowedFd<'_>,
    name: &CStr,
    depth: u32,
    proc: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let st = fstatat(from, name, AtFlags::AT_SYMLINK_NOFOLLOW)?;
    let mode = Mode::from_bits_truncate(st.st_mode & 0o7777);
    let (uid, gid) = (
        Some(Uid::from_raw(st.st_uid)),
        Some(Gid::from_raw(st.st_gid)),
    );
    match st.st_mode & libc::S_IFMT {
        libc::S_IFDIR => {
            mkdirat(to, name, mode)?;
            let src = open_dir(from, name)?;
            let dst = open_dir(to, name)?;
            fchmod(dst.as_fd(), mode)?;
            fchown(dst.as_fd(), uid, gid)?;
            copy_entries(src.as_fd(), dst.as_fd(), depth + 1, proc)
        }
        libc::S_IFREG => {
            let path = openat(
                from,
                name,
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )?;
            if nix::sys::stat::fstat(path.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFREG {
                return Err(Errno::EINVAL);
            }
            let src = sys::procfs::reopen(proc, path.as_raw_fd(), libc::O_RDONLY)?;
            let dst = openat(
                to,
                name,
                OFlag::O_WRONLY
                    | OFlag::O_CREAT
                    | OFlag::O_EXCL
                    | OFlag::O_NOFOLLOW
                    | OFlag::O_CLOEXEC,
                mode,
            )?;
            let mut chunk = [0u8; 4096];
            loop {
                let got = nix::unistd::read(&src, &mut chunk)?;
                if got == 0 {
                    break;
                }
                let mut rest = chunk.get(..got).unwrap_or_default();
                while !rest.is_empty() {
                    let w = nix::unistd::write(&dst, rest)?;
                    rest = rest.get(w..).unwrap_or_default();
                }
            }
            fchmod(dst.as_fd(), mode)?;
            fchown(dst.as_fd(), uid, gid)
        }
        libc::S_IFLNK => {
            let mut target = [0u8; 4096];
            let len = sys::readlinkat(from, name, &mut target)?;
            let mut t = StackPath::new();
            t.push(target.get(..len).unwrap_or_default())?;
            symlinkat(t.as_cstr().ok_or(Errno::EINVAL)?, to, name)?;
            fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        }
        _ => {
            let dev = st.st_rdev;
            sys::mknodat(to, name, st.st_mode, libc::major(dev), libc::minor(dev))?;
            fchownat(to, name, uid, gid, AtFlags::AT_SYMLINK_NOFOLLOW)
        }
    }
}
