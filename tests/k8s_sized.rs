//! Kubernetes-sized configs (issue 16): a privileged pod's config as containerd's CRI
//! plugin writes it (every host device, 100 Services' environment, 100 volumes, long
//! annotations; `ci/k8s-config` writes it) runs, and every capacity holds exactly its
//! limit through parse, plan and the running container; one more is refused naming the
//! field and the limit, before anything exists. Needs root; skips visibly otherwise.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

#[macro_use]
mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{run_cmd, Bundle, Out};
use serde_json::{json, Value};

/// Capacities of `src/spec/model.rs` (the binary's constants are not visible here).
const MAX_DEVICES: usize = 1024;
const MAX_ENV: usize = 4096;
const MAX_MOUNTS: usize = 1024;
const MAX_ANNOTATIONS: usize = 1024;
const MAX_ARGS: usize = 1024;
const MAX_CONFIG_BYTES: usize = 1024 * 1024;

fn dory_in(b: &Bundle, args: &[&str]) -> Out {
    run_cmd(&mut b.cmd(args))
}

/// Replaces `b.config` with what `ci/k8s-config OPTS <bundle> ARGS` writes, keeping the
/// harness's rootfs and cgroup path (which the bundle's cleanup relies on).
fn k8s_config(b: &mut Bundle, opts: &[&str], args: &[&str]) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/k8s-config");
    let cgroups_path = b.config["linux"]["cgroupsPath"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = run_cmd(
        Command::new(script)
            .arg("--rootfs")
            .arg(&b.rootfs)
            .args(["--cgroups-path", &cgroups_path])
            .args(opts)
            .arg(&b.dir)
            .args(args),
    );
    out.expect_code(0);
    let text = std::fs::read_to_string(b.config_path()).unwrap();
    b.config = serde_json::from_str(&text).unwrap();
}

fn wait_stopped(b: &Bundle) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let out = dory_in(b, &["state", &b.id]);
        out.expect_code(0);
        let v: Value = serde_json::from_str(&out.stdout).unwrap();
        if v["status"] == "stopped" {
            return;
        }
        assert!(Instant::now() < deadline, "never stopped: {}", out.stdout);
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The container's report of itself, written to a volume: every device of the config
/// with its type and numbers (the host's /dev/ptmx node is replaced by the link to the
/// container's own devpts multiplexer, as runc does), the Services it sees, its volumes,
/// a read-only one.
const REPORT: &str = "exec > /data/vol-0/report 2>&1; \
    while read p; do stat -L -c '%n %F %t %T' \"$p\"; done < /data/vol-0/devices; \
    echo ptmx=$(readlink /dev/ptmx); \
    echo services=$(env | grep -c '_SERVICE_HOST='); \
    echo env=$(env | wc -l); \
    echo volumes=$(ls /data | wc -l); \
    echo last=$(cat /data/vol-99/id); \
    if touch /data/vol-3/x 2>/dev/null; then echo ro=no; else echo ro=yes; fi; \
    echo token=$(cat /var/run/secrets/kubernetes.io/serviceaccount/namespace); \
    echo hostname=$(hostname)";

/// `stat -c '%n %F %t %T'` of a config device, as busybox prints it.
fn stat_line(d: &Value) -> String {
    let kind = match d["type"].as_str().unwrap() {
        "b" => "block special file",
        _ => "character special file",
    };
    format!(
        "{} {kind} {:x} {:x}",
        d["path"].as_str().unwrap(),
        d["major"].as_u64().unwrap(),
        d["minor"].as_u64().unwrap()
    )
}

#[test]
fn a_privileged_pod_config_as_containerd_writes_it_runs() {
    needs_root!();
    let mut b = Bundle::new("k8s-pod", &["true"]);
    k8s_config(
        &mut b,
        &["--annotation-bytes", "65536"],
        &["sh", "-c", REPORT],
    );
    let devices = b.config["linux"]["devices"].as_array().unwrap().clone();
    let env = b.config["process"]["env"].as_array().unwrap().len();
    // The sizes the issue measured: the host's devices, 100 Services, 100 volumes.
    assert!(devices.len() >= 20, "{} host devices", devices.len());
    assert_eq!(env, 702);
    assert_eq!(b.config["mounts"].as_array().unwrap().len(), 112);
    let volumes = b.dir.join("volumes");
    let paths: Vec<&str> = devices
        .iter()
        .map(|d| d["path"].as_str().unwrap())
        .collect();
    std::fs::write(volumes.join("vol-0/devices"), paths.join("\n") + "\n").unwrap();
    let config_len = serde_json::to_string_pretty(&b.config).unwrap().len();
    eprintln!(
        "k8s-sized config: {config_len} bytes, {} devices, {env} env, {} mounts, {} annotations",
        devices.len(),
        b.config["mounts"].as_array().unwrap().len(),
        b.config["annotations"].as_object().unwrap().len()
    );

    b.write_config();
    let dir = b.dir.to_str().unwrap().to_owned();
    dory_in(&b, &["create", "--bundle", &dir, &b.id]).expect_code(0);
    // The long annotations come back whole in the state, escapes undone.
    let st: Value = serde_json::from_str(&dory_in(&b, &["state", &b.id]).stdout).unwrap();
    assert_eq!(st["annotations"], b.config["annotations"]);
    dory_in(&b, &["start", &b.id]).expect_code(0);
    wait_stopped(&b);
    dory_in(&b, &["delete", &b.id]).expect_code(0);

    let report = std::fs::read_to_string(volumes.join("vol-0/report")).unwrap();
    let lines: Vec<&str> = report.lines().collect();
    let want: Vec<String> = devices.iter().map(stat_line).collect();
    assert_eq!(lines[..want.len()], want, "device nodes:\n{report}");
    let rest = &lines[want.len()..];
    assert_eq!(
        rest,
        [
            "ptmx=pts/ptmx",
            "services=100",
            // HOME is added, as runc does; the shell exports PWD and SHLVL.
            "env=705",
            "volumes=100",
            "last=99",
            "ro=yes",
            "token=default",
            "hostname=k8s-sized"
        ],
        "{report}"
    );
    b.assert_nothing_left();
}

/// A config with `n` entries in a list: `key` = NAME=VALUE entries of about 60 bytes.
fn env_entries(n: usize) -> Value {
    Value::from(
        (0..n)
            .map(|i| {
                format!(
                    "SVC_{i}_BACKEND_API_PORT_8080_TCP_ADDR=10.96.{}.{}",
                    i / 250,
                    i % 250
                )
            })
            .collect::<Vec<_>>(),
    )
}

#[test]
fn every_capacity_holds_its_limit_and_refuses_one_more() {
    needs_root!();
    let mut b = Bundle::new("k8s-limits", &["true"]);
    // Host devices topped up to exactly MAX_DEVICES, MAX_MOUNTS mounts, MAX_ANNOTATIONS.
    let host = {
        let probe = common::TempDir::new("k8s-probe");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ci/k8s-config");
        run_cmd(
            Command::new(script)
                .args(["--volumes", "0"])
                .arg(&probe.path),
        )
        .expect_code(0);
        let text = std::fs::read_to_string(probe.path.join("config.json")).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        v["linux"]["devices"].as_array().unwrap().len()
    };
    let volumes = (MAX_MOUNTS - 12).to_string();
    let extra = (MAX_DEVICES - host).to_string();
    let annotations = (MAX_ANNOTATIONS - 8).to_string();
    k8s_config(
        &mut b,
        &[
            "--services",
            "0",
            "--volumes",
            &volumes,
            "--extra-devices",
            &extra,
            "--annotations",
            &annotations,
            "--annotation-bytes",
            "1000",
        ],
        &[],
    );
    b.config["process"]["env"] = env_entries(MAX_ENV);
    // The program counts what it got: the arguments (MAX_ARGS with sh, -c, the script and
    // $0), the environment (HOME is the config's here), the device nodes and the mounts.
    let mut args = vec![
        "sh".to_owned(),
        "-c".to_owned(),
        "exec > /data/vol-0/report; echo args=$#; echo env=$(env | wc -l); \
         echo devices=$(ls /dev/k8s | wc -l); echo mounts=$(grep -c ' /data/vol-' /proc/self/mounts)"
            .to_owned(),
        "argv0".to_owned(),
    ];
    while args.len() < MAX_ARGS {
        args.push(format!("arg-{}", args.len()));
    }
    b.config["process"]["args"] = json!(args);
    b.config["process"]["env"][MAX_ENV - 2] = json!("HOME=/root");
    b.config["process"]["env"][MAX_ENV - 1] = json!("PATH=/bin:/usr/bin");
    assert_eq!(
        b.config["linux"]["devices"].as_array().unwrap().len(),
        MAX_DEVICES
    );
    assert_eq!(b.config["mounts"].as_array().unwrap().len(), MAX_MOUNTS);
    assert_eq!(
        b.config["annotations"].as_object().unwrap().len(),
        MAX_ANNOTATIONS
    );
    let len = serde_json::to_string_pretty(&b.config).unwrap().len();
    assert!(len < MAX_CONFIG_BYTES, "{len} bytes");

    let out = b.run();
    out.expect_code(0);
    let report = std::fs::read_to_string(b.dir.join("volumes/vol-0/report")).unwrap();
    assert_eq!(
        report.lines().collect::<Vec<_>>(),
        [
            format!("args={}", MAX_ARGS - 4),
            // The shell exports PWD and SHLVL.
            format!("env={}", MAX_ENV + 2),
            format!("devices={}", MAX_DEVICES - host),
            format!("mounts={}", MAX_MOUNTS - 12),
        ],
        "{report}"
    );
    b.assert_nothing_left();

    // One more of each is refused, naming the field and the limit; nothing is created.
    let full = b.config.clone();
    type Edit = fn(&mut Value);
    let cases: [(&str, Edit); 5] = [
        ("linux.devices: more than 1024 entries (limit 1024)", |c| {
            c["linux"]["devices"]
                .as_array_mut()
                .unwrap()
                .push(json!({"path": "/dev/k8s/one-more", "type": "c", "major": 1, "minor": 3}))
        }),
        ("process.env: more than 4096 entries (limit 4096)", |c| {
            c["process"]["env"]
                .as_array_mut()
                .unwrap()
                .push(json!("X=1"))
        }),
        ("mounts: more than 1024 entries (limit 1024)", |c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .push(json!({"destination": "/x", "type": "tmpfs", "source": "tmpfs"}))
        }),
        ("annotations: more than 1024 entries (limit 1024)", |c| {
            c["annotations"]["one.more/key"] = json!("v")
        }),
        ("process.args: more than 1024 entries (limit 1024)", |c| {
            c["process"]["args"]
                .as_array_mut()
                .unwrap()
                .push(json!("x"))
        }),
    ];
    for (want, edit) in cases {
        b.config = full.clone();
        edit(&mut b.config);
        let out = b.run();
        assert_eq!(out.code, 1, "{want}: {out:?}");
        assert!(out.message().contains(want), "{want}: {out:?}");
        b.assert_nothing_left();
    }
}
