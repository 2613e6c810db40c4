//! board.json: what PID 1 starts and how it supervises it.
//!
//! ```json
//! {"hostname":"dory-aarch64",
//!  "watchdog":{"device":"/dev/watchdog","timeoutSecs":15},
//!  "containers":[
//!    {"id":"hello","bundle":"/containers/hello","kind":"oneshot","onFailure":"rescue"},
//!    {"id":"ticker","bundle":"/containers/ticker","kind":"service",
//!     "restart":{"policy":"always","initialDelayMs":100,"factor":2,"maxDelayMs":2000,
//!                "maxRetries":5,"resetWindowSecs":60},
//!     "stopSignal":"SIGTERM","stopGraceMs":1000,
//!     "health":{"args":["/bin/sh","-c","test -e /tmp"],"intervalMs":1000,"timeoutMs":500,
//!               "failures":3}},
//!    {"id":"shutdown","bundle":"/containers/shutdown","kind":"service","after":["ticker"]}]}
//! ```
//!
//! Parsing is bounded and zero-copy, like config.json: the file is read into a fixed buffer
//! of [`MAX_BOARD_BYTES`], strings are slices of it, lists have named capacities.
//!
//! Decisions (documented for board authors):
//! - **Unknown keys are errors.** serde-json-core skips them silently, so a typo such as
//!   `"stopGraceMS"` would silently fall back to a default on a board nobody watches. A small
//!   schema scan ([`scan`]) runs first and names the first unknown, duplicate, missing or
//!   mistyped field with its path (`containers[2].restart.policy`).
//! - **No escapes in strings.** A backslash anywhere in a string is rejected, so every
//!   string is usable as written (ids, paths, probe arguments). Use single quotes inside
//!   `sh -c` scripts.
//! - Numbers are non-negative integers that fit in 32 bits; `null` is not accepted.
//!
//! Defaults: `kind` service; `onFailure` rescue; restart `{"policy":"always",
//! "initialDelayMs":100,"factor":2,"maxDelayMs":5000,"maxRetries":5,"resetWindowSecs":60}`
//! (each restart key may be given alone; `factor` and `resetWindowSecs` at least 1);
//! `onGiveUp` ignore; `stopSignal` SIGTERM;
//! `stopGraceMs` 5000; health `intervalMs` 10000, `timeoutMs` 1000, `failures` 3.
//! `restart`, `health`, `after` and `onGiveUp` are for services only; `onFailure` for
//! oneshots only.
//!
//! `"ctl": true` on a container (default false) binds dory's control socket at
//! `/run/dory/ctl.sock` and the dory binary at `/run/dory/bin/dory` into it, read-only, so
//! a console shell can run `dory ctl status`. It is a privilege: that container can stop
//! and start the others and reboot or power off the board.
//!
//! `"stepTimeoutSecs": N` (top level, 1-3600, default 30): the longest one step of starting
//! or stopping a container may hold PID 1's loop where the container's config sets no
//! limit (a hook without `timeout`, the container's setup answering, a cgroup emptying).
//! The watchdog is petted meanwhile; past it the step fails and the container with it.
//!
//! A real root (a board on a disk rather than all in an initramfs): `"modules"` (top
//! level) names kernel modules dory loads first, with their dependencies from the image's
//! `/lib/modules/<release>/modules.dep`; `"root": {"device":"PARTUUID=d0e1f2a3-02",
//! "fstype":"squashfs","timeoutSecs":10}` is mounted read-only and becomes `/` (the
//! initramfs is freed); `"data": {"device":"PARTUUID=d0e1f2a3-03","fstype":"ext4"}` is
//! mounted read-write at `/data`. Devices are named by MBR `PARTUUID` (disk signature,
//! partition number) or as `/dev/...`. A container's `"data": true` gets `/data/<id>`
//! made for it before each start (its config binds what it needs from there).
//!
//! `"unsafeNoPivot": true` (top level, default false) lets containers fall back to
//! MS_MOVE + chroot where pivot_root is refused (the board could not leave its initramfs
//! root): the board's whole root then stays mounted under every container, as with runc's
//! `--no-pivot`. Without it such a container fails to start.

use core::fmt;

use heapless::Vec;
use nix::sys::signal::Signal;
use serde::Deserialize;

use super::logfile;
use super::net;
use super::policy::{Policy, RestartSpec};

/// Largest board.json read, in bytes.
pub const MAX_BOARD_BYTES: usize = 16 * 1024;
/// Containers on one board.
pub const MAX_CONTAINERS: usize = 16;
/// Entries of one container's `after` list.
pub const MAX_AFTER: usize = 8;
/// Words of a health probe command.
pub const MAX_HEALTH_ARGS: usize = 16;
/// Longest container id.
pub const MAX_ID_LEN: usize = 64;
/// `stepTimeoutSecs` when not given, and its largest value.
pub const DEFAULT_STEP_TIMEOUT_SECS: u32 = 30;
pub const MAX_STEP_TIMEOUT_SECS: u32 = 3600;
/// Longest hostname (the kernel's limit).
pub const MAX_HOSTNAME_LEN: usize = 64;
/// Kernel modules a board may name (`modules`).
pub const MAX_MODULES: usize = 32;
/// Longest module name.
pub const MAX_MODULE_NAME: usize = 56;
/// `root.timeoutSecs` when not given, and its largest value.
pub const DEFAULT_ROOT_TIMEOUT_SECS: u32 = 10;
pub const MAX_ROOT_TIMEOUT_SECS: u32 = 300;
/// Deepest nesting of objects and arrays a board can have (containers[i].health.args).
const MAX_DEPTH: usize = 5;

/// What a oneshot's failure does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    Rescue,
    Ignore,
    Reboot,
    Poweroff,
}

/// What giving up on a service does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnGiveUp {
    Ignore,
    Reboot,
    Poweroff,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Oneshot,
    Service,
}

#[derive(Debug, Clone)]
pub struct Health<'a> {
    pub args: Vec<&'a str, MAX_HEALTH_ARGS>,
    pub interval_ms: u32,
    pub timeout_ms: u32,
    pub failures: u32,
}

#[derive(Debug, Clone)]
pub struct Container<'a> {
    pub id: &'a str,
    pub bundle: &'a str,
    pub kind: Kind,
    pub on_failure: OnFailure,
    pub restart: RestartSpec,
    pub on_give_up: OnGiveUp,
    pub stop_signal: Signal,
    pub stop_grace_ms: u32,
    pub after: Vec<&'a str, MAX_AFTER>,
    pub health: Option<Health<'a>>,
    /// `"stdio": "console"`: the container's stdin/stdout/stderr are /dev/console (an
    /// interactive shell on the board's console) instead of dory's log pipes (`"log"`).
    pub console: bool,
    /// `"ctl": true`: the container gets dory's control socket and the dory binary as its
    /// client, both bound read-only (see [`CTL_SOCKET_IN_CONTAINER`]). A privilege: it can
    /// stop, start and restart every container and reboot or power off the board.
    pub ctl: bool,
    /// `"data": true`: `/data/<id>` is made (if missing) before each start.
    pub data: bool,
}

/// A block device with a filesystem: `root` or `data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume<'a> {
    /// `PARTUUID=<8 hex>-<2 digits>` (MBR) or a `/dev/` path.
    pub device: &'a str,
    pub fstype: &'a str,
}

/// Where a `"ctl": true` container finds the control socket and the client.
pub const CTL_SOCKET_IN_CONTAINER: &str = "/run/dory/ctl.sock";
pub const CTL_CLIENT_IN_CONTAINER: &str = "/run/dory/bin/dory";

#[derive(Debug, Clone)]
pub struct Watchdog<'a> {
    pub device: &'a str,
    pub timeout_secs: u32,
}

/// A validated board; strings borrow the file buffer.
#[derive(Debug, Clone)]
pub struct Board<'a> {
    pub hostname: Option<&'a str>,
    pub watchdog: Option<Watchdog<'a>>,
    /// `stepTimeoutSecs`: the deadline of a start or stop step the config leaves open.
    pub step_timeout_secs: u32,
    /// `unsafeNoPivot`: allow the MS_MOVE + chroot fallback where pivot_root is refused.
    pub unsafe_no_pivot: bool,
    /// `modules`: loaded (with dependencies) before the root is looked for.
    pub modules: Vec<&'a str, MAX_MODULES>,
    /// `root`: the real root, mounted read-only as `/`.
    pub root: Option<Volume<'a>>,
    /// `root.timeoutSecs`: how long to wait for the root and data devices.
    pub root_timeout_secs: u32,
    /// `data`: mounted read-write at `/data`.
    pub data: Option<Volume<'a>>,
    /// `network`: interfaces PID 1 sets up before the first container.
    pub network: Vec<net::Interface<'a>, { net::MAX_INTERFACES }>,
    /// `logs`: the files under /data/log (on with defaults when the board has `data`).
    pub logs: Option<logfile::Limits>,
    pub containers: Vec<Container<'a>, MAX_CONTAINERS>,
}

/// Board errors. `Display` gives `FILE: FIELD: problem`; the caller prefixes the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The file could not be opened or read.
    Read {
        errno: nix::Error,
    },
    /// A FIFO, a device, a directory… (`what` says which), not a regular file.
    NotRegular {
        what: &'static str,
    },
    /// The file is larger than [`MAX_BOARD_BYTES`].
    TooLarge,
    /// Not JSON: byte offset and what was expected there.
    Syntax {
        at: usize,
        expected: &'static str,
    },
    /// Nested deeper than any valid board.
    TooDeep {
        field: String,
    },
    UnknownField {
        field: String,
    },
    DuplicateField {
        field: String,
    },
    MissingField {
        field: String,
    },
    WrongType {
        field: String,
        expected: &'static str,
    },
    /// A list longer than its named capacity.
    TooMany {
        field: String,
        limit: usize,
        name: &'static str,
    },
    /// A string holding a backslash escape.
    Escape {
        field: String,
    },
    /// A value out of range or not one of the known words.
    Invalid {
        field: String,
        problem: String,
    },
    /// serde-json-core refused a document the scan accepted (should not happen).
    Parse,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Read { errno } => write!(f, "cannot read: {errno}"),
            Error::NotRegular { what } => write!(f, "is {what}: it must be a regular file"),
            Error::TooLarge => write!(f, "larger than {MAX_BOARD_BYTES} bytes (MAX_BOARD_BYTES)"),
            Error::Syntax { at, expected } => {
                write!(f, "invalid JSON at byte {at}: expected {expected}")
            }
            Error::TooDeep { field } => write!(f, "{field}: nested deeper than {MAX_DEPTH} levels"),
            Error::UnknownField { field } => write!(f, "{field}: unknown field"),
            Error::DuplicateField { field } => write!(f, "{field}: given twice"),
            Error::MissingField { field } => write!(f, "{field}: missing (required)"),
            Error::WrongType { field, expected } => write!(f, "{field}: expected {expected}"),
            Error::TooMany { field, limit, name } => {
                write!(f, "{field}: more than {limit} entries ({name})")
            }
            Error::Escape { field } => {
                write!(
                    f,
                    "{field}: backslash escapes are not supported in board.json strings"
                )
            }
            Error::Invalid { field, problem } => write!(f, "{field}: {problem}"),
            Error::Parse => write!(f, "rejected by the JSON parser"),
        }
    }
}

// ---------------------------------------------------------------------------------------
// Schema scan: unknown/duplicate/missing keys, types, list capacities, escapes.

#[derive(Clone, Copy)]
enum Ty {
    Str,
    Bool,
    UInt,
    Obj(&'static [Key]),
    StrArr(usize, &'static str),
    ObjArr(&'static [Key], usize, &'static str),
}

struct Key {
    name: &'static str,
    ty: Ty,
    required: bool,
}

const fn opt(name: &'static str, ty: Ty) -> Key {
    Key {
        name,
        ty,
        required: false,
    }
}
const fn req(name: &'static str, ty: Ty) -> Key {
    Key {
        name,
        ty,
        required: true,
    }
}

const WATCHDOG_KEYS: &[Key] = &[req("device", Ty::Str), opt("timeoutSecs", Ty::UInt)];
const RESTART_KEYS: &[Key] = &[
    opt("policy", Ty::Str),
    opt("initialDelayMs", Ty::UInt),
    opt("factor", Ty::UInt),
    opt("maxDelayMs", Ty::UInt),
    opt("maxRetries", Ty::UInt),
    opt("resetWindowSecs", Ty::UInt),
];
const HEALTH_KEYS: &[Key] = &[
    req("args", Ty::StrArr(MAX_HEALTH_ARGS, "MAX_HEALTH_ARGS")),
    opt("intervalMs", Ty::UInt),
    opt("timeoutMs", Ty::UInt),
    opt("failures", Ty::UInt),
];
const CONTAINER_KEYS: &[Key] = &[
    req("id", Ty::Str),
    req("bundle", Ty::Str),
    opt("kind", Ty::Str),
    opt("onFailure", Ty::Str),
    opt("restart", Ty::Obj(RESTART_KEYS)),
    opt("onGiveUp", Ty::Str),
    opt("stopSignal", Ty::Str),
    opt("stopGraceMs", Ty::UInt),
    opt("after", Ty::StrArr(MAX_AFTER, "MAX_AFTER")),
    opt("health", Ty::Obj(HEALTH_KEYS)),
    opt("stdio", Ty::Str),
    opt("ctl", Ty::Bool),
    opt("data", Ty::Bool),
];
const ROOT_KEYS: &[Key] = &[
    req("device", Ty::Str),
    req("fstype", Ty::Str),
    opt("timeoutSecs", Ty::UInt),
];
const DATA_KEYS: &[Key] = &[req("device", Ty::Str), req("fstype", Ty::Str)];
const NETWORK_KEYS: &[Key] = &[
    req("interface", Ty::Str),
    opt("address", Ty::Str),
    opt("gateway", Ty::Str),
    opt("dns", Ty::StrArr(net::MAX_DNS, "MAX_DNS")),
    opt("dhcp", Ty::Bool),
    opt("timeoutSecs", Ty::UInt),
];
const LOGS_KEYS: &[Key] = &[
    opt("fileBytes", Ty::UInt),
    opt("files", Ty::UInt),
    opt("totalBytes", Ty::UInt),
    opt("enabled", Ty::Bool),
];
const BOARD_KEYS: &[Key] = &[
    opt("hostname", Ty::Str),
    opt("watchdog", Ty::Obj(WATCHDOG_KEYS)),
    opt("stepTimeoutSecs", Ty::UInt),
    opt("unsafeNoPivot", Ty::Bool),
    opt("modules", Ty::StrArr(MAX_MODULES, "MAX_MODULES")),
    opt("root", Ty::Obj(ROOT_KEYS)),
    opt("data", Ty::Obj(DATA_KEYS)),
    opt(
        "network",
        Ty::ObjArr(NETWORK_KEYS, net::MAX_INTERFACES, "MAX_INTERFACES"),
    ),
    opt("logs", Ty::Obj(LOGS_KEYS)),
    req(
        "containers",
        Ty::ObjArr(CONTAINER_KEYS, MAX_CONTAINERS, "MAX_CONTAINERS"),
    ),
];

#[derive(Clone, Copy)]
enum Seg<'a> {
    Key(&'a str),
    Index(usize),
}

/// The path of the value being scanned, for error messages.
struct Path<'a> {
    segs: Vec<Seg<'a>, { MAX_DEPTH + 1 }>,
}

impl<'a> Path<'a> {
    fn render(&self) -> String {
        let mut s = String::new();
        for seg in &self.segs {
            match seg {
                Seg::Key(k) => {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                }
                Seg::Index(i) => {
                    s.push('[');
                    s.push_str(&i.to_string());
                    s.push(']');
                }
            }
        }
        if s.is_empty() {
            s.push_str("(top level)");
        }
        s
    }
    fn push(&mut self, seg: Seg<'a>) -> Result<(), Error> {
        self.segs.push(seg).map_err(|_| Error::TooDeep {
            field: self.render(),
        })
    }
    fn pop(&mut self) {
        self.segs.pop();
    }
}

struct Scanner<'a> {
    s: &'a [u8],
    pos: usize,
    path: Path<'a>,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.pos).copied()
    }
    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }
    fn syntax(&self, expected: &'static str) -> Error {
        Error::Syntax {
            at: self.pos,
            expected,
        }
    }
    fn expect(&mut self, c: u8, what: &'static str) -> Result<(), Error> {
        self.ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.syntax(what))
        }
    }
    /// A string's raw contents; rejects escapes and control characters.
    fn string(&mut self) -> Result<&'a str, Error> {
        self.expect(b'"', "a string")?;
        let start = self.pos;
        loop {
            match self.peek() {
                None => return Err(self.syntax("closing quote")),
                Some(b'"') => break,
                Some(b'\\') => {
                    return Err(Error::Escape {
                        field: self.path.render(),
                    })
                }
                Some(c) if c < 0x20 => return Err(self.syntax("no control characters in strings")),
                Some(_) => self.pos += 1,
            }
        }
        let raw = self.s.get(start..self.pos).ok_or(self.syntax("a string"))?;
        self.pos += 1;
        core::str::from_utf8(raw).map_err(|_| Error::Syntax {
            at: start,
            expected: "UTF-8 text",
        })
    }
    fn kind_here(&mut self) -> &'static str {
        self.ws();
        match self.peek() {
            Some(b'"') => "a string",
            Some(b'{') => "an object",
            Some(b'[') => "an array",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            Some(b'-' | b'0'..=b'9') => "a number",
            _ => "a value",
        }
    }
    fn wrong(&mut self, expected: &'static str) -> Error {
        let found = self.kind_here();
        match found {
            "a value" => self.syntax("a value"),
            _ => Error::WrongType {
                field: self.path.render(),
                expected,
            },
        }
    }
    fn uint(&mut self) -> Result<(), Error> {
        self.ws();
        let start = self.pos;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
        let digits = self.s.get(start..self.pos).unwrap_or_default();
        let is_frac = matches!(self.peek(), Some(b'.' | b'e' | b'E'));
        if digits.is_empty() || is_frac {
            self.pos = start;
            return Err(Error::WrongType {
                field: self.path.render(),
                expected: "a non-negative integer",
            });
        }
        // JSON has no leading zeros (serde-json-core refuses them, without a field).
        if digits.len() > 1 && digits.first() == Some(&b'0') {
            return Err(Error::Invalid {
                field: self.path.render(),
                problem: "a JSON number has no leading zeros".into(),
            });
        }
        let mut v: u64 = 0;
        for d in digits {
            v = v.saturating_mul(10).saturating_add(u64::from(d - b'0'));
        }
        if v > u64::from(u32::MAX) {
            return Err(Error::Invalid {
                field: self.path.render(),
                problem: format!("{v} is larger than {}", u32::MAX),
            });
        }
        Ok(())
    }
    fn value(&mut self, ty: Ty) -> Result<(), Error> {
        self.ws();
        match ty {
            Ty::Str => {
                if self.peek() != Some(b'"') {
                    return Err(self.wrong("a string"));
                }
                self.string().map(|_| ())
            }
            Ty::Bool => {
                for lit in [&b"true"[..], &b"false"[..]] {
                    if self.s.get(self.pos..).is_some_and(|r| r.starts_with(lit)) {
                        self.pos += lit.len();
                        return Ok(());
                    }
                }
                Err(self.wrong("true or false"))
            }
            Ty::UInt => {
                if !matches!(self.peek(), Some(b'-' | b'0'..=b'9')) {
                    return Err(self.wrong("a non-negative integer"));
                }
                self.uint()
            }
            Ty::Obj(keys) => self.object(keys),
            Ty::StrArr(cap, name) => self.array(Ty::Str, cap, name),
            Ty::ObjArr(keys, cap, name) => self.array(Ty::Obj(keys), cap, name),
        }
    }
    fn array(&mut self, elem: Ty, cap: usize, name: &'static str) -> Result<(), Error> {
        self.ws();
        if self.peek() != Some(b'[') {
            return Err(self.wrong("an array"));
        }
        self.pos += 1;
        self.ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        let mut i = 0;
        loop {
            if i >= cap {
                return Err(Error::TooMany {
                    field: self.path.render(),
                    limit: cap,
                    name,
                });
            }
            self.path.push(Seg::Index(i))?;
            self.value(elem)?;
            self.path.pop();
            i += 1;
            self.ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.syntax("',' or ']'")),
            }
        }
    }
    fn object(&mut self, keys: &'static [Key]) -> Result<(), Error> {
        self.ws();
        if self.peek() != Some(b'{') {
            return Err(self.wrong("an object"));
        }
        self.pos += 1;
        let mut seen: u32 = 0;
        self.ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
        } else {
            loop {
                self.ws();
                let name = self.string()?;
                self.path.push(Seg::Key(name))?;
                let (idx, key) = keys
                    .iter()
                    .enumerate()
                    .find(|(_, k)| k.name == name)
                    .ok_or_else(|| Error::UnknownField {
                        field: self.path.render(),
                    })?;
                let bit = 1u32 << idx;
                if seen & bit != 0 {
                    return Err(Error::DuplicateField {
                        field: self.path.render(),
                    });
                }
                seen |= bit;
                self.expect(b':', "':'")?;
                self.value(key.ty)?;
                self.path.pop();
                self.ws();
                match self.peek() {
                    Some(b',') => self.pos += 1,
                    Some(b'}') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(self.syntax("',' or '}'")),
                }
            }
        }
        for (idx, key) in keys.iter().enumerate() {
            if key.required && seen & (1u32 << idx) == 0 {
                self.path.push(Seg::Key(key.name))?;
                let field = self.path.render();
                self.path.pop();
                return Err(Error::MissingField { field });
            }
        }
        Ok(())
    }
}

/// Checks the document against the board schema: JSON syntax, known keys only, no
/// duplicates, required keys present, value types, list capacities, no escapes.
pub fn scan(text: &[u8]) -> Result<(), Error> {
    let mut sc = Scanner {
        s: text,
        pos: 0,
        path: Path { segs: Vec::new() },
    };
    sc.object(BOARD_KEYS)?;
    sc.ws();
    if sc.pos != text.len() {
        return Err(sc.syntax("end of document"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// serde structs (shape already checked by the scan) and the validation pass.

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawRestart<'a> {
    policy: Option<&'a str>,
    initial_delay_ms: Option<u32>,
    factor: Option<u32>,
    max_delay_ms: Option<u32>,
    max_retries: Option<u32>,
    reset_window_secs: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawHealth<'a> {
    #[serde(borrow)]
    args: Vec<&'a str, MAX_HEALTH_ARGS>,
    interval_ms: Option<u32>,
    timeout_ms: Option<u32>,
    failures: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawContainer<'a> {
    id: &'a str,
    bundle: &'a str,
    kind: Option<&'a str>,
    on_failure: Option<&'a str>,
    #[serde(borrow)]
    restart: Option<RawRestart<'a>>,
    on_give_up: Option<&'a str>,
    stop_signal: Option<&'a str>,
    stop_grace_ms: Option<u32>,
    #[serde(borrow)]
    after: Option<Vec<&'a str, MAX_AFTER>>,
    #[serde(borrow)]
    health: Option<RawHealth<'a>>,
    stdio: Option<&'a str>,
    ctl: Option<bool>,
    data: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVolume<'a> {
    device: &'a str,
    fstype: &'a str,
    timeout_secs: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawWatchdog<'a> {
    device: &'a str,
    timeout_secs: Option<u32>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawBoard<'a> {
    hostname: Option<&'a str>,
    #[serde(borrow)]
    watchdog: Option<RawWatchdog<'a>>,
    step_timeout_secs: Option<u32>,
    unsafe_no_pivot: Option<bool>,
    #[serde(borrow)]
    modules: Option<Vec<&'a str, MAX_MODULES>>,
    #[serde(borrow)]
    root: Option<RawVolume<'a>>,
    #[serde(borrow)]
    data: Option<RawVolume<'a>>,
    #[serde(borrow)]
    network: Option<Vec<RawNet<'a>, { net::MAX_INTERFACES }>>,
    logs: Option<RawLogs>,
    #[serde(borrow)]
    containers: Vec<RawContainer<'a>, MAX_CONTAINERS>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawLogs {
    file_bytes: Option<u32>,
    files: Option<u32>,
    total_bytes: Option<u32>,
    enabled: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawNet<'a> {
    interface: &'a str,
    address: Option<&'a str>,
    gateway: Option<&'a str>,
    #[serde(borrow)]
    dns: Option<Vec<&'a str, { net::MAX_DNS }>>,
    dhcp: Option<bool>,
    timeout_secs: Option<u32>,
}

pub const DEFAULT_RESTART: RestartSpec = RestartSpec {
    policy: Policy::Always,
    initial_delay_ms: 100,
    factor: 2,
    max_delay_ms: 5000,
    max_retries: 5,
    reset_window_secs: 60,
};
pub const DEFAULT_STOP_GRACE_MS: u32 = 5000;
pub const DEFAULT_WATCHDOG_SECS: u32 = 15;
const DEFAULT_HEALTH_INTERVAL_MS: u32 = 10_000;
const DEFAULT_HEALTH_TIMEOUT_MS: u32 = 1000;
const DEFAULT_HEALTH_FAILURES: u32 = 3;

fn invalid(field: String, problem: String) -> Error {
    Error::Invalid { field, problem }
}

fn word<T: Copy>(
    field: impl Fn() -> String,
    what: &str,
    value: &str,
    table: &[(&str, T)],
) -> Result<T, Error> {
    if let Some((_, v)) = table.iter().find(|(n, _)| *n == value) {
        return Ok(*v);
    }
    let mut names = String::new();
    for (i, (n, _)) in table.iter().enumerate() {
        if i > 0 {
            names.push_str(if i + 1 == table.len() { " or " } else { ", " });
        }
        names.push_str(n);
    }
    Err(invalid(
        field(),
        format!("unknown {what} \"{value}\" (expected {names})"),
    ))
}

/// Signal names accepted in `stopSignal`, with or without the `SIG` prefix.
pub fn parse_signal(name: &str) -> Option<Signal> {
    let bare = name.strip_prefix("SIG").unwrap_or(name);
    let sig = match bare {
        "TERM" => Signal::SIGTERM,
        "INT" => Signal::SIGINT,
        "QUIT" => Signal::SIGQUIT,
        "HUP" => Signal::SIGHUP,
        "KILL" => Signal::SIGKILL,
        "USR1" => Signal::SIGUSR1,
        "USR2" => Signal::SIGUSR2,
        "PWR" => Signal::SIGPWR,
        "STOP" => Signal::SIGSTOP,
        "ABRT" => Signal::SIGABRT,
        _ => return None,
    };
    Some(sig)
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && id != "."
        && id != ".."
}

fn restart_spec(
    raw: Option<&RawRestart<'_>>,
    at: &dyn Fn(&str) -> String,
) -> Result<RestartSpec, Error> {
    let mut spec = DEFAULT_RESTART;
    let Some(r) = raw else { return Ok(spec) };
    if let Some(p) = r.policy {
        spec.policy = word(
            || at("restart.policy"),
            "policy",
            p,
            &[
                ("always", Policy::Always),
                ("on-failure", Policy::OnFailure),
                ("never", Policy::Never),
            ],
        )?;
    }
    spec.initial_delay_ms = r.initial_delay_ms.unwrap_or(spec.initial_delay_ms);
    spec.factor = r.factor.unwrap_or(spec.factor);
    spec.max_delay_ms = r.max_delay_ms.unwrap_or(spec.max_delay_ms);
    spec.max_retries = r.max_retries.unwrap_or(spec.max_retries);
    spec.reset_window_secs = r.reset_window_secs.unwrap_or(spec.reset_window_secs);
    if spec.factor == 0 {
        return Err(invalid(at("restart.factor"), "must be at least 1".into()));
    }
    // Every run lasts at least 0 s: the count would start over at each exit, so the
    // backoff would never grow and maxRetries never be reached (a crash loop for ever).
    if spec.reset_window_secs == 0 {
        return Err(invalid(
            at("restart.resetWindowSecs"),
            "must be at least 1 (0: a crash loop for ever)".into(),
        ));
    }
    Ok(spec)
}

fn container<'a>(i: usize, raw: &RawContainer<'a>) -> Result<Container<'a>, Error> {
    let at = |f: &str| format!("containers[{i}].{f}");
    if !valid_id(raw.id) {
        return Err(invalid(
            at("id"),
            format!(
                "\"{}\" is not a valid id (1-{MAX_ID_LEN} of A-Z a-z 0-9 _ - .)",
                raw.id
            ),
        ));
    }
    // /data/log belongs to dory's log writer: a container given it could plant links
    // and fifos among the files (the writer follows neither, but would stall on a fifo).
    if raw.data == Some(true) && raw.id == logfile::LOG_DIR {
        return Err(invalid(
            at("id"),
            format!(
                "\"{}\" with \"data\": true would own /data/{}, where dory writes the logs: choose another id",
                raw.id,
                logfile::LOG_DIR
            ),
        ));
    }
    if !raw.bundle.starts_with('/') {
        return Err(invalid(
            at("bundle"),
            format!("\"{}\" is not an absolute path", raw.bundle),
        ));
    }
    let kind = match raw.kind {
        None => Kind::Service,
        Some(k) => word(
            || at("kind"),
            "kind",
            k,
            &[("oneshot", Kind::Oneshot), ("service", Kind::Service)],
        )?,
    };
    let service_only: [(&str, bool); 4] = [
        ("restart", raw.restart.is_some()),
        ("health", raw.health.is_some()),
        ("after", raw.after.is_some()),
        ("onGiveUp", raw.on_give_up.is_some()),
    ];
    if kind == Kind::Oneshot {
        if let Some((name, _)) = service_only.iter().find(|(_, given)| *given) {
            return Err(invalid(
                at(name),
                "only allowed for kind \"service\"".into(),
            ));
        }
    } else if raw.on_failure.is_some() {
        return Err(invalid(
            at("onFailure"),
            "only allowed for kind \"oneshot\"".into(),
        ));
    }
    let on_failure = match raw.on_failure {
        None => OnFailure::Rescue,
        Some(w) => word(
            || at("onFailure"),
            "action",
            w,
            &[
                ("rescue", OnFailure::Rescue),
                ("ignore", OnFailure::Ignore),
                ("reboot", OnFailure::Reboot),
                ("poweroff", OnFailure::Poweroff),
            ],
        )?,
    };
    let on_give_up = match raw.on_give_up {
        None => OnGiveUp::Ignore,
        Some(w) => word(
            || at("onGiveUp"),
            "action",
            w,
            &[
                ("ignore", OnGiveUp::Ignore),
                ("reboot", OnGiveUp::Reboot),
                ("poweroff", OnGiveUp::Poweroff),
            ],
        )?,
    };
    let stop_signal = match raw.stop_signal {
        None => Signal::SIGTERM,
        Some(name) => parse_signal(name)
            .ok_or_else(|| invalid(at("stopSignal"), format!("unknown signal \"{name}\"")))?,
    };
    let health = match &raw.health {
        None => None,
        Some(h) => {
            match h.args.first() {
                None => return Err(invalid(at("health.args"), "must not be empty".into())),
                Some(a0) if !a0.starts_with('/') => {
                    return Err(invalid(
                        at("health.args[0]"),
                        format!("\"{a0}\" is not an absolute path (no PATH search)"),
                    ))
                }
                Some(_) => {}
            }
            let hl = Health {
                args: h.args.clone(),
                interval_ms: h.interval_ms.unwrap_or(DEFAULT_HEALTH_INTERVAL_MS),
                timeout_ms: h.timeout_ms.unwrap_or(DEFAULT_HEALTH_TIMEOUT_MS),
                failures: h.failures.unwrap_or(DEFAULT_HEALTH_FAILURES),
            };
            for (name, v) in [
                ("intervalMs", hl.interval_ms),
                ("timeoutMs", hl.timeout_ms),
                ("failures", hl.failures),
            ] {
                if v == 0 {
                    return Err(invalid(
                        at(&format!("health.{name}")),
                        "must be at least 1".into(),
                    ));
                }
            }
            Some(hl)
        }
    };
    Ok(Container {
        id: raw.id,
        bundle: raw.bundle,
        kind,
        on_failure,
        restart: restart_spec(raw.restart.as_ref(), &at)?,
        on_give_up,
        stop_signal,
        stop_grace_ms: raw.stop_grace_ms.unwrap_or(DEFAULT_STOP_GRACE_MS),
        after: raw.after.clone().unwrap_or_default(),
        health,
        console: match raw.stdio {
            None | Some("log") => false,
            Some("console") => true,
            Some(other) => {
                return Err(Error::Invalid {
                    field: at("stdio"),
                    problem: format!("unknown value \"{other}\" (expected log or console)"),
                })
            }
        },
        ctl: raw.ctl.unwrap_or(false),
        data: raw.data.unwrap_or(false),
    })
}

/// A module name as modprobe takes it: 1-[`MAX_MODULE_NAME`] of a-z A-Z 0-9 _ -.
fn valid_module(name: &str) -> bool {
    (1..=MAX_MODULE_NAME).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// `root` or `data`: a device dory can find and a filesystem it knows to mount.
fn volume<'a>(name: &str, raw: &RawVolume<'a>) -> Result<Volume<'a>, Error> {
    if super::realroot::DeviceName::parse(raw.device).is_none() {
        return Err(invalid(
            format!("{name}.device"),
            format!(
                "\"{}\" is neither PARTUUID=<8 hex digits>-<2 digits> nor a /dev/ path",
                raw.device
            ),
        ));
    }
    if !super::realroot::FSTYPES.contains(&raw.fstype) {
        return Err(invalid(
            format!("{name}.fstype"),
            format!(
                "\"{}\" is not one of {}",
                raw.fstype,
                super::realroot::FSTYPES.join(", ")
            ),
        ));
    }
    Ok(Volume {
        device: raw.device,
        fstype: raw.fstype,
    })
}

/// Parses and validates a board document held in `text`.
pub fn parse(text: &[u8]) -> Result<Board<'_>, Error> {
    scan(text)?;
    let (raw, _) = serde_json_core::from_slice::<RawBoard<'_>>(text).map_err(|_| Error::Parse)?;
    if let Some(h) = raw.hostname {
        if h.is_empty() || h.len() > MAX_HOSTNAME_LEN {
            return Err(invalid(
                "hostname".into(),
                format!("must be 1-{MAX_HOSTNAME_LEN} bytes"),
            ));
        }
    }
    let watchdog = match raw.watchdog {
        None => None,
        Some(w) => {
            let timeout_secs = w.timeout_secs.unwrap_or(DEFAULT_WATCHDOG_SECS);
            if timeout_secs < 2 {
                return Err(invalid(
                    "watchdog.timeoutSecs".into(),
                    "must be at least 2".into(),
                ));
            }
            Some(Watchdog {
                device: w.device,
                timeout_secs,
            })
        }
    };
    let step_timeout_secs = raw.step_timeout_secs.unwrap_or(DEFAULT_STEP_TIMEOUT_SECS);
    if !(1..=MAX_STEP_TIMEOUT_SECS).contains(&step_timeout_secs) {
        return Err(invalid(
            "stepTimeoutSecs".into(),
            format!("{step_timeout_secs} is outside 1-{MAX_STEP_TIMEOUT_SECS} (limit)"),
        ));
    }
    if let Some(i) = raw.modules.iter().flatten().position(|m| !valid_module(m)) {
        return Err(invalid(
            format!("modules[{i}]"),
            format!("not a module name (1-{MAX_MODULE_NAME} of a-z A-Z 0-9 _ -)"),
        ));
    }
    let root = raw.root.as_ref().map(|r| volume("root", r)).transpose()?;
    let data = raw.data.as_ref().map(|d| volume("data", d)).transpose()?;
    if data.is_some() && root.is_none() {
        return Err(invalid(
            "data".into(),
            "needs a root (data is mounted when dory switches to the real root)".into(),
        ));
    }
    let root_timeout_secs = raw
        .root
        .as_ref()
        .and_then(|r| r.timeout_secs)
        .unwrap_or(DEFAULT_ROOT_TIMEOUT_SECS);
    if !(1..=MAX_ROOT_TIMEOUT_SECS).contains(&root_timeout_secs) {
        return Err(invalid(
            "root.timeoutSecs".into(),
            format!("{root_timeout_secs} is outside 1-{MAX_ROOT_TIMEOUT_SECS} (limit)"),
        ));
    }
    let raw_net: std::vec::Vec<net::RawInterface<'_>> = raw
        .network
        .iter()
        .flatten()
        .map(|n| net::RawInterface {
            interface: n.interface,
            address: n.address,
            gateway: n.gateway,
            dns: n.dns.clone(),
            dhcp: n.dhcp,
            timeout_secs: n.timeout_secs,
        })
        .collect();
    let network = net::interfaces(&raw_net)?;
    let logs = raw
        .logs
        .as_ref()
        .map(|l| logfile::limits(l.file_bytes, l.files, l.total_bytes, l.enabled))
        .transpose()?;
    let mut containers: Vec<Container<'_>, MAX_CONTAINERS> = Vec::new();
    for (i, rc) in raw.containers.iter().enumerate() {
        let c = container(i, rc)?;
        if containers.iter().any(|o| o.id == c.id) {
            return Err(invalid(
                format!("containers[{i}].id"),
                format!("duplicate id \"{}\"", c.id),
            ));
        }
        // Capacity equals the scan's limit, so this push cannot fail.
        containers.push(c).map_err(|_| Error::TooMany {
            field: "containers".into(),
            limit: MAX_CONTAINERS,
            name: "MAX_CONTAINERS",
        })?;
    }
    let board = Board {
        hostname: raw.hostname,
        watchdog,
        step_timeout_secs,
        unsafe_no_pivot: raw.unsafe_no_pivot.unwrap_or(false),
        modules: raw.modules.unwrap_or_default(),
        root,
        root_timeout_secs,
        data,
        network,
        logs,
        containers,
    };
    super::order::start_order(&board)?;
    Ok(board)
}

/// Reads `path` into `buf` (at most `buf.len()`, [`MAX_BOARD_BYTES`] in PID 1) and returns
/// the bytes read.
pub fn read<'b>(path: &str, buf: &'b mut [u8]) -> Result<&'b [u8], Error> {
    use std::io::Read;
    // A FIFO would block PID 1 for ever; a device such as /dev/zero never ends.
    let mut f = crate::spec::open_regular(std::path::Path::new(path)).map_err(|e| match e {
        crate::spec::OpenError::Io(e) => Error::Read {
            errno: io_errno(&e),
        },
        crate::spec::OpenError::NotRegular(what) => Error::NotRegular { what },
    })?;
    let mut n = 0;
    loop {
        let Some(rest) = buf.get_mut(n..) else {
            return Err(Error::TooLarge);
        };
        if rest.is_empty() {
            // Buffer full: the file is too large if anything is left.
            let mut probe = [0u8; 1];
            return match f.read(&mut probe) {
                Ok(0) => Ok(buf),
                Ok(_) => Err(Error::TooLarge),
                Err(e) => Err(Error::Read {
                    errno: io_errno(&e),
                }),
            };
        }
        match f.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(Error::Read {
                    errno: io_errno(&e),
                })
            }
        }
    }
    buf.get(..n).ok_or(Error::TooLarge)
}

pub(crate) fn io_errno(e: &std::io::Error) -> nix::Error {
    nix::Error::from_raw(e.raw_os_error().unwrap_or(libc::EIO))
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXAMPLE: &str = r#"{"hostname":"dory-aarch64",
 "watchdog":{"device":"/dev/watchdog","timeoutSecs":15},
 "containers":[
   {"id":"hello","bundle":"/containers/hello","kind":"oneshot","onFailure":"rescue"},
   {"id":"ticker","bundle":"/containers/ticker","kind":"service","restart":{"policy":"always","initialDelayMs":100,"factor":2,"maxDelayMs":2000,"maxRetries":5,"resetWindowSecs":60},"stopSignal":"SIGTERM","stopGraceMs":1000,
    "health":{"args":["/bin/sh","-c","test -e /tmp"],"intervalMs":1000,"timeoutMs":500,"failures":3}},
   {"id":"crasher","bundle":"/containers/crasher","kind":"service","restart":{"policy":"on-failure","initialDelayMs":100,"factor":2,"maxDelayMs":1000,"maxRetries":2,"resetWindowSecs":60},"onGiveUp":"ignore"},
   {"id":"shutdown","bundle":"/containers/shutdown","kind":"service","after":["ticker"],"restart":{"policy":"never"}}
 ]}"#;

    fn err(text: &str) -> String {
        parse(text.as_bytes()).unwrap_err().to_string()
    }

    /// Found by the board fuzz target: with `resetWindowSecs: 0` every run counted as
    /// healthy, so a crash loop restarted for ever at the first delay.
    #[test]
    fn a_zero_reset_window_is_refused() {
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","restart":{"resetWindowSecs":0}}]}"#),
            "containers[0].restart.resetWindowSecs: must be at least 1 (0: a crash loop for ever)"
        );
    }

    /// Found by the board fuzz target: the scan took `050`, serde-json-core refused it,
    /// and the error named neither the field nor the position.
    #[test]
    fn a_number_with_a_leading_zero_names_its_field() {
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","restart":{"initialDelayMs":050}}]}"#),
            "containers[0].restart.initialDelayMs: a JSON number has no leading zeros"
        );
        assert_eq!(
            err(r#"{"stepTimeoutSecs":00,"containers":[]}"#),
            "stepTimeoutSecs: a JSON number has no leading zeros"
        );
        // A single zero is a number.
        assert!(parse(br#"{"containers":[{"id":"a","bundle":"/a","stopGraceMs":0}]}"#).is_ok());
    }

    #[test]
    fn network_interfaces_static_and_dhcp() {
        let text = r#"{"network":[
 {"interface":"eth0","address":"10.0.2.77/24","gateway":"10.0.2.2","dns":["10.0.2.3"],"timeoutSecs":5},
 {"interface":"wlan0","dhcp":true}],
 "containers":[]}"#;
        let b = parse(text.as_bytes()).unwrap();
        assert_eq!(b.network.len(), 2);
        assert_eq!(b.network[0].name, "eth0");
        assert_eq!(b.network[0].timeout_secs, 5);
        assert_eq!(b.network[1].setup, net::Setup::Dhcp);
        assert!(parse(br#"{"containers":[]}"#).unwrap().network.is_empty());
        assert_eq!(
            err(r#"{"network":[{"interface":"eth0","dhcp":true,"mtu":1500}],"containers":[]}"#),
            "network[0].mtu: unknown field"
        );
        assert_eq!(
            err(
                r#"{"network":[{"interface":"eth0","address":"10.0.0.2/8","dns":["1.1.1.1","1.1.1.2","1.1.1.3","1.1.1.4"]}],"containers":[]}"#
            ),
            "network[0].dns: more than 3 entries (MAX_DNS)"
        );
        let five = r#"{"interface":"e","dhcp":true}"#;
        assert_eq!(
            err(&format!(
                r#"{{"network":[{five},{five},{five},{five},{five}],"containers":[]}}"#
            )),
            "network: more than 4 entries (MAX_INTERFACES)"
        );
        assert_eq!(
            err(r#"{"network":[{"dhcp":true}],"containers":[]}"#),
            "network[0].interface: missing (required)"
        );
        assert!(
            err(r#"{"containers":[{"id":"log","bundle":"/b","data":true}]}"#)
                .starts_with("containers[0].id: \"log\" with \"data\": true would own /data/log")
        );
        assert!(parse(br#"{"containers":[{"id":"log","bundle":"/b"}]}"#).is_ok());
    }

    #[test]
    fn a_real_root_with_modules_and_data() {
        let text = r#"{"modules":["virtio_blk","ext4"],
 "root":{"device":"PARTUUID=d0e1f2a3-01","fstype":"squashfs","timeoutSecs":20},
 "data":{"device":"/dev/vda2","fstype":"ext4"},
 "containers":[{"id":"c","bundle":"/containers/c","data":true}]}"#;
        let b = parse(text.as_bytes()).unwrap();
        assert_eq!(b.modules.as_slice(), ["virtio_blk", "ext4"]);
        assert_eq!(
            b.root,
            Some(Volume {
                device: "PARTUUID=d0e1f2a3-01",
                fstype: "squashfs"
            })
        );
        assert_eq!(b.root_timeout_secs, 20);
        assert_eq!(b.data.map(|d| d.device), Some("/dev/vda2"));
        assert!(b.containers[0].data);
        let plain = parse(br#"{"containers":[]}"#).unwrap();
        assert!(plain.root.is_none() && plain.modules.is_empty());
        assert_eq!(plain.root_timeout_secs, DEFAULT_ROOT_TIMEOUT_SECS);
    }

    #[test]
    fn real_root_errors_name_the_field() {
        let c = r#""containers":[]"#;
        for (text, want) in [
            (
                format!(r#"{{"root":{{"device":"LABEL=x","fstype":"ext4"}},{c}}}"#),
                "root.device",
            ),
            (
                format!(r#"{{"root":{{"device":"/dev/vda1","fstype":"vfat"}},{c}}}"#),
                "root.fstype",
            ),
            (
                format!(
                    r#"{{"root":{{"device":"/dev/vda1","fstype":"ext4","timeoutSecs":0}},{c}}}"#
                ),
                "root.timeoutSecs: 0 is outside 1-300 (limit)",
            ),
            (
                format!(r#"{{"data":{{"device":"/dev/vda2","fstype":"ext4"}},{c}}}"#),
                "data: needs a root",
            ),
            (
                format!(
                    r#"{{"data":{{"device":"/dev/vda2","fstype":"ext4","timeoutSecs":3}},{c}}}"#
                ),
                "data.timeoutSecs",
            ),
            (
                format!(r#"{{"modules":["ext4","../x"],{c}}}"#),
                "modules[1]",
            ),
            (
                format!(r#"{{"root":{{"device":"/dev/vda1"}},{c}}}"#),
                "root.fstype",
            ),
        ] {
            let e = err(&text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }

    #[test]
    fn unsafe_no_pivot_is_an_explicit_boolean() {
        let b = parse(br#"{"containers":[]}"#).unwrap();
        assert!(!b.unsafe_no_pivot);
        let b = parse(br#"{"unsafeNoPivot":true,"containers":[]}"#).unwrap();
        assert!(b.unsafe_no_pivot);
        let b = parse(br#"{"unsafeNoPivot": false ,"containers":[]}"#).unwrap();
        assert!(!b.unsafe_no_pivot);
        assert_eq!(
            err(r#"{"unsafeNoPivot":"yes","containers":[]}"#),
            "unsafeNoPivot: expected true or false"
        );
        assert_eq!(
            err(r#"{"unsafeNoPivot":1,"containers":[]}"#),
            "unsafeNoPivot: expected true or false"
        );
        assert_eq!(
            err(r#"{"unsafeNoPivot":null,"containers":[]}"#),
            "unsafeNoPivot: expected true or false"
        );
        assert_eq!(
            err(r#"{"unsafeNoPivots":true,"containers":[]}"#),
            "unsafeNoPivots: unknown field"
        );
    }

    #[test]
    fn parses_the_issue_example() {
        let b = parse(EXAMPLE.as_bytes()).unwrap();
        assert_eq!(b.hostname, Some("dory-aarch64"));
        let w = b.watchdog.as_ref().unwrap();
        assert_eq!((w.device, w.timeout_secs), ("/dev/watchdog", 15));
        assert_eq!(b.containers.len(), 4);
        let hello = &b.containers[0];
        assert_eq!(
            (hello.id, hello.kind, hello.on_failure),
            ("hello", Kind::Oneshot, OnFailure::Rescue)
        );
        let t = &b.containers[1];
        assert_eq!(t.kind, Kind::Service);
        assert_eq!(t.restart.policy, Policy::Always);
        assert_eq!(
            (
                t.restart.initial_delay_ms,
                t.restart.factor,
                t.restart.max_delay_ms
            ),
            (100, 2, 2000)
        );
        assert_eq!(
            (t.restart.max_retries, t.restart.reset_window_secs),
            (5, 60)
        );
        assert_eq!((t.stop_signal, t.stop_grace_ms), (Signal::SIGTERM, 1000));
        let h = t.health.as_ref().unwrap();
        assert_eq!(h.args.as_slice(), &["/bin/sh", "-c", "test -e /tmp"]);
        assert_eq!((h.interval_ms, h.timeout_ms, h.failures), (1000, 500, 3));
        let c = &b.containers[2];
        assert_eq!(
            (c.restart.policy, c.restart.max_retries, c.on_give_up),
            (Policy::OnFailure, 2, OnGiveUp::Ignore)
        );
        let s = &b.containers[3];
        assert_eq!(s.after.as_slice(), &["ticker"]);
        assert_eq!(s.restart.policy, Policy::Never);
        // Unspecified restart keys keep their defaults.
        assert_eq!(s.restart.max_retries, DEFAULT_RESTART.max_retries);
        assert_eq!(s.stop_grace_ms, DEFAULT_STOP_GRACE_MS);
    }

    #[test]
    fn minimal_board_gets_defaults() {
        let b = parse(br#"{"containers":[{"id":"a","bundle":"/a"}]}"#).unwrap();
        let a = &b.containers[0];
        assert_eq!(a.kind, Kind::Service);
        assert_eq!(a.restart, DEFAULT_RESTART);
        assert_eq!(a.stop_signal, Signal::SIGTERM);
        assert!(b.hostname.is_none() && b.watchdog.is_none() && a.health.is_none());
    }

    #[test]
    fn unknown_policy_names_the_field() {
        let t = EXAMPLE.replace("\"policy\":\"on-failure\"", "\"policy\":\"sometimes\"");
        assert_eq!(
            err(&t),
            "containers[2].restart.policy: unknown policy \"sometimes\" (expected always, on-failure or never)"
        );
    }

    #[test]
    fn unknown_keys_are_rejected_with_their_path() {
        let t = EXAMPLE.replace("\"stopGraceMs\"", "\"stopGraceMS\"");
        assert_eq!(err(&t), "containers[1].stopGraceMS: unknown field");
        assert_eq!(
            err(r#"{"containers":[],"extra":1}"#),
            "extra: unknown field"
        );
        let t = EXAMPLE.replace("\"failures\":3", "\"failures\":3,\"retries\":1");
        assert_eq!(err(&t), "containers[1].health.retries: unknown field");
    }

    #[test]
    fn each_error_kind() {
        assert_eq!(err(r#"{}"#), "containers: missing (required)");
        assert_eq!(
            err(r#"{"containers":[{"id":"a"}]}"#),
            "containers[0].bundle: missing (required)"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","id":"b"}]}"#),
            "containers[0].id: given twice"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","stopGraceMs":"1000"}]}"#),
            "containers[0].stopGraceMs: expected a non-negative integer"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","stopGraceMs":1.5}]}"#),
            "containers[0].stopGraceMs: expected a non-negative integer"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","stopGraceMs":-1}]}"#),
            "containers[0].stopGraceMs: expected a non-negative integer"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","stopGraceMs":99999999999}]}"#),
            "containers[0].stopGraceMs: 99999999999 is larger than 4294967295"
        );
        assert_eq!(err(r#"{"containers":{}}"#), "containers: expected an array");
        assert_eq!(
            err(r#"{"hostname":null,"containers":[]}"#),
            "hostname: expected a string"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a\"b","bundle":"/a"}]}"#),
            "containers[0].id: backslash escapes are not supported in board.json strings"
        );
        assert_eq!(
            err(r#"{"containers":[}"#),
            "invalid JSON at byte 15: expected a value"
        );
        assert_eq!(
            err(r#"{"containers":[]} x"#),
            "invalid JSON at byte 18: expected end of document"
        );
        assert_eq!(err(""), "invalid JSON at byte 0: expected a value");
        assert_eq!(
            err(r#"{"containers":[{"id":"a b","bundle":"/a"}]}"#),
            "containers[0].id: \"a b\" is not a valid id (1-64 of A-Z a-z 0-9 _ - .)"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"a"}]}"#),
            "containers[0].bundle: \"a\" is not an absolute path"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a"},{"id":"a","bundle":"/b"}]}"#),
            "containers[1].id: duplicate id \"a\""
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","kind":"daemon"}]}"#),
            "containers[0].kind: unknown kind \"daemon\" (expected oneshot or service)"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","kind":"oneshot","restart":{}}]}"#),
            "containers[0].restart: only allowed for kind \"service\""
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","onFailure":"reboot"}]}"#),
            "containers[0].onFailure: only allowed for kind \"oneshot\""
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","kind":"oneshot","onFailure":"explode"}]}"#),
            "containers[0].onFailure: unknown action \"explode\" (expected rescue, ignore, reboot or poweroff)"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","onGiveUp":"rescue"}]}"#),
            "containers[0].onGiveUp: unknown action \"rescue\" (expected ignore, reboot or poweroff)"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","stopSignal":"SIGFOO"}]}"#),
            "containers[0].stopSignal: unknown signal \"SIGFOO\""
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","restart":{"factor":0}}]}"#),
            "containers[0].restart.factor: must be at least 1"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","health":{"args":[]}}]}"#),
            "containers[0].health.args: must not be empty"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","health":{"args":["true"]}}]}"#),
            "containers[0].health.args[0]: \"true\" is not an absolute path (no PATH search)"
        );
        assert_eq!(
            err(
                r#"{"containers":[{"id":"a","bundle":"/a","health":{"args":["/t"],"timeoutMs":0}}]}"#
            ),
            "containers[0].health.timeoutMs: must be at least 1"
        );
        assert_eq!(
            err(r#"{"watchdog":{"device":"/dev/watchdog","timeoutSecs":1},"containers":[]}"#),
            "watchdog.timeoutSecs: must be at least 2"
        );
        assert_eq!(
            err(r#"{"stepTimeoutSecs":0,"containers":[]}"#),
            "stepTimeoutSecs: 0 is outside 1-3600 (limit)"
        );
        assert_eq!(
            err(r#"{"stepTimeoutSecs":3601,"containers":[]}"#),
            "stepTimeoutSecs: 3601 is outside 1-3600 (limit)"
        );
        assert_eq!(
            err(r#"{"containers":[{"id":"a","bundle":"/a","after":["zz"]}]}"#),
            "containers[0].after[0]: unknown container \"zz\""
        );
    }

    #[test]
    fn capacities_are_named() {
        let mut t = String::from(r#"{"containers":["#);
        for i in 0..=MAX_CONTAINERS {
            if i > 0 {
                t.push(',');
            }
            t.push_str(&format!(r#"{{"id":"c{i}","bundle":"/b"}}"#));
        }
        t.push_str("]}");
        assert_eq!(err(&t), "containers: more than 16 entries (MAX_CONTAINERS)");
        let args = vec!["\"/x\""; MAX_HEALTH_ARGS + 1].join(",");
        let t = format!(
            r#"{{"containers":[{{"id":"a","bundle":"/a","health":{{"args":[{args}]}}}}]}}"#
        );
        assert_eq!(
            err(&t),
            "containers[0].health.args: more than 16 entries (MAX_HEALTH_ARGS)"
        );
    }

    #[test]
    fn deep_nesting_is_bounded() {
        // Wrong type at a known key is reported before any recursion into it.
        let t = format!(
            r#"{{"containers":[{{"id":"a","bundle":"/a","after":[{}]}}]}}"#,
            "[".repeat(10000)
        );
        assert_eq!(err(&t), "containers[0].after[0]: expected a string");
    }

    #[test]
    fn read_caps_the_size() {
        let dir = std::env::temp_dir().join(format!("dory-board-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("big.json");
        std::fs::write(&p, vec![b' '; MAX_BOARD_BYTES + 1]).unwrap();
        let mut buf = [0u8; MAX_BOARD_BYTES];
        assert_eq!(
            read(p.to_str().unwrap(), &mut buf).unwrap_err(),
            Error::TooLarge
        );
        std::fs::write(&p, EXAMPLE).unwrap();
        let text = read(p.to_str().unwrap(), &mut buf).unwrap();
        assert_eq!(parse(text).unwrap().containers.len(), 4);
        assert!(matches!(
            read("/nonexistent/board.json", &mut buf),
            Err(Error::Read { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn stdio_log_or_console() {
        let b = parse(br#"{"containers":[{"id":"a","bundle":"/a","stdio":"console"},{"id":"b","bundle":"/b"}]}"#).unwrap();
        assert!(b.containers[0].console);
        assert!(!b.containers[1].console);
        // The control socket is an explicit opt-in, off by default.
        assert!(!b.containers[0].ctl);
        let b = parse(br#"{"containers":[{"id":"a","bundle":"/a","ctl":true}]}"#).unwrap();
        assert!(b.containers[0].ctl);
        let e = parse(br#"{"containers":[{"id":"a","bundle":"/a","stdio":"tty"}]}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            "containers[0].stdio: unknown value \"tty\" (expected log or console)"
        );
    }
}
