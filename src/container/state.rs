//! The state directory: `<root>/<id>/state.json`, written atomically, read by `list`.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Longest container id accepted.
pub const MAX_ID_LEN: usize = 1024;
/// The config's annotations as a JSON object, next to state.json (shown by `state`).
pub const ANNOTATIONS: &str = "annotations.json";
/// Largest state.json read.
const MAX_STATE_BYTES: usize = 16 * 1024;
/// The bundle's config.json as `create` read it (runtime-spec: a change to the bundle's
/// config after create must not affect the container). start, exec, kill and delete read
/// this copy, never the bundle.
pub const CONFIG: &str = "config.json";

/// Checks a container id as runc does: 1 to [`MAX_ID_LEN`] bytes of A-Z a-z 0-9 `_` `+`
/// `-` `.`, and not `.` or `..`. The id names a directory under the state root (no `/`,
/// no `..`) and appears in `list` output and logs (no spaces, newlines or controls).
pub fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("container id must not be empty".into());
    }
    if id.len() > MAX_ID_LEN {
        return Err(format!(
            "container id is longer than {MAX_ID_LEN} bytes (limit {MAX_ID_LEN})"
        ));
    }
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'-' | b'.');
    if id == "." || id == ".." || !id.bytes().all(allowed) {
        return Err(format!(
            "invalid container id \"{}\": it must be made of A-Z a-z 0-9 _ + - . and not be '.' or '..' (so no '/')",
            id.escape_default()
        ));
    }
    Ok(())
}

/// What dory records about a container.
pub struct State<'a> {
    pub id: &'a str,
    pub pid: i32,
    pub status: &'a str,
    pub bundle: &'a str,
    pub rootfs: &'a str,
    pub created: &'a str,
    pub owner: &'a str,
    /// The init's start time in clock ticks since boot (/proc/<pid>/stat field 22), so a
    /// recycled pid is not mistaken for the container.
    pub start_time: u64,
    pub cgroup: &'a str,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct StateFile<'a> {
    id: &'a str,
    pid: i32,
    status: &'a str,
    bundle: &'a str,
    rootfs: &'a str,
    created: &'a str,
    owner: &'a str,
    start_time: u64,
    cgroup: &'a str,
}

/// The config's annotations as a JSON object, for the state (`annotations.json`, and the
/// state hooks read on stdin). Kept as JSON text: keys and values are the config's own,
/// still escaped, strings.
pub fn annotations_json(spec: &crate::spec::Spec<'_>) -> String {
    let mut text = String::from("{");
    for (i, (k, v)) in spec.annotations.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        let _ = write!(text, "\"{k}\":\"{v}\"");
    }
    text.push('}');
    text
}

/// JSON string escaping for values dory writes.
pub fn json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

impl State<'_> {
    /// The OCI state JSON (plus dory's own fields), as `state` and `list` print it.
    pub fn to_json(&self, include_private: bool) -> String {
        let mut o = String::with_capacity(256);
        o.push_str("{\"ociVersion\":\"1.0.2\",\"id\":");
        json_str(&mut o, self.id);
        let _ = write!(o, ",\"pid\":{},\"status\":", self.pid);
        json_str(&mut o, self.status);
        o.push_str(",\"bundle\":");
        json_str(&mut o, self.bundle);
        o.push_str(",\"rootfs\":");
        json_str(&mut o, self.rootfs);
        o.push_str(",\"created\":");
        json_str(&mut o, self.created);
        o.push_str(",\"owner\":");
        json_str(&mut o, self.owner);
        if include_private {
            let _ = write!(o, ",\"startTime\":{},\"cgroup\":", self.start_time);
            json_str(&mut o, self.cgroup);
        }
        o.push('}');
        o
    }
}

/// The directory of one container's state.
pub fn dir(root: &Path, id: &str) -> PathBuf {
    root.join(id)
}

/// Creates `<root>/<id>`; fails if it exists, so one id runs once.
/// The state is root's alone (as runc's): the root and each container's directory 0700,
/// state files 0600, so no other user lists the containers, their bundles or pids.
pub fn create_dir(root: &Path, id: &str) -> Result<PathBuf, io::Error> {
    use std::os::unix::fs::DirBuilderExt;
    if !root.is_dir() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(root)?;
    }
    let d = dir(root, id);
    std::fs::DirBuilder::new().mode(0o700).create(&d)?;
    Ok(d)
}

/// Removes a state directory: its known files, then the directory (three syscalls
/// instead of a directory walk); anything unexpected inside falls back to a full removal.
pub fn remove_dir(dir: &Path) {
    for f in [
        "state.json",
        "exec.fifo",
        "state.json.tmp",
        ANNOTATIONS,
        CONFIG,
        CONFIG_TMP,
    ] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    if std::fs::remove_dir(dir).is_err() {
        let _ = std::fs::remove_dir_all(dir);
    }
}

const CONFIG_TMP: &str = "config.json.tmp";

/// Writes `name` in `dir` atomically, 0600 (a temporary file `tmp`, then rename): a
/// reader sees the old file or the whole new one.
fn write_atomic(dir: &Path, tmp: &str, name: &str, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = dir.join(tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?
        .write_all(bytes)?;
    std::fs::rename(&tmp, dir.join(name))
}

/// Writes state.json atomically.
pub fn write(dir: &Path, state: &State<'_>) -> io::Result<()> {
    write_atomic(
        dir,
        "state.json.tmp",
        "state.json",
        state.to_json(true).as_bytes(),
    )
}

/// Keeps the config bytes `create` parsed and validated (see [`CONFIG`]).
pub fn save_config(dir: &Path, config: &[u8]) -> io::Result<()> {
    write_atomic(dir, CONFIG_TMP, CONFIG, config)
}

/// The config saved at create, read back with the same bound as a bundle's
/// (`spec::MAX_CONFIG_BYTES`).
pub fn read_config(dir: &Path) -> Result<Vec<u8>, String> {
    let mut buf = vec![0u8; crate::spec::MAX_CONFIG_BYTES];
    let n = crate::spec::read_config(dir, &mut buf)
        .map_err(|e| format!("the config saved at create: {e}"))?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// A state read back from disk, owning its text.
pub struct Loaded {
    id: String,
    pid: i32,
    status: String,
    bundle: String,
    rootfs: String,
    created: String,
    owner: String,
    start_time: u64,
    cgroup: String,
}

/// A JSON string value as text: serde-json-core hands over the escaped form.
fn unescaped(raw: &str) -> io::Result<String> {
    let mut buf = vec![0u8; raw.len()];
    let n = crate::spec::unescape_into(raw, &mut buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "state.json: bad string"))?;
    buf.truncate(n);
    String::from_utf8(buf)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "state.json: bad UTF-8"))
}

impl Loaded {
    pub fn read(dir: &Path) -> io::Result<Loaded> {
        let text = std::fs::read(dir.join("state.json"))?;
        if text.len() > MAX_STATE_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "state.json too large",
            ));
        }
        let (f, _) = serde_json_core::from_slice::<StateFile<'_>>(&text)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "state.json is malformed"))?;
        Ok(Loaded {
            id: unescaped(f.id)?,
            pid: f.pid,
            status: unescaped(f.status)?,
            bundle: unescaped(f.bundle)?,
            rootfs: unescaped(f.rootfs)?,
            created: unescaped(f.created)?,
            owner: unescaped(f.owner)?,
            start_time: f.start_time,
            cgroup: unescaped(f.cgroup)?,
        })
    }

    pub fn state(&self) -> State<'_> {
        State {
            id: &self.id,
            pid: self.pid,
            status: &self.status,
            bundle: &self.bundle,
            rootfs: &self.rootfs,
            created: &self.created,
            owner: &self.owner,
            start_time: self.start_time,
            cgroup: &self.cgroup,
        }
    }
}

/// The start time (field 22 of /proc/<pid>/stat), or None if the process is gone or a
/// zombie.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    let rest = text.get(text.rfind(')')? + 1..)?;
    let mut fields = rest.split_whitespace();
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    // After the name: state is field 3; starttime is field 22 → 19 more.
    fields.nth(18)?.parse().ok()
}

/// Whether the recorded init process still runs.
pub fn is_running(s: &State<'_>) -> bool {
    s.pid > 0 && process_start_time(s.pid) == Some(s.start_time)
}

/// The container's init held by a pidfd from a check of its start time on: while
/// [`InitPin::still_there`] says so, its pid has named that same process all along, so
/// paths under `/proc/<pid>` opened in between were the init's (not a reused pid's).
pub struct InitPin {
    pub pid: i32,
    pidfd: std::os::fd::OwnedFd,
}

impl InitPin {
    /// Pins the init of `s`; `None` if it is gone or its pid now names another process.
    pub fn new(s: &State<'_>) -> Option<InitPin> {
        let pidfd = crate::sys::pidfd_open(s.pid).ok()?;
        is_running(s).then_some(InitPin { pid: s.pid, pidfd })
    }

    /// Whether the pinned init is still alive (then nothing could have taken its pid).
    pub fn still_there(&self) -> bool {
        crate::sys::pidfd_alive(std::os::fd::AsFd::as_fd(&self.pidfd))
    }

    pub fn pidfd(&self) -> std::os::fd::BorrowedFd<'_> {
        std::os::fd::AsFd::as_fd(&self.pidfd)
    }
}

/// Current time as RFC 3339 with nanoseconds, UTC (what runc prints).
pub fn now_rfc3339() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339(now.as_secs(), now.subsec_nanos())
}

/// Formats seconds since the epoch as `YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ`.
pub fn rfc3339(secs: u64, nanos: u32) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids() {
        assert!(validate_id("test1").is_ok());
        assert!(validate_id("").is_err());
        assert!(validate_id("a/b").unwrap_err().contains("'/'"));
        assert!(validate_id("..").is_err());
        assert!(validate_id("a-b_c+d.e").is_ok());
        for bad in ["a b", "a\nb", "a\0b", "é", "a:b"] {
            assert!(validate_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_id(&"x".repeat(MAX_ID_LEN + 1))
            .unwrap_err()
            .contains("limit 1024"));
    }

    #[test]
    fn dates() {
        assert_eq!(rfc3339(0, 0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(951_782_400, 5), "2000-02-29T00:00:00.000000005Z");
        assert_eq!(
            rfc3339(1_796_051_096, 123),
            "2026-11-30T15:04:56.000000123Z"
        );
    }

    #[test]
    fn state_round_trip_and_escaping() {
        let s = State {
            id: "t1",
            pid: 42,
            status: "running",
            bundle: "/tmp/a \"b\"",
            rootfs: "/tmp/a/rootfs",
            created: "2026-11-30T00:00:00.000000000Z",
            owner: "root",
            start_time: 99,
            cgroup: "/dory/t1",
        };
        let json = s.to_json(true);
        assert!(json.contains(r#""bundle":"/tmp/a \"b\"""#));
        let (f, _) = serde_json_core::from_slice::<StateFile<'_>>(json.as_bytes()).unwrap();
        assert_eq!(f.pid, 42);
        assert_eq!(f.start_time, 99);
        assert_eq!(f.cgroup, "/dory/t1");
    }

    #[test]
    fn saved_config_is_private_and_bounded() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("dory-saved-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        save_config(&dir, b"{\"ociVersion\":\"1.0.2\"}").unwrap();
        let meta = std::fs::metadata(dir.join(CONFIG)).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert!(!dir.join(CONFIG_TMP).exists());
        assert_eq!(read_config(&dir).unwrap(), b"{\"ociVersion\":\"1.0.2\"}");
        let big = vec![b' '; crate::spec::MAX_CONFIG_BYTES + 1];
        save_config(&dir, &big).unwrap();
        let e = read_config(&dir).unwrap_err();
        assert!(e.starts_with("the config saved at create: "), "{e}");
        remove_dir(&dir);
        assert!(!dir.exists());
    }

    #[test]
    fn own_start_time_is_read() {
        let me = std::process::id() as i32;
        assert!(process_start_time(me).is_some());
        assert!(process_start_time(i32::MAX).is_none());
    }
}
