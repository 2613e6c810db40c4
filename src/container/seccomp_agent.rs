//! Handing a seccomp listener to its agent: the fd the child sent (`MSG_SECCOMP`) goes
//! to `linux.seccomp.listenerPath` with the container process state (runtime-spec
//! runtime.md "ContainerProcessState"), as runc's `sendContainerProcessState` does: one
//! connection, one message carrying the fd as `SCM_RIGHTS`, then closed (our copy of the
//! fd too, so only the agent holds the listener).

use std::fmt::Write as _;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::os::unix::net::UnixStream;

use nix::errno::Errno;
use nix::sys::socket::MsgFlags;

use crate::seccomp::notify::Listener;
use crate::sys;

/// `ociVersion` of the message: the runtime-spec version dory implements (the
/// ContainerProcessState is a runtime-spec 1.1 addition), as runc sends `specs.Version`.
const PROCESS_STATE_VERSION: &str = "1.2.0";

/// The ContainerProcessState JSON: `pid` is the process the filter is for (the init, or
/// an exec'd process), `state` the container's state JSON, `metadata_json` the config's
/// `listenerMetadata` as written there (still escaped; omitted when empty, as runc).
pub fn process_state_json(pid: i32, metadata_json: &str, state_json: &str) -> String {
    let mut o = String::with_capacity(64 + metadata_json.len() + state_json.len());
    o.push_str("{\"ociVersion\":\"");
    o.push_str(PROCESS_STATE_VERSION);
    let _ = write!(o, "\",\"fds\":[\"seccompFd\"],\"pid\":{pid}");
    if !metadata_json.is_empty() {
        o.push_str(",\"metadata\":\"");
        o.push_str(metadata_json);
        o.push('"');
    }
    o.push_str(",\"state\":");
    o.push_str(state_json);
    o.push('}');
    o
}

/// Connects to the agent and sends `json` with `listener`; the error names the field.
pub fn send(to: &Listener, json: &str, listener: BorrowedFd<'_>) -> Result<(), String> {
    let shown = String::from_utf8_lossy(&to.path);
    let stream = connect(&to.path).map_err(|e| {
        format!(
            "config.json: linux.seccomp.listenerPath: connect to the seccomp agent at {shown}: {e}"
        )
    })?;
    let failed = |e: Errno| {
        format!(
            "config.json: linux.seccomp.listenerPath: send the listener to the seccomp agent at {shown}: {}",
            e.desc()
        )
    };
    // The whole message in the sendmsg that carries the fd (an agent may read it with a
    // single recvmsg); a stream socket may take less, the rest follows.
    let bytes = json.as_bytes();
    let mut sent = sys::send_fd(stream.as_fd(), bytes, listener).map_err(failed)?;
    while let Some(rest) = bytes.get(sent..).filter(|r| !r.is_empty()) {
        match nix::sys::socket::send(stream.as_raw_fd(), rest, MsgFlags::MSG_NOSIGNAL) {
            Ok(n) => sent = sent.saturating_add(n),
            Err(Errno::EINTR) => {}
            Err(e) => return Err(failed(e)),
        }
    }
    Ok(())
}

/// A path, or `@name` for an abstract socket (as Go's net.Dial, hence runc, reads it).
fn connect(path: &[u8]) -> std::io::Result<UnixStream> {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::ffi::OsStrExt;
    match path.strip_prefix(b"@") {
        Some(name) => {
            let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
            UnixStream::connect_addr(&addr)
        }
        None => UnixStream::connect(std::ffi::OsStr::from_bytes(path)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_state_has_the_spec_fields() {
        let st = r#"{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b"}"#;
        let j = process_state_json(42, r#"say \"hi\""#, st);
        assert_eq!(
            j,
            r#"{"ociVersion":"1.2.0","fds":["seccompFd"],"pid":42,"metadata":"say \"hi\"","state":{"ociVersion":"1.0.2","id":"c1","status":"creating","pid":42,"bundle":"/b"}}"#
        );
        let j = process_state_json(7, "", st);
        assert!(!j.contains("metadata") && j.contains(r#""pid":7,"state":{"#));
    }
}
