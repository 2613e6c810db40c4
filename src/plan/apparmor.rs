//! `process.apparmorProfile`, as runc applies it (libapparmor's `aa_change_onexec`): the
//! process writes `exec <profile>` to its own `attr/apparmor/exec` (or, on kernels before
//! the LSM stacking layout, `attr/exec`) under /proc/self just before it execs, and the
//! kernel confines the program from its first instruction. Whether the host runs AppArmor
//! at all is the container side's question (`container::apparmor`); this part is pure.

use std::ffi::CStr;

/// What is written: the command, a space, the profile's name.
pub const EXEC_PREFIX: &str = "exec ";

/// The files under `/proc/self` tried in order (the first that exists is written), as
/// runc's `setProcAttr`: the AppArmor-specific one (Linux 5.8+, with LSM stacking), then
/// the shared LSM attribute of older kernels.
pub const ATTR_FILES: [&CStr; 2] = [c"attr/apparmor/exec", c"attr/exec"];

/// The text for the attribute file, for an unescaped profile name (`None` for none: an
/// empty name means no profile, as in runc).
pub fn exec_attr(profile: &str) -> Option<String> {
    if profile.is_empty() {
        return None;
    }
    Some(format!("{EXEC_PREFIX}{profile}"))
}

/// The profile's name back from the attribute text (for messages).
pub fn profile_of(attr: &str) -> &str {
    attr.strip_prefix(EXEC_PREFIX).unwrap_or(attr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_attribute_text_is_exec_and_the_name() {
        assert_eq!(
            exec_attr("cri-containerd.apparmor.d").as_deref(),
            Some("exec cri-containerd.apparmor.d")
        );
        assert_eq!(
            profile_of("exec cri-containerd.apparmor.d"),
            "cri-containerd.apparmor.d"
        );
        assert_eq!(exec_attr(""), None);
        // The new layout first, the old one as the fallback.
        assert_eq!(ATTR_FILES, [c"attr/apparmor/exec", c"attr/exec"]);
    }
}
