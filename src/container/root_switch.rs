//! How the container's root is switched (pivot_root, `--no-pivot`, chroot without a mount
//! namespace), and what each way refuses: decided in the parent before anything exists.

use crate::plan::{mounts, Plan, PlanError};
use crate::sandbox::RootSwitch;
use crate::spec::{NamespaceKind, Spec};

/// Capabilities that reach the host's root filesystem left beneath a `--no-pivot`
/// container: `CAP_SYS_ADMIN` unmounts the rootfs off it, `CAP_SYS_CHROOT` then enters it
/// (setns into the container's own mount namespace). Either alone is a step towards it.
const ESCAPE_CAPS: &[(u32, &str)] = &[(18, "CAP_SYS_CHROOT"), (21, "CAP_SYS_ADMIN")];

fn refuse(field: &str, message: &str) -> PlanError {
    PlanError {
        field: field.into(),
        message: message.into(),
    }
}

/// The way to switch the root, adjusting `plan` for it: `no_pivot` is `--no-pivot`,
/// `allow_fallback` the board's `unsafeNoPivot` (MS_MOVE only where pivot_root fails).
pub fn choose(
    spec: &Spec<'_>,
    plan: &mut Plan,
    no_pivot: bool,
    allow_fallback: bool,
) -> Result<RootSwitch, PlanError> {
    let new_ns = plan.clone_flags & libc::CLONE_NEWNS != 0;
    let joins_ns = plan.joins.iter().any(|j| j.kind == NamespaceKind::Mount);
    if !new_ns && !joins_ns {
        without_mount_ns(spec, no_pivot)?;
        return Ok(RootSwitch::Chroot);
    }
    if !no_pivot && !allow_fallback {
        return Ok(RootSwitch::Pivot);
    }
    if !new_ns {
        // The host mounts to detach are listed from dory's own namespace.
        return Err(refuse(
            "linux.namespaces",
            "--no-pivot needs a new mount namespace (not one joined by path)",
        ));
    }
    if no_pivot {
        no_pivot_propagation(spec, plan)?;
        warn_escape_caps(plan);
    }
    let rootfs = plan.strings.text(plan.rootfs).to_owned();
    let info = std::fs::read_to_string("/proc/self/mountinfo")
        .map_err(|e| refuse("--no-pivot", &format!("read /proc/self/mountinfo: {e}")))?;
    plan.set_no_pivot_detach(&mounts::no_pivot_detach_list(&info, &rootfs))?;
    Ok(if no_pivot {
        RootSwitch::Move
    } else {
        RootSwitch::PivotOrMove
    })
}

/// As runc: `[r]private` root propagation is refused with `--no-pivot`, and the default is
/// `rslave`, so the host's unmounts still reach the namespace that keeps its root.
fn no_pivot_propagation(spec: &Spec<'_>, plan: &mut Plan) -> Result<(), PlanError> {
    match spec.linux.as_ref().and_then(|l| l.rootfs_propagation) {
        None | Some("") => plan.rootfs_propagation = libc::MS_SLAVE | libc::MS_REC,
        Some("private" | "rprivate") => {
            return Err(refuse(
                "linux.rootfsPropagation",
                "[r]private is not safe without pivot_root (--no-pivot), as runc",
            ))
        }
        Some(_) => {}
    }
    Ok(())
}

/// `--no-pivot` leaves the host's root filesystem under the container: say so when the
/// container may hold what it takes to climb back to it.
fn warn_escape_caps(plan: &Plan) {
    let bounding = plan.process.caps.bounding;
    let held: Vec<&str> = ESCAPE_CAPS
        .iter()
        .filter(|(bit, _)| bounding & (1u64 << bit) != 0)
        .map(|(_, name)| *name)
        .collect();
    if !held.is_empty() {
        eprintln!(
            "dory: warning: --no-pivot: the host's root filesystem stays beneath the \
             container, and it may hold {}: with CAP_SYS_ADMIN and CAP_SYS_CHROOT it can \
             reach the host's files",
            held.join(" and ")
        );
    }
}

/// runc without "mount" in `linux.namespaces` chroots into the rootfs in the host's mount
/// namespace. dory does too, but refuses what would then be done to the host's mounts
/// (runc makes the host's `/` rslave and mounts the config's mounts there).
fn without_mount_ns(spec: &Spec<'_>, no_pivot: bool) -> Result<(), PlanError> {
    const WHY: &str = "needs a \"mount\" entry in linux.namespaces (without one it would \
                       change the host's mounts)";
    let linux = spec.linux.as_ref();
    let checks = [
        ("mounts", !spec.mounts.is_empty()),
        (
            "root.readonly",
            spec.root.as_ref().is_some_and(|r| r.readonly),
        ),
        (
            "linux.rootfsPropagation",
            linux.and_then(|l| l.rootfs_propagation).is_some(),
        ),
        (
            "linux.maskedPaths",
            linux.is_some_and(|l| !l.masked_paths.is_empty()),
        ),
        (
            "linux.readonlyPaths",
            linux.is_some_and(|l| !l.readonly_paths.is_empty()),
        ),
        ("--no-pivot", no_pivot),
    ];
    match checks.iter().find(|(_, bad)| *bad) {
        Some((field, _)) => Err(refuse(field, WHY)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A valid config without a mount namespace; `extra` goes into the top-level object,
    /// `linux_extra` into `linux`.
    fn config(extra: &str, linux_extra: &str) -> String {
        format!(
            r#"{{"ociVersion": "1.0.2", {extra}
                "process": {{"args": ["sh"], "cwd": "/", "user": {{"uid": 0, "gid": 0}}}},
                "root": {{"path": "rootfs"}},
                "linux": {{{linux_extra} "namespaces": [{{"type": "pid"}}]}}}}"#
        )
    }

    fn refusal(text: &str, no_pivot: bool) -> Option<String> {
        let spec = crate::spec::parse(text.as_bytes()).unwrap();
        without_mount_ns(&spec, no_pivot).err().map(|e| e.field)
    }

    #[test]
    fn without_a_mount_namespace_only_a_plain_chroot_is_accepted() {
        assert_eq!(refusal(&config("", ""), false), None);
        let cases = [
            (
                config(
                    r#""mounts": [{"destination": "/proc", "type": "proc"}],"#,
                    "",
                ),
                "mounts",
            ),
            (
                config("", "").replace(
                    r#""root": {"path": "rootfs"}"#,
                    r#""root": {"path": "rootfs", "readonly": true}"#,
                ),
                "root.readonly",
            ),
            (
                config("", r#""maskedPaths": ["/proc/kcore"],"#),
                "linux.maskedPaths",
            ),
            (
                config("", r#""readonlyPaths": ["/proc/sys"],"#),
                "linux.readonlyPaths",
            ),
            (
                config("", r#""rootfsPropagation": "rslave","#),
                "linux.rootfsPropagation",
            ),
        ];
        for (text, field) in cases {
            assert_eq!(refusal(&text, false).as_deref(), Some(field), "{text}");
        }
        assert_eq!(
            refusal(&config("", ""), true).as_deref(),
            Some("--no-pivot")
        );
    }
}
