//! The command line under the fuzzer (built only with `--cfg fuzzing`): what [`main`]
//! and the command functions do with the words before anything touches the system.
//!
//! [`words`] follows `main`'s order and calls the same parsers: the global flags and
//! `--log-format`, help, each command's flags ([`COMMANDS`]), the container id, and every
//! flag value a command parses (`--preserve-fds`, `exec --user`/`--additional-gids`/
//! `--cgroup`, `kill`'s signal, `update`'s sizes and numbers, `events --interval`, the
//! words of `init` and `ctl`). It stops where a command would read a file, load a
//! container or start one. Besides "no panic", it checks what the parser promises:
//! a parse is the same when its flags are written again as `--name=value` (the last one
//! of a name wins, switches carry no value), and a value parser never yields an
//! out-of-range number.
//!
//! [`main`]: super::main
#![allow(
    clippy::panic,
    reason = "a fuzz target reports a broken invariant by panicking"
)]

use super::args::{self, FlagSpec, Parsed};
use super::{first_command, help, lifecycle, log, needs_root, update, COMMANDS, GLOBAL_FLAGS};
use crate::container::{state, sub_cgroup::SubCgroups};
use crate::spec::Resources;

/// Runs the words through the parsers; `Err` is a usage error (an expected outcome).
/// Panics when a parser breaks one of its promises (see the module doc).
pub(crate) fn words(argv: &[String]) -> Result<(), String> {
    let split = first_command(argv);
    let (global_args, rest) = argv.split_at(split.min(argv.len()));
    let global = parsed(global_args, GLOBAL_FLAGS, None)?;
    if let Some(f) = global.get("log-format") {
        log::Format::parse(f).ok_or("--log-format")?;
    }
    let Some((command, words)) = rest.split_first() else {
        return Ok(());
    };
    if help::wanted(command, words) && help::usage(command).is_some() {
        return Ok(());
    }
    let _ = needs_root(command, words);
    match command.as_str() {
        "init" => {
            let (_, bad) = crate::init::parse_options(words);
            return bad.map_or(Ok(()), Err);
        }
        "ctl" => return ctl_words(words),
        _ => {}
    }
    let Some((_, flags, stop)) = COMMANDS.iter().find(|(n, _, _)| n == command) else {
        return Err(format!("unknown command \"{command}\""));
    };
    let p = parsed(words, flags, *stop)?;
    values(command, &p)
}

/// `dory ctl`'s words as `ctl_main` takes them apart (an optional leading `ctl`, then
/// `--socket PATH`), then the request line PID 1 parses.
fn ctl_words(words: &[String]) -> Result<(), String> {
    let mut w = words;
    if w.first().map(String::as_str) == Some("ctl") {
        w = w.get(1..).unwrap_or_default();
    }
    if w.first().map(String::as_str) == Some("--socket") {
        w = w.get(2..).ok_or("--socket needs a path")?;
    }
    crate::init::ctl::parse_request(&w.join(" "))
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// [`args::parse`], checked against a parse of its own result written canonically.
fn parsed(words: &[String], flags: &[FlagSpec], stop: Option<usize>) -> Result<Parsed, String> {
    let p = args::parse(words, flags, stop).map_err(|e| e.0)?;
    if stop.is_none() {
        let mut again: Vec<String> = p
            .flags
            .iter()
            .map(|(name, value)| {
                let takes_value = flags.iter().any(|f| f.long == *name && f.value);
                if takes_value {
                    format!("--{name}={value}")
                } else {
                    assert!(value.is_empty(), "switch --{name} kept a value {value:?}");
                    format!("--{name}")
                }
            })
            .collect();
        again.push("--".into());
        again.extend(p.positional.iter().cloned());
        let q = args::parse(&again, flags, None)
            .unwrap_or_else(|e| panic!("{again:?} (the parse of {words:?}) is refused: {e}"));
        assert_eq!(q.flags, p.flags, "flags of {words:?} vs {again:?}");
        assert_eq!(
            q.positional, p.positional,
            "words of {words:?} vs {again:?}"
        );
        for f in flags {
            let last = p.flags.iter().rev().find(|(n, _)| *n == f.long);
            assert_eq!(p.get(f.long), last.map(|(_, v)| v.as_str()));
            assert_eq!(p.has(f.long), last.is_some());
        }
    }
    Ok(p)
}

/// The one id of `run`, `create`, `start`, …, checked as the state directory takes it.
fn single_id(p: &Parsed) -> Result<&str, String> {
    match p.positional.as_slice() {
        [id] => {
            state::validate_id(id)?;
            Ok(id)
        }
        _ => Err("want exactly one container id".into()),
    }
}

/// The values each command parses from its flags and words.
fn values(command: &str, p: &Parsed) -> Result<(), String> {
    match command {
        "run" | "create" => {
            single_id(p)?;
            let n = lifecycle::preserve_fds(p.get("preserve-fds"))?;
            assert!(n <= lifecycle::MAX_PRESERVE_FDS);
        }
        "start" | "state" | "delete" | "pause" | "resume" => {
            single_id(p)?;
        }
        "kill" => match p.positional.as_slice() {
            [id] => state::validate_id(id)?,
            [id, sig] => {
                state::validate_id(id)?;
                let s = crate::container::lifecycle::parse_signal(sig).ok_or("signal")?;
                if let Some(s) = s {
                    assert!((1..=31).contains(&(s as i32)), "{sig:?} gave {s:?}");
                }
            }
            _ => return Err("kill: usage".into()),
        },
        "exec" => {
            let (id, _) = p.positional.split_first().ok_or("exec: no id")?;
            state::validate_id(id)?;
            if let Some(u) = p.get("user") {
                lifecycle::parse_ids(u).ok_or("--user")?;
            }
            for g in p.all("additional-gids") {
                g.parse::<u32>().map_err(|_| "--additional-gids")?;
            }
            lifecycle::preserve_fds(p.get("preserve-fds"))?;
            SubCgroups::parse(p.all("cgroup"))?;
        }
        "update" => {
            let mut res = Resources::default();
            update::apply_flags(p, &mut res)?;
            if let Some(m) = res.memory {
                for v in [m.limit, m.reservation, m.swap].into_iter().flatten() {
                    assert!(v >= -1, "update: a size of {v}");
                }
            }
        }
        "events" => {
            if let Some(t) = p.get("interval") {
                update::parse_duration(t).ok_or("--interval")?;
            }
        }
        "ps" | "list" => {
            let f = p.get("format").unwrap_or("table");
            if f != "table" && f != "json" {
                return Err("--format".into());
            }
        }
        _ => {}
    }
    Ok(())
}
