//! runc-compatible command line: global flags, then a command and its flags (before or
//! after the container id).

/// An error on stderr and, with `--log FILE`, in the log file (see [`log`]).
macro_rules! log_error {
    ($($arg:tt)*) => {
        $crate::cli::log::error(format_args!($($arg)*))
    };
}

mod args;
#[cfg(fuzzing)]
pub(crate) mod fuzz;
mod help;
mod lifecycle;
mod list;
pub mod log;
mod update;

use std::path::{Path, PathBuf};

use args::{flag, FlagSpec, Parsed, UsageError};

/// State root when `--root` is not given (runc uses /run/runc).
pub const DEFAULT_ROOT: &str = "/run/dory";

const GLOBAL_FLAGS: &[FlagSpec] = &[
    flag("root", None, true),
    flag("log", None, true),
    flag("log-format", None, true),
    flag("debug", None, false),
    flag("systemd-cgroup", None, false),
    flag("rootless", None, true),
    flag("criu", None, true),
    flag("help", Some('h'), false),
    flag("version", Some('v'), false),
];

const USAGE: &str = "usage: dory [global options] command [command options] [arguments...]

commands:
  spec      write a new default config.json in the bundle
  run       create and run a container; exits with its status
  list      list containers
  create    create a container (its process waits for start)
  start     start a created container
  state     print a container's state as JSON
  kill      send a signal to a container's init (--all: to every process)
  delete    delete a container (--force: kill it first)
  pause     freeze every process of a container
  resume    thaw a paused container
  ps        list a container's processes (--format table|json)
  features  print what this build implements (JSON)
  exec      run a new process in a running container
  update    change a running container's resource limits
  events    print resource usage (--stats: once)
  init      run as PID 1 with a board config (dory init --config FILE; --check: validate it)
  ctl       talk to a running dory PID 1 (status, start, stop, restart, logs, reboot, poweroff)

global options:
  --root DIR          state directory (default /run/dory)
  --log FILE          log file; --log-format text|json; --debug
  -h, --help          this text; `dory COMMAND --help` for a command's flags
  -v, --version       dory's version and the runtime-spec version it implements
";

/// The commands that parse their words with [`args::parse`]: each one's flags and, for
/// `exec`, the count of positional words after which the rest are the process's own.
/// (`features` and `help` take no words; `init` and `ctl` parse theirs themselves.)
#[cfg(any(test, fuzzing))]
pub(crate) const COMMANDS: &[(&str, &[FlagSpec], Option<usize>)] = &[
    ("spec", SPEC_FLAGS, None),
    ("run", RUN_FLAGS, None),
    ("create", lifecycle::CREATE_FLAGS, None),
    ("start", &[], None),
    ("state", &[], None),
    ("kill", lifecycle::KILL_FLAGS, None),
    ("delete", lifecycle::DELETE_FLAGS, None),
    ("pause", &[], None),
    ("resume", &[], None),
    ("ps", lifecycle::PS_FLAGS, None),
    ("exec", lifecycle::EXEC_FLAGS, Some(1)),
    ("update", update::UPDATE_FLAGS, None),
    ("events", update::EVENTS_FLAGS, None),
    ("list", list::LIST_FLAGS, None),
];

/// Global options every command sees.
pub struct Global {
    pub root: PathBuf,
}

/// Entry point for everything but PID 1; returns the process exit code.
pub fn main() -> i32 {
    crate::sys::default_sigpipe();
    // args_os: std::env::args() panics on an argument that is not UTF-8.
    let argv = match utf8_args(std::env::args_os().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            log_error!("dory: {e}");
            return 1;
        }
    };
    // Global flags come before the command.
    let split = first_command(&argv);
    let (global_args, rest) = argv.split_at(split);
    let global = match args::parse(global_args, GLOBAL_FLAGS, None) {
        Ok(g) => g,
        Err(e) => return usage_error("", &e),
    };
    if global.has("version") {
        println!(
            "dory version {}\nspec: {}",
            env!("CARGO_PKG_VERSION"),
            crate::spec::SPEC_VERSION
        );
        return 0;
    }
    let Some((command, cmd_args)) = rest.split_first() else {
        if global.has("help") {
            print!("{USAGE}");
            return 0;
        }
        eprint!("{USAGE}");
        return 1;
    };
    // The log shape first: every error after this point, "needs root" included, is in
    // the format (and the file) the caller asked for.
    let format = match global.get("log-format").map(log::Format::parse) {
        None => log::Format::Text,
        Some(Some(f)) => f,
        Some(None) => {
            log_error!("dory: --log-format: want text or json");
            return 1;
        }
    };
    let log_file = global.get("log").filter(|p| !p.is_empty());
    if let Err(e) = log::init(log_file.map(Path::new), format) {
        log_error!("dory: --log {}: {e}", log_file.unwrap_or_default());
        return 1;
    }
    if help::wanted(command, cmd_args) {
        if let Some(text) = help::usage(command) {
            print!("{text}");
            return 0;
        }
    }
    if needs_root(command, cmd_args) && !nix::unistd::geteuid().is_root() {
        log_error!(
            "dory {command}: needs root (rootless containers are not supported yet): run it as root, e.g. with sudo"
        );
        return 1;
    }
    if global.has("systemd-cgroup") {
        log_error!("dory: --systemd-cgroup is not supported: dory manages cgroupfs directly");
        return 1;
    }
    let g = Global {
        root: PathBuf::from(global.get("root").unwrap_or(DEFAULT_ROOT)),
    };
    // Commands that start processes in a container run from a binary no container can
    // write (a sealed copy, re-executed into here, unless it already is one).
    if matches!(
        command.as_str(),
        "run" | "create" | "start" | "exec" | "init"
    ) {
        if let Err(e) = crate::sys::exe::ensure_protected() {
            log_error!(
                "dory: cannot run from a sealed copy of the dory binary: {}",
                e.desc()
            );
            return 1;
        }
    }
    match command.as_str() {
        "spec" => cmd_spec(cmd_args),
        "run" => cmd_run(&g, cmd_args),
        "list" => list::cmd_list(&g, cmd_args),
        "create" => lifecycle::cmd_create(&g, cmd_args, false),
        "start" => lifecycle::cmd_start(&g, cmd_args),
        "state" => lifecycle::cmd_state(&g, cmd_args),
        "kill" => lifecycle::cmd_kill(&g, cmd_args),
        "delete" => lifecycle::cmd_delete(&g, cmd_args),
        "pause" => lifecycle::cmd_pause(&g, cmd_args, true),
        "resume" => lifecycle::cmd_pause(&g, cmd_args, false),
        "ps" => lifecycle::cmd_ps(&g, cmd_args),
        "features" => lifecycle::cmd_features(),
        "exec" => lifecycle::cmd_exec(&g, cmd_args),
        "update" => update::cmd_update(&g, cmd_args),
        "events" => update::cmd_events(&g, cmd_args),
        "init" => crate::init::main_from_cli(cmd_args),
        "ctl" => crate::init::ctl_main(cmd_args),
        "help" => {
            print!("{USAGE}");
            0
        }
        other => {
            log_error!("dory: unknown command \"{other}\"");
            eprint!("{USAGE}");
            1
        }
    }
}

/// Every command but these works on root's state, cgroups and namespaces; saying so up
/// front beats a permission error from deep inside. `ctl` is left to its socket's mode;
/// `init --check` only reads a file.
fn needs_root(command: &str, args: &[String]) -> bool {
    let check_only = command == "init" && args.iter().any(|a| a == "--check");
    !check_only && !matches!(command, "spec" | "features" | "help" | "ctl")
}

/// The arguments as text; the first that is not UTF-8 is an error naming its position
/// (1-based, after the program name) and showing it with replacement characters.
pub fn utf8_args(args: impl Iterator<Item = std::ffi::OsString>) -> Result<Vec<String>, String> {
    args.enumerate()
        .map(|(i, a)| {
            a.into_string().map_err(|bad| {
                format!(
                    "argument {} ({:?}) is not valid UTF-8",
                    i + 1,
                    bad.to_string_lossy()
                )
            })
        })
        .collect()
}

/// Index of the command word: the first argument that is not a global flag or its value.
fn first_command(argv: &[String]) -> usize {
    let mut i = 0;
    while let Some(a) = argv.get(i) {
        let Some(name) = a.strip_prefix("--").or_else(|| a.strip_prefix('-')) else {
            return i;
        };
        let takes_value = !name.contains('=')
            && GLOBAL_FLAGS.iter().any(|f| {
                f.value && (f.long == name || f.short.is_some_and(|c| name == c.to_string()))
            });
        i += if takes_value { 2 } else { 1 };
    }
    argv.len()
}

fn usage_error(command: &str, e: &UsageError) -> i32 {
    if command.is_empty() {
        log_error!("dory: {e}");
    } else {
        log_error!("dory {command}: {e}");
    }
    1
}

fn parse_or_usage(command: &str, argv: &[String], specs: &[FlagSpec]) -> Result<Parsed, i32> {
    args::parse(argv, specs, None).map_err(|e| usage_error(command, &e))
}

/// The one container id a command takes.
fn single_id<'p>(command: &str, p: &'p Parsed) -> Result<&'p str, i32> {
    match p.positional.as_slice() {
        [id] => Ok(id),
        [] => {
            log_error!("dory {command}: requires exactly 1 argument: the container id");
            Err(1)
        }
        _ => {
            log_error!(
                "dory {command}: requires exactly 1 argument, got {}",
                p.positional.len()
            );
            Err(1)
        }
    }
}

pub(super) const SPEC_FLAGS: &[FlagSpec] = &[
    flag("bundle", Some('b'), true),
    flag("rootless", None, false),
    flag("check", None, false),
];

fn cmd_spec(argv: &[String]) -> i32 {
    let p = match parse_or_usage("spec", argv, SPEC_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    if p.has("rootless") {
        log_error!("dory spec: --rootless is not supported");
        return 1;
    }
    let dir = Path::new(p.get("bundle").unwrap_or("."));
    if p.has("check") {
        return match crate::container::check_bundle(dir) {
            Ok(()) => {
                println!("ok");
                0
            }
            Err(e) => {
                log_error!("dory spec --check: {e}");
                1
            }
        };
    }
    let path = dir.join("config.json");
    // create_new: never overwrite, as runc refuses to.
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
    {
        Ok(mut f) => {
            match std::io::Write::write_all(&mut f, crate::spec::DEFAULT_CONFIG.as_bytes()) {
                Ok(()) => 0,
                Err(e) => {
                    log_error!("dory spec: write {}: {e}", path.display());
                    1
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            log_error!("dory spec: File {} exists. Remove it first", path.display());
            1
        }
        Err(e) => {
            log_error!("dory spec: create {}: {e}", path.display());
            1
        }
    }
}

pub(super) const RUN_FLAGS: &[FlagSpec] = &[
    flag("bundle", Some('b'), true),
    flag("detach", Some('d'), false),
    flag("pid-file", None, true),
    flag("console-socket", None, true),
    flag("no-pivot", None, false),
    flag("no-new-keyring", None, false),
    flag("preserve-fds", None, true),
    flag("keep", None, false),
    flag("no-subreaper", None, false),
];

fn cmd_run(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("run", argv, RUN_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let id = match single_id("run", &p) {
        Ok(id) => id,
        Err(c) => return c,
    };
    if p.has("detach") {
        let rest: Vec<String> = argv
            .iter()
            .filter(|a| !matches!(a.as_str(), "-d" | "--detach" | "-detach"))
            .cloned()
            .collect();
        return lifecycle::cmd_create(g, &rest, true);
    }
    for unsupported in ["pid-file", "console-socket", "preserve-fds", "keep"] {
        if p.has(unsupported) {
            log_error!("dory run: --{unsupported} is only supported with --detach");
            return 1;
        }
    }
    let bundle = Path::new(p.get("bundle").unwrap_or("."));
    let no_pivot = p.has("no-pivot");
    crate::container::run::run(id, bundle, &g.root, no_pivot).unwrap_or_else(|(msg, code)| {
        log_error!("dory run: {msg}");
        code
    })
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::os::unix::ffi::OsStringExt;

    use super::*;

    #[test]
    fn non_utf8_arguments_are_an_error_not_a_panic() {
        let ok = [OsString::from("run"), OsString::from("id")];
        assert_eq!(utf8_args(ok.into_iter()).unwrap(), ["run", "id"]);
        let bad = [
            OsString::from("run"),
            OsString::from_vec(b"i\xffd".to_vec()),
        ];
        assert_eq!(
            utf8_args(bad.into_iter()).unwrap_err(),
            "argument 2 (\"i\u{fffd}d\") is not valid UTF-8"
        );
    }
}
