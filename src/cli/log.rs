//! `--log FILE` and `--log-format text|json`, as runc (logrus) writes them: an error is
//! one line `time="…" level=error msg="…"` (text) or `{"level":"error","msg":"…","time":"…"}`
//! (json). Without `--log` that line goes to stderr; with it, the line is appended to the
//! file and stderr gets the bare message (runc's `fatal`). containerd's runc shim decodes
//! every line of its `log.json` (`level`, `msg`, an RFC 3339 `time`) and keeps the last
//! error; podman unmarshals its whole `oci-log` file as one JSON object. So the file gets
//! exactly one line per failed command, the error, and nothing else (warnings stay on
//! stderr).

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::OnceLock;

use crate::container::state::{json_str, now_rfc3339};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `time="…" level=error msg="…"` (logrus text, runc's default).
    Text,
    /// `{"level":"error","msg":"…","time":"…"}`.
    Json,
}

impl Format {
    pub fn parse(text: &str) -> Option<Format> {
        match text {
            "text" => Some(Format::Text),
            "json" => Some(Format::Json),
            _ => None,
        }
    }
}

struct Sink {
    /// `--log FILE`, when given.
    file: Option<File>,
    format: Format,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Sets the format and opens the log file if any (created 0644, appended to, as runc
/// does). Called once, from main, before any command runs; until then (a bad argument)
/// lines are text on stderr.
pub fn init(path: Option<&Path>, format: Format) -> std::io::Result<()> {
    let file = match path {
        Some(p) => Some(
            OpenOptions::new()
                .create(true)
                .append(true)
                .mode(0o644)
                .open(p)?,
        ),
        None => None,
    };
    let _ = SINK.set(Sink { file, format });
    Ok(())
}

/// One log line (with its newline).
pub fn line(format: Format, level: &str, msg: &str, time: &str) -> String {
    let mut o = String::with_capacity(msg.len() + 64);
    match format {
        Format::Json => {
            o.push_str("{\"level\":");
            json_str(&mut o, level);
            o.push_str(",\"msg\":");
            json_str(&mut o, msg);
            o.push_str(",\"time\":");
            json_str(&mut o, time);
            o.push('}');
        }
        Format::Text => {
            o.push_str("time=");
            json_str(&mut o, time);
            o.push_str(" level=");
            o.push_str(level);
            o.push_str(" msg=");
            json_str(&mut o, msg);
        }
    }
    o.push('\n');
    o
}

/// Now as logrus stamps its lines: RFC 3339 in whole seconds, UTC.
fn now() -> String {
    let mut t = now_rfc3339();
    // "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" → "YYYY-MM-DDTHH:MM:SSZ".
    if let Some(dot) = t.rfind('.') {
        t.truncate(dot);
        t.push('Z');
    }
    t
}

/// An error: the `--log` file gets the formatted line and stderr the bare message;
/// without `--log`, stderr gets the line.
pub fn error(msg: fmt::Arguments<'_>) {
    let text = msg.to_string();
    let sink = SINK.get();
    let format = sink.map_or(Format::Text, |s| s.format);
    let l = line(format, "error", &text, &now());
    match sink.and_then(|s| s.file.as_ref()) {
        Some(mut file) => {
            eprintln!("{text}");
            // A log that cannot be written must not turn an error into a different one.
            let _ = file.write_all(l.as_bytes());
        }
        None => eprint!("{l}"),
    }
}

/// A warning (a failed poststart or poststop hook): on stderr only, as a
/// `level=warning` line (the bare message when `--log` takes the errors).
pub fn warning(msg: fmt::Arguments<'_>) {
    let text = msg.to_string();
    match SINK.get() {
        Some(s) if s.file.is_some() => eprintln!("{text}"),
        s => eprint!(
            "{}",
            line(
                s.map_or(Format::Text, |s| s.format),
                "warning",
                &text,
                &now()
            )
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_text_lines() {
        let t = "2026-11-30T00:00:00.000000000Z";
        assert_eq!(
            line(Format::Json, "error", "exec \"x\": not found", t),
            "{\"level\":\"error\",\"msg\":\"exec \\\"x\\\": not found\",\"time\":\"2026-11-30T00:00:00.000000000Z\"}\n"
        );
        assert_eq!(
            line(Format::Text, "error", "a\nb", t),
            "time=\"2026-11-30T00:00:00.000000000Z\" level=error msg=\"a\\nb\"\n"
        );
        assert_eq!(Format::parse("json"), Some(Format::Json));
        // logrus stamps whole seconds.
        let t = now();
        assert_eq!(t.len(), "2026-11-30T00:00:00Z".len(), "{t}");
        assert!(t.ends_with('Z') && !t.contains('.'), "{t}");
        assert_eq!(Format::parse("xml"), None);
    }
}
