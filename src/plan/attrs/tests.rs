//! The pure half of process attributes: names to numbers, lists to masks, and every
//! refusal naming its field and limit. Configs go through the real parser.

use super::*;
use crate::spec::{parse, DEFAULT_CONFIG};

/// The seed config with `member` added to the object opened by `anchor`.
fn config_with(anchor: &str, member: &str) -> String {
    assert_eq!(DEFAULT_CONFIG.matches(anchor).count(), 1, "{anchor}");
    DEFAULT_CONFIG.replacen(anchor, &format!("{anchor}{member},"), 1)
}

/// The process attributes of the seed config with `member` in `process`.
fn process_attrs(member: &str) -> Result<ProcessAttrs, String> {
    let text = config_with("\"process\": {", member);
    let spec = parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let p = spec.process.as_ref().ok_or("no process")?;
    ProcessAttrs::of_process(p).map_err(|e| e.to_string())
}

/// The container-wide attributes of the seed config with `member` in `linux`.
fn linux_attrs(member: &str) -> Result<ProcessAttrs, String> {
    let text = config_with("\"linux\": {", member);
    let spec = parse(text.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = ProcessAttrs::NONE;
    out.add_linux(spec.linux.as_ref())
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn bits(m: &BitMask) -> Vec<usize> {
    (0..CPU_SETSIZE).filter(|b| m.is_set(*b)).collect()
}

#[test]
fn cpu_lists_parse_like_runc() {
    let m = parse_list("0-3,7", CPU_SETSIZE).unwrap();
    assert_eq!(bits(&m), vec![0, 1, 2, 3, 7]);
    // Spaces around members and empty members are allowed, as runc's parser does.
    let m = parse_list(" 1 , ,5-5,", CPU_SETSIZE).unwrap();
    assert_eq!(bits(&m), vec![1, 5]);
    assert_eq!(bits(&parse_list("1023", CPU_SETSIZE).unwrap()), vec![1023]);
    assert_eq!(m.0[0], 0b10_0010);
}

#[test]
fn bad_cpu_lists_are_refused_with_the_reason() {
    for (text, e) in [
        ("3-1", ListError::Reversed),
        ("a", ListError::Syntax),
        ("1-", ListError::Syntax),
        ("-1", ListError::Syntax),
        ("1-2-3", ListError::Syntax),
        ("+1", ListError::Syntax),
        (",, ", ListError::NoMembers),
        (
            "1024",
            ListError::TooLarge {
                value: 1024,
                limit: 1024,
            },
        ),
        (
            "0-99999999999999999999",
            ListError::TooLarge {
                value: u64::MAX,
                limit: 1024,
            },
        ),
    ] {
        assert_eq!(parse_list(text, CPU_SETSIZE), Err(e), "{text:?}");
    }
    assert_eq!(
        parse_list("4", 4).unwrap_err().to_string(),
        "4 is above 3 (limit)"
    );
}

#[test]
fn scheduler_becomes_sched_attr() {
    let a = process_attrs(
        r#""scheduler": {"policy": "SCHED_FIFO", "priority": 10, "flags": ["SCHED_FLAG_RESET_ON_FORK", "SCHED_FLAG_UTIL_CLAMP_MAX"]}"#,
    )
    .unwrap();
    let s = a.scheduler.unwrap();
    assert_eq!((s.policy, s.priority, s.flags), (1, 10, 0x41));
    assert_eq!(s.size, 56, "SCHED_ATTR_SIZE_VER1");
    let a = process_attrs(r#""scheduler": {"policy": "SCHED_BATCH", "nice": -5}"#).unwrap();
    let s = a.scheduler.unwrap();
    assert_eq!((s.policy, s.nice, s.priority), (3, -5, 0));
    let a = process_attrs(
        r#""scheduler": {"policy": "SCHED_DEADLINE", "runtime": 1000000, "deadline": 2000000, "period": 4000000}"#,
    )
    .unwrap();
    let s = a.scheduler.unwrap();
    assert_eq!(
        (s.policy, s.runtime, s.deadline, s.period),
        (6, 1_000_000, 2_000_000, 4_000_000)
    );
}

#[test]
fn bad_scheduler_names_field_and_limit() {
    for (member, msg) in [
        (
            r#"{"policy": "SCHED_FAST"}"#,
            "process.scheduler.policy: unknown policy \"SCHED_FAST\" (one of SCHED_OTHER, SCHED_FIFO, SCHED_RR, SCHED_BATCH, SCHED_ISO, SCHED_IDLE, SCHED_DEADLINE)",
        ),
        (
            r#"{"policy": "SCHED_OTHER", "nice": 20}"#,
            "process.scheduler.nice: 20 is outside -20..19 (limit)",
        ),
        (
            r#"{"policy": "SCHED_RR", "priority": 100}"#,
            "process.scheduler.priority: 100 is outside 1..99 (limit) for SCHED_RR",
        ),
        (
            r#"{"policy": "SCHED_FIFO"}"#,
            "process.scheduler.priority: 0 is outside 1..99 (limit) for SCHED_FIFO",
        ),
        (
            r#"{"policy": "SCHED_OTHER", "priority": 3}"#,
            "process.scheduler.priority: only SCHED_FIFO and SCHED_RR take a priority",
        ),
        (
            r#"{"policy": "SCHED_RR", "priority": 1, "period": 5}"#,
            "process.scheduler: runtime, deadline and period are only for SCHED_DEADLINE",
        ),
        (
            r#"{"policy": "SCHED_OTHER", "flags": ["SCHED_FLAG_X"]}"#,
            "process.scheduler.flags[0]: unknown flag \"SCHED_FLAG_X\"",
        ),
    ] {
        let e = process_attrs(&format!("\"scheduler\": {member}")).unwrap_err();
        assert!(e.starts_with(&format!("config.json: {msg}")), "{e}");
    }
    // The JSON shape is the scanner's: a missing policy is named before serde runs.
    let e = process_attrs(r#""scheduler": {"nice": 1}"#).unwrap_err();
    assert_eq!(
        e,
        "config.json: process.scheduler.policy: missing (required)"
    );
}

#[test]
fn io_priority_becomes_class_and_level() {
    let a = process_attrs(r#""ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 7}"#);
    assert_eq!(a.unwrap().io_priority, Some(3 << 13 | 7));
    let a = process_attrs(r#""ioPriority": {"class": "IOPRIO_CLASS_RT", "priority": 0}"#);
    assert_eq!(a.unwrap().io_priority, Some(1 << 13));
    for (member, msg) in [
        (
            r#"{"class": "IOPRIO_CLASS_NONE", "priority": 0}"#,
            "process.ioPriority.class: unknown class \"IOPRIO_CLASS_NONE\" (one of IOPRIO_CLASS_RT, IOPRIO_CLASS_BE, IOPRIO_CLASS_IDLE)",
        ),
        (
            r#"{"class": "IOPRIO_CLASS_BE", "priority": 8}"#,
            "process.ioPriority.priority: 8 is outside 0..7 (limit)",
        ),
        (
            r#"{"class": "IOPRIO_CLASS_BE", "priority": -1}"#,
            "process.ioPriority.priority: -1 is outside 0..7 (limit)",
        ),
        (
            r#"{"class": "IOPRIO_CLASS_BE", "priority": 4294967296}"#,
            "process.ioPriority.priority: 4294967296 is outside 0..7 (limit)",
        ),
    ] {
        let e = process_attrs(&format!("\"ioPriority\": {member}")).unwrap_err();
        assert_eq!(e, format!("config.json: {msg}"));
    }
}

#[test]
fn exec_cpu_affinity_initial_and_final() {
    let a = process_attrs(r#""execCPUAffinity": {"initial": "1", "final": "0-1"}"#).unwrap();
    assert_eq!(bits(&a.initial_cpus.unwrap()), vec![1]);
    assert_eq!(a.final_cpus, FinalCpus::Set(parse_list("0,1", 2).unwrap()));
    // Only `initial`: the process keeps it after the cgroup join (runc).
    let a = process_attrs(r#""execCPUAffinity": {"initial": "0"}"#).unwrap();
    assert_eq!(a.final_cpus, FinalCpus::Keep);
    // Nothing (or empty strings): every CPU, not dory's own affinity.
    let a = process_attrs(r#""execCPUAffinity": {"initial": "", "final": ""}"#).unwrap();
    assert_eq!((a.initial_cpus, a.final_cpus), (None, FinalCpus::Reset));
    assert_eq!(
        process_attrs("\"x-none\": 0").unwrap().final_cpus,
        FinalCpus::Reset
    );
    let e = process_attrs(r#""execCPUAffinity": {"final": "0-1024"}"#).unwrap_err();
    assert_eq!(
        e,
        "config.json: process.execCPUAffinity.final: \"0-1024\": 1024 is above 1023 (limit)"
    );
    let e = process_attrs(r#""execCPUAffinity": {"initial": "2-1"}"#).unwrap_err();
    assert_eq!(
        e,
        "config.json: process.execCPUAffinity.initial: \"2-1\": a range ends below its start"
    );
}

#[test]
fn personality_domains() {
    let a = linux_attrs(r#""personality": {"domain": "LINUX32"}"#).unwrap();
    assert_eq!(a.personality, Some(0x0008));
    let a = linux_attrs(r#""personality": {"domain": "LINUX", "flags": []}"#).unwrap();
    assert_eq!(a.personality, Some(0));
    let e = linux_attrs(r#""personality": {"domain": "SVR4"}"#).unwrap_err();
    assert_eq!(
        e,
        "config.json: linux.personality.domain: unknown domain \"SVR4\" (one of LINUX, LINUX32)"
    );
    let e = linux_attrs(r#""personality": {"domain": "LINUX", "flags": ["ADDR_NO_RANDOMIZE"]}"#)
        .unwrap_err();
    assert!(
        e.starts_with("config.json: linux.personality.flags: "),
        "{e}"
    );
}

#[test]
fn memory_policy_modes_nodes_and_flags() {
    let a = linux_attrs(
        r#""memoryPolicy": {"mode": "MPOL_BIND", "nodes": "0-1", "flags": ["MPOL_F_STATIC_NODES"]}"#,
    )
    .unwrap();
    let m = a.memory_policy.unwrap();
    assert_eq!((m.mode, bits(&m.nodes)), (2 | 1 << 15, vec![0, 1]));
    let a = linux_attrs(r#""memoryPolicy": {"mode": "MPOL_LOCAL"}"#).unwrap();
    assert_eq!(a.memory_policy.unwrap().mode, 4);
    let a = linux_attrs(r#""memoryPolicy": {"mode": "MPOL_PREFERRED", "nodes": ""}"#).unwrap();
    assert!(a.memory_policy.unwrap().nodes.is_empty());
    for (member, msg) in [
        (
            r#"{"mode": "MPOL_FAST", "nodes": "0"}"#,
            "linux.memoryPolicy.mode: unknown mode \"MPOL_FAST\"",
        ),
        (
            r#"{"mode": "MPOL_BIND", "nodes": ""}"#,
            "linux.memoryPolicy.nodes: MPOL_BIND needs at least one node",
        ),
        (
            r#"{"mode": "MPOL_DEFAULT", "nodes": "0"}"#,
            "linux.memoryPolicy.nodes: MPOL_DEFAULT takes no nodes",
        ),
        (
            r#"{"mode": "MPOL_INTERLEAVE", "nodes": "0,2000"}"#,
            "linux.memoryPolicy.nodes: \"0,2000\": 2000 is above 1023 (limit)",
        ),
        (
            r#"{"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_X"]}"#,
            "linux.memoryPolicy.flags[0]: unknown flag \"MPOL_F_X\"",
        ),
        (
            r#"{"mode": "MPOL_BIND", "nodes": "0", "flags": ["MPOL_F_STATIC_NODES", "MPOL_F_RELATIVE_NODES"]}"#,
            "linux.memoryPolicy.flags: MPOL_F_STATIC_NODES and MPOL_F_RELATIVE_NODES exclude each other",
        ),
    ] {
        let e = linux_attrs(&format!("\"memoryPolicy\": {member}")).unwrap_err();
        assert!(e.starts_with(&format!("config.json: {msg}")), "{e}");
    }
}

#[test]
fn exec_takes_the_containers_attributes_unless_the_process_file_has_its_own() {
    let text = config_with(
        "\"process\": {",
        r#""ioPriority": {"class": "IOPRIO_CLASS_BE", "priority": 1}, "scheduler": {"policy": "SCHED_BATCH"}, "execCPUAffinity": {"final": "0"}"#,
    );
    let text = text.replacen(
        "\"linux\": {",
        "\"linux\": {\"personality\": {\"domain\": \"LINUX32\"},",
        1,
    );
    let spec = parse(text.as_bytes()).unwrap();
    let config = spec.process.as_ref();
    let given_text = config_with(
        "\"process\": {",
        r#""ioPriority": {"class": "IOPRIO_CLASS_IDLE", "priority": 0}"#,
    );
    let given_spec = parse(given_text.as_bytes()).unwrap();
    let given = given_spec.process.as_ref();
    let a = exec_attrs(config, None, spec.linux.as_ref()).unwrap();
    assert_eq!(a.io_priority, Some(2 << 13 | 1));
    assert_eq!(a.scheduler.map(|s| s.policy), Some(3));
    assert_eq!(a.final_cpus, FinalCpus::Set(parse_list("0", 1).unwrap()));
    assert_eq!(a.personality, Some(8));
    // `exec -p`: its ioPriority wins; the rest stays the container's.
    let a = exec_attrs(config, given, spec.linux.as_ref()).unwrap();
    assert_eq!(a.io_priority, Some(3 << 13));
    assert_eq!(a.scheduler.map(|s| s.policy), Some(3));
    assert_eq!(a.final_cpus, FinalCpus::Set(parse_list("0", 1).unwrap()));
    assert_eq!(a.personality, Some(8));
}

#[test]
fn the_init_ignores_exec_cpu_affinity() {
    let text = config_with(
        "\"process\": {",
        r#""execCPUAffinity": {"initial": "0", "final": "0"}"#,
    );
    let spec = parse(text.as_bytes()).unwrap();
    let rootfs = std::env::temp_dir();
    let text = text.replacen("\"path\": \"rootfs\"", &format!("\"path\": {rootfs:?}"), 1);
    let spec2 = parse(text.as_bytes()).unwrap();
    let plan = crate::plan::Plan::build(&spec2, 0, &rootfs).unwrap();
    assert_eq!(plan.process.attrs.initial_cpus, None);
    assert_eq!(plan.process.attrs.final_cpus, FinalCpus::Reset);
    // While an exec'd process from the same config gets it.
    let a = exec_attrs(spec.process.as_ref(), None, spec.linux.as_ref()).unwrap();
    assert!(a.initial_cpus.is_some());
}
