//! Kernel command-line options for dory, read from /proc/cmdline.
//!
//! - `dory.config=PATH` — board config to load instead of `/etc/dory/board.json`.
//! - `dory.debug` — print extra console lines (every reaped pid, every probe result).
//! - `dory.rescue` — skip the board and go straight to the rescue path (a shell on the
//!   console when /bin/sh exists).
//! - `dory.nopivot` — unsafe, like runc's `--no-pivot`: where pivot_root is refused (the
//!   board is still on its initramfs root), containers fall back to MS_MOVE + chroot and
//!   the board's whole root stays mounted under each of them. Same as the board's
//!   `"unsafeNoPivot": true`.
//!
//! Values may be double-quoted (`dory.config="/a b.json"`), as the kernel allows. Other
//! `dory.*` words are reported as unknown on the console and otherwise ignored, so a typo
//! cannot stop a board from booting.

use heapless::Vec;

/// Unknown `dory.*` words remembered for the console warning.
pub const MAX_UNKNOWN_OPTIONS: usize = 4;

#[derive(Debug, Default, PartialEq, Eq)]
pub struct KernelOptions<'a> {
    pub config: Option<&'a str>,
    pub debug: bool,
    pub rescue: bool,
    pub nopivot: bool,
    /// `dory.*` words that are not options (the first [`MAX_UNKNOWN_OPTIONS`]).
    pub unknown: Vec<&'a str, MAX_UNKNOWN_OPTIONS>,
}

/// Splits the command line into words; double quotes group spaces and are kept.
fn words(s: &str) -> impl Iterator<Item = &str> {
    let mut rest = s;
    core::iter::from_fn(move || {
        rest = rest.trim_start();
        if rest.is_empty() {
            return None;
        }
        let mut in_quotes = false;
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if c == '"' {
                in_quotes = !in_quotes;
            } else if c.is_whitespace() && !in_quotes {
                end = i;
                break;
            }
        }
        let (w, r) = rest.split_at_checked(end).unwrap_or((rest, ""));
        rest = r;
        Some(w)
    })
}

fn unquote(v: &str) -> &str {
    v.strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(v)
}

/// Parses the text of /proc/cmdline.
pub fn parse(cmdline: &str) -> KernelOptions<'_> {
    let mut o = KernelOptions::default();
    for w in words(cmdline) {
        let Some(opt) = w.strip_prefix("dory.") else {
            continue;
        };
        let (key, value) = match opt.split_once('=') {
            Some((k, v)) => (k, Some(unquote(v))),
            None => (opt, None),
        };
        match (key, value) {
            ("config", Some(v)) if !v.is_empty() => o.config = Some(v),
            ("debug", None) => o.debug = true,
            ("rescue", None) => o.rescue = true,
            ("nopivot", None) => o.nopivot = true,
            _ => {
                let _ = o.unknown.push(w);
            }
        }
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_are_found_among_kernel_words() {
        let o = parse("console=ttyAMA0 panic=-1 dory.config=/boot/b.json quiet dory.debug\n");
        assert_eq!(o.config, Some("/boot/b.json"));
        assert!(o.debug && !o.rescue && o.unknown.is_empty());
        let o = parse("dory.rescue");
        assert!(o.rescue && o.config.is_none() && !o.nopivot);
        let o = parse("rdinit=/init dory.nopivot");
        assert!(o.nopivot && o.unknown.is_empty());
        assert!(!parse("dory.nopivot=1").nopivot);
    }

    #[test]
    fn quoted_values_and_unknown_words() {
        let o = parse(
            r#"init=/sbin/dory dory.config="/a b/c.json" dory.colour=red dory.debug=1 dory.config="#,
        );
        assert_eq!(o.config, Some("/a b/c.json"));
        assert!(!o.debug);
        assert_eq!(
            o.unknown.as_slice(),
            &["dory.colour=red", "dory.debug=1", "dory.config="]
        );
        assert_eq!(parse(""), KernelOptions::default());
    }
}
