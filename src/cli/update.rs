//! `update` (new resource limits for a running container) and `events` (stats).

use std::time::Duration;

use super::args::{flag, FlagSpec};
use super::{parse_or_usage, Global};
use crate::container::lifecycle::{Container, Status};
use crate::spec::{Memory, Pids, Resources};

pub(super) const UPDATE_FLAGS: &[FlagSpec] = &[
    flag("resources", Some('r'), true),
    flag("blkio-weight", None, true),
    flag("cpu-period", None, true),
    flag("cpu-quota", None, true),
    flag("cpu-share", None, true),
    flag("cpu-rt-period", None, true),
    flag("cpu-rt-runtime", None, true),
    flag("cpuset-cpus", None, true),
    flag("cpuset-mems", None, true),
    flag("kernel-memory", None, true),
    flag("kernel-memory-tcp", None, true),
    flag("memory", None, true),
    flag("memory-reservation", None, true),
    flag("memory-swap", None, true),
    flag("pids-limit", None, true),
    flag("l3-cache-schema", None, true),
    flag("mem-bw-schema", None, true),
];

/// Bytes with an optional k/m/g/t suffix (binary units, as runc's parser); -1 = unlimited.
pub fn parse_bytes(text: &str) -> Option<i64> {
    let t = text.trim();
    if t == "-1" {
        return Some(-1);
    }
    let lower = t.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (num, unit) = lower.split_at(digits_end);
    let n: i64 = num.parse().ok()?;
    let mult: i64 = match unit.trim_end_matches('b').trim_end_matches('i') {
        "" => 1,
        "k" => 1 << 10,
        "m" => 1 << 20,
        "g" => 1 << 30,
        "t" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult)
}

fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
    v.parse()
        .map_err(|_| format!("--{flag} \"{v}\": not a number"))
}

fn bytes(flag: &str, v: &str) -> Result<i64, String> {
    parse_bytes(v).ok_or_else(|| {
        format!("--{flag} \"{v}\": not a size (bytes at least 0, with k, m, g or t, or -1 for unlimited)")
    })
}

/// Largest `--resources` file read (the same cap as config.json, whose
/// `linux.resources` it holds).
const MAX_RESOURCES_BYTES: usize = crate::spec::MAX_CONFIG_BYTES;

pub fn cmd_update(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("update", argv, UPDATE_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let Some(id) = p.positional.first() else {
        eprintln!("dory update: requires the container id");
        return 1;
    };
    // Every flag and the resources file are checked before the container is looked at:
    // bad input is refused the same whether or not the container exists.
    for unsupported in [
        "l3-cache-schema",
        "mem-bw-schema",
        "kernel-memory",
        "kernel-memory-tcp",
        "cpu-rt-period",
        "cpu-rt-runtime",
    ] {
        if p.has(unsupported) {
            eprintln!("dory update: --{unsupported} is not supported");
            return 1;
        }
    }
    let file_text = match p.get("resources").map(read_resources) {
        Some(Ok(t)) => Some(t),
        Some(Err(e)) => {
            eprintln!("dory update: {e}");
            return 1;
        }
        None => None,
    };
    let mut res: Resources<'_> = match (&file_text, p.get("resources")) {
        (Some(text), Some(path)) => match serde_json_core::from_slice::<Resources<'_>>(text) {
            Ok((r, _)) => r,
            Err(_) => {
                eprintln!(
                    "dory update: --resources {path}: not a valid linux.resources JSON object"
                );
                return 1;
            }
        },
        _ => Resources::default(),
    };
    if let Err(e) = apply_flags(&p, &mut res) {
        eprintln!("dory update: {e}");
        return 1;
    }
    let c = match Container::load(&g.root, id) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dory update: {e}");
            return 1;
        }
    };
    if c.status() == Status::Stopped {
        eprintln!("dory update: container {id} is not running");
        return 1;
    }
    match c.cgroup().and_then(|cg| {
        cg.update(&res)
            .map_err(crate::container::lifecycle::Error::Cgroup)
    }) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("dory update: {e}");
            1
        }
    }
}

/// The `--resources` file (`-`: stdin), at most [`MAX_RESOURCES_BYTES`]; a path must be
/// a regular file (a FIFO without a writer would block, /dev/zero never ends).
fn read_resources(path: &str) -> Result<Vec<u8>, String> {
    use std::io::Read;
    let fail = |e: std::io::Error| format!("--resources {path}: {}", crate::spec::io_text(&e));
    let mut text = Vec::new();
    let limit = MAX_RESOURCES_BYTES as u64 + 1;
    let read = if path == "-" {
        std::io::stdin().take(limit).read_to_end(&mut text)
    } else {
        let file = crate::spec::open_regular(std::path::Path::new(path)).map_err(|e| match e {
            crate::spec::OpenError::Io(e) => fail(e),
            crate::spec::OpenError::NotRegular(what) => {
                format!("--resources {path}: is {what}: it must be a regular file")
            }
        })?;
        file.take(limit).read_to_end(&mut text)
    };
    read.map_err(fail)?;
    if text.len() > MAX_RESOURCES_BYTES {
        return Err(format!(
            "--resources {path}: larger than {MAX_RESOURCES_BYTES} bytes (limit {MAX_RESOURCES_BYTES})"
        ));
    }
    Ok(text)
}

pub(super) fn apply_flags<'a>(
    p: &'a super::args::Parsed,
    res: &mut Resources<'a>,
) -> Result<(), String> {
    let mut mem = res.memory.unwrap_or_default();
    let mut mem_set = res.memory.is_some();
    for (f, slot) in [
        ("memory", &mut mem.limit),
        ("memory-reservation", &mut mem.reservation),
        ("memory-swap", &mut mem.swap),
    ] {
        if let Some(v) = p.get(f) {
            *slot = Some(bytes(f, v)?);
            mem_set = true;
        }
    }
    if mem_set {
        res.memory = Some(Memory { ..mem });
    }
    let mut cpu = res.cpu.take().unwrap_or_default();
    let mut cpu_set = false;
    if let Some(v) = p.get("cpu-share") {
        cpu.shares = Some(num("cpu-share", v)?);
        cpu_set = true;
    }
    if let Some(v) = p.get("cpu-quota") {
        cpu.quota = Some(num("cpu-quota", v)?);
        cpu_set = true;
    }
    if let Some(v) = p.get("cpu-period") {
        cpu.period = Some(num("cpu-period", v)?);
        cpu_set = true;
    }
    if let Some(v) = p.get("cpuset-cpus") {
        cpu.cpus = Some(v);
        cpu_set = true;
    }
    if let Some(v) = p.get("cpuset-mems") {
        cpu.mems = Some(v);
        cpu_set = true;
    }
    if cpu_set
        || cpu.shares.is_some()
        || cpu.quota.is_some()
        || cpu.period.is_some()
        || cpu.cpus.is_some()
        || cpu.mems.is_some()
    {
        res.cpu = Some(cpu);
    }
    if let Some(v) = p.get("blkio-weight") {
        // As runc: the blockIO.weight of a -r file, replaced by the flag.
        res.block_io.get_or_insert_with(Default::default).weight = Some(num("blkio-weight", v)?);
    }
    if let Some(v) = p.get("pids-limit") {
        res.pids = Some(Pids {
            limit: num("pids-limit", v)?,
        });
    }
    Ok(())
}

pub(super) const EVENTS_FLAGS: &[FlagSpec] =
    &[flag("stats", None, false), flag("interval", None, true)];

pub fn cmd_events(g: &Global, argv: &[String]) -> i32 {
    let p = match parse_or_usage("events", argv, EVENTS_FLAGS) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let Some(id) = p.positional.first() else {
        eprintln!("dory events: requires the container id");
        return 1;
    };
    let interval = match p.get("interval").map(parse_duration) {
        None => Duration::from_secs(5),
        Some(Some(d)) if d.is_zero() => {
            // runc: "duration value must be greater than 0"; 0 would spin.
            eprintln!("dory events: --interval: must be greater than 0");
            return 1;
        }
        Some(Some(d)) if d > MAX_EVENTS_INTERVAL => {
            eprintln!(
                "dory events: --interval: {} s is more than {} s (limit)",
                d.as_secs(),
                MAX_EVENTS_INTERVAL.as_secs()
            );
            return 1;
        }
        Some(Some(d)) => d,
        Some(None) => {
            eprintln!("dory events: --interval: want a duration like 5s or 500ms");
            return 1;
        }
    };
    let c = match Container::load(&g.root, id) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("dory events: {e}");
            return 1;
        }
    };
    let mut ooms = 0;
    loop {
        if c.status() == Status::Stopped {
            if p.has("stats") {
                eprintln!("dory events: container {id} is not running");
                return 1;
            }
            return 0;
        }
        let cg = match c.cgroup() {
            Ok(cg) => cg,
            Err(e) => {
                eprintln!("dory events: {e}");
                return 1;
            }
        };
        let s = cg.stats();
        println!(
            "{{\"type\":\"stats\",\"id\":\"{id}\",\"data\":{{\"cpu\":{{\"usage\":{{\"total\":{}}}}},\"memory\":{{\"usage\":{{\"usage\":{},\"max\":{},\"limit\":{}}}}},\"pids\":{{\"current\":{},\"limit\":{}}}}}}}",
            s.cpu_usage_ns, s.memory_usage, s.memory_max_usage, s.memory_limit, s.pids_current, s.pids_limit
        );
        if p.has("stats") {
            return 0;
        }
        // An OOM kill since the last look becomes an "oom" event, as runc reports it.
        let now = cg.memory_events_oom().unwrap_or(ooms);
        if now > ooms {
            println!("{{\"type\":\"oom\",\"id\":\"{id}\"}}");
            ooms = now;
        }
        std::thread::sleep(interval);
    }
}

/// Longest `events --interval` (a day).
pub(super) const MAX_EVENTS_INTERVAL: Duration = Duration::from_secs(86_400);

pub(super) fn parse_duration(t: &str) -> Option<Duration> {
    if let Some(ms) = t.strip_suffix("ms") {
        return ms.parse().ok().map(Duration::from_millis);
    }
    if let Some(s) = t.strip_suffix('s') {
        return s.parse().ok().map(Duration::from_secs);
    }
    t.parse().ok().map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_bytes("1024"), Some(1024));
        assert_eq!(parse_bytes("64m"), Some(64 << 20));
        assert_eq!(parse_bytes("64MiB"), Some(64 << 20));
        assert_eq!(parse_bytes("1g"), Some(1 << 30));
        assert_eq!(parse_bytes("-1"), Some(-1));
        assert_eq!(parse_bytes("x"), None);
        assert_eq!(parse_bytes("12q"), None);
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("soon"), None);
    }
}
