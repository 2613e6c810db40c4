//! A small runc-style argument parser: global flags before the command, command flags
//! before or after the container id, `--flag value`, `--flag=value`, `-f value`.

use std::fmt;

/// One flag a command accepts.
pub struct FlagSpec {
    pub long: &'static str,
    pub short: Option<char>,
    /// Whether it takes a value.
    pub value: bool,
}

pub const fn flag(long: &'static str, short: Option<char>, value: bool) -> FlagSpec {
    FlagSpec { long, short, value }
}

#[derive(Debug, PartialEq, Eq)]
pub struct UsageError(pub String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parsed flags (name → value, "" for switches) and positional arguments.
#[derive(Debug, Default)]
pub struct Parsed {
    pub flags: Vec<(&'static str, String)>,
    pub positional: Vec<String>,
}

impl Parsed {
    pub fn get(&self, long: &str) -> Option<&str> {
        self.flags
            .iter()
            .rev()
            .find(|(n, _)| *n == long)
            .map(|(_, v)| v.as_str())
    }

    pub fn all<'s>(&'s self, long: &'s str) -> impl Iterator<Item = &'s str> {
        self.flags
            .iter()
            .filter(move |(n, _)| *n == long)
            .map(|(_, v)| v.as_str())
    }

    pub fn has(&self, long: &str) -> bool {
        self.flags.iter().any(|(n, _)| *n == long)
    }
}

fn truthy(v: &str) -> Result<bool, ()> {
    match v {
        "true" | "1" | "t" | "T" | "TRUE" | "True" => Ok(true),
        "false" | "0" | "f" | "F" | "FALSE" | "False" => Ok(false),
        _ => Err(()),
    }
}

/// Parses `args`; flags may come anywhere; `--` ends flags. When `stop_at_positional` is
/// set, the first positional argument and everything after it are positional (for
/// `exec <id> <cmd> args…`, whose command may carry its own flags).
pub fn parse(
    args: &[String],
    specs: &[FlagSpec],
    stop_after: Option<usize>,
) -> Result<Parsed, UsageError> {
    let mut out = Parsed::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if stop_after.is_some_and(|n| out.positional.len() >= n) {
            out.positional.push(a.clone());
            out.positional.extend(it.by_ref().cloned());
            break;
        }
        if a == "--" {
            out.positional.extend(it.by_ref().cloned());
            break;
        }
        // Errors show the flag as typed (`--nope`, `-x`), without an `=value`.
        let typed = a.split_once('=').map_or(a.as_str(), |(f, _)| f);
        let (name, inline) = if let Some(rest) = a.strip_prefix("--") {
            match rest.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (rest, None),
            }
        } else if let Some(rest) = a.strip_prefix('-').filter(|r| !r.is_empty()) {
            // Go's flag package accepts single-dash long flags too (`-bundle`).
            match rest.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (rest, None),
            }
        } else {
            out.positional.push(a.clone());
            continue;
        };
        let spec = specs
            .iter()
            .find(|s| {
                s.long == name
                    || (name.chars().count() == 1 && s.short.is_some_and(|c| name.starts_with(c)))
            })
            .ok_or_else(|| UsageError(format!("flag provided but not defined: {typed}")))?;
        if spec.value {
            let v = match inline {
                Some(v) => v.to_string(),
                None => it
                    .next()
                    .cloned()
                    .ok_or_else(|| UsageError(format!("flag needs an argument: {typed}")))?,
            };
            out.flags.push((spec.long, v));
        } else {
            if let Some(v) = inline {
                if !truthy(v)
                    .map_err(|_| UsageError(format!("invalid boolean value \"{v}\" for {typed}")))?
                {
                    continue;
                }
            }
            out.flags.push((spec.long, String::new()));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: &[FlagSpec] = &[
        flag("bundle", Some('b'), true),
        flag("detach", Some('d'), false),
        flag("pid-file", None, true),
    ];

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn flags_before_and_after_id() {
        let p = parse(&v(&["--bundle", "/b", "id1", "-d"]), SPECS, None).unwrap();
        assert_eq!(p.get("bundle"), Some("/b"));
        assert!(p.has("detach"));
        assert_eq!(p.positional, ["id1"]);
        let p = parse(&v(&["id1", "-b=/c", "--pid-file=/p"]), SPECS, None).unwrap();
        assert_eq!(p.get("bundle"), Some("/c"));
        assert_eq!(p.get("pid-file"), Some("/p"));
        assert_eq!(p.positional, ["id1"]);
    }

    #[test]
    fn single_dash_long_and_bool_values() {
        let p = parse(&v(&["-bundle", "/b", "--detach=false", "x"]), SPECS, None).unwrap();
        assert_eq!(p.get("bundle"), Some("/b"));
        assert!(!p.has("detach"));
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse(&v(&["--nope"]), SPECS, None).unwrap_err().0,
            "flag provided but not defined: --nope"
        );
        assert_eq!(
            parse(&v(&["id", "--bundle"]), SPECS, None).unwrap_err().0,
            "flag needs an argument: --bundle"
        );
    }

    #[test]
    fn stop_after_positional() {
        let p = parse(&v(&["-d", "id", "sh", "-c", "echo"]), SPECS, Some(1)).unwrap();
        assert_eq!(p.positional, ["id", "sh", "-c", "echo"]);
        assert!(p.has("detach"));
    }
}
