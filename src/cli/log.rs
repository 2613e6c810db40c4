//! `--log FILE` and `--log-format text|json`: an error goes to stderr and, when a log file
//! is given, is appended to it as one line in runc's format. podman (the `oci-log` file)
//! and containerd's runc shim (`log.json`) read the runtime's error from that file.

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
    file: File,
    format: Format,
}

static SINK: OnceLock<Sink> = OnceLock::new();

/// Opens the log file (created 0644, appended to, as runc does).
pub fn init(path: &Path, format: Format) -> std::io::Result<()> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(path)?;
    // Called once, from main, before any command runs.
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

/// Prints an error on stderr and appends it to the `--log` file, if any.
pub fn error(msg: fmt::Arguments<'_>) {
    let text = msg.to_string();
    eprintln!("{text}");
    if let Some(s) = SINK.get() {
        let l = line(s.format, "error", &text, &now_rfc3339());
        // A log that cannot be written must not turn an error into a different one.
        let _ = (&s.file).write_all(l.as_bytes());
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
        assert_eq!(Format::parse("xml"), None);
    }
}
