//! Unit tests over a fake cgroupfs in a temporary directory (no root needed).
//!
//! The fake layout records every write in `<root>/writes.log` (`path value` lines), so the
//! tests see exactly which files were written, with which values, in which order.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;

/// This host's /proc/self/mountinfo (Debian 12 VM, hybrid: v1 hierarchies + unified),
/// with a few of its non-cgroup lines around the cgroup ones.
const HOST_MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
";

/// This host's /proc/self/cgroup (the test runner sits in a memory cgroup).
const HOST_PROC_CGROUP: &str = "\
9:name=systemd:/
8:pids:/
7:blkio:/
6:freezer:/
5:devices:/
4:memory:/process_api/c629606dd758dd1629f50261cf494bc5
3:cpuset:/
2:cpuacct:/
1:cpu:/
0::/
";

/// A pure v2 system (systemd distro style: cgroup2 at /sys/fs/cgroup with options).
const V2_MOUNTINFO: &str = "\
21 26 0:20 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
22 26 0:21 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw
26 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw
30 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
";

/// Docker-era v1: combined controllers, systemd's options, a bind mount of a hierarchy and
/// a mount point with an escaped space.
const COMBINED_MOUNTINFO: &str = "\
25 18 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:9 - tmpfs tmpfs ro,mode=755
26 25 0:23 / /sys/fs/cgroup/systemd rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,xattr,release_agent=/lib/systemd/systemd-cgroups-agent,name=systemd
29 25 0:26 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
30 25 0:27 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:14 - cgroup cgroup rw,net_cls,net_prio
31 25 0:28 / /sys/fs/cgroup/my\\040memory rw,nosuid,nodev,noexec,relatime shared:15 - cgroup cgroup rw,memory
90 60 0:26 / /mnt/again rw,relatime shared:13 - cgroup cgroup rw,cpu,cpuacct
";

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A fake cgroupfs under the temp dir, removed on drop (also when a test fails).
struct Fake {
    root: PathBuf,
}

impl Fake {
    fn new(mountinfo: &str) -> (Fake, Layout) {
        let root = std::env::temp_dir().join(format!(
            "dory-cgroup-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&root);
        fs::create_dir_all(&root).unwrap();
        let fake = Fake { root };
        let layout = Layout::fake(mountinfo, &fake.root).unwrap();
        for h in layout.v1.iter().chain(layout.unified.iter()) {
            fs::create_dir_all(&h.dir).unwrap();
        }
        if let Some(h) = layout.v1.iter().find(|h| h.mask & Ctrl::Cpuset.bit() != 0) {
            fs::write(h.dir.join("cpuset.cpus"), "0-1\n").unwrap();
            fs::write(h.dir.join("cpuset.mems"), "0\n").unwrap();
        }
        (fake, layout)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    /// The writes so far, one `path value` line each; clears the log.
    fn take_writes(&self) -> Vec<String> {
        let log = self.root.join("writes.log");
        let text = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        text.lines().map(str::to_owned).collect()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.root);
    }
}

fn resources(json: &str) -> Resources<'_> {
    serde_json_core::from_str::<Resources<'_>>(json).unwrap().0
}

/// Every directory below the mount points of `layout` (the fake's cgroups).
fn cgroup_dirs(layout: &Layout) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in fs::read_dir(dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                out.push(e.path());
                walk(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    for h in layout.v1.iter().chain(layout.unified.iter()) {
        walk(&h.dir, &mut out);
    }
    out
}

// ---- layout ----

#[test]
fn layout_of_this_hybrid_host() {
    let l = Layout::from_mountinfo(HOST_MOUNTINFO).unwrap();
    assert!(!l.is_v2());
    let got: Vec<(String, PathBuf)> = l
        .v1_hierarchies()
        .map(|(c, p)| (c.to_owned(), p.to_path_buf()))
        .collect();
    let want: Vec<(String, PathBuf)> = [
        ("cpu", "cpu"),
        ("cpuacct", "cpuacct"),
        ("cpuset", "cpuset"),
        ("memory", "memory"),
        ("devices", "devices"),
        ("freezer", "freezer"),
        ("blkio", "blkio"),
        ("pids", "pids"),
        ("name=systemd", "systemd"),
    ]
    .iter()
    .map(|(c, d)| (c.to_string(), Path::new("/sys/fs/cgroup").join(d)))
    .collect();
    assert_eq!(got, want);
    assert_eq!(l.unified_mount(), Some(Path::new("/sys/fs/cgroup/unified")));
}

#[test]
fn layout_of_a_v2_only_system() {
    let l = Layout::from_mountinfo(V2_MOUNTINFO).unwrap();
    assert!(l.is_v2());
    assert_eq!(l.v1_hierarchies().count(), 0);
    assert_eq!(l.unified_mount(), Some(Path::new("/sys/fs/cgroup")));
}

#[test]
fn layout_keeps_only_controller_options_and_first_mount() {
    let l = Layout::from_mountinfo(COMBINED_MOUNTINFO).unwrap();
    let got: Vec<(&str, &Path)> = l.v1_hierarchies().collect();
    assert_eq!(
        got,
        vec![
            ("name=systemd", Path::new("/sys/fs/cgroup/systemd")),
            ("cpu,cpuacct", Path::new("/sys/fs/cgroup/cpu,cpuacct")),
            (
                "net_cls,net_prio",
                Path::new("/sys/fs/cgroup/net_cls,net_prio")
            ),
            ("memory", Path::new("/sys/fs/cgroup/my memory")),
        ]
    );
    assert_eq!(l.unified_mount(), None);
}

#[test]
fn layout_without_cgroups_is_an_error() {
    let e = Layout::from_mountinfo("22 27 0:21 / /proc rw,relatime - proc proc rw\n").unwrap_err();
    assert!(matches!(e, Error::NoCgroupFs), "{e}");
}

#[test]
fn layout_detects_this_machine() {
    // Whatever this machine has, detect() must find cgroups and agree with the parser.
    let text = fs::read_to_string("/proc/self/mountinfo").unwrap();
    let a = Layout::detect().unwrap();
    let b = Layout::from_mountinfo(&text).unwrap();
    assert_eq!(a.is_v2(), b.is_v2());
    assert_eq!(a.v1_hierarchies().count(), b.v1_hierarchies().count());
    assert!(a.v1_hierarchies().count() > 0 || a.unified_mount().is_some());
}

// ---- creation on v1 ----

#[test]
fn v1_create_writes_each_set_field_in_order() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let res = resources(
        r#"{
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rw"},
            {"allow": true, "type": "b", "major": 8, "minor": -1, "access": "r"},
            {"allow": false, "type": "c", "major": 4}
        ],
        "memory": {"limit": 67108864, "reservation": 33554432, "swap": 134217728, "swappiness": 10},
        "cpu": {"shares": 512, "quota": 50000, "period": 100000, "mems": "0"},
        "pids": {"limit": 0}
    }"#,
    );
    let cg = Cgroup::create(&layout, "/dory/t1", Some(&res)).unwrap();
    let m = "sys/fs/cgroup/memory/dory/t1";
    let c = "sys/fs/cgroup/cpu/dory/t1";
    let s = "sys/fs/cgroup/cpuset";
    let d = "sys/fs/cgroup/devices/dory/t1";
    let want = [
        // cpuset: the new levels inherit the root's cpus and mems; the spec sets mems.
        format!("{s}/dory/cpuset.cpus 0-1"),
        format!("{s}/dory/t1/cpuset.cpus 0-1"),
        format!("{s}/dory/cpuset.mems 0"),
        format!("{m}/memory.limit_in_bytes 67108864"),
        format!("{m}/memory.memsw.limit_in_bytes 134217728"),
        format!("{m}/memory.soft_limit_in_bytes 33554432"),
        format!("{m}/memory.swappiness 10"),
        format!("{c}/cpu.shares 512"),
        format!("{c}/cpu.cfs_period_us 100000"),
        format!("{c}/cpu.cfs_quota_us 50000"),
        format!("{s}/dory/t1/cpuset.mems 0"),
        "sys/fs/cgroup/pids/dory/t1/pids.max max".to_owned(),
        format!("{d}/devices.deny a"),
        format!("{d}/devices.allow c 1:3 rw"),
        format!("{d}/devices.allow b 8:* r"),
        format!("{d}/devices.deny c 4:* rwm"),
        format!("{d}/devices.allow c *:* m"),
        format!("{d}/devices.allow b *:* m"),
        format!("{d}/devices.allow c 1:3 rwm"),
        format!("{d}/devices.allow c 1:5 rwm"),
        format!("{d}/devices.allow c 1:7 rwm"),
        format!("{d}/devices.allow c 1:8 rwm"),
        format!("{d}/devices.allow c 1:9 rwm"),
        format!("{d}/devices.allow c 5:0 rwm"),
        format!("{d}/devices.allow c 5:2 rwm"),
        format!("{d}/devices.allow c 10:200 rwm"),
        format!("{d}/devices.allow c 136:* rwm"),
    ];
    assert_eq!(fake.take_writes(), want);
    // A directory in every v1 hierarchy, name=systemd included; not in the hybrid
    // host's controller-less unified tree.
    assert!(!fake.path("sys/fs/cgroup/unified/dory/t1").exists());
    for h in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
    ] {
        assert!(
            fake.path(&format!("sys/fs/cgroup/{h}/dory/t1")).is_dir(),
            "{h}"
        );
    }
    assert_eq!(cg.v2_dir(), None);
    cg.remove().unwrap();
    assert_eq!(cgroup_dirs(&layout), Vec::<PathBuf>::new());
}

#[test]
fn v1_create_without_resources_writes_only_cpuset() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let cg = Cgroup::create(&layout, "/t2", None).unwrap();
    let s = "sys/fs/cgroup/cpuset/t2";
    assert_eq!(
        fake.take_writes(),
        [format!("{s}/cpuset.cpus 0-1"), format!("{s}/cpuset.mems 0")]
    );
    cg.remove().unwrap();
    assert!(cgroup_dirs(&layout).is_empty());
}

#[test]
fn v1_spec_cpuset_replaces_the_inherited_one_at_the_leaf() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let res = resources(r#"{"cpu": {"cpus": "1", "mems": "0"}}"#);
    let cg = Cgroup::create(&layout, "/t3", Some(&res)).unwrap();
    let s = "sys/fs/cgroup/cpuset/t3";
    let writes = fake.take_writes();
    // Then the devices hierarchy gets runc's default allow list (resources are set).
    assert_eq!(writes.len(), 2 + 11);
    assert_eq!(
        writes.get(..2).unwrap(),
        [format!("{s}/cpuset.cpus 1"), format!("{s}/cpuset.mems 0")]
    );
    cg.remove().unwrap();
}

#[test]
fn v1_cpuset_copies_from_the_nearest_ancestor_that_has_values() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    // "/dory" exists with empty cpus (made by someone else): it gets the root's value too.
    let s = "sys/fs/cgroup/cpuset";
    fs::create_dir(fake.path(&format!("{s}/dory"))).unwrap();
    fs::write(fake.path(&format!("{s}/dory/cpuset.cpus")), "\n").unwrap();
    fs::write(fake.path(&format!("{s}/dory/cpuset.mems")), "0\n").unwrap();
    let cg = Cgroup::create(&layout, "/dory/t", None).unwrap();
    assert_eq!(
        fake.take_writes(),
        [
            format!("{s}/dory/cpuset.cpus 0-1"),
            format!("{s}/dory/t/cpuset.cpus 0-1"),
            format!("{s}/dory/t/cpuset.mems 0"),
        ]
    );
    cg.remove().unwrap();
    // Nothing anywhere to copy: nothing is written (not even empty values).
    fs::write(fake.path(&format!("{s}/dory/cpuset.cpus")), "").unwrap();
    fs::write(fake.path(&format!("{s}/cpuset.cpus")), "").unwrap();
    let cg = Cgroup::create(&layout, "/dory/t", None).unwrap();
    assert_eq!(fake.take_writes(), [format!("{s}/dory/t/cpuset.mems 0")]);
    cg.remove().unwrap();
}

#[test]
fn v1_memory_limit_alone_and_hugepages() {
    let (fake, layout) = Fake::new(COMBINED_MOUNTINFO);
    let res =
        resources(r#"{"memory": {"limit": -1, "disableOOMKiller": true}, "cpu": {"shares": 0}}"#);
    let cg = Cgroup::create(&layout, "/x", Some(&res)).unwrap();
    let m = "sys/fs/cgroup/my memory/x";
    assert_eq!(
        fake.take_writes(),
        [
            format!("{m}/memory.limit_in_bytes -1"),
            format!("{m}/memory.oom_control 1")
        ]
    );
    cg.remove().unwrap();
    // No hugetlb hierarchy is mounted here: the error names the field and the controller.
    let res = resources(r#"{"hugepageLimits": [{"pageSize": "2MB", "limit": 1048576}]}"#);
    let e = Cgroup::create(&layout, "/x", Some(&res)).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.resources.hugepageLimits: no cgroup v1 hierarchy with the hugetlb controller is mounted"
    );
    assert!(cgroup_dirs(&layout).is_empty());
}

#[test]
fn v1_update_writes_only_the_new_values() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let cg = Cgroup::create(&layout, "/u", Some(&resources(r#"{"pids": {"limit": 5}}"#))).unwrap();
    fake.take_writes();
    cg.update(&resources(
        r#"{"pids": {"limit": 7}, "memory": {"limit": 1048576}}"#,
    ))
    .unwrap();
    assert_eq!(
        fake.take_writes(),
        [
            "sys/fs/cgroup/memory/u/memory.limit_in_bytes 1048576",
            "sys/fs/cgroup/pids/u/pids.max 7"
        ]
    );
    cg.remove().unwrap();
}

// ---- creation on v2 ----

#[test]
fn v2_create_enables_controllers_and_converts_values() {
    let (fake, layout) = Fake::new(V2_MOUNTINFO);
    let res = resources(
        r#"{
        "devices": [{"allow": false, "access": "rwm"}],
        "memory": {"limit": 67108864, "swap": 100663296, "reservation": 1048576, "swappiness": 60},
        "cpu": {"shares": 1024, "quota": 50000, "period": 100000, "cpus": "0-1"},
        "pids": {"limit": 10},
        "hugepageLimits": [{"pageSize": "2MB", "limit": 2097152}],
        "unified": {"memory.high": "50000000", "io.weight": "default 100"}
    }"#,
    );
    let cg = Cgroup::create(&layout, "/dory/t1", Some(&res)).unwrap();
    let r = "sys/fs/cgroup";
    let l = "sys/fs/cgroup/dory/t1";
    let enable = "cgroup.subtree_control +cpu +cpuset +memory +pids +hugetlb +io";
    let want = [
        format!("{r}/{enable}"),
        format!("{r}/dory/{enable}"),
        format!("{l}/memory.max 67108864"),
        format!("{l}/memory.swap.max 33554432"),
        format!("{l}/memory.low 1048576"),
        format!("{l}/cpu.weight 39"),
        format!("{l}/cpu.max 50000 100000"),
        format!("{l}/cpuset.cpus 0-1"),
        format!("{l}/pids.max 10"),
        format!("{l}/hugetlb.2MB.max 2097152"),
        format!("{l}/memory.high 50000000"),
        format!("{l}/io.weight default 100"),
        // The spec's 1 device rule + runc's 11 defaults, as a BPF_CGROUP_DEVICE program
        // (a fake cgroupfs journals its size instead of loading it).
        format!("{l}/devices.bpf 64 instructions"),
    ];
    assert_eq!(fake.take_writes(), want);
    assert_eq!(cg.v2_dir(), Some(fake.path(l).as_path()));
    cg.remove().unwrap();
    assert!(cgroup_dirs(&layout).is_empty());
}

#[test]
fn v2_cpu_max_forms_and_unlimited_memory() {
    let (fake, layout) = Fake::new(V2_MOUNTINFO);
    let res = resources(r#"{"cpu": {"quota": -1, "period": 250000}, "memory": {"limit": -1}}"#);
    let cg = Cgroup::create(&layout, "/c", Some(&res)).unwrap();
    let l = "sys/fs/cgroup/c";
    assert_eq!(
        fake.take_writes(),
        [
            "sys/fs/cgroup/cgroup.subtree_control +cpu +memory".to_owned(),
            format!("{l}/memory.max max"),
            format!("{l}/memory.swap.max max"),
            format!("{l}/cpu.max max 250000"),
            // runc's 11 default device rules as a BPF program.
            format!("{l}/devices.bpf 64 instructions"),
        ]
    );
    cg.remove().unwrap();
}

#[test]
fn shares_to_weight_matches_runc() {
    use super::apply::shares_to_weight;
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(1), 1);
    assert_eq!(shares_to_weight(1 << 20), 10_000);
}

// ---- errors ----

#[test]
fn errors_name_the_field_and_create_nothing() {
    let (_fake, v1) = Fake::new(HOST_MOUNTINFO);
    let (_fake2, v2) = Fake::new(V2_MOUNTINFO);
    let cases: [(&Layout, &str, &str); 6] = [
        (
            &v1,
            r#"{"unified": {"memory.high": "1"}}"#,
            "linux.resources.unified: requires cgroup v2",
        ),
        (
            &v2,
            r#"{"memory": {"disableOOMKiller": true}}"#,
            "linux.resources.memory.disableOOMKiller: cgroup v2 cannot disable the OOM killer",
        ),
        (
            &v2,
            r#"{"memory": {"limit": 2000, "swap": 1000}}"#,
            "linux.resources.memory.swap: memory+swap (swap) must be at least the memory limit",
        ),
        (
            &v2,
            r#"{"memory": {"swap": 1000}}"#,
            "linux.resources.memory.swap: a swap limit needs a memory limit",
        ),
        (
            &v1,
            r#"{"devices": [{"allow": true, "type": "x"}]}"#,
            "linux.resources.devices.type: must be \"a\", \"b\" or \"c\"",
        ),
        (
            &v2,
            r#"{"unified": {"../memory.max": "1"}}"#,
            "linux.resources.unified: keys must be cgroup file names such as \"memory.high\"",
        ),
    ];
    for (layout, json, want) in cases {
        let e = Cgroup::create(layout, "/e", Some(&resources(json))).unwrap_err();
        assert_eq!(e.to_string(), want);
    }
    assert!(cgroup_dirs(&v1).is_empty());
    assert!(cgroup_dirs(&v2).is_empty());
}

#[test]
fn cgroup_paths_that_are_refused() {
    let (_fake, layout) = Fake::new(HOST_MOUNTINFO);
    let e = Cgroup::create(&layout, "system.slice:dory:abc", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.cgroupsPath \"system.slice:dory:abc\": systemd cgroup paths (slice:prefix:name) are not supported"
    );
    let e = Cgroup::create(&layout, "/a/../../etc", None).unwrap_err();
    assert_eq!(
        e.to_string(),
        "linux.cgroupsPath \"/a/../../etc\": must not contain \"..\""
    );
    let e = Cgroup::create(&layout, "/", None).unwrap_err();
    assert!(
        e.to_string().contains("names no cgroup below the root"),
        "{e}"
    );
    assert!(cgroup_dirs(&layout).is_empty());
}

#[test]
fn failed_create_removes_only_what_it_made_v1() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    // The cpuset root has lost its cpus file: the copy fails after every mkdir.
    fs::remove_file(fake.path("sys/fs/cgroup/cpuset/cpuset.cpus")).unwrap();
    // "/dory" already exists in the memory hierarchy: it is not ours to remove.
    fs::create_dir(fake.path("sys/fs/cgroup/memory/dory")).unwrap();
    let e = Cgroup::create(
        &layout,
        "/dory/t1",
        Some(&resources(r#"{"pids": {"limit": 3}}"#)),
    )
    .unwrap_err();
    let cpus = fake.path("sys/fs/cgroup/cpuset/cpuset.cpus");
    assert_eq!(
        e.to_string(),
        format!(
            "cpuset (inherited from the parent cgroup): read {}: No such file or directory",
            cpus.display()
        )
    );
    assert_eq!(
        cgroup_dirs(&layout),
        vec![fake.path("sys/fs/cgroup/memory/dory")]
    );
}

#[test]
fn failed_write_removes_the_directories_v2() {
    let (fake, layout) = Fake::new(V2_MOUNTINFO);
    // A directory where the file should be: the write fails with EISDIR after mkdir.
    fs::create_dir(fake.path("sys/fs/cgroup/cgroup.subtree_control")).unwrap();
    let e = Cgroup::create(
        &layout,
        "/dory/t1",
        Some(&resources(r#"{"pids": {"limit": 3}}"#)),
    )
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "linux.resources (enabling controllers in cgroup.subtree_control): write {}: Is a directory",
            fake.path("sys/fs/cgroup/cgroup.subtree_control").display()
        )
    );
    assert_eq!(
        cgroup_dirs(&layout),
        vec![fake.path("sys/fs/cgroup/cgroup.subtree_control")]
    );
}

// ---- processes, freezer, removal ----

#[test]
fn add_pid_writes_every_hierarchy_and_pids_reads_back() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let cg = Cgroup::create(&layout, "/p", None).unwrap();
    fake.take_writes();
    cg.add_pid(4242).unwrap();
    let writes = fake.take_writes();
    // Nine v1 hierarchies; the hybrid host's controller-less unified tree is not used.
    assert_eq!(writes.len(), 9);
    for h in [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids", "systemd",
    ] {
        let line = format!("sys/fs/cgroup/{h}/p/cgroup.procs 4242");
        assert!(writes.contains(&line), "{line} in {writes:?}");
    }
    assert_eq!(cg.pids().unwrap(), vec![4242]);
    cg.remove().unwrap();
}

#[test]
fn freeze_and_thaw_v1() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let cg = Cgroup::create(&layout, "/f", None).unwrap();
    let state = fake.path("sys/fs/cgroup/freezer/f/freezer.state");
    cg.freeze(true).unwrap();
    assert_eq!(fs::read_to_string(&state).unwrap(), "FROZEN");
    cg.freeze(false).unwrap();
    assert_eq!(fs::read_to_string(&state).unwrap(), "THAWED");
    cg.remove().unwrap();
}

#[test]
fn freeze_and_thaw_v2_wait_for_events() {
    let (fake, layout) = Fake::new(V2_MOUNTINFO);
    let cg = Cgroup::create(&layout, "/f", None).unwrap();
    let events = fake.path("sys/fs/cgroup/f/cgroup.events");
    // The kernel would report "frozen 1" once every task stopped; the fake says so at once.
    fs::write(&events, "populated 1\nfrozen 1\n").unwrap();
    cg.freeze(true).unwrap();
    assert_eq!(
        fs::read_to_string(fake.path("sys/fs/cgroup/f/cgroup.freeze")).unwrap(),
        "1"
    );
    fs::write(&events, "populated 1\nfrozen 0\n").unwrap();
    cg.freeze(false).unwrap();
    assert_eq!(
        fs::read_to_string(fake.path("sys/fs/cgroup/f/cgroup.freeze")).unwrap(),
        "0"
    );
    fs::write(
        fake.path("sys/fs/cgroup/f/memory.events"),
        "low 0\noom 2\noom_kill 1\n",
    )
    .unwrap();
    assert_eq!(cg.memory_events_oom().unwrap(), 1);
    cg.remove().unwrap();
}

#[test]
fn freeze_needs_a_freezer_hierarchy() {
    let (_fake, layout) = Fake::new(COMBINED_MOUNTINFO);
    let cg = Cgroup::create(&layout, "/f", None).unwrap();
    let e = cg.freeze(true).unwrap_err();
    assert_eq!(
        e.to_string(),
        "freeze: no cgroup v1 hierarchy with the freezer controller is mounted"
    );
    cg.remove().unwrap();
}

#[test]
fn remove_leaves_a_shared_parent_until_it_is_empty() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let a = Cgroup::create(&layout, "/dory/a", None).unwrap();
    let b = Cgroup::create(&layout, "/dory/b", None).unwrap();
    a.remove().unwrap();
    assert!(fake.path("sys/fs/cgroup/pids/dory/b").is_dir());
    assert!(!fake.path("sys/fs/cgroup/pids/dory/a").exists());
    // Removing twice is fine (ENOENT).
    a.remove().unwrap();
    // `open` removes the leaf only; b's parent "/dory" was made by a's create, so it stays.
    Cgroup::open(&layout, "/dory/b").unwrap().remove().unwrap();
    assert_eq!(cgroup_dirs(&layout).len(), 9, "{:?}", cgroup_dirs(&layout));
    drop(b);
}

#[test]
fn relative_paths_go_under_the_callers_cgroup() {
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let own = "sys/fs/cgroup/memory/process_api/c629606dd758dd1629f50261cf494bc5";
    fs::create_dir_all(fake.path(own)).unwrap();
    let layout = layout.with_own_cgroup(HOST_PROC_CGROUP);
    let cg = Cgroup::create(
        &layout,
        "dory/r",
        Some(&resources(r#"{"memory": {"limit": 4096}}"#)),
    )
    .unwrap();
    assert!(fake.path(&format!("{own}/dory/r")).is_dir());
    assert!(fake.path("sys/fs/cgroup/cpu/dory/r").is_dir());
    assert_eq!(
        fake.take_writes()
            .iter()
            .filter(|l| l.contains("memory.limit"))
            .collect::<Vec<_>>(),
        [&format!("{own}/dory/r/memory.limit_in_bytes 4096")]
    );
    cg.remove().unwrap();
    // The caller's own cgroup stays; what create made is gone.
    assert_eq!(
        cgroup_dirs(&layout),
        vec![
            fake.path("sys/fs/cgroup/memory/process_api"),
            fake.path(own),
        ]
    );
}

#[test]
fn only_files_on_a_cgroup_filesystem_pass_the_write_check() {
    let not_cg = std::fs::File::open("/proc/self/status").unwrap();
    assert_eq!(
        super::on_cgroupfs(&not_cg).unwrap_err().raw_os_error(),
        Some(libc::EXDEV)
    );
    let real = [
        "/sys/fs/cgroup/cgroup.procs",
        "/sys/fs/cgroup/unified/cgroup.procs",
        "/sys/fs/cgroup/pids/cgroup.procs",
    ]
    .iter()
    .find_map(|p| std::fs::File::open(p).ok());
    match real {
        Some(f) => super::on_cgroupfs(&f).unwrap(),
        None => eprintln!("no cgroup filesystem mounted here: only the negative case ran"),
    }
}

// ---- blockIO, network, rdma ----

/// This host's layout plus a combined net_cls,net_prio hierarchy and an rdma one.
fn net_rdma_mountinfo() -> String {
    format!(
        "{HOST_MOUNTINFO}\
50 31 0:40 / /sys/fs/cgroup/net_cls,net_prio rw,relatime - cgroup cgroup rw,net_cls,net_prio
51 31 0:41 / /sys/fs/cgroup/rdma rw,relatime - cgroup cgroup rw,rdma
"
    )
}

const BLKIO_ALL: &str = r#"{"blockIO": {
    "weight": 500, "leafWeight": 300,
    "weightDevice": [{"major": 254, "minor": 0, "weight": 200, "leafWeight": 100},
                     {"major": 8, "minor": 16, "weight": 0}],
    "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
    "throttleWriteBpsDevice": [{"major": 254, "minor": 0, "rate": 2097152}],
    "throttleReadIOPSDevice": [{"major": 254, "minor": 0, "rate": 100}],
    "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 200}]
}}"#;

#[test]
fn v1_block_io_uses_bfq_files_unless_the_kernel_has_cfq() {
    // This host: no blkio.weight (no CFQ since Linux 5.0), so BFQ's files, as runc.
    let (fake, layout) = Fake::new(HOST_MOUNTINFO);
    let cg = Cgroup::create(&layout, "/b", Some(&resources(BLKIO_ALL))).unwrap();
    let l = "sys/fs/cgroup/blkio/b";
    let writes: Vec<String> = fake
        .take_writes()
        .into_iter()
        .filter(|w| w.starts_with(l))
        .collect();
    assert_eq!(
        writes,
        [
            format!("{l}/blkio.bfq.weight 500"),
            format!("{l}/blkio.leaf_weight 300"),
            format!("{l}/blkio.bfq.weight_device 254:0 200"),
            format!("{l}/blkio.leaf_weight_device 254:0 100"),
            format!("{l}/blkio.throttle.read_bps_device 254:0 1048576"),
            format!("{l}/blkio.throttle.write_bps_device 254:0 2097152"),
            format!("{l}/blkio.throttle.read_iops_device 254:0 100"),
            format!("{l}/blkio.throttle.write_iops_device 254:0 200"),
        ]
    );
    // A kernel with CFQ shows blkio.weight: then its files.
    fs::write(fake.path(&format!("{l}/blkio.weight")), "100\n").unwrap();
    cg.update(&resources(
        r#"{"blockIO": {"weight": 20, "weightDevice": [{"major": 8, "minor": 0, "weight": 30}]}}"#,
    ))
    .unwrap();
    assert_eq!(
        fake.take_writes(),
        [
            format!("{l}/blkio.weight 20"),
            format!("{l}/blkio.weight_device 8:0 30"),
        ]
    );
    cg.remove().unwrap();
}

#[test]
fn v2_block_io_converts_the_weight_without_bfq() {
    let (fake, layout) = Fake::new(V2_MOUNTINFO);
    fs::write(
        fake.path("sys/fs/cgroup/cgroup.controllers"),
        "cpu io memory pids\n",
    )
    .unwrap();
    let res = resources(
        r#"{"blockIO": {"weight": 500,
            "weightDevice": [{"major": 254, "minor": 0, "weight": 1000}],
            "throttleReadBpsDevice": [{"major": 254, "minor": 0, "rate": 1048576}],
            "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 50}]}}"#,
    );
    let cg = Cgroup::create(&layout, "/io", Some(&res)).unwrap();
    let l = "sys/fs/cgroup/io";
    assert_eq!(
        fake.take_writes(),
        [
            "sys/fs/cgroup/cgroup.subtree_control +io".to_owned(),
            format!("{l}/io.weight 4950"),
            format!("{l}/io.weight 254:0 10000"),
            format!("{l}/io.max 254:0 rbps=1048576"),
            format!("{l}/io.max 254:0 wiops=50"),
            format!("{l}/devices.bpf 64 instructions"),
        ]
    );
    // With BFQ (io.bfq.weight present) the weights go there unconverted.
    fs::write(fake.path(&format!("{l}/io.bfq.weight")), "default 100\n").unwrap();
    cg.update(&res).unwrap();
    let writes = fake.take_writes();
    assert_eq!(writes.get(1), Some(&format!("{l}/io.bfq.weight 500")));
    assert_eq!(
        writes.get(2),
        Some(&format!("{l}/io.bfq.weight 254:0 1000"))
    );
    cg.remove().unwrap();
}

#[test]
fn blkio_weight_to_io_weight_matches_runc() {
    use super::blkio::weight_to_v2;
    assert_eq!(weight_to_v2(10), 1);
    assert_eq!(weight_to_v2(100), 910);
    assert_eq!(weight_to_v2(500), 4950);
    assert_eq!(weight_to_v2(1000), 10_000);
}

#[test]
fn v1_network_writes_classid_and_ifpriomap() {
    let (fake, layout) = Fake::new(&net_rdma_mountinfo());
    let res = resources(
        r#"{"network": {"classID": 1048577,
            "priorities": [{"name": "lo", "priority": 5}, {"name": "eth0", "priority": 10}]}}"#,
    );
    let cg = Cgroup::create(&layout, "/n", Some(&res)).unwrap();
    let l = "sys/fs/cgroup/net_cls,net_prio/n";
    let writes: Vec<String> = fake
        .take_writes()
        .into_iter()
        .filter(|w| w.starts_with(l))
        .collect();
    assert_eq!(
        writes,
        [
            format!("{l}/net_cls.classid 1048577"),
            format!("{l}/net_prio.ifpriomap lo 5"),
            format!("{l}/net_prio.ifpriomap eth0 10"),
        ]
    );
    cg.remove().unwrap();
}

#[test]
fn v2_ignores_network_as_runc() {
    let (fake, layout) = Fake::new(V2_MOUNTINFO);
    let res =
        resources(r#"{"network": {"classID": 7, "priorities": [{"name": "lo", "priority": 1}]}}"#);
    let cg = Cgroup::create(&layout, "/n", Some(&res)).unwrap();
    assert_eq!(
        fake.take_writes(),
        ["sys/fs/cgroup/n/devices.bpf 64 instructions"]
    );
    cg.remove().unwrap();
}

#[test]
fn rdma_max_lines_on_v1_and_v2() {
    let res = resources(
        r#"{"rdma": {"mlx5_0": {"hcaHandles": 3, "hcaObjects": 10000}, "mlx4_1": {"hcaObjects": 7}}}"#,
    );
    let (fake, layout) = Fake::new(&net_rdma_mountinfo());
    let cg = Cgroup::create(&layout, "/r", Some(&res)).unwrap();
    let l = "sys/fs/cgroup/rdma/r";
    let writes: Vec<String> = fake
        .take_writes()
        .into_iter()
        .filter(|w| w.starts_with(l))
        .collect();
    assert_eq!(
        writes,
        [
            format!("{l}/rdma.max mlx5_0 hca_handle=3 hca_object=10000"),
            format!("{l}/rdma.max mlx4_1 hca_object=7"),
        ]
    );
    cg.remove().unwrap();

    let (fake, layout) = Fake::new(V2_MOUNTINFO);
    fs::write(fake.path("sys/fs/cgroup/cgroup.controllers"), "cpu rdma\n").unwrap();
    let cg = Cgroup::create(&layout, "/r", Some(&res)).unwrap();
    let writes = fake.take_writes();
    assert_eq!(
        writes.first().map(String::as_str),
        Some("sys/fs/cgroup/cgroup.subtree_control +rdma")
    );
    assert_eq!(
        writes.get(1).map(String::as_str),
        Some("sys/fs/cgroup/r/rdma.max mlx5_0 hca_handle=3 hca_object=10000")
    );
    cg.remove().unwrap();
}

#[test]
fn a_missing_controller_is_refused_before_any_mkdir() {
    let (_f1, host) = Fake::new(HOST_MOUNTINFO);
    let (f2, v2) = Fake::new(V2_MOUNTINFO);
    fs::write(
        f2.path("sys/fs/cgroup/cgroup.controllers"),
        "cpu memory pids\n",
    )
    .unwrap();
    let cases: [(&Layout, &str, &str); 5] = [
        (
            &host,
            r#"{"rdma": {"mlx5_0": {"hcaHandles": 1}}}"#,
            "linux.resources.rdma: no cgroup v1 hierarchy with the rdma controller is mounted",
        ),
        (
            &host,
            r#"{"network": {"classID": 1}}"#,
            "linux.resources.network.classID: no cgroup v1 hierarchy with the net_cls controller is mounted",
        ),
        (
            &host,
            r#"{"network": {"priorities": [{"name": "lo", "priority": 1}]}}"#,
            "linux.resources.network.priorities: no cgroup v1 hierarchy with the net_prio controller is mounted",
        ),
        (
            &v2,
            r#"{"rdma": {"mlx5_0": {"hcaHandles": 1}}}"#,
            "linux.resources.rdma: this kernel's cgroup v2 tree has no rdma controller (not in cgroup.controllers)",
        ),
        (
            &v2,
            r#"{"blockIO": {"weight": 100}}"#,
            "linux.resources.blockIO: this kernel's cgroup v2 tree has no io controller (not in cgroup.controllers)",
        ),
    ];
    for (layout, json, want) in cases {
        let e = Cgroup::create(layout, "/dory/x", Some(&resources(json))).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert!(cgroup_dirs(layout).is_empty(), "{json}: left directories");
    }
    // A classID of 0 and an empty rdma map ask for nothing: no controller needed.
    let cg = Cgroup::create(
        &host,
        "/ok",
        Some(&resources(r#"{"network": {"classID": 0}}"#)),
    );
    cg.unwrap().remove().unwrap();
}

#[test]
fn bad_block_io_network_and_rdma_values_name_field_and_limit() {
    let (_f1, host) = Fake::new(HOST_MOUNTINFO);
    let (_f2, v2) = Fake::new(V2_MOUNTINFO);
    let cases: [(&Layout, &str, &str); 8] = [
        (&host, r#"{"blockIO": {"weight": 5}}"#,
         "linux.resources.blockIO.weight: must be 10 to 1000 (limits; 0 means not set)"),
        (&host, r#"{"blockIO": {"weightDevice": [{"major": 8, "minor": 0, "weight": 1001}]}}"#,
         "linux.resources.blockIO.weightDevice[0].weight: must be 10 to 1000 (limits; 0 means not set)"),
        (&host, r#"{"blockIO": {"throttleReadBpsDevice": [{"major": -1, "minor": 0, "rate": 1}]}}"#,
         "linux.resources.blockIO.throttleReadBpsDevice[0]: major must be 0 to 4095 (limit)"),
        (&host, r#"{"blockIO": {"throttleWriteIOPSDevice": [{"major": 8, "minor": 1048576, "rate": 1}]}}"#,
         "linux.resources.blockIO.throttleWriteIOPSDevice[0]: minor must be 0 to 1048575 (limit)"),
        (&v2, r#"{"blockIO": {"leafWeight": 100}}"#,
         "linux.resources.blockIO.leafWeight: cgroup v2 has no leaf weight"),
        (&host, r#"{"network": {"priorities": [{"name": "averyveryverylong0", "priority": 1}]}}"#,
         "linux.resources.network.priorities[0].name: is longer than 15 bytes (IFNAMSIZ limit)"),
        (&host, r#"{"network": {"priorities": [{"name": "lo 5", "priority": 1}]}}"#,
         "linux.resources.network.priorities[0].name: must not contain whitespace, '/' or a JSON escape"),
        (&host, r#"{"rdma": {"mlx5_0": {}}}"#,
         "linux.resources.rdma[\"mlx5_0\"]: needs hcaHandles or hcaObjects"),
    ];
    for (layout, json, want) in cases {
        let e = Cgroup::create(layout, "/dory/x", Some(&resources(json))).unwrap_err();
        assert_eq!(e.to_string(), want);
        assert!(cgroup_dirs(layout).is_empty(), "{json}: left directories");
    }
}
