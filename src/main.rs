//! dory: a runc-compatible OCI runtime and the PID 1 of small Linux boards.
//!
//! The modules follow the path a container takes:
//! `cli` → `spec` (config.json) → `plan` (pure translation) → `container` (parent side)
//! → `sandbox` (child side, after clone). `init` is PID 1 and starts containers through
//! the same `container` path. `sys` holds every `unsafe` block.

mod cgroup;
mod cli;
mod container;
mod init;
mod plan;
mod sandbox;
mod seccomp;
mod spec;
#[allow(unsafe_code)]
mod sys;
#[cfg(test)]
mod testutil;

fn main() {
    let code = if std::process::id() == 1 {
        init::main_as_pid1()
    } else {
        cli::main()
    };
    std::process::exit(code);
}
