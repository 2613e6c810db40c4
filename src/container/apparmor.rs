//! Whether the host runs AppArmor: where it does not, a config's `process.apparmorProfile`
//! is ignored with a warning (no profile can be loaded, nor confine anything, there);
//! where it does, the process applies it before exec (`plan::apparmor`, `sandbox`).

use std::path::Path;

use crate::plan::{apparmor, Arena, ProcessPlan};

/// Whether the host enforces AppArmor, as runc's `apparmor.IsEnabled` decides: securityfs
/// shows `<sys>/kernel/security/apparmor` and the module's `enabled` parameter
/// (`<sys>/module/apparmor/parameters/enabled`) starts with `Y`. `sys` is `/sys` (a
/// directory standing in for it in tests).
pub fn host_enabled(sys: &Path) -> bool {
    if !sys.join("kernel/security/apparmor").exists() {
        return false;
    }
    std::fs::read(sys.join("module/apparmor/parameters/enabled"))
        .is_ok_and(|v| v.first() == Some(&b'Y'))
}

/// Drops the profile of `process` with a warning naming `field` (where the profile came
/// from) when the host at `sys` does not run AppArmor. (runc 1.1.5 and crun 1.8.1 fail such a container: the write to
/// `/proc/self/attr/exec` gives EINVAL. containerd asks for a profile only where the host
/// runs AppArmor, so this meets configs written for another host.)
pub fn unless_enabled(process: &mut ProcessPlan, strings: &Arena, sys: &Path, field: &str) {
    let Some(id) = process.apparmor else {
        return;
    };
    if host_enabled(sys) {
        return;
    }
    crate::cli::log::warning(format_args!(
        "{field}: \"{}\" not applied: AppArmor is not enabled on this host",
        apparmor::profile_of(strings.text(id))
    ));
    process.apparmor = None;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_asked_as_runc_asks_it() {
        let base = std::env::temp_dir().join(format!("dory-aa-{}", std::process::id()));
        let sys = base.join("sys");
        let params = sys.join("module/apparmor/parameters");
        std::fs::create_dir_all(&params).unwrap();
        // No securityfs entry: disabled whatever the parameter says.
        std::fs::write(params.join("enabled"), "Y\n").unwrap();
        assert!(!host_enabled(&sys));
        std::fs::create_dir_all(sys.join("kernel/security/apparmor")).unwrap();
        assert!(host_enabled(&sys));
        std::fs::write(params.join("enabled"), "N\n").unwrap();
        assert!(!host_enabled(&sys));
        std::fs::remove_file(params.join("enabled")).unwrap();
        assert!(!host_enabled(&sys));
        std::fs::remove_dir_all(&base).unwrap();
        // A host without the AppArmor module (this project's CI machines).
        if !Path::new("/sys/module/apparmor").exists() {
            assert!(!host_enabled(Path::new("/sys")));
        }
    }
}
