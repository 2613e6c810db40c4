//! `dory COMMAND --help` (or `-h`): each command's usage and flags, on stdout, exit 0.

/// The words that ask for help, as runc's flag package spells them.
const HELP_WORDS: [&str; 3] = ["-h", "--help", "-help"];

/// Whether `args` (the words after the command) ask for its help: a help word before `--`
/// and, for `exec`, before the container id (what follows the id is the command's own).
pub fn wanted(command: &str, args: &[String]) -> bool {
    let stop_at_positional = command == "exec";
    for a in args {
        if a == "--" {
            return false;
        }
        if HELP_WORDS.contains(&a.as_str()) {
            return true;
        }
        if stop_at_positional && !a.starts_with('-') {
            return false;
        }
    }
    false
}

/// The usage text of `command`, None for a word that is no command.
pub fn usage(command: &str) -> Option<&'static str> {
    Some(match command {
        "spec" => SPEC,
        "run" => RUN,
        "create" => CREATE,
        "start" => START,
        "state" => STATE,
        "kill" => KILL,
        "delete" => DELETE,
        "pause" => PAUSE,
        "resume" => RESUME,
        "ps" => PS,
        "exec" => EXEC,
        "update" => UPDATE,
        "events" => EVENTS,
        "list" => LIST,
        "features" => FEATURES,
        "init" => INIT,
        "ctl" => CTL,
        _ => return None,
    })
}

const SPEC: &str = "usage: dory spec [--bundle DIR]
       dory spec --check [--bundle DIR]

Writes the default config.json (an interactive `sh`, as runc's) into the bundle; never
overwrites one. Put the container's root filesystem in DIR/rootfs.

  -b, --bundle DIR     bundle directory (default: the current directory)
      --check          read and validate the bundle's config.json as `create` would (the
                       rootfs must exist; mount sources are checked only at start), print
                       ok or the error naming the field and limit; exit 0/1; needs no root
      --rootless       refused: rootless containers are not supported
";

const RUN: &str = "usage: dory run [flags] ID

Creates and starts container ID from the bundle's config.json. Without --detach, stays
in the foreground relaying the terminal and signals, and exits with the container's status
(128+N when its process was killed by signal N).

  -b, --bundle DIR          bundle directory (default: the current directory)
  -d, --detach              return once the container runs (as create + start)
      --pid-file FILE       write the container process's pid to FILE (with --detach)
      --console-socket SOCK send the terminal's master fd to SOCK (with --detach)
      --preserve-fds N      pass N fds after stdio (3..3+N-1) into the container (with --detach)
      --no-pivot            move the rootfs onto / and chroot instead of pivot_root (see the README: escapable with CAP_SYS_ADMIN)
      --no-new-keyring      accepted (dory does not create session keyrings)
      --keep                refused without --detach (a detached container is kept anyway)
      --no-subreaper        accepted (dory run is never a subreaper)
";

const CREATE: &str = "usage: dory create [flags] ID

Sets up container ID from the bundle's config.json; its process waits until `dory start`.

  -b, --bundle DIR          bundle directory (default: the current directory)
      --pid-file FILE       write the container process's pid to FILE
      --console-socket SOCK send the terminal's master fd to SOCK (process.terminal true)
      --preserve-fds N      pass N fds after stdio (3..3+N-1) into the container
      --no-pivot            move the rootfs onto / and chroot instead of pivot_root (see the README: escapable with CAP_SYS_ADMIN)
      --no-new-keyring      accepted (dory does not create session keyrings)
";

const START: &str = "usage: dory start ID

Lets created container ID run its program (runs the startContainer and poststart hooks).
";

const STATE: &str = "usage: dory state ID

Prints container ID's OCI state as JSON: status created, running, paused or stopped.
";

const KILL: &str = "usage: dory kill [--all] ID [SIGNAL]

Sends SIGNAL (a name, KILL or SIGKILL, or a number; default TERM) to container ID's process.

  -a, --all       signal every process in the container's cgroup
  -p, --pid PID   ignored (an old runc flag)
";

const DELETE: &str = "usage: dory delete [--force] ID

Removes stopped container ID: its state, cgroup and mounts; runs the poststop hooks.

  -f, --force   kill the container first if it still runs
";

const PAUSE: &str = "usage: dory pause ID

Freezes every process of container ID (cgroup freezer); `dory resume ID` thaws them.
";

const RESUME: &str = "usage: dory resume ID

Thaws the processes of paused container ID.
";

const PS: &str = "usage: dory ps [--format table|json] ID [PS-OPTIONS...]

Lists the processes of container ID (host pids): `ps` output (default -ef) filtered to
them, or their pids as a JSON array.

  -f, --format table|json   output format (default table)
";

const EXEC: &str = "usage: dory exec [flags] ID COMMAND [ARGS...]
       dory exec [flags] --process FILE ID

Runs a new process in running container ID; exits with its status. Flags go before ID:
what follows ID is the command and its own arguments.

  -p, --process FILE        the process as JSON (config.json's `process` object)
  -t, --tty                 give the process a terminal
  -d, --detach              do not wait for the process
      --pid-file FILE       write the process's pid to FILE
      --console-socket SOCK send the terminal's master fd to SOCK (with --tty --detach)
  -e, --env KEY=VALUE       set an environment variable (repeatable; overrides config.json's)
      --cwd DIR             working directory in the container
  -u, --user UID[:GID]      user and group ids
  -g, --additional-gids G   an additional group id (repeatable)
  -c, --cap CAP             add a capability (repeatable)
      --no-new-privs        set no_new_privs
      --preserve-fds N      pass N fds after stdio into the process
      --ignore-paused       exec even when the container is paused
      --cgroup [CTRL:]PATH  run in this sub-cgroup of the container's cgroup
      --apparmor PROFILE    AppArmor profile for the process (ignored, with a warning,
                            where the host runs no AppArmor)
      --process-label L     refused when given (no SELinux support)
";

const UPDATE: &str = "usage: dory update [flags] ID

Changes running container ID's resource limits. Sizes take k, m, g, t suffixes; -1 is
unlimited.

  -r, --resources FILE      limits as JSON (config.json's linux.resources; - for stdin)
      --memory N            memory limit
      --memory-reservation N
      --memory-swap N       memory + swap limit
      --cpu-share N, --cpu-period N, --cpu-quota N
      --cpuset-cpus LIST, --cpuset-mems LIST
      --pids-limit N        maximum number of processes
      --blkio-weight N      block I/O weight (10-1000; where the kernel has a weight file)
      --cpu-rt-period N, --cpu-rt-runtime N, --kernel-memory N,
      --kernel-memory-tcp N, --l3-cache-schema S, --mem-bw-schema S
                            refused with an error (not supported by dory's update)
";

const EVENTS: &str = "usage: dory events [--stats] [--interval 5s] ID

Prints container ID's resource usage as JSON lines every interval, and `oom` events.

      --stats           print once and exit
      --interval D      time between lines (e.g. 500ms, 5s, 1m; default 5s)
";

const LIST: &str = "usage: dory list [--format table|json] [--quiet]

Lists the containers under --root: id, pid, status, bundle, created.

  -f, --format table|json   output format (default table)
  -q, --quiet               ids only
";

const FEATURES: &str = "usage: dory features

Prints what this build implements as JSON (runtime-spec's features document).
";

const INIT: &str =
    "usage: dory init --config FILE [--boot-root DIR] [--ctl-socket PATH] [--debug] [--test]
       dory init --check [--config FILE]

Runs as PID 1 of a board (the kernel starts dory as init and finds /etc/dory/board.json);
from a shell it runs the same supervisor for tests, ending on SIGTERM.

  --config FILE        the board config (board.json; default /etc/dory/board.json)
  --check              read and validate the board config, start nothing: prints ok
                       (exit 0) or the error naming the field and its limit (exit 1)
  --boot-root DIR      where the early filesystems are mounted (tests)
  --ctl-socket PATH    the control socket (default /run/dory/ctl.sock)
  --test               test mode as PID 1 of a pid namespace (exits at shutdown)
  --debug              log more
";

const CTL: &str = "usage: dory ctl [--socket PATH] status | start ID | stop ID | restart ID | logs ID | reboot | poweroff | halt

Talks to a running dory PID 1 over its control socket (default /run/dory/ctl.sock).
";

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn help_words_before_the_end_of_flags() {
        assert!(wanted("run", &v(&["--help"])));
        assert!(wanted("run", &v(&["id", "-h"])));
        assert!(wanted("kill", &v(&["-help"])));
        assert!(!wanted("run", &v(&["id"])));
        assert!(!wanted("ps", &v(&["id", "--", "-h"])));
        // exec: after the id the words are the command's own.
        assert!(wanted("exec", &v(&["-t", "--help"])));
        assert!(!wanted("exec", &v(&["id", "ls", "-h"])));
    }

    /// Every flag a command's parser accepts is in its help (catches a flag added to the
    /// parser but not to the text).
    #[test]
    fn every_parsed_flag_is_documented() {
        let init = usage("init").unwrap();
        for f in crate::init::FLAGS {
            assert!(init.contains(f), "`dory init --help` lacks {f}");
        }
        for (command, flags, _) in crate::cli::COMMANDS {
            let text = usage(command).unwrap();
            for f in *flags {
                assert!(
                    text.contains(&format!("--{}", f.long)),
                    "`dory {command} --help` lacks --{}",
                    f.long
                );
            }
        }
    }
}
