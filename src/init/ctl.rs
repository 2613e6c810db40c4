//! `dory ctl`: talking to a running PID 1 over a unix socket.
//!
//! Protocol: the client connects to [`CTL_SOCKET`], writes one request line
//! (`status`, `start ID`, `stop ID`, `restart ID`, `logs ID`, `reboot`, `poweroff`, `halt`),
//! and reads the reply until the server closes. A reply starting with `error: ` is a
//! failure (exit status 1). The server answers at once: `stop`/`restart` reply when the
//! stop signal was sent, not when the container has exited (watch `status`).
//!
//! The socket is mode 0600 (root only). PID 1 reads a request with a short timeout
//! ([`IO_TIMEOUT_MS`]) so a stuck client cannot hold it up for long.

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Where PID 1 listens.
pub const CTL_SOCKET: &str = "/run/dory/ctl.sock";
/// Longest request line.
pub const MAX_REQUEST_BYTES: usize = 128;
/// Read/write timeout on a ctl connection, both sides.
pub const IO_TIMEOUT_MS: u64 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    Status,
    Start(&'a str),
    Stop(&'a str),
    Restart(&'a str),
    Logs(&'a str),
    /// `logs --files ID`: the container's log files on /data, passed as descriptors.
    LogFiles(&'a str),
    Reboot,
    Poweroff,
    Halt,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    Empty,
    UnknownCommand(String),
    MissingId(&'static str),
    ExtraWords(&'static str),
}

impl std::fmt::Display for RequestError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RequestError::Empty => f.write_str("empty request"),
            RequestError::UnknownCommand(c) => {
                write!(f, "unknown command \"{c}\" (expected {USAGE_WORDS})")
            }
            RequestError::MissingId(c) => write!(f, "{c}: missing container id"),
            RequestError::ExtraWords(c) => write!(f, "{c}: too many arguments"),
        }
    }
}

const USAGE_WORDS: &str = "status, start, stop, restart, logs, reboot, poweroff or halt";

/// Parses one request line (surrounding whitespace ignored).
pub fn parse_request(line: &str) -> Result<Request<'_>, RequestError> {
    let mut w = line.split_whitespace();
    let cmd = w.next().ok_or(RequestError::Empty)?;
    let mut files = false;
    let mut w = w.peekable();
    if cmd == "logs" && w.peek() == Some(&"--files") {
        files = true;
        w.next();
    }
    let (name, needs_id): (&'static str, bool) = match cmd {
        "status" => ("status", false),
        "start" => ("start", true),
        "stop" => ("stop", true),
        "restart" => ("restart", true),
        "logs" => ("logs", true),
        "reboot" => ("reboot", false),
        "poweroff" => ("poweroff", false),
        "halt" => ("halt", false),
        other => return Err(RequestError::UnknownCommand(other.into())),
    };
    let id = if needs_id {
        Some(w.next().ok_or(RequestError::MissingId(name))?)
    } else {
        None
    };
    if w.next().is_some() {
        return Err(RequestError::ExtraWords(name));
    }
    Ok(match (name, id) {
        ("start", Some(id)) => Request::Start(id),
        ("stop", Some(id)) => Request::Stop(id),
        ("restart", Some(id)) => Request::Restart(id),
        ("logs", Some(id)) if files => Request::LogFiles(id),
        ("logs", Some(id)) => Request::Logs(id),
        ("reboot", _) => Request::Reboot,
        ("poweroff", _) => Request::Poweroff,
        ("halt", _) => Request::Halt,
        _ => Request::Status,
    })
}

/// One row of `status`.
pub struct StatusRow<'a> {
    pub id: &'a str,
    pub state: &'a str,
    pub pid: Option<i32>,
    pub restarts: u32,
}

/// The `status` table: a header and one aligned row per container.
pub fn format_status<'a>(out: &mut String, rows: impl Iterator<Item = StatusRow<'a>>) {
    let _ = writeln!(
        out,
        "{:<16} {:<12} {:>8} {:>8}",
        "ID", "STATE", "PID", "RESTARTS"
    );
    for r in rows {
        let pid = r.pid.map_or_else(|| "-".to_string(), |p| p.to_string());
        let _ = writeln!(
            out,
            "{:<16} {:<12} {:>8} {:>8}",
            r.id, r.state, pid, r.restarts
        );
    }
}

const CLIENT_USAGE: &str = "usage: dory ctl [--socket PATH] status | start ID | stop ID | restart ID | logs [--files] ID | reboot | poweroff | halt";

/// `dory ctl ARGS…`: `args` are the words after `ctl` (a leading `ctl` is skipped too).
pub fn ctl_main(args: &[String]) -> i32 {
    let mut args = args;
    if args.first().map(String::as_str) == Some("ctl") {
        args = args.get(1..).unwrap_or_default();
    }
    let mut socket = CTL_SOCKET.to_string();
    if args.first().map(String::as_str) == Some("--socket") {
        match args.get(1) {
            Some(p) => socket = p.clone(),
            None => {
                eprintln!("dory ctl: --socket needs a path\n{CLIENT_USAGE}");
                return 2;
            }
        }
        args = args.get(2..).unwrap_or_default();
    }
    let line = args.join(" ");
    if let Err(e) = parse_request(&line) {
        eprintln!("dory ctl: {e}\n{CLIENT_USAGE}");
        return 2;
    }
    if let Ok(Request::LogFiles(_)) = parse_request(&line) {
        return match print_log_files(&socket, &line) {
            Ok(code) => code,
            Err(e) => {
                eprintln!("dory ctl: {socket}: {e}");
                1
            }
        };
    }
    match exchange(&socket, &line) {
        Ok(reply) => {
            let failed = reply.starts_with("error: ");
            if failed {
                eprint!(
                    "dory ctl: {}",
                    reply.strip_prefix("error: ").unwrap_or(&reply)
                );
            } else {
                print!("{reply}");
            }
            i32::from(failed)
        }
        Err(e) => {
            eprintln!("dory ctl: {socket}: {e}");
            1
        }
    }
}

/// `logs --files ID`: PID 1 sends the files' descriptors (oldest first, one per message),
/// then its text reply; the client reads the files itself.
fn print_log_files(socket: &str, line: &str) -> std::io::Result<i32> {
    let s = send_request(socket, line)?;
    let mut text = Vec::new();
    let mut files = Vec::new();
    let mut buf = [0u8; 4096];
    while let Some((n, fd)) = crate::sys::recv_fd(s.as_fd(), &mut buf)? {
        match fd {
            Some(fd) => files.push(std::fs::File::from(fd)),
            None => text.extend_from_slice(buf.get(..n).unwrap_or_default()),
        }
    }
    let text = String::from_utf8_lossy(&text);
    if text.starts_with("error: ") {
        eprint!(
            "dory ctl: {}",
            text.strip_prefix("error: ").unwrap_or(&text)
        );
        return Ok(1);
    }
    let mut out = std::io::stdout().lock();
    for mut f in files {
        std::io::copy(&mut f, &mut out)?;
    }
    Ok(0)
}

/// Connects to PID 1, sends the request line and closes the sending side; the reply is
/// read from the returned stream (with the client's timeouts).
fn send_request(socket: &str, line: &str) -> std::io::Result<UnixStream> {
    let mut s = UnixStream::connect(socket)?;
    let timeout = Some(Duration::from_millis(IO_TIMEOUT_MS * 4));
    s.set_read_timeout(timeout)?;
    s.set_write_timeout(timeout)?;
    s.write_all(line.as_bytes())?;
    s.write_all(b"\n")?;
    s.shutdown(std::net::Shutdown::Write)?;
    Ok(s)
}

fn exchange(socket: &str, line: &str) -> std::io::Result<String> {
    let mut s = send_request(socket, line)?;
    let mut reply = String::new();
    s.read_to_string(&mut reply)?;
    Ok(reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(parse_request("status\n"), Ok(Request::Status));
        assert_eq!(
            parse_request("  restart ticker "),
            Ok(Request::Restart("ticker"))
        );
        assert_eq!(parse_request("stop a"), Ok(Request::Stop("a")));
        assert_eq!(parse_request("start a"), Ok(Request::Start("a")));
        assert_eq!(parse_request("logs a"), Ok(Request::Logs("a")));
        assert_eq!(parse_request("logs --files a"), Ok(Request::LogFiles("a")));
        assert_eq!(
            parse_request("logs --files"),
            Err(RequestError::MissingId("logs"))
        );
        assert_eq!(parse_request("reboot"), Ok(Request::Reboot));
        assert_eq!(parse_request("poweroff"), Ok(Request::Poweroff));
        assert_eq!(parse_request("halt"), Ok(Request::Halt));
        assert_eq!(parse_request(""), Err(RequestError::Empty));
        assert_eq!(parse_request("stop"), Err(RequestError::MissingId("stop")));
        assert_eq!(
            parse_request("status x"),
            Err(RequestError::ExtraWords("status"))
        );
        assert_eq!(
            parse_request("logs a b"),
            Err(RequestError::ExtraWords("logs"))
        );
        let e = parse_request("explode").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown command \"explode\" (expected status, start, stop, restart, logs, reboot, poweroff or halt)"
        );
    }

    #[test]
    fn status_table() {
        let mut s = String::new();
        let rows = [
            StatusRow {
                id: "ticker",
                state: "running",
                pid: Some(42),
                restarts: 0,
            },
            StatusRow {
                id: "crasher",
                state: "gave-up",
                pid: None,
                restarts: 2,
            },
        ];
        format_status(&mut s, rows.into_iter());
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            ["ID", "STATE", "PID", "RESTARTS"]
        );
        assert_eq!(
            lines[1].split_whitespace().collect::<Vec<_>>(),
            ["ticker", "running", "42", "0"]
        );
        assert_eq!(
            lines[2].split_whitespace().collect::<Vec<_>>(),
            ["crasher", "gave-up", "-", "2"]
        );
    }

    #[test]
    fn client_usage_errors_and_unreachable_socket() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ctl_main(&a(&["ctl", "frobnicate"])), 2);
        assert_eq!(ctl_main(&a(&["--socket"])), 2);
        assert_eq!(
            ctl_main(&a(&["--socket", "/nonexistent/ctl.sock", "status"])),
            1
        );
    }
}
