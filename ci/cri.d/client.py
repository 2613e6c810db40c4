"""ci/cri-test's CRI client (run by ci/cri-test, with the venv that ci/setup makes).

  client.py mkimage NAME ROOTFS OUT.tar ARG...   an OCI image archive of one layer
  client.py test SOCKET WORKDIR CGROUP_PARENT HANDLER...

`test` drives containerd's CRI plugin over SOCKET with the runtime.v1 messages of
api.proto (compiled by ci/cri-test into WORKDIR/py) and runs every check for each
runtime handler: one line per check, `ok - HANDLER: name` or `not ok - HANDLER: name: why`,
then the RunPodSandbox + CreateContainer + StartContainer medians, then exactly
`N passed, M failed`. Exit status 1 if any check failed.
"""

import hashlib
import io
import json
import os
import re
import statistics
import sys
import tarfile
import time
import traceback
import uuid

BUSYBOX = "dory.test/busybox:1"
PAUSE = "dory.test/pause:1"
CALL = 60  # seconds: every CRI call's deadline
PODS_TIMED = 9
ORPHAN_SECS = 1.5  # kill_all_orphan: the exit and the stop within this (runc: ~0.05 s)


# ------------------------------------------------------------------------ mkimage
def mkimage(name, rootfs, out, args):
    """An OCI layout archive (what `ctr images import` takes) of ROOTFS as one layer."""
    def root_owned(ti):
        ti.uid = ti.gid = 0
        ti.uname = ti.gname = ""
        return ti

    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w", format=tarfile.PAX_FORMAT) as t:
        for entry in sorted(os.listdir(rootfs)):
            if entry.startswith(".dory"):
                continue
            t.add(os.path.join(rootfs, entry), arcname=entry, filter=root_owned)
    layer = layer.getvalue()
    arch = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}.get(os.uname().machine)
    config = json.dumps({
        "architecture": arch, "os": "linux",
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": args, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]},
    }).encode()
    blobs = {}

    def blob(data, media):
        d = hashlib.sha256(data).hexdigest()
        blobs[d] = data
        return {"mediaType": media, "digest": "sha256:" + d, "size": len(data)}

    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": blob(config, "application/vnd.oci.image.config.v1+json"),
        "layers": [blob(layer, "application/vnd.oci.image.layer.v1.tar")],
    }).encode()
    desc = blob(manifest, "application/vnd.oci.image.manifest.v1+json")
    desc["annotations"] = {"io.containerd.image.name": name,
                           "org.opencontainers.image.ref.name": name.rsplit(":", 1)[1]}
    desc["platform"] = {"architecture": arch, "os": "linux"}
    index = json.dumps({"schemaVersion": 2, "manifests": [desc]}).encode()
    with tarfile.open(out, "w") as t:
        def add(path, data):
            ti = tarfile.TarInfo(path)
            ti.size = len(data)
            ti.mode = 0o644
            t.addfile(ti, io.BytesIO(data))
        add("oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
        add("index.json", index)
        for d, data in blobs.items():
            add("blobs/sha256/" + d, data)


# ------------------------------------------------------------------------ harness
class Fail(Exception):
    pass


def expect(what, got, want):
    if got != want:
        raise Fail(f"{what}: got {got!r}, want {want!r}")


def until(what, secs, fn):
    """Polls fn() every 0.1 s until it returns a true value; fails after secs."""
    end = time.monotonic() + secs
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > end:
            raise Fail(f"{what}: not within {secs} s")
        time.sleep(0.1)


class Cri:
    def __init__(self, sock, work, cgparent):
        import grpc
        sys.path.insert(0, os.path.join(work, "py"))
        import api_pb2 as pb
        import api_pb2_grpc as pbg
        self.grpc = grpc
        self.pb = pb
        self.ch = grpc.insecure_channel("unix://" + sock)
        self.rt = pbg.RuntimeServiceStub(self.ch)
        self.img = pbg.ImageServiceStub(self.ch)
        self.work = work
        self.cgparent = cgparent
        self.pods = []  # ids of the pods made and not yet removed

    # --- pods and containers
    def run_pod(self, name, handler, pid=None, privileged=False, sysctls=None):
        pb = self.pb
        uid = uuid.uuid4().hex
        ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER if pid is None else pid, ipc=pb.POD)
        logdir = os.path.join(self.work, "logs", f"{name}-{handler}-{uid[:8]}")
        os.makedirs(logdir, exist_ok=True)
        cfg = pb.PodSandboxConfig(
            metadata=pb.PodSandboxMetadata(name=f"{name}-{handler}", uid=uid, namespace="cri-test"),
            hostname=name,
            log_directory=logdir,
            linux=pb.LinuxPodSandboxConfig(
                cgroup_parent=f"/{self.cgparent}/{name}-{handler}-{uid[:8]}",
                sysctls=sysctls or {},
                security_context=pb.LinuxSandboxSecurityContext(namespace_options=ns, privileged=privileged)),
        )
        r = self.rt.RunPodSandbox(pb.RunPodSandboxRequest(config=cfg, runtime_handler=handler), timeout=CALL)
        self.pods.append(r.pod_sandbox_id)
        return r.pod_sandbox_id, cfg

    def create(self, pod, name, cmd, envs=(), mounts=(), resources=None, privileged=False, pid=None, tty=False,
               security=None, attempt=0):
        pb = self.pb
        pod_id, pod_cfg = pod
        # As kubelet: the pod's namespace modes (pid CONTAINER unless the pod shares it).
        ns = pb.NamespaceOption(network=pb.POD, pid=pb.CONTAINER if pid is None else pid, ipc=pb.POD)
        sc = pb.LinuxContainerSecurityContext(privileged=privileged, namespace_options=ns, **(security or {}))
        cfg = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=name, attempt=attempt),
            image=pb.ImageSpec(image=BUSYBOX),
            command=cmd,
            envs=[pb.KeyValue(key=k, value=v) for k, v in envs],
            mounts=list(mounts),
            log_path=f"{name}.{attempt}.log",
            tty=tty,
            linux=pb.LinuxContainerConfig(resources=resources or pb.LinuxContainerResources(), security_context=sc),
        )
        r = self.rt.CreateContainer(
            pb.CreateContainerRequest(pod_sandbox_id=pod_id, config=cfg, sandbox_config=pod_cfg), timeout=CALL)
        return r.container_id

    def start(self, cid):
        self.rt.StartContainer(self.pb.StartContainerRequest(container_id=cid), timeout=CALL)

    def status(self, cid):
        return self.rt.ContainerStatus(self.pb.ContainerStatusRequest(container_id=cid), timeout=CALL).status

    def running(self, cid):
        until(f"container {cid[:12]} RUNNING", 15, lambda: self.status(cid).state == self.pb.CONTAINER_RUNNING)

    def exited(self, cid, secs):
        """Waits for CONTAINER_EXITED; returns that status."""
        def done():
            s = self.status(cid)
            return s if s.state == self.pb.CONTAINER_EXITED else None
        return until(f"container {cid[:12]} EXITED", secs, done)

    def exec(self, cid, cmd, timeout=20):
        r = self.rt.ExecSync(self.pb.ExecSyncRequest(container_id=cid, cmd=cmd, timeout=timeout), timeout=timeout + CALL)
        return r.exit_code, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")

    def exec_ok(self, cid, script):
        rc, out, err = self.exec(cid, ["sh", "-c", script])
        if rc != 0:
            raise Fail(f"exec {script!r}: exit code {rc}, stderr {err.strip()!r}")
        return out

    def remove_pod(self, pod_id):
        pb = self.pb
        self.rt.StopPodSandbox(pb.StopPodSandboxRequest(pod_sandbox_id=pod_id), timeout=CALL)
        self.rt.RemovePodSandbox(pb.RemovePodSandboxRequest(pod_sandbox_id=pod_id), timeout=CALL)
        if pod_id in self.pods:
            self.pods.remove(pod_id)

    def cleanup(self):
        for p in list(self.pods):
            try:
                self.remove_pod(p)
            except Exception:  # the check has failed already; ci/cri-test cleans up the rest
                self.pods.remove(p)

    def log(self, pod, name):
        path = os.path.join(pod[1].log_directory, f"{name}.0.log")
        try:
            with open(path, encoding="utf-8", errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""


def procs_of(cid):
    """Host pids whose cgroup names the container."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cgroup") as f:
                    if cid in f.read():
                        pids.append(int(p))
            except OSError:
                pass
    return pids


LOG_LINE = re.compile(r"^\S+ (stdout|stderr) F (.*)$")


def log_lines(text):
    """CRI log file lines (TIMESTAMP STREAM F TEXT) as (stream, text) pairs."""
    return [m.groups() for m in map(LOG_LINE.match, text.splitlines()) if m]


# ------------------------------------------------------------------------ checks
# Each takes the client and the handler, makes its own pod and removes it.
LOOP = 'trap "echo got-term; exit 0" TERM; while :; do sleep 1 & wait $!; done'


def t_lifecycle(c, h):
    pb = c.pb
    pod = c.run_pod("life", h)
    cid = c.create(pod, "main", ["sh", "-c", "echo to-stdout; echo to-stderr >&2; " + LOOP])
    expect("state after CreateContainer", c.status(cid).state, pb.CONTAINER_CREATED)
    c.start(cid)
    c.running(cid)
    rc, out, err = c.exec(cid, ["sh", "-c", "echo out-$((6*7)) $$ $(cat /proc/1/cmdline | tr '\\0' ' ')"
                                            "; echo err >&2; exit 3"])
    expect("ExecSync exit code", rc, 3)
    if not re.fullmatch(r"out-42 \d+ sh -c echo to-stdout.*\n", out) or out.split()[1] == "1":
        raise Fail(f"ExecSync stdout (want the exec'd pid, then pid 1: the container's init) {out!r}")
    expect("ExecSync stderr", err, "err\n")
    st = c.rt.ContainerStats(pb.ContainerStatsRequest(container_id=cid), timeout=CALL).stats
    expect("ContainerStats id", st.attributes.id, cid)
    if st.memory.working_set_bytes.value == 0 and st.memory.usage_bytes.value == 0:
        raise Fail(f"ContainerStats: no memory usage ({st.memory})")
    if st.cpu.timestamp == 0:
        raise Fail("ContainerStats: no cpu sample")
    until("log lines to-stdout and to-stderr", 10,
          lambda: {("stdout", "to-stdout"), ("stderr", "to-stderr")} <= set(log_lines(c.log(pod, "main"))))
    limit = 96 << 20
    c.rt.UpdateContainerResources(pb.UpdateContainerResourcesRequest(
        container_id=cid, linux=pb.LinuxContainerResources(
            memory_limit_in_bytes=limit, cpu_shares=512, cpu_period=100000, cpu_quota=50000)), timeout=CALL)
    # The container's own cgroup, as it sees it (cgroup2, or the v1 hierarchies).
    got = c.exec_ok(cid, "cd /sys/fs/cgroup; if [ -f cgroup.controllers ]; then cat memory.max cpu.max; "
                         "else cat memory/memory.limit_in_bytes; "
                         "echo $(cat cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us); fi")
    expect("memory and cpu limits in the container's cgroup after UpdateContainerResources",
           got, f"{limit}\n50000 100000\n")
    t0 = time.monotonic()
    c.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=20), timeout=CALL)
    took = time.monotonic() - t0
    s = c.status(cid)
    expect("state after StopContainer", s.state, pb.CONTAINER_EXITED)
    expect("exit code after SIGTERM", s.exit_code, 0)
    if took > 5:
        raise Fail(f"StopContainer took {took:.1f} s (SIGTERM handled at once)")
    until("log line got-term", 5, lambda: ("stdout", "got-term") in log_lines(c.log(pod, "main")))
    # kubelet's restart: attempt 1 of the same container in the same pod.
    again = c.create(pod, "main", ["sh", "-c", "echo attempt-1; " + LOOP], attempt=1)
    c.start(again)
    c.running(again)
    expect("ExecSync in attempt 1", c.exec_ok(again, "echo $((1+1))"), "2\n")
    c.rt.StopContainer(pb.StopContainerRequest(container_id=again, timeout=20), timeout=CALL)
    for x in (cid, again):
        c.rt.RemoveContainer(pb.RemoveContainerRequest(container_id=x), timeout=CALL)
    left = c.rt.ListContainers(pb.ListContainersRequest(filter=pb.ContainerFilter(pod_sandbox_id=pod[0])), timeout=CALL)
    expect("containers after RemoveContainer", [x.id for x in left.containers], [])
    c.remove_pod(pod[0])
    left = c.rt.ListPodSandbox(pb.ListPodSandboxRequest(filter=pb.PodSandboxFilter(id=pod[0])), timeout=CALL)
    expect("pods after RemovePodSandbox", [x.id for x in left.items], [])


def host_devices():
    """Top-level character and block devices of the host's /dev that containerd hands a
    privileged container (it skips /dev/console and the pty, shm and mqueue dirs)."""
    names = set()
    for n in os.listdir("/dev"):
        try:
            st = os.lstat("/dev/" + n)
        except OSError:
            continue
        if (st.st_mode & 0o170000) in (0o020000, 0o060000) and n not in ("console", "ptmx", "tty"):
            names.add(n)
    return names


def t_privileged(c, h):
    pod = c.run_pod("priv", h, privileged=True)
    cid = c.create(pod, "main", ["sh", "-c", LOOP], privileged=True)
    c.start(cid)
    c.running(cid)
    out = c.exec_ok(cid, "find /dev -type c -o -type b | wc -l; ls /dev; grep CapEff /proc/self/status")
    lines = out.split("\n")
    count = int(lines[0])
    want = host_devices()
    missing = sorted(want - set(lines[1:]))
    if missing:
        raise Fail(f"{len(missing)} of the host's {len(want)} devices missing: {' '.join(missing[:8])}")
    if count <= 32:
        raise Fail(f"only {count} devices")
    with open("/proc/self/status") as f:
        bnd = re.search(r"CapBnd:\s*(\S+)", f.read()).group(1)
    eff = re.search(r"CapEff:\s*(\S+)", out).group(1)
    expect("CapEff (the host's whole bounding set)", eff, bnd)
    c.remove_pod(pod[0])
    return f"{count} devices"


def t_env150(c, h):
    envs = [(f"E_{i:03}", f'v{i} "quoted" $HOME = \u00fc;{"x" * (i % 7)}') for i in range(150)]
    pod = c.run_pod("env", h)
    cid = c.create(pod, "main", ["sh", "-c", LOOP], envs=envs)
    c.start(cid)
    c.running(cid)
    rc, out, err = c.exec(cid, ["cat", "/proc/1/environ"])
    expect("cat /proc/1/environ", rc, 0)
    got = dict(kv.split("=", 1) for kv in out.split("\0") if "=" in kv)
    bad = [k for k, v in envs if got.get(k) != v]
    if bad:
        raise Fail(f"{len(bad)} of 150 variables wrong or missing, e.g. {bad[0]}={got.get(bad[0])!r}")
    c.remove_pod(pod[0])


def t_volumes40(c, h):
    pb = c.pb
    base = os.path.join(c.work, "vols", f"{h}-{uuid.uuid4().hex[:8]}")
    mounts = []
    for i in range(40):
        d = os.path.join(base, f"v{i:02}")
        os.makedirs(d)
        with open(os.path.join(d, "id"), "w") as f:
            f.write(f"{i}\n")
        mounts.append(pb.Mount(container_path=f"/vol/{i:02}", host_path=d, readonly=(i % 2 == 1)))
    pod = c.run_pod("vols", h)
    cid = c.create(pod, "main", ["sh", "-c", LOOP], mounts=mounts)
    c.start(cid)
    c.running(cid)
    out = c.exec_ok(cid, "for i in $(seq -w 0 39); do cat /vol/$i/id; done; "
                         "touch /vol/01/x 2>/dev/null && echo ro-written; touch /vol/00/x && echo rw-written")
    expect("the 40 volumes' files, then writes", out, "".join(f"{i}\n" for i in range(40)) + "rw-written\n")
    if not os.path.exists(os.path.join(base, "v00", "x")) or os.path.exists(os.path.join(base, "v01", "x")):
        raise Fail("a write through the rw volume did not reach the host, or one through the ro volume did")
    c.remove_pod(pod[0])


def t_exec_oom_score(c, h):
    pb = c.pb
    pod = c.run_pod("exec", h)
    cid = c.create(pod, "main", ["sh", "-c", LOOP], resources=pb.LinuxContainerResources(oom_score_adj=321))
    c.start(cid)
    c.running(cid)
    rc, out, err = c.exec(cid, ["sh", "-c", "cat /proc/self/oom_score_adj /proc/1/oom_score_adj; "
                                            "ulimit -n; awk '/^Max open files/ {print $4}' /proc/1/limits; exit 7"])
    expect("ExecSync exit code", rc, 7)
    v = out.split()
    if len(v) != 4:
        raise Fail(f"exec output {out!r} {err!r}")
    # restrict_oom_score_adj: containerd raises a score below its own (this process's) to it.
    with open("/proc/self/oom_score_adj") as f:
        want = str(max(321, int(f.read())))
    expect("container's oom_score_adj", v[1], want)
    expect("exec'd process's oom_score_adj", v[0], want)
    expect("exec'd process's nofile limit (the container's)", v[2], v[3])
    try:
        rc = c.exec(cid, ["/no/such/binary"])[0]
    except c.grpc.RpcError:
        rc = -1  # containerd answers with the runtime's error
    if rc == 0:
        raise Fail("ExecSync of a missing binary exited 0")
    c.remove_pod(pod[0])


def t_kill_all_orphan(c, h):
    """A shared-pid pod: the container's init is not pid 1, so its background children
    outlive it (they reparent to the pause process). The shim runs `kill --all` when the
    init exits; without it the orphans hold the log pipe open and the exit comes late."""
    pb = c.pb
    pod = c.run_pod("orphan", h, pid=pb.POD)
    # 1. The init exits by itself, leaving an orphan.
    cid = c.create(pod, "exits", ["sh", "-c", "sleep 300 & echo started; exit 0"], pid=pb.POD)
    t0 = time.monotonic()
    c.start(cid)
    s = c.exited(cid, 20)
    took = time.monotonic() - t0
    expect("exit code", s.exit_code, 0)
    # The shim waits 2 s for the log pipe's writers before it reports the exit when
    # `kill --all` left them running (dory before it signalled a stopped container's cgroup).
    if took > ORPHAN_SECS:
        raise Fail(f"exit reported {took:.1f} s after the start (orphans kept the log pipe open?)")
    exited_ms = took * 1000
    until("no process left in the exited container's cgroup", 5, lambda: not procs_of(cid))
    # 2. StopContainer: SIGTERM ends the init, the orphans must go with it.
    cid = c.create(pod, "stopped", ["sh", "-c", "sleep 300 & sleep 301 & " + LOOP], pid=pb.POD)
    c.start(cid)
    c.running(cid)
    until("3 processes in the container", 10, lambda: len(procs_of(cid)) >= 3)
    t0 = time.monotonic()
    c.rt.StopContainer(pb.StopContainerRequest(container_id=cid, timeout=30), timeout=CALL)
    took = time.monotonic() - t0
    expect("state after StopContainer", c.status(cid).state, pb.CONTAINER_EXITED)
    if took > ORPHAN_SECS:
        raise Fail(f"StopContainer took {took:.1f} s (orphans kept the log pipe open?)")
    until("no process left in the stopped container's cgroup", 5, lambda: not procs_of(cid))
    c.remove_pod(pod[0])
    return f"start to exit {exited_ms:.0f} ms, stop {took * 1000:.0f} ms"


def t_pod_sharing(c, h):
    """Two containers in one pod join the sandbox's network, IPC and UTS namespaces (by
    path) and share its /dev/shm; each has a pid namespace of its own."""
    pod = c.run_pod("share", h)
    ids = [c.create(pod, n, ["sh", "-c", LOOP]) for n in ("one", "two")]
    for x in ids:
        c.start(x)
        c.running(x)
    probe = "for n in net ipc uts pid; do readlink /proc/self/ns/$n; done; hostname; cat /dev/shm/mark 2>/dev/null; true"
    c.exec_ok(ids[0], "echo from-one > /dev/shm/mark")
    a = c.exec_ok(ids[0], probe).split("\n")
    b = c.exec_ok(ids[1], probe).split("\n")
    expect("net, ipc, uts namespaces of the two", b[:3], a[:3])
    if a[3] == b[3]:
        raise Fail(f"both containers in pid namespace {a[3]}")
    expect("hostname and /dev/shm seen by the second", b[4:6], ["share", "from-one"])
    if a[0] == os.readlink("/proc/self/ns/net"):
        raise Fail("the pod runs in the test's own network namespace")
    c.remove_pod(pod[0])


def t_restricted(c, h):
    """What a restricted pod asks for: a read-only root, a user, no capabilities,
    no_new_privs, containerd's default seccomp profile (RuntimeDefault, kubelet's default
    with SeccompDefault), and a namespaced sysctl from the pod."""
    pb = c.pb
    pod = c.run_pod("restricted", h, sysctls={"kernel.shm_rmid_forced": "1"})
    cid = c.create(pod, "main", ["sh", "-c", LOOP], security={
        "readonly_rootfs": True, "run_as_user": pb.Int64Value(value=1000), "no_new_privs": True,
        "capabilities": pb.Capability(drop_capabilities=["ALL"]),
        "seccomp": pb.SecurityProfile(profile_type=pb.SecurityProfile.RuntimeDefault)})
    c.start(cid)
    c.running(cid)
    out = c.exec_ok(cid, "id -u; hostname; cat /proc/sys/kernel/shm_rmid_forced; "
                         "grep -E '^(CapEff|CapPrm|NoNewPrivs|Seccomp):' /proc/1/status | tr -s '\\t ' ' '; "
                         "touch /rootfs-write 2>/dev/null && echo root-writable; "
                         "unshare -U true 2>/dev/null && echo seccomp-let-unshare-through; true")
    expect("id, hostname, sysctl, capabilities, no_new_privs, writes", out.split("\n"),
           ["1000", "restricted", "1", "CapPrm: 0000000000000000", "CapEff: 0000000000000000", "NoNewPrivs: 1", "Seccomp: 2", ""])
    c.remove_pod(pod[0])


def t_tty(c, h):
    """A tty container: its output, through the terminal, reaches the log."""
    pod = c.run_pod("tty", h)
    cid = c.create(pod, "main", ["sh", "-c", "[ -t 0 ] && [ -t 1 ] && echo on-a-tty $(stty size); " + LOOP], tty=True)
    c.start(cid)
    c.running(cid)
    until("log line on-a-tty", 10, lambda: any(t.startswith("on-a-tty") for _, t in log_lines(c.log(pod, "main"))))
    out = c.exec_ok(cid, "readlink /proc/1/fd/1")
    if not out.startswith("/dev/pts/"):
        raise Fail(f"init's stdout is {out.strip()!r}, not a pty")
    c.remove_pod(pod[0])


def t_oomkilled(c, h):
    pb = c.pb
    pod = c.run_pod("oom", h)
    cid = c.create(pod, "main", ["sh", "-c", "sleep 0.3; exec dd if=/dev/zero of=/dev/null bs=64M count=1"],
                   resources=pb.LinuxContainerResources(memory_limit_in_bytes=32 << 20))
    c.start(cid)
    s = c.exited(cid, 30)
    expect("reason", s.reason, "OOMKilled")
    expect("exit code", s.exit_code, 137)
    c.remove_pod(pod[0])


def t_no_leftovers(c, h):
    pb = c.pb
    pods = c.rt.ListPodSandbox(pb.ListPodSandboxRequest(), timeout=CALL).items
    mine = [p.id[:12] for p in pods if p.runtime_handler == h]
    if mine:
        raise Fail(f"pods left: {mine}")
    # The shim's runtime root: the handler's Root, then containerd's namespace.
    root = os.path.join(c.work, f"runtime-root-{h}", "k8s.io")
    left = os.listdir(root) if os.path.isdir(root) else []
    if left:
        raise Fail(f"runtime state left in {root}: {left[:4]}")
    cgs = []
    for dirpath, dirs, _ in os.walk("/sys/fs/cgroup"):
        if os.path.basename(dirpath) == c.cgparent:
            cgs += [os.path.join(dirpath, d) for d in dirs if f"-{h}-" in d]
            dirs[:] = []
        elif dirpath.count("/") > 5:
            dirs[:] = []
    # containerd leaves the pod's parent cgroup (kubelet owns it); none may hold a process.
    busy = []
    for cg in cgs:
        for dirpath, _, files in os.walk(cg):
            if "cgroup.procs" in files:
                with open(os.path.join(dirpath, "cgroup.procs")) as f:
                    if f.read().strip():
                        busy.append(dirpath)
    if busy:
        raise Fail(f"processes left in {busy[:3]}")


CHECKS = ["lifecycle", "pod_sharing", "privileged", "env150", "volumes40", "exec_oom_score", "kill_all_orphan",
          "restricted", "tty", "oomkilled"]


def time_pods(c, handlers):
    """RunPodSandbox + CreateContainer + StartContainer, PODS_TIMED pods per handler,
    taking turns; the pods are removed between (not timed)."""
    times = {h: [] for h in handlers}
    for i in range(PODS_TIMED):
        for h in (handlers if i % 2 == 0 else handlers[::-1]):
            t0 = time.monotonic()
            pod = c.run_pod(f"timed{i}", h)
            t1 = time.monotonic()
            cid = c.create(pod, "main", ["sh", "-c", LOOP])
            t2 = time.monotonic()
            c.start(cid)
            t3 = time.monotonic()
            times[h].append([(t3 - t0) * 1000, (t1 - t0) * 1000, (t2 - t1) * 1000, (t3 - t2) * 1000])
            c.running(cid)
            c.remove_pod(pod[0])
    # Medians of the sum and of each call.
    return {h: [statistics.median(col) for col in zip(*v)] for h, v in times.items()}


def test(sock, work, cgparent, handlers):
    c = Cri(sock, work, cgparent)
    pb = c.pb
    v = c.rt.Version(pb.VersionRequest(), timeout=CALL)
    print(f"# CRI {v.runtime_api_version}: {v.runtime_name} {v.runtime_version}", flush=True)
    for name in (BUSYBOX, PAUSE):
        if not c.img.ImageStatus(pb.ImageStatusRequest(image=pb.ImageSpec(image=name)), timeout=CALL).image.id:
            print(f"not ok - images: {name} not found by the CRI plugin")
            print("0 passed, 1 failed")
            return 1
    only = os.environ.get("CRI_TEST_ONLY", "").split()
    passed = failed = 0
    for name in CHECKS + ["no_leftovers"]:
        if only and name not in only and name != "no_leftovers":
            continue
        for h in handlers:
            t0 = time.monotonic()
            try:
                extra = globals()["t_" + name](c, h)
                note = f" ({extra})" if extra else ""
                print(f"ok - {h}: {name} ({time.monotonic() - t0:.1f} s){note}", flush=True)
                passed += 1
            except Exception as e:  # any error fails the check, with the reason
                if isinstance(e, Fail):
                    why = str(e)
                elif hasattr(e, "details"):  # a grpc.RpcError: the server's message
                    why = f"{type(e).__name__}: {e.details()}"
                else:
                    why = f"{type(e).__name__}: {e}"
                print(f"not ok - {h}: {name}: {' '.join(why.split())[:400]}", flush=True)
                if os.environ.get("CRI_TEST_VERBOSE"):
                    traceback.print_exc()
                failed += 1
            finally:
                c.cleanup()
    if not only or "timing" in only:
        try:
            med = time_pods(c, handlers)
            parts = ", ".join(f"{h} {m[0]:.0f} ms ({m[1]:.0f} + {m[2]:.0f} + {m[3]:.0f})" for h, m in med.items())
            ratio = ""
            if len(handlers) == 2:
                ratio = f"; {handlers[0]}/{handlers[1]} = {med[handlers[0]][0] / med[handlers[1]][0]:.2f}"
            print(f"ok - timing: RunPodSandbox + CreateContainer + StartContainer, median of {PODS_TIMED}: "
                  f"{parts}{ratio}", flush=True)
            passed += 1
        except Exception as e:
            print(f"not ok - timing: {' '.join(str(e).split())[:400]}", flush=True)
            failed += 1
        finally:
            c.cleanup()
    print(f"{passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


def main(argv):
    if len(argv) >= 4 and argv[0] == "mkimage":
        mkimage(argv[1], argv[2], argv[3], argv[4:])
        return 0
    if len(argv) >= 5 and argv[0] == "test":
        return test(argv[1], argv[2], argv[3], argv[4:])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
