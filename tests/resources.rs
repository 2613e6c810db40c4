//! `linux.resources.blockIO`, `network` and `rdma`, and `linux.netDevices`, on a real
//! busybox container: what the host's cgroup files and network namespace show, what the
//! container sees from inside, `update`, and bad input refused with nothing left behind.
//! Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run_cmd, unique, Bundle, Out};
use serde_json::{json, Value};

fn dory_in(b: &Bundle, args: &[&str]) -> Out {
    run_cmd(&mut b.cmd(args))
}

/// `major:minor` of the whole disk holding `/` (throttle rules take a disk, not a
/// partition).
fn root_disk() -> (u64, u64) {
    let dev = std::fs::metadata("/").unwrap().dev();
    let (major, minor) = (libc::major(dev), libc::minor(dev));
    let sys = format!("/sys/dev/block/{major}:{minor}");
    let text = if Path::new(&sys).join("partition").exists() {
        std::fs::read_to_string(format!("{sys}/../dev")).unwrap()
    } else {
        format!("{major}:{minor}")
    };
    let (a, b) = text.trim().split_once(':').unwrap();
    (a.parse().unwrap(), b.parse().unwrap())
}

/// The host's copy of the container's blkio (v1) file.
fn host_blkio(b: &Bundle, file: &str) -> String {
    std::fs::read_to_string(format!("/sys/fs/cgroup/blkio/dory-test/{}/{file}", b.id))
        .unwrap()
        .trim()
        .to_owned()
}

#[test]
fn block_io_throttles_reach_the_cgroup_and_update_changes_them() {
    needs_root!();
    assert!(
        Path::new("/sys/fs/cgroup/blkio/blkio.throttle.read_bps_device").exists(),
        "this test expects a cgroup v1 blkio hierarchy (as on the CI machine)"
    );
    let (ma, mi) = root_disk();
    let mut b = Bundle::new(
        "blkio",
        &[
            "sh",
            "-c",
            "echo rbps=$(cat /sys/fs/cgroup/blkio/blkio.throttle.read_bps_device); echo ready; \
             read x; echo wiops=$(cat /sys/fs/cgroup/blkio/blkio.throttle.write_iops_device)",
        ],
    );
    let dev = |rate: u64| json!([{"major": ma, "minor": mi, "rate": rate}]);
    b.config["linux"]["resources"]["blockIO"] = json!({
        "throttleReadBpsDevice": dev(1_048_576),
        "throttleWriteBpsDevice": dev(2_097_152),
        "throttleReadIOPSDevice": dev(100),
        "throttleWriteIOPSDevice": dev(200),
    });
    let mut r = b.spawn();
    let line = r.wait_prefix("rbps=");
    r.wait_line("ready");
    // Inside: the container's own cgroup (cgroup namespace) holds the limit.
    assert_eq!(line, format!("rbps={ma}:{mi} 1048576"));
    let d = format!("{ma}:{mi}");
    assert_eq!(
        host_blkio(&b, "blkio.throttle.read_bps_device"),
        format!("{d} 1048576")
    );
    assert_eq!(
        host_blkio(&b, "blkio.throttle.write_bps_device"),
        format!("{d} 2097152")
    );
    assert_eq!(
        host_blkio(&b, "blkio.throttle.read_iops_device"),
        format!("{d} 100")
    );
    assert_eq!(
        host_blkio(&b, "blkio.throttle.write_iops_device"),
        format!("{d} 200")
    );

    // update -r: new rates replace the old ones (state.json comes right after exec).
    b.wait_state();
    let res = b.base.join("resources.json");
    let new = json!({"blockIO": {"throttleReadBpsDevice": dev(4_194_304),
                                 "throttleWriteIOPSDevice": dev(50)}});
    std::fs::write(&res, new.to_string()).unwrap();
    dory_in(&b, &["update", "-r", res.to_str().unwrap(), &b.id]).expect_code(0);
    assert_eq!(
        host_blkio(&b, "blkio.throttle.read_bps_device"),
        format!("{d} 4194304")
    );
    assert_eq!(
        host_blkio(&b, "blkio.throttle.write_iops_device"),
        format!("{d} 50")
    );
    assert_eq!(
        host_blkio(&b, "blkio.throttle.write_bps_device"),
        format!("{d} 2097152")
    );

    // --blkio-weight: the weight file runc would pick (CFQ's or BFQ's); a kernel with
    // neither has no proportional weight for blkio v1, and the error names the field.
    let out = dory_in(&b, &["update", "--blkio-weight", "500", &b.id]);
    let dir = format!("/sys/fs/cgroup/blkio/dory-test/{}", b.id);
    let file = ["blkio.weight", "blkio.bfq.weight"]
        .into_iter()
        .find(|f| Path::new(&dir).join(f).exists());
    match file {
        Some(f) => {
            out.expect_code(0);
            assert!(
                host_blkio(&b, f).contains("500"),
                "{f}: {}",
                host_blkio(&b, f)
            );
        }
        None => {
            out.expect_code(1);
            assert!(
                out.stderr
                    .contains("linux.resources.blockIO.weight: write ")
                    && out.stderr.contains("blkio.bfq.weight: No such file"),
                "{}",
                out.stderr
            );
        }
    }
    r.send("\n");
    let out = r.finish();
    out.expect_code(0);
    assert_eq!(
        out.value("wiops"),
        Some(format!("{d} 50").as_str()),
        "{}",
        out.stdout
    );
    b.assert_nothing_left();
}

#[test]
fn bad_block_io_is_refused_naming_field_and_limit() {
    needs_root!();
    let mut b = Bundle::new("blkio-bad", &["true"]);
    b.config["linux"]["resources"]["blockIO"] = json!({"weight": 5});
    let out = b.run();
    out.expect_code(1);
    assert!(
        out.stderr.contains(
            "linux.resources.blockIO.weight: must be 10 to 1000 (limits; 0 means not set)"
        ),
        "{}",
        out.stderr
    );
    b.assert_nothing_left();
    b.config["linux"]["resources"]["blockIO"] =
        json!({"throttleReadBpsDevice": [{"major": 4096, "minor": 0, "rate": 1}]});
    let out = b.run();
    out.expect_code(1);
    assert!(
        out.stderr.contains(
            "linux.resources.blockIO.throttleReadBpsDevice[0]: major must be 0 to 4095 (limit)"
        ),
        "{}",
        out.stderr
    );
    b.assert_nothing_left();
}

/// Whether a v1 hierarchy carrying `controller` is mounted.
fn v1_mounted(controller: &str) -> bool {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    text.lines().any(|l| {
        l.split(" - ").nth(1).is_some_and(|tail| {
            let mut f = tail.split(' ');
            f.next() == Some("cgroup")
                && f.nth(1)
                    .is_some_and(|o| o.split(',').any(|c| c == controller))
        })
    })
}

#[test]
fn network_and_rdma_without_their_controller_are_refused_and_leave_nothing() {
    needs_root!();
    // This host mounts neither net_cls/net_prio nor rdma (its kernel has no rdma
    // controller): as runc, a limit that cannot be set is an error. (Mounting net_cls
    // here would switch the kernel's socket cgroup matching for good, so the writes
    // themselves are unit-tested over a fake cgroupfs.)
    let cases = [
        (
            "net_cls",
            json!({"network": {"classID": 1_048_577}}),
            "linux.resources.network.classID: no cgroup v1 hierarchy with the net_cls controller is mounted",
        ),
        (
            "net_prio",
            json!({"network": {"priorities": [{"name": "lo", "priority": 3}]}}),
            "linux.resources.network.priorities: no cgroup v1 hierarchy with the net_prio controller is mounted",
        ),
        (
            "rdma",
            json!({"rdma": {"mlx5_0": {"hcaHandles": 2}}}),
            "linux.resources.rdma: no cgroup v1 hierarchy with the rdma controller is mounted",
        ),
    ];
    let mut b = Bundle::new("netcls", &["true"]);
    for (controller, res, want) in cases {
        assert!(
            !v1_mounted(controller),
            "this test expects a host without a {controller} hierarchy"
        );
        b.config["linux"]["resources"] = res;
        let out = b.run();
        out.expect_code(1);
        assert!(out.stderr.contains(want), "{}", out.stderr);
        b.assert_nothing_left();
    }
    // A classID of 0 asks for nothing (runc's reading): the container runs.
    b.config["linux"]["resources"] = json!({"network": {"classID": 0}});
    b.run().expect_code(0);
    b.assert_nothing_left();
}

// ---- netDevices ----

/// A veth pair on the host (this kernel has no dummy driver): `name` is the end a test
/// moves, `peer` stays. Deleted on drop, unless the kernel already destroyed the pair with
/// the container's network namespace.
struct Veth {
    name: String,
    peer: String,
}

impl Veth {
    fn new() -> Veth {
        // IFNAMSIZ: at most 15 bytes with the suffix.
        let u: String = unique("v").replace('-', "").chars().take(13).collect();
        let (name, peer) = (format!("{u}a"), format!("{u}b"));
        let ok = Command::new("ip")
            .args(["link", "add", &name, "type", "veth", "peer", "name", &peer])
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip link add {name} type veth peer name {peer}");
        Veth { name, peer }
    }
}

impl Veth {
    /// `ip addr add <cidr> dev <name>` plus extra words (`nodad`).
    fn add_addr(&self, cidr: &str, extra: &[&str]) {
        let ok = Command::new("ip")
            .args(["addr", "add", cidr, "dev", &self.name])
            .args(extra)
            .status()
            .unwrap()
            .success();
        assert!(ok, "ip addr add {cidr} dev {}", self.name);
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        for n in [&self.name, &self.peer] {
            let _ = Command::new("ip")
                .args(["link", "del", n])
                .stderr(std::process::Stdio::null())
                .status();
        }
    }
}

fn on_host(name: &str) -> bool {
    Path::new("/sys/class/net").join(name).exists()
}

#[test]
fn a_net_device_moves_renamed_and_up_at_create_and_goes_with_the_namespace() {
    needs_root!();
    let dummy = Veth::new();
    let mut b = Bundle::new(
        "netdev",
        &[
            "sh",
            "-c",
            "echo devs=$(ls /sys/class/net | tr '\\n' ' '); \
             echo flags=$(cat /sys/class/net/ctr0/flags)",
        ],
    );
    b.config["linux"]["netDevices"] = json!({ dummy.name.as_str(): {"name": "ctr0"} });
    // Permanent global addresses go along (the kernel would drop them); the link-scoped
    // one does not (runc 1.3's rule).
    let n = std::process::id() % 200 + 20;
    let (v4, v6, link) = (
        format!("10.201.{n}.1/24"),
        format!("fd00:d0e7::{n}/64"),
        format!("fe80::{n}/64"),
    );
    dummy.add_addr(&v4, &[]);
    dummy.add_addr(&v6, &["nodad"]);
    dummy.add_addr(&link, &["nodad"]);
    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    dory_in(&b, &["create", "--bundle", &dir, &b.id]).expect_code(0);
    // At create, before the process runs: gone from the host, renamed and up inside.
    assert!(!on_host(&dummy.name), "{} still on the host", dummy.name);
    let pid = b.wait_state().pid.to_string();
    let inside = run_cmd(Command::new("nsenter").args(["-t", &pid, "-n", "ip", "-o", "link"]));
    inside.expect_code(0);
    // `ip -o link`: "14: ctr0@if13: <NO-CARRIER,BROADCAST,MULTICAST,UP> …" (a veth).
    let line = inside
        .stdout
        .lines()
        .find(|l| l.contains(" ctr0@") || l.contains(" ctr0:"));
    let flags = line.and_then(|l| l.split('<').nth(1)?.split('>').next());
    assert!(
        flags.is_some_and(|f| f.split(',').any(|x| x == "UP")),
        "{}",
        inside.stdout
    );
    let addrs = run_cmd(Command::new("nsenter").args(["-t", &pid, "-n", "ip", "-o", "addr"]));
    addrs.expect_code(0);
    let has = |a: &str| {
        addrs
            .stdout
            .lines()
            .any(|l| l.contains(" ctr0 ") && l.contains(a))
    };
    assert!(has(&format!("inet {v4} ")), "{}", addrs.stdout);
    assert!(has(&format!("inet6 {v6} ")), "{}", addrs.stdout);
    assert!(!has(&format!("inet6 {link} ")), "{}", addrs.stdout);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    let deadline = Instant::now() + Duration::from_secs(10);
    while b
        .state()
        .is_some_and(|s| common::proc_start_time(s.pid).is_some())
    {
        assert!(Instant::now() < deadline, "the container did not exit");
        std::thread::sleep(Duration::from_millis(10));
    }
    dory_in(&b, &["delete", &b.id]).expect_code(0);
    // As runc and the runtime-spec: nothing moves it back; the kernel destroys a virtual
    // device with the namespace, a veth with its peer (a physical one would return).
    let deadline = Instant::now() + Duration::from_secs(10);
    while on_host(&dummy.name) || on_host("ctr0") || on_host(&dummy.peer) {
        assert!(
            Instant::now() < deadline,
            "the veth pair is still on the host"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    b.assert_nothing_left();
}

#[test]
fn a_net_device_seen_from_inside_with_run() {
    needs_root!();
    let dummy = Veth::new();
    let mut b = Bundle::new(
        "netdev-run",
        &[
            "sh",
            "-c",
            "echo devs=$(ls /sys/class/net | tr '\\n' ' '); \
             echo flags=$(cat /sys/class/net/ctr1/flags); \
             echo addr=$(ip -o -4 addr show dev ctr1 | grep -o 'inet [0-9./]*')",
        ],
    );
    b.config["linux"]["netDevices"] = json!({ dummy.name.as_str(): {"name": "ctr1"} });
    let n = std::process::id() % 200 + 20;
    dummy.add_addr(&format!("10.202.{n}.7/16"), &[]);
    let out = b.run();
    out.expect_code(0);
    assert_eq!(out.value("devs"), Some("ctr1 lo"), "{}", out.stdout);
    let flags = out.value("flags").unwrap();
    let flags = u32::from_str_radix(flags.trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "IFF_UP not set: {flags:#x}");
    assert_eq!(
        out.value("addr"),
        Some(format!("inet 10.202.{n}.7/16").as_str()),
        "{}",
        out.stdout
    );
    b.assert_nothing_left();
}

/// A change to config.json.
type ConfigEdit<'a> = dyn Fn(&mut Value) + 'a;

#[test]
fn bad_net_devices_are_refused_and_leave_the_device_alone() {
    needs_root!();
    let dummy = Veth::new();
    let mut b = Bundle::new("netdev-bad", &["true"]);
    let here = format!("/proc/{}/ns/net", std::process::id());
    let host_ns = |c: &mut Value| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        for n in ns.iter_mut() {
            if n["type"] == "network" {
                n["path"] = Value::from(here.as_str());
            }
        }
    };
    let no_netns = |c: &mut Value| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "network");
    };
    let keep = |_: &mut Value| {};
    let d = dummy.name.as_str();
    let cases: [(Value, &ConfigEdit<'_>, String); 5] = [
        (
            json!({"nosuchdev0": {}}),
            &keep,
            "linux.netDevices[\"nosuchdev0\"]: find the interface: no such interface in the \
             host's network namespace"
                .into(),
        ),
        (
            json!({ d: {"name": "a-name-of-16byte"} }),
            &keep,
            format!(
                "linux.netDevices[\"{d}\"].name: interface name length 16 is more than 15 (limit)"
            ),
        ),
        (
            json!({ d: {"name": "eth/0"} }),
            &keep,
            format!("linux.netDevices[\"{d}\"].name: not an interface name"),
        ),
        (
            json!({ d: {} }),
            &no_netns,
            "linux.netDevices: needs a \"network\" entry in linux.namespaces".into(),
        ),
        (
            json!({ d: {"name": "ctr9"} }),
            &host_ns,
            format!("linux.netDevices[\"{d}\"]: the container's network namespace is the host's"),
        ),
    ];
    let base = b.config.clone();
    for (devices, change, want) in cases {
        b.config = base.clone();
        change(&mut b.config);
        b.config["linux"]["netDevices"] = devices;
        let out = b.run();
        out.expect_code(1);
        assert!(
            out.stderr.contains(&want),
            "want {want}\ngot {}",
            out.stderr
        );
        b.assert_nothing_left();
        assert!(on_host(d), "{d} left the host");
        assert!(!on_host("ctr9"), "renamed on the host");
    }
}

#[test]
fn features_announce_net_devices_and_rdma() {
    let out = common::dory(&["features"]);
    out.expect_code(0);
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["linux"]["netDevices"]["enabled"], true, "{}", out.stdout);
    assert_eq!(v["linux"]["cgroup"]["rdma"], true, "{}", out.stdout);
}
