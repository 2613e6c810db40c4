//! Parsing real configs end to end, and every error the scanner and validation give.

use std::path::PathBuf;

use super::*;

const SEED: &str = DEFAULT_CONFIG;
const RUNC: &str = include_str!("../../tests/fixtures/runc-1.1.5-spec.json");
const PODMAN: &str = include_str!("../../tests/fixtures/podman-4.3-config.json");

fn err(text: &str) -> String {
    match parse(text.as_bytes()) {
        Ok(_) => panic!("parsed, but expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The seed with `from` replaced (exactly once) by `to`.
fn seed_with(from: &str, to: &str) -> String {
    assert_eq!(
        SEED.matches(from).count(),
        1,
        "{from:?} must occur once in the seed"
    );
    SEED.replacen(from, to, 1)
}

/// The seed with `member` inserted as the first member of the object that starts with
/// `anchor` (e.g. `"linux": {`; `"{"` is the top-level object).
fn seed_plus(anchor: &str, member: &str) -> String {
    if anchor == "{" {
        return SEED.replacen('{', &format!("{{{member},"), 1);
    }
    seed_with(anchor, &format!("{anchor}{member},"))
}

fn unescaped(raw: &str) -> String {
    let mut buf = [0u8; 1024];
    let n = unescape_into(raw, &mut buf).unwrap();
    String::from_utf8(buf[..n].to_vec()).unwrap()
}

/// `text` without the member `"name": {...}` (and its trailing comma).
fn without_object_member(text: &str, name: &str) -> String {
    let start = text.find(&format!("\"{name}\":")).unwrap();
    let open = start + text[start..].find('{').unwrap();
    let mut depth = 0;
    let mut end = open;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    end = open + i + 1;
                    break;
                }
            }
            _ => {}
        }
    }
    let rest = text[end..].trim_start();
    let rest = rest.strip_prefix(',').unwrap_or(rest);
    format!("{}{}", &text[..start], rest)
}

#[test]
fn spec_fits_on_the_stack() {
    // serde's visitors keep several copies of each level on the stack while parsing: the
    // lists that grow with a pod are on the heap, so this stays small whatever their
    // capacities (it was 50 KB, and parsing took ~350 KiB of stack, at 32 devices).
    let size = core::mem::size_of::<Spec<'_>>();
    eprintln!("size_of::<Spec>() = {size} bytes");
    assert!(size < 8 * 1024, "Spec is {size} bytes");
}

#[test]
fn default_config_is_the_seed() {
    // tests/fixtures/seed-config.json is a copy of the tutorial's config.json.
    assert_eq!(
        DEFAULT_CONFIG,
        include_str!("../../tests/fixtures/seed-config.json")
    );
    assert!(DEFAULT_CONFIG.starts_with("{\n  \"ociVersion\": \"1.0.2-dev\","));
    // `dory --version` reports the version `dory spec` writes.
    assert_eq!(crate::spec::SPEC_VERSION, "1.0.2-dev");
}

#[test]
fn seed_every_field() {
    let s = parse(SEED.as_bytes()).unwrap();
    assert_eq!(s.oci_version, "1.0.2-dev");
    let p = s.process.as_ref().unwrap();
    assert!(p.terminal);
    assert!(p.console_size.is_none());
    assert_eq!((p.user.uid, p.user.gid), (0, 0));
    assert_eq!(p.user.umask, None);
    assert!(p.user.additional_gids.is_empty());
    assert_eq!(p.args.as_slice(), ["sh"]);
    assert_eq!(
        p.env.as_slice(),
        [
            "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            "TERM=xterm"
        ]
    );
    assert_eq!(p.cwd, "/");
    let c = p.capabilities.as_ref().unwrap();
    let three = (1u64 << 29) | (1 << 5) | (1 << 10);
    assert_eq!(caps::mask(&c.bounding), three);
    assert_eq!(caps::mask(&c.effective), three);
    assert_eq!(caps::mask(&c.permitted), three);
    assert_eq!(caps::mask(&c.ambient), three);
    assert!(c.inheritable.is_empty());
    assert_eq!(p.rlimits.len(), 1);
    let r = &p.rlimits[0];
    assert_eq!((r.kind, r.hard, r.soft), ("RLIMIT_NOFILE", 1024, 1024));
    assert_eq!(
        rlimit_resource(r.kind),
        Some(libc::RLIMIT_NOFILE as libc::c_int)
    );
    assert!(p.no_new_privileges);
    assert_eq!(
        (p.apparmor_profile, p.selinux_label, p.oom_score_adj),
        (None, None, None)
    );
    let root = s.root.as_ref().unwrap();
    assert_eq!((root.path, root.readonly), ("rootfs", true));
    assert_eq!(s.hostname, Some("runc"));
    assert_eq!(s.domainname, None);
    assert!(s.hooks.is_none());
    assert!(s.annotations.is_empty());
    type MountRow<'a> = (&'a str, Option<&'a str>, Option<&'a str>, Vec<&'a str>);
    let mounts: Vec<MountRow<'_>> = s
        .mounts
        .iter()
        .map(|m| (m.destination, m.kind, m.source, m.options.to_vec()))
        .collect();
    assert_eq!(
        mounts,
        [
            ("/proc", Some("proc"), Some("proc"), vec![]),
            (
                "/dev",
                Some("tmpfs"),
                Some("tmpfs"),
                vec!["nosuid", "strictatime", "mode=755", "size=65536k"]
            ),
            (
                "/dev/pts",
                Some("devpts"),
                Some("devpts"),
                vec![
                    "nosuid",
                    "noexec",
                    "newinstance",
                    "ptmxmode=0666",
                    "mode=0620",
                    "gid=5"
                ]
            ),
            (
                "/dev/shm",
                Some("tmpfs"),
                Some("shm"),
                vec!["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]
            ),
            (
                "/dev/mqueue",
                Some("mqueue"),
                Some("mqueue"),
                vec!["nosuid", "noexec", "nodev"]
            ),
            (
                "/sys",
                Some("sysfs"),
                Some("sysfs"),
                vec!["nosuid", "noexec", "nodev", "ro"]
            ),
            (
                "/sys/fs/cgroup",
                Some("cgroup"),
                Some("cgroup"),
                vec!["nosuid", "noexec", "nodev", "relatime", "ro"]
            ),
        ]
    );
    let l = s.linux.as_ref().unwrap();
    let res = l.resources.as_ref().unwrap();
    assert_eq!(res.devices.len(), 1);
    let d = &res.devices[0];
    assert_eq!(
        (d.allow, d.kind, d.major, d.minor, d.access),
        (false, None, None, None, Some("rwm"))
    );
    assert!(res.memory.is_none() && res.cpu.is_none() && res.pids.is_none());
    let ns: Vec<NamespaceKind> = l
        .namespaces
        .iter()
        .map(|n| {
            assert!(n.path.is_none());
            NamespaceKind::from_name(n.kind).unwrap()
        })
        .collect();
    use NamespaceKind::*;
    assert_eq!(ns, [Pid, Network, Ipc, Uts, Mount, Cgroup]);
    let flags = ns.iter().fold(0, |f, k| f | k.clone_flag());
    assert_eq!(
        flags,
        libc::CLONE_NEWPID
            | libc::CLONE_NEWNET
            | libc::CLONE_NEWIPC
            | libc::CLONE_NEWUTS
            | libc::CLONE_NEWNS
            | libc::CLONE_NEWCGROUP
    );
    assert_eq!(
        l.masked_paths.as_slice(),
        [
            "/proc/acpi",
            "/proc/asound",
            "/proc/kcore",
            "/proc/keys",
            "/proc/latency_stats",
            "/proc/timer_list",
            "/proc/timer_stats",
            "/proc/sched_debug",
            "/sys/firmware",
            "/proc/scsi"
        ]
    );
    assert_eq!(
        l.readonly_paths.as_slice(),
        [
            "/proc/bus",
            "/proc/fs",
            "/proc/irq",
            "/proc/sys",
            "/proc/sysrq-trigger"
        ]
    );
    assert!(l.uid_mappings.is_empty() && l.gid_mappings.is_empty() && l.devices.is_empty());
    assert!(l.seccomp.is_none() && l.sysctl.is_empty() && l.time_offsets.is_empty());
    assert_eq!(
        (l.cgroups_path, l.rootfs_propagation, l.mount_label),
        (None, None, None)
    );
}

#[test]
fn runc_spec_output_parses() {
    // `runc spec` of runc 1.1.5 (tabs, no trailing newline, no cgroup namespace).
    let s = parse(RUNC.as_bytes()).unwrap();
    let seed = parse(SEED.as_bytes()).unwrap();
    let l = s.linux.as_ref().unwrap();
    let kinds: Vec<&str> = l.namespaces.iter().map(|n| n.kind).collect();
    assert_eq!(kinds, ["pid", "network", "ipc", "uts", "mount"]);
    assert_eq!(s.mounts.len(), seed.mounts.len());
    for (a, b) in s.mounts.iter().zip(seed.mounts.iter()) {
        assert_eq!(
            (a.destination, a.kind, a.source),
            (b.destination, b.kind, b.source)
        );
        assert_eq!(a.options, b.options);
    }
    let p = s.process.as_ref().unwrap();
    assert_eq!(p.args.as_slice(), ["sh"]);
    assert_eq!(
        caps::mask(&p.capabilities.as_ref().unwrap().bounding),
        (1 << 29) | (1 << 5) | (1 << 10)
    );
    assert_eq!(l.masked_paths, seed.linux.as_ref().unwrap().masked_paths);
}

#[test]
fn podman_config_parses_with_its_seccomp_profile() {
    let s = parse_unvalidated(PODMAN.as_bytes()).unwrap();
    assert_eq!(s.oci_version, "1.0.2-dev");
    let p = s.process.as_ref().unwrap();
    assert_eq!(p.user.umask, Some(18));
    assert_eq!(p.user.additional_gids.as_slice(), [0, 2, 10]);
    assert_eq!(p.args.as_slice(), ["sh", "-c", "echo hi"]);
    assert_eq!(p.env.len(), 6);
    assert_eq!(
        p.env[0],
        r#"GREETING=say \"hi\" \u003cthere\u003e \u0026 more"#
    );
    assert_eq!(unescaped(p.env[0]), r#"GREETING=say "hi" <there> & more"#);
    let c = p.capabilities.as_ref().unwrap();
    assert_eq!(c.bounding.len(), 14);
    assert_eq!(caps::mask(&c.bounding), caps::mask(&c.effective));
    assert!(c.ambient.is_empty());
    assert_eq!(p.rlimits.len(), 2);
    assert_eq!(
        (p.rlimits[1].kind, p.rlimits[1].soft),
        ("RLIMIT_NPROC", 32768)
    );
    assert!(s
        .root
        .as_ref()
        .unwrap()
        .path
        .starts_with("/var/lib/containers/storage/overlay/"));
    assert_eq!(s.mounts.len(), 12);
    assert_eq!(s.mounts[0].destination, "/hosttmp");
    assert_eq!(s.mounts[0].options.as_slice(), ["ro", "rprivate", "rbind"]);
    assert_eq!(s.annotations.len(), 8);
    assert_eq!(s.annotations.get("io.container.manager"), Some(&"libpod"));
    let l = s.linux.as_ref().unwrap();
    let res = l.resources.as_ref().unwrap();
    let mem = res.memory.unwrap();
    assert_eq!((mem.limit, mem.swap), (Some(67_108_864), Some(134_217_728)));
    assert_eq!(res.pids.unwrap().limit, 50);
    assert_eq!(l.namespaces.len(), 5);
    assert_eq!(l.namespaces[1].kind, "network");
    assert_eq!(
        l.namespaces[1].path,
        Some("/run/netns/netns-615f1dfb-d7f5-930b-329a-d6e9ee5f4860")
    );
    assert!(l
        .cgroups_path
        .unwrap()
        .starts_with("/libpod_parent/libpod-"));
    let sc = l.seccomp.as_ref().unwrap();
    assert_eq!(sc.syscalls.len(), 19);
    assert_eq!(sc.syscalls[1].names.listed(), 374);
    assert_eq!(l.masked_paths.len(), 11);
    assert_eq!(l.readonly_paths.len(), 6);
    validate(&s).unwrap();
    parse(PODMAN.as_bytes()).unwrap();

    let no_seccomp = without_object_member(PODMAN, "seccomp");
    assert!(!no_seccomp.contains("seccomp") && no_seccomp.len() < PODMAN.len() / 2);
    let s = parse(no_seccomp.as_bytes()).unwrap();
    assert!(s.linux.as_ref().unwrap().seccomp.is_none());
    assert_eq!(s.mounts.len(), 12);
    // Every string the child will use unescapes.
    for e in s.process.as_ref().unwrap().env.iter() {
        assert!(!unescaped(e).contains('\\'));
    }
}

// ---- validation errors: each names its field ----

#[test]
fn oci_version_must_be_1x() {
    assert_eq!(
        err(&seed_with("\"1.0.2-dev\"", "\"0.9.0\"")),
        "config.json: ociVersion: unsupported version \"0.9.0\" (dory reads 1.x)"
    );
}

#[test]
fn process_is_required() {
    let text = without_object_member(SEED, "process");
    assert_eq!(
        err(&text),
        "config.json: process: missing (required to run a container)"
    );
}

#[test]
fn args_must_not_be_empty() {
    let text = seed_with("\"args\": [\n      \"sh\"\n    ]", "\"args\": []");
    assert_eq!(err(&text), "config.json: process.args: must not be empty");
    let text = seed_with("\"args\": [\n      \"sh\"\n    ],", "");
    assert_eq!(err(&text), "config.json: process.args: must not be empty");
}

#[test]
fn cwd_must_be_absolute() {
    assert_eq!(
        err(&seed_with("\"cwd\": \"/\"", "\"cwd\": \"tmp\"")),
        "config.json: process.cwd: must be an absolute path, not \"tmp\""
    );
}

#[test]
fn env_must_be_name_value() {
    assert_eq!(
        err(&seed_with("\"TERM=xterm\"", "\"TERM\"")),
        "config.json: process.env[1]: must be NAME=VALUE with a non-empty NAME"
    );
}

#[test]
fn unknown_capability_names_set_and_index() {
    let text = seed_with(
        "\"bounding\": [\n        \"CAP_AUDIT_WRITE\",\n        \"CAP_KILL\",\n        \"CAP_NET_BIND_SERVICE\"",
        "\"bounding\": [\n        \"CAP_AUDIT_WRITE\",\n        \"CAP_KILL\",\n        \"CAP_FOO\"",
    );
    assert_eq!(
        err(&text),
        "config.json: process.capabilities.bounding[2]: unknown capability \"CAP_FOO\""
    );
    let text = seed_with(
        "\"ambient\": [\n        \"CAP_AUDIT_WRITE\"",
        "\"ambient\": [\n        \"CAP_AUDIT_WRIT\"",
    );
    assert_eq!(
        err(&text),
        "config.json: process.capabilities.ambient[0]: unknown capability \"CAP_AUDIT_WRIT\""
    );
    let text = seed_plus(
        "\"capabilities\": {",
        "\"inheritable\": [\"CAP_\\u004bILL\"]",
    );
    assert_eq!(
        err(&text),
        "config.json: process.capabilities.inheritable[0]: unknown capability \"CAP_\\u004bILL\""
    );
}

#[test]
fn rlimit_checks() {
    assert_eq!(
        err(&seed_with("\"RLIMIT_NOFILE\"", "\"RLIMIT_FILES\"")),
        "config.json: process.rlimits[0].type: unknown rlimit \"RLIMIT_FILES\""
    );
    assert_eq!(
        err(&seed_with("\"soft\": 1024", "\"soft\": 1025")),
        "config.json: process.rlimits[0]: soft limit 1025 is above hard limit 1024"
    );
    let text = seed_with(
        "\"rlimits\": [",
        "\"rlimits\": [{\"type\": \"RLIMIT_CORE\", \"hard\": 0, \"soft\": 0}, {\"type\": \"RLIMIT_NOFILE\", \"hard\": 1, \"soft\": 1},",
    );
    assert_eq!(
        err(&text),
        "config.json: process.rlimits[2].type: duplicate rlimit \"RLIMIT_NOFILE\""
    );
}

#[test]
fn namespace_checks() {
    assert_eq!(
        err(&seed_with("\"type\": \"network\"", "\"type\": \"foo\"")),
        "config.json: linux.namespaces[1].type: unknown namespace type \"foo\""
    );
    assert_eq!(
        err(&seed_with(
            "{\n        \"type\": \"cgroup\"",
            "{\"type\": \"pid\""
        )),
        "config.json: linux.namespaces[5].type: duplicate namespace type \"pid\""
    );
    assert_eq!(
        err(&seed_with(
            "\"type\": \"network\"",
            "\"type\": \"network\", \"path\": \"run/netns/x\""
        )),
        "config.json: linux.namespaces[1].path: must be an absolute path, not \"run/netns/x\""
    );
}

#[test]
fn id_mappings_iff_user_namespace() {
    let map = "\"uidMappings\": [{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}]";
    assert_eq!(
        err(&seed_plus("\"linux\": {", map)),
        "config.json: linux.uidMappings: given without a \"user\" entry in linux.namespaces"
    );
    let user = seed_with(
        "{\n        \"type\": \"cgroup\"\n      }",
        "{\"type\": \"cgroup\"}, {\"type\": \"user\"}",
    );
    assert_eq!(
        err(&user),
        "config.json: linux.uidMappings: required when a new user namespace is created"
    );
    let gmap = map.replace("uid", "gid");
    let with_uid = user.replacen("\"linux\": {", &format!("\"linux\": {{{map},"), 1);
    assert_eq!(
        err(&with_uid),
        "config.json: linux.gidMappings: required when a new user namespace is created"
    );
    let both = with_uid.replacen("\"linux\": {", &format!("\"linux\": {{{gmap},"), 1);
    let s = parse(both.as_bytes()).unwrap();
    let m = s.linux.as_ref().unwrap().gid_mappings[0];
    assert_eq!((m.container_id, m.host_id, m.size), (0, 100_000, 65_536));
    let zero = both.replacen("\"size\": 65536", "\"size\": 0", 1);
    assert_eq!(
        err(&zero),
        "config.json: linux.gidMappings[0].size: must be greater than zero"
    );
}

#[test]
fn root_path_is_required() {
    assert_eq!(
        err(&seed_with("\"path\": \"rootfs\"", "\"path\": \"\"")),
        "config.json: root.path: must not be empty"
    );
    assert_eq!(
        err(&seed_with("\"path\": \"rootfs\",", "")),
        "config.json: root.path: missing (required)"
    );
    assert_eq!(
        err(&without_object_member(SEED, "root")),
        "config.json: root: missing (required)"
    );
}

#[test]
fn mount_destination_must_be_absolute() {
    assert_eq!(
        err(&seed_with(
            "\"destination\": \"/dev/mqueue\"",
            "\"destination\": \"dev/mqueue\""
        )),
        "config.json: mounts[4].destination: must be an absolute path, not \"dev/mqueue\""
    );
}

#[test]
fn rootfs_propagation_values() {
    for v in ROOTFS_PROPAGATION {
        let text = seed_plus("\"linux\": {", &format!("\"rootfsPropagation\": \"{v}\""));
        assert!(parse(text.as_bytes()).is_ok(), "{v}");
    }
    assert_eq!(
        err(&seed_plus(
            "\"linux\": {",
            "\"rootfsPropagation\": \"recursive\""
        )),
        "config.json: linux.rootfsPropagation: unknown propagation \"recursive\""
    );
}

#[test]
fn errors_expose_location_and_kind() {
    let text = seed_with(
        "\"CAP_KILL\",\n        \"CAP_NET_BIND_SERVICE\"\n      ],\n      \"effective\"",
        "\"CAP_KILL\",\n        \"CAP_NOPE\"\n      ],\n      \"effective\"",
    );
    let e = parse(text.as_bytes()).unwrap_err();
    assert_eq!(e.path(), Some("process.capabilities.bounding[2]"));
    assert_eq!(
        e.location(),
        &Location::Field(Text::of("process.capabilities.bounding[2]"))
    );
    assert!(
        matches!(e.kind(), ErrorKind::UnknownName { what: "capability", name } if name.as_str() == "CAP_NOPE")
    );
    let e = parse(b"{\n  x").unwrap_err();
    assert_eq!(e.location(), &Location::Position { line: 2, column: 3 });
    assert_eq!(e.path(), None);
    let e: Box<dyn std::error::Error> = Box::new(e);
    assert!(e.to_string().starts_with("config.json: line 2, column 3: "));
}

#[test]
fn seccomp_errors_name_the_field() {
    let with = |seccomp: &str| {
        err(&seed_plus(
            "\"linux\": {",
            &format!("\"seccomp\": {seccomp}"),
        ))
    };
    assert_eq!(
        with(r#"{"defaultAction": "SCMP_ACT_FOO"}"#),
        "config.json: linux.seccomp.defaultAction: unknown action \"SCMP_ACT_FOO\""
    );
    assert_eq!(
        with(r#"{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"]}]}"#),
        "config.json: linux.seccomp.syscalls[0].action: missing (required)"
    );
    let args = r#"{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}"#;
    let too_many = [args; crate::spec::MAX_ARGS_PER_RULE + 1].join(",");
    assert_eq!(
        with(&format!(
            r#"{{"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{{"names": ["read"], "action": "SCMP_ACT_ERRNO", "args": [{too_many}]}}]}}"#
        )),
        "config.json: linux.seccomp.syscalls[0].args: more than 32 entries (limit 32)"
    );
    parse(
        seed_plus(
            "\"linux\": {",
            r#""seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}"#,
        )
        .as_bytes(),
    )
    .unwrap();
}

#[test]
fn selinux_labels_are_refused_apparmor_profiles_taken() {
    // An AppArmor profile is applied, or ignored where the host has no AppArmor (see
    // `container::apparmor`); SELinux is not supported.
    let text = seed_plus(
        "\"process\": {",
        "\"apparmorProfile\": \"cri-containerd.apparmor.d\"",
    );
    let spec = parse(text.as_bytes()).unwrap();
    let mut strings = crate::plan::Arena::new();
    let plan =
        crate::plan::ProcessPlan::build(spec.process.as_ref().unwrap(), &mut strings).unwrap();
    assert_eq!(
        strings.text(plan.apparmor.unwrap()),
        "exec cri-containerd.apparmor.d"
    );
    let long = "p".repeat(4092);
    assert_eq!(
        err(&seed_plus(
            "\"process\": {",
            &format!("\"apparmorProfile\": \"{long}\"")
        )),
        "config.json: process.apparmorProfile: 4092 bytes is longer than 4091 bytes (limit 4091)"
    );
    assert_eq!(
        err(&seed_plus(
            "\"process\": {",
            "\"selinuxLabel\": \"system_u:system_r:svirt_lxc_net_t:s0\""
        )),
        "config.json: process.selinuxLabel: SELinux labels are not supported"
    );
    assert_eq!(
        err(&seed_plus(
            "\"linux\": {",
            "\"mountLabel\": \"system_u:object_r:svirt_sandbox_file_t:s0\""
        )),
        "config.json: linux.mountLabel: SELinux mount labels are not supported"
    );
    // Empty labels ask for nothing.
    let text = seed_plus(
        "\"process\": {",
        "\"apparmorProfile\": \"\", \"selinuxLabel\": \"\"",
    );
    assert!(parse(text.as_bytes()).is_ok());
}

#[test]
fn hook_checks() {
    let hooks = "\"hooks\": {\"prestart\": [{\"path\": \"/bin/true\"}], \"poststop\": [{\"path\": \"/bin/true\"}, {\"path\": \"hook.sh\"}]}";
    assert_eq!(
        err(&seed_plus("{", hooks)),
        "config.json: hooks.poststop[1].path: must be an absolute path, not \"hook.sh\""
    );
    let hooks = "\"hooks\": {\"createRuntime\": [{\"path\": \"/bin/true\", \"args\": [\"true\"], \"env\": [\"A=1\"], \"timeout\": 0}]}";
    assert_eq!(
        err(&seed_plus("{", hooks)),
        "config.json: hooks.createRuntime[0].timeout: must be greater than zero"
    );
    let hooks = hooks.replace("\"timeout\": 0", "\"timeout\": 5");
    let text = seed_plus("{", &hooks);
    let s = parse(text.as_bytes()).unwrap();
    let h = &s.hooks.as_ref().unwrap().create_runtime[0];
    assert_eq!(
        (h.path, h.args.as_slice(), h.env.as_slice(), h.timeout),
        ("/bin/true", &["true"][..], &["A=1"][..], Some(5))
    );
}

#[test]
fn sysctl_names() {
    let ok = "\"sysctl\": {\"net.ipv4.ip_forward\": \"1\", \"kernel.msgmax\": \"65536\"}";
    let text = seed_plus("\"linux\": {", ok);
    let s = parse(text.as_bytes()).unwrap();
    assert_eq!(
        s.linux.as_ref().unwrap().sysctl.get("net.ipv4.ip_forward"),
        Some(&"1")
    );
    for (key, shown) in [
        ("net/ipv4/ip_forward", "net/ipv4/ip_forward"),
        ("net.ipv4..x", "net.ipv4..x"),
        ("net\\/ipv4", "net\\/ipv4"),
        ("\\u002e\\u002e", "\\u002e\\u002e"),
    ] {
        let text = seed_plus("\"linux\": {", &format!("\"sysctl\": {{\"{key}\": \"1\"}}"));
        assert_eq!(
            err(&text),
            format!(
                "config.json: linux.sysctl[\"{shown}\"]: a sysctl name must not be empty or contain '/' or \"..\""
            )
        );
    }
}

#[test]
fn sysctls_must_be_in_the_containers_own_namespaces() {
    // A machine-wide sysctl would be written to the host's kernel.
    let text = seed_plus("\"linux\": {", "\"sysctl\": {\"vm.swappiness\": \"10\"}");
    assert_eq!(
        err(&text),
        "config.json: linux.sysctl[\"vm.swappiness\"]: not in a kernel namespace: it would change the host (only ipc, net and uts sysctls are allowed)"
    );
    // Namespaced ones need that namespace in the config (the seed has no network one).
    let without_net = seed_with("{\n        \"type\": \"network\"\n      },", "");
    let text = without_net.replacen(
        "\"linux\": {",
        "\"linux\": {\"sysctl\": {\"net.ipv4.ip_forward\": \"1\"},",
        1,
    );
    assert_eq!(
        err(&text),
        "config.json: linux.sysctl[\"net.ipv4.ip_forward\"]: needs a \"network\" entry in linux.namespaces"
    );
}

#[test]
fn hostname_needs_uts_namespace() {
    let text = seed_with("{\n        \"type\": \"uts\"\n      },", "");
    assert_eq!(
        err(&text),
        "config.json: hostname: needs a \"uts\" entry in linux.namespaces"
    );
}

#[test]
fn device_checks() {
    let dev = "\"devices\": [{\"type\": \"c\", \"path\": \"/dev/fuse\", \"major\": 10, \"minor\": 229, \"fileMode\": 438}, {\"type\": \"x\", \"path\": \"/dev/x\"}]";
    assert_eq!(
        err(&seed_plus("\"linux\": {", dev)),
        "config.json: linux.devices[1].type: unknown device type (c, b, u or p) \"x\""
    );
    let dev = "\"devices\": [{\"type\": \"b\", \"path\": \"/dev/sda\"}]";
    assert_eq!(
        err(&seed_plus("\"linux\": {", dev)),
        "config.json: linux.devices[0]: major and minor are required for c, b and u devices"
    );
    assert_eq!(
        err(&seed_with("\"access\": \"rwm\"", "\"access\": \"rwx\"")),
        "config.json: linux.resources.devices[0].access: must be made of r, w and m, each at most once"
    );
}

#[test]
fn time_offsets() {
    let offs = "\"timeOffsets\": {\"monotonic\": {\"secs\": -5, \"nanosecs\": 7}}";
    assert_eq!(
        err(&seed_plus("\"linux\": {", offs)),
        "config.json: linux.timeOffsets: needs a new \"time\" namespace in linux.namespaces"
    );
    let text = seed_plus("\"namespaces\": [", "{\"type\": \"time\"}").replacen(
        "\"linux\": {",
        &format!("\"linux\": {{{offs},"),
        1,
    );
    let s = parse(text.as_bytes()).unwrap();
    let o = s
        .linux
        .as_ref()
        .unwrap()
        .time_offsets
        .get("monotonic")
        .copied()
        .unwrap();
    assert_eq!((o.secs, o.nanosecs), (-5, 7));
    let bad = text.replacen("monotonic", "realtime", 1);
    assert_eq!(
        err(&bad),
        "config.json: linux.timeOffsets[\"realtime\"]: unknown clock \"realtime\""
    );
}

// ---- scanner errors ----

#[test]
fn malformed_json_has_line_and_column() {
    // Drop the comma after `"terminal": true` (line 3).
    let text = seed_with("\"terminal\": true,", "\"terminal\": true");
    assert_eq!(
        err(&text),
        "config.json: line 5, column 5: expected ',' or '}'"
    );
    assert_eq!(
        err("{\"ociVersion\": \"1.0\", \"x\": [1 2]}"),
        "config.json: line 1, column 31: expected ',' or ']'"
    );
    assert_eq!(
        err("{\"ociVersion\" \"1.0\"}"),
        "config.json: line 1, column 15: expected ':'"
    );
    assert_eq!(
        err("{\"ociVersion\": \"1.0\",}"),
        "config.json: line 1, column 22: expected a member name in double quotes"
    );
    assert_eq!(err("{\"ociVersion\": tru}"), "config.json: line 1, column 16: expected a value (true, false, null, a number, a string, an object or an array)");
    assert_eq!(
        err("{\"a\": 01}"),
        "config.json: line 1, column 8: numbers must not have leading zeros"
    );
    assert_eq!(
        err("{\"a\": 1.}"),
        "config.json: line 1, column 9: expected a digit"
    );
    assert_eq!(
        err("{\"ociVersion\": \"1.0\"} {}"),
        "config.json: line 1, column 23: unexpected text after the end of the object"
    );
    assert_eq!(
        err("[]"),
        "config.json: line 1, column 1: expected '{' (config.json holds one JSON object)"
    );
    assert_eq!(
        err(" \n "),
        "config.json: line 2, column 2: file is empty (expected a JSON object)"
    );
    assert_eq!(
        err(""),
        "config.json: line 1, column 1: file is empty (expected a JSON object)"
    );
    assert_eq!(
        err("{\"a\": \"x\ty\"}"),
        "config.json: line 1, column 9: control character in a string (write it as an escape)"
    );
    assert_eq!(
        err("{\"ociVersion\": \"1\u{e9}\\x\"}"),
        "config.json: line 1, column 19: bad string escape: unknown escape after '\\'"
    );
    let bad_utf8 = b"{\"ociVersion\": \"\xff\"}";
    assert_eq!(
        parse(bad_utf8).unwrap_err().to_string(),
        "config.json: line 1, column 17: invalid UTF-8"
    );
}

#[test]
fn truncated_file() {
    let cut = SEED[..SEED.len() / 2].trim_end();
    let line = cut.matches('\n').count() + 1;
    let column = cut.len() - cut.rfind('\n').unwrap();
    assert_eq!(
        err(cut),
        format!("config.json: line {line}, column {column}: unexpected end of file")
    );
    assert_eq!(
        err("{\"ociVersion\": \"1.0"),
        "config.json: line 1, column 16: string is not terminated"
    );
    assert_eq!(
        err("{\"ociVersion\": "),
        "config.json: line 1, column 16: unexpected end of file"
    );
}

#[test]
fn every_truncation_and_deletion_is_caught_by_the_scanner() {
    // serde-json-core's errors carry no position; the scanner must catch first what it
    // would refuse. Cut the seed and the podman config at every byte, and delete every
    // single byte of the seed. Under qemu-user (ci/test-foreign) every 31st position is
    // enough: the native run covers them all.
    let step = if std::env::var_os("DORY_FOREIGN").is_some() {
        31
    } else {
        1
    };
    for text in [SEED, PODMAN] {
        for n in (0..text.len()).step_by(step) {
            if let Err(e) = parse_unvalidated(&text.as_bytes()[..n]) {
                assert!(!matches!(e.kind(), ErrorKind::Parser(_)), "cut at {n}: {e}");
            }
        }
    }
    for n in (0..SEED.len()).step_by(step) {
        let mut b = SEED.as_bytes().to_vec();
        b.remove(n);
        if let Err(e) = parse_unvalidated(&b) {
            assert!(
                !matches!(e.kind(), ErrorKind::Parser(_)),
                "byte {n} removed: {e}"
            );
        };
    }
}

#[test]
fn escapes_are_checked_everywhere() {
    assert_eq!(
        err(&seed_with("\"TERM=xterm\"", "\"TERM=x\\u0000\"")),
        "config.json: line 14, column 14: bad string escape: \\u0000 is not allowed (the value becomes a C string)"
    );
    assert_eq!(
        err(&seed_with("\"TERM=xterm\"", "\"TERM=\\uD83D\"")),
        "config.json: line 14, column 13: bad string escape: \\u escape is a lone UTF-16 surrogate"
    );
    // Even in a member dory ignores.
    assert_eq!(
        err(&seed_plus("{", "\"x-unknown\": [\"\\uDE00\"]")),
        "config.json: line 1, column 17: bad string escape: \\u escape is a lone UTF-16 surrogate"
    );
    let ok = seed_with("\"TERM=xterm\"", "\"TERM=\\uD83D\\uDE00 \\u00e9\\n\\t\\/\"");
    let s = parse(ok.as_bytes()).unwrap();
    assert_eq!(
        unescaped(s.process.as_ref().unwrap().env[1]),
        "TERM=😀 é\n\t/"
    );
}

/// Found by the config fuzz target: the scan took `-0` for an unsigned field (its value
/// is 0), serde-json-core refused the sign, and the error named no field.
#[test]
fn negative_zero_in_an_unsigned_field_names_the_field() {
    assert_eq!(
        err(&seed_with("\"uid\": 0", "\"uid\": -0")),
        "config.json: process.user.uid: expected an integer from 0 to 4294967295"
    );
    // A signed field takes it.
    let text = seed_plus("\"process\": {", "\"oomScoreAdj\": -0");
    assert_eq!(
        parse(text.as_bytes())
            .unwrap()
            .process
            .unwrap()
            .oom_score_adj,
        Some(0)
    );
}

#[test]
fn oversize_input() {
    let big = vec![b' '; MAX_CONFIG_BYTES + 1];
    assert_eq!(
        parse(&big).unwrap_err().to_string(),
        "config.json: file is larger than 1048576 bytes (limit 1048576)"
    );
}

#[test]
fn deep_nesting_does_not_overflow() {
    for open in ["[", "{\"a\":"] {
        let text = format!("{{\"ociVersion\": \"1.0\", \"x\": {}", open.repeat(10_000));
        let e = err(&text);
        assert!(
            e.ends_with("nested deeper than 32 levels (limit 32)"),
            "{e}"
        );
        assert!(e.starts_with("config.json: line 1, column "), "{e}");
    }
    // Within the limit, unknown members may nest.
    let text = seed_plus("{", &format!("\"x\": {}{}", "[".repeat(31), "]".repeat(31)));
    assert!(parse(text.as_bytes()).is_ok());
    let text = seed_plus("{", &format!("\"x\": {}{}", "[".repeat(32), "]".repeat(32)));
    assert!(err(&text).ends_with("nested deeper than 32 levels (limit 32)"));
}

#[test]
fn too_many_mounts() {
    // The seed has 7 mounts of its own.
    let one = "{\"destination\": \"/tmp\", \"type\": \"tmpfs\", \"source\": \"tmpfs\"}";
    let list = vec![one; MAX_MOUNTS - 6].join(",");
    let text = seed_with("\"mounts\": [", &format!("\"mounts\": [{list},"));
    assert_eq!(
        err(&text),
        format!("config.json: mounts: more than {MAX_MOUNTS} entries (limit {MAX_MOUNTS})")
    );
    let list = vec![one; MAX_MOUNTS - 7].join(",");
    let text = seed_with("\"mounts\": [", &format!("\"mounts\": [{list},"));
    assert_eq!(parse(text.as_bytes()).unwrap().mounts.len(), MAX_MOUNTS);
}

#[test]
fn other_capacities_name_the_field() {
    let opts = vec!["\"ro\""; MAX_MOUNT_OPTIONS + 1].join(",");
    let text = seed_with(
        "\"source\": \"proc\"",
        &format!("\"source\": \"proc\", \"options\": [{opts}]"),
    );
    assert_eq!(
        err(&text),
        format!(
            "config.json: mounts[0].options: more than {MAX_MOUNT_OPTIONS} entries (limit {MAX_MOUNT_OPTIONS})"
        )
    );
    let ann: Vec<String> = (0..=MAX_ANNOTATIONS)
        .map(|i| format!("\"a{i}\": \"v\""))
        .collect();
    let text = seed_plus("{", &format!("\"annotations\": {{{}}}", ann.join(",")));
    assert_eq!(
        err(&text),
        format!(
            "config.json: annotations: more than {MAX_ANNOTATIONS} entries (limit {MAX_ANNOTATIONS})"
        )
    );
    // Exactly the limit parses, every entry kept in order.
    let text = seed_plus(
        "{",
        &format!("\"annotations\": {{{}}}", ann[..MAX_ANNOTATIONS].join(",")),
    );
    let spec = parse(text.as_bytes()).unwrap();
    assert_eq!(spec.annotations.len(), MAX_ANNOTATIONS);
    assert_eq!(
        spec.annotations
            .get(format!("a{}", MAX_ANNOTATIONS - 1).as_str()),
        Some(&"v")
    );
    let paths = vec!["\"/x\""; MAX_PATHS + 1].join(",");
    let text = seed_plus(
        "\"linux\": {",
        &format!("\"x\": 1, \"devices\": [], \"readonlyPaths\": [{paths}], \"y\": 2"),
    );
    let text = text.replacen("\"readonlyPaths\": [\n", "\"ignored\": [\n", 1);
    assert_eq!(
        err(&text),
        format!(
            "config.json: linux.readonlyPaths: more than {MAX_PATHS} entries (limit {MAX_PATHS})"
        )
    );
}

#[test]
fn wrong_types_name_the_field() {
    assert_eq!(
        err(&seed_with("\"uid\": 0", "\"uid\": \"0\"")),
        "config.json: process.user.uid: expected an integer, found a string"
    );
    assert_eq!(
        err(&seed_with("\"uid\": 0", "\"uid\": -1")),
        "config.json: process.user.uid: expected an integer from 0 to 4294967295"
    );
    assert_eq!(
        err(&seed_with("\"uid\": 0", "\"uid\": 1.5")),
        "config.json: process.user.uid: expected an integer, found a number with a fraction or exponent"
    );
    assert_eq!(
        err(&seed_with("\"terminal\": true", "\"terminal\": \"yes\"")),
        "config.json: process.terminal: expected true or false, found a string"
    );
    assert_eq!(
        err(&seed_with("\"readonly\": true", "\"readonly\": null")),
        "config.json: root.readonly: expected true or false, found null"
    );
    assert_eq!(
        err(&seed_with("\"hostname\": \"runc\"", "\"hostname\": 7")),
        "config.json: hostname: expected a string, found a number"
    );
    assert_eq!(
        err(&seed_with("\"/proc/scsi\"", "{}")),
        "config.json: linux.maskedPaths[9]: expected a string, found an object"
    );
    assert_eq!(
        err(&seed_with("\"sh\"", "[\"sh\"]")),
        "config.json: process.args[0]: expected a string, found an array"
    );
    assert_eq!(
        err(&seed_plus("{", "\"annotations\": {\"a\": 1}")),
        "config.json: annotations[\"a\"]: expected a string, found a number"
    );
    // Optional fields may be null.
    assert!(parse(
        seed_with(
            "\"hostname\": \"runc\"",
            "\"hostname\": \"runc\", \"domainname\": null"
        )
        .as_bytes()
    )
    .is_ok());
}

#[test]
fn missing_and_duplicate_fields() {
    assert_eq!(
        err(&seed_with("\"cwd\": \"/\",", "")),
        "config.json: process.cwd: missing (required)"
    );
    assert_eq!(
        err(&seed_with("\"gid\": 0", "\"gid\": 0, \"uid\": 1")),
        "config.json: process.user.uid: given twice"
    );
    assert_eq!(
        err(&seed_plus(
            "{",
            "\"annotations\": {\"a\": \"1\", \"b\": \"2\", \"a\": \"3\"}"
        )),
        "config.json: annotations[\"a\"]: duplicate key"
    );
    assert_eq!(
        err(&seed_plus("\"linux\": {", "\"namespaces\": []")),
        "config.json: linux.namespaces: given twice"
    );
    assert_eq!(
        err("{\"process\": {}}"),
        "config.json: process.user: missing (required)"
    );
    assert_eq!(err("{}"), "config.json: ociVersion: missing (required)");
}

#[test]
fn unsupported_fields_are_refused_unless_empty() {
    assert_eq!(
        err(&seed_plus(
            "\"linux\": {",
            "\"intelRdt\": {\"closID\": \"x\"}"
        )),
        "config.json: linux.intelRdt: Intel RDT is not supported"
    );
    // Process attributes are objects (checked in `plan::attrs`); a wrong type is named.
    assert_eq!(
        err(&seed_plus("\"process\": {", "\"execCPUAffinity\": \"0-3\"")),
        "config.json: process.execCPUAffinity: expected an object, found a string"
    );
    // Empty or null values ask for nothing and are accepted.
    let text = seed_plus(
        "\"resources\": {",
        "\"blockIO\": {}, \"network\": null, \"rdma\": {}",
    );
    let text = text.replacen(
        "\"linux\": {",
        "\"linux\": {\"personality\": null, \"intelRdt\": {},",
        1,
    );
    assert!(parse(text.as_bytes()).is_ok());
    // Members the OCI spec does not define are ignored, as it asks.
    let text = seed_plus(
        "\"process\": {",
        "\"x-vendor\": {\"a\": [1, 2.5e3, true, null]}",
    );
    assert!(parse(text.as_bytes()).is_ok());
}

#[test]
fn resources_parse() {
    let res = "\"memory\": {\"limit\": 67108864, \"reservation\": 1, \"swap\": -1, \"swappiness\": 10, \"disableOOMKiller\": false}, \"cpu\": {\"shares\": 1024, \"quota\": -1, \"period\": 100000, \"cpus\": \"0-1\", \"mems\": \"0\"}, \"pids\": {\"limit\": -1}, \"hugepageLimits\": [{\"pageSize\": \"2MB\", \"limit\": 0}], \"unified\": {\"memory.high\": \"max\"}";
    let text = seed_plus("\"resources\": {", res);
    let s = parse(text.as_bytes()).unwrap();
    let r = s.linux.as_ref().unwrap().resources.as_ref().unwrap();
    let m = r.memory.unwrap();
    assert_eq!(
        (
            m.limit,
            m.reservation,
            m.swap,
            m.swappiness,
            m.disable_oom_killer
        ),
        (Some(67_108_864), Some(1), Some(-1), Some(10), Some(false))
    );
    let c = r.cpu.as_ref().unwrap();
    assert_eq!(
        (c.shares, c.quota, c.period, c.cpus, c.mems),
        (Some(1024), Some(-1), Some(100_000), Some("0-1"), Some("0"))
    );
    assert_eq!(r.pids.unwrap().limit, -1);
    assert_eq!(
        (r.hugepage_limits[0].page_size, r.hugepage_limits[0].limit),
        ("2MB", 0)
    );
    assert_eq!(r.unified.get("memory.high"), Some(&"max"));
}

// ---- reading ----

/// A temporary bundle directory, removed on drop.
struct TempBundle(PathBuf);

impl TempBundle {
    fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dory-spec-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }
}

impl Drop for TempBundle {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn read_config_reads_and_caps_size() {
    let b = TempBundle::new("read");
    let mut buf = vec![0u8; MAX_CONFIG_BYTES];
    let e = read_config(&b.0, &mut buf).unwrap_err().to_string();
    assert_eq!(
        e,
        format!(
            "config.json: {}/config.json does not exist (write one with `dory spec`, or give the bundle directory with --bundle DIR)",
            b.0.display()
        )
    );
    std::fs::write(b.0.join("config.json"), SEED).unwrap();
    let bytes = read_config(&b.0, &mut buf).unwrap();
    assert_eq!(bytes, SEED.as_bytes());
    assert_eq!(parse(bytes).unwrap().hostname, Some("runc"));
    // Exactly the limit is fine; one byte more is not.
    let mut exact = SEED.as_bytes().to_vec();
    exact.resize(MAX_CONFIG_BYTES, b' ');
    std::fs::write(b.0.join("config.json"), &exact).unwrap();
    assert_eq!(read_config(&b.0, &mut buf).unwrap().len(), MAX_CONFIG_BYTES);
    exact.push(b' ');
    std::fs::write(b.0.join("config.json"), &exact).unwrap();
    assert_eq!(
        read_config(&b.0, &mut buf).unwrap_err().to_string(),
        "config.json: file is larger than 1048576 bytes (limit 1048576)"
    );
}

// ---- class 4 and 8 of issue 9: /proc and /sys destinations, numbers with limits ----

#[test]
fn mount_destinations_inside_proc_and_sys_are_refused() {
    // The seed's mounts[4] is /dev/mqueue (type mqueue): move it somewhere else.
    let at4 = |dest: &str| {
        err(&seed_with(
            "\"destination\": \"/dev/mqueue\"",
            &format!("\"destination\": \"{dest}\""),
        ))
    };
    assert_eq!(
        at4("/proc/sys"),
        "config.json: mounts[4].destination: \"/proc/sys\" is inside /proc: only /proc itself \
         (type proc) and the lxcfs files /proc/{cpuinfo,diskstats,meminfo,stat,swaps,uptime,\
         loadavg,slabinfo,net/dev,sys/kernel/ns_last_pid,sys/crypto/fips_enabled} may be mount \
         destinations (as runc)"
    );
    for dest in [
        "/proc/../proc/sys",
        "//proc/sysrq-trigger",
        "/proc/./sys/kernel/core_pattern",
        "/tmp/../proc/1",
        // JSON escapes are undone before the check.
        "/proc\\/sys",
        "/proc/\\u0073ys",
    ] {
        let e = at4(dest);
        assert!(
            e.starts_with("config.json: mounts[4].destination: ") && e.contains("is inside /proc"),
            "{dest}: {e}"
        );
    }
    for dest in [
        "/sys/kernel",
        "/sys/./kernel/x",
        "/sys/fs/../kernel",
        "/sys/fs",
    ] {
        let e = at4(dest);
        assert!(
            e.starts_with("config.json: mounts[4].destination: ") && e.contains("is inside /sys"),
            "{dest}: {e}"
        );
    }
    // mqueue at /proc or /sys themselves: the wrong filesystem.
    assert!(at4("/proc").contains("is /proc: only a mount of type \"proc\""));
    assert!(at4("/sys/").contains("is /sys: only a mount of type \"sysfs\""));
    // Allowed: the lxcfs files, and anything under /sys/fs/cgroup.
    for dest in ["/proc/meminfo", "/proc/net/dev", "/sys/fs/cgroup/x"] {
        let text = seed_with(
            "\"destination\": \"/dev/mqueue\"",
            &format!("\"destination\": \"{dest}\""),
        );
        assert!(parse(text.as_bytes()).is_ok(), "{dest}");
    }
}

#[test]
fn real_configs_keep_their_proc_sys_and_cgroup_mounts() {
    // The seed (runc spec), runc's own output and podman's config mount proc at /proc,
    // sysfs at /sys and cgroup at /sys/fs/cgroup.
    for text in [SEED, RUNC, PODMAN] {
        let s = parse(text.as_bytes()).unwrap();
        for d in ["/proc", "/sys", "/sys/fs/cgroup"] {
            assert!(s.mounts.iter().any(|m| m.destination == d), "{d}");
        }
    }
    let shared = include_str!("../../tests/fixtures/podman-4.3-config.json");
    assert!(parse(shared.as_bytes()).is_ok());
}

#[test]
fn hook_timeout_has_a_limit() {
    for t in ["86401", "9223372036854775807"] {
        let hooks =
            format!("\"hooks\": {{\"prestart\": [{{\"path\": \"/bin/true\", \"timeout\": {t}}}]}}");
        assert_eq!(
            err(&seed_plus("{", &hooks)),
            format!("config.json: hooks.prestart[0].timeout: {t} is more than 86400 (limit)")
        );
    }
    // u64::MAX does not even fit the field's type.
    let hooks =
        "\"hooks\": {\"poststop\": [{\"path\": \"/bin/true\", \"timeout\": 18446744073709551615}]}";
    let e = err(&seed_plus("{", hooks));
    assert!(
        e.starts_with("config.json: hooks.poststop[0].timeout: expected an integer from"),
        "{e}"
    );
    let hooks = "\"hooks\": {\"prestart\": [{\"path\": \"/bin/true\", \"timeout\": 86400}]}";
    assert!(parse(seed_plus("{", hooks).as_bytes()).is_ok());
}

#[test]
fn id_mapping_ranges_end_within_32_bits() {
    let user = seed_with(
        "{\n        \"type\": \"cgroup\"\n      }",
        "{\"type\": \"cgroup\"}, {\"type\": \"user\"}",
    );
    let with = |uid: &str, gid: &str| {
        user.replacen(
            "\"linux\": {",
            &format!("\"linux\": {{\"uidMappings\": [{uid}], \"gidMappings\": [{gid}],"),
            1,
        )
    };
    let ok = "{\"containerID\": 0, \"hostID\": 100000, \"size\": 65536}";
    let top = "{\"containerID\": 4294967295, \"hostID\": 0, \"size\": 1}";
    assert!(parse(with(ok, top).as_bytes()).is_ok());
    let over = "{\"containerID\": 4294967295, \"hostID\": 0, \"size\": 2}";
    assert_eq!(
        err(&with(over, ok)),
        "config.json: linux.uidMappings[0]: containerID + size = 4294967297 is more than \
         4294967296 (limit)"
    );
    let over = "{\"containerID\": 0, \"hostID\": 4294967295, \"size\": 4294967295}";
    assert_eq!(
        err(&with(ok, over)),
        "config.json: linux.gidMappings[0]: hostID + size = 8589934590 is more than \
         4294967296 (limit)"
    );
}

#[test]
fn device_numbers_fit_the_kernel() {
    let dev = |major: i64, minor: i64| {
        seed_plus(
            "\"linux\": {",
            &format!(
                "\"devices\": [{{\"type\": \"c\", \"path\": \"/dev/x\", \"major\": {major}, \"minor\": {minor}}}]"
            ),
        )
    };
    assert!(parse(dev(4095, 1_048_575).as_bytes()).is_ok());
    assert_eq!(
        err(&dev(4096, 1)),
        "config.json: linux.devices[0].major: 4096 is more than 4095 (limit)"
    );
    assert_eq!(
        err(&dev(1, 1 << 20)),
        "config.json: linux.devices[0].minor: 1048576 is more than 1048575 (limit)"
    );
    assert_eq!(
        err(&dev(-1, 3)),
        "config.json: linux.devices[0].major: must not be negative"
    );
}

// ---- blockIO, network, rdma, netDevices ----

#[test]
fn block_io_network_rdma_and_net_devices_parse() {
    let res = r#""blockIO": {"weight": 500, "leafWeight": 300,
        "weightDevice": [{"major": 8, "minor": 0, "weight": 200}],
        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1048576}],
        "throttleWriteIOPSDevice": [{"major": 8, "minor": 0, "rate": 7}]},
        "network": {"classID": 1048577, "priorities": [{"name": "eth0", "priority": 5}]},
        "rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10000}}"#;
    let text = seed_plus("\"resources\": {", res);
    let text = text.replacen(
        "\"linux\": {",
        "\"linux\": {\"netDevices\": {\"eth1\": {\"name\": \"ctr0\"}, \"eth2\": {}},",
        1,
    );
    let s = parse(text.as_bytes()).unwrap();
    let l = s.linux.as_ref().unwrap();
    let r = l.resources.as_ref().unwrap();
    let b = r.block_io.as_ref().unwrap();
    assert_eq!((b.weight, b.leaf_weight), (Some(500), Some(300)));
    assert_eq!(
        (b.weight_device[0].major, b.weight_device[0].weight),
        (8, Some(200))
    );
    assert_eq!(b.throttle_read_bps_device[0].rate, 1_048_576);
    assert_eq!(b.throttle_write_iops_device[0].rate, 7);
    assert!(b.throttle_write_bps_device.is_empty());
    let n = r.network.as_ref().unwrap();
    assert_eq!(n.class_id, Some(1_048_577));
    assert_eq!(
        (n.priorities[0].name, n.priorities[0].priority),
        ("eth0", 5)
    );
    let rdma = r.rdma.get("mlx5_0").unwrap();
    assert_eq!(
        (rdma.hca_handles, rdma.hca_objects),
        (Some(3), Some(10_000))
    );
    assert_eq!(l.net_devices.get("eth1").unwrap().name, Some("ctr0"));
    assert_eq!(l.net_devices.get("eth2").unwrap().name, None);
}

#[test]
fn block_io_lists_and_net_devices_have_named_capacities() {
    let dev = r#"{"major": 8, "minor": 0, "rate": 1}"#;
    let list = vec![dev; MAX_BLKIO_DEVICES + 1].join(",");
    let text = seed_plus(
        "\"resources\": {",
        &format!("\"blockIO\": {{\"throttleReadBpsDevice\": [{list}]}}"),
    );
    assert_eq!(
        err(&text),
        "config.json: linux.resources.blockIO.throttleReadBpsDevice: more than 16 entries (limit 16)"
    );
    let devs: Vec<String> = (0..=MAX_NET_DEVICES)
        .map(|i| format!("\"eth{i}\": {{}}"))
        .collect();
    let text = seed_plus(
        "\"linux\": {",
        &format!("\"netDevices\": {{{}}}", devs.join(",")),
    );
    assert_eq!(
        err(&text),
        "config.json: linux.netDevices: more than 8 entries (limit 8)"
    );
    // A weight beyond u16 is a type error with the field's path.
    let text = seed_plus("\"resources\": {", "\"blockIO\": {\"weight\": 70000}");
    assert!(
        err(&text).starts_with("config.json: linux.resources.blockIO.weight: "),
        "{}",
        err(&text)
    );
}

#[test]
fn net_devices_are_validated() {
    let with = |devices: &str| seed_plus("\"linux\": {", &format!("\"netDevices\": {devices}"));
    for (devices, want) in [
        (
            r#"{"eth0": {"name": "abcdefghijklmnop"}}"#,
            "linux.netDevices[\"eth0\"].name: interface name length 16 is more than 15 (limit)",
        ),
        (
            r#"{"abcdefghijklmnop": {}}"#,
            "linux.netDevices[\"abcdefghijklmnop\"]: interface name length 16 is more than 15 (limit)",
        ),
        (
            r#"{"eth0": {"name": ""}}"#,
            "linux.netDevices[\"eth0\"].name: not an interface name: empty, \".\", \"..\", or has whitespace, '/', ':' or a JSON escape",
        ),
        (
            r#"{"eth0": {"name": ".."}}"#,
            "linux.netDevices[\"eth0\"].name: not an interface name: empty, \".\", \"..\", or has whitespace, '/', ':' or a JSON escape",
        ),
        (
            r#"{"eth0": {"name": "a:b"}}"#,
            "linux.netDevices[\"eth0\"].name: not an interface name: empty, \".\", \"..\", or has whitespace, '/', ':' or a JSON escape",
        ),
        (
            r#"{"eth0": {"name": "ctr0"}, "eth1": {"name": "ctr0"}}"#,
            "linux.netDevices[\"eth1\"].name: duplicate interface name in the container \"ctr0\"",
        ),
        (
            r#"{"eth0": {}, "eth1": {"name": "eth0"}}"#,
            "linux.netDevices[\"eth1\"].name: duplicate interface name in the container \"eth0\"",
        ),
    ] {
        assert_eq!(err(&with(devices)), format!("config.json: {want}"), "{devices}");
    }
    // Exactly 15 bytes is the kernel's limit and fine; so is a swap of two names.
    assert!(parse(with(r#"{"eth0": {"name": "abcdefghijklmno"}}"#).as_bytes()).is_ok());
    assert!(
        parse(with(r#"{"eth0": {"name": "eth1"}, "eth1": {"name": "eth0"}}"#).as_bytes()).is_ok()
    );
    // Without a network namespace there is nowhere to move them (runc refuses too).
    let text = with(r#"{"eth0": {}}"#);
    let network = "{\n        \"type\": \"network\"\n      },";
    assert_eq!(
        text.matches(network).count(),
        1,
        "the seed's network namespace"
    );
    assert_eq!(
        err(&text.replacen(network, "", 1)),
        "config.json: linux.netDevices: needs a \"network\" entry in linux.namespaces"
    );
}

#[test]
fn mount_id_mappings_are_checked_like_the_namespace_ones() {
    let with = |maps: &str| {
        seed_with(
            "\"source\": \"proc\"",
            &format!("\"source\": \"proc\", {maps}"),
        )
    };
    let one = "{\"containerID\": 1000, \"hostID\": 2000, \"size\": 1}";
    let ok = format!("\"uidMappings\": [{one}], \"gidMappings\": [{one}]");
    assert!(parse(with(&ok).as_bytes()).is_ok());
    let zero = "{\"containerID\": 0, \"hostID\": 0, \"size\": 0}";
    assert_eq!(
        err(&with(&format!("\"uidMappings\": [{one}, {zero}]"))),
        "config.json: mounts[0].uidMappings[1].size: must be greater than zero"
    );
    let over = "{\"containerID\": 0, \"hostID\": 4294967295, \"size\": 2}";
    assert_eq!(
        err(&with(&format!("\"gidMappings\": [{over}]"))),
        "config.json: mounts[0].gidMappings[0]: hostID + size = 4294967297 is more than \
         4294967296 (limit)"
    );
    let nine = [one; 9].join(", ");
    assert!(err(&with(&format!("\"uidMappings\": [{nine}]"))).contains("mounts[0].uidMappings"));
}
