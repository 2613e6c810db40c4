//! dory: a runc-compatible OCI runtime and the PID 1 of small Linux boards.
//!
//! The modules follow the path a container takes:
//! `cli` → `spec` (config.json) → `plan` (pure translation) → `container` (parent side)
//! → `sandbox` (child side, after clone). `init` is PID 1 and starts containers through
//! the same `container` path. `sys` holds every `unsafe` block.
//!
//! The binary (`src/main.rs`) only calls [`main`]. The library exists so that the fuzz
//! targets under `fuzz/` can call the parsers; their entry points are in `fuzz`, built
//! only with `--cfg fuzzing` (cargo-fuzz sets it), so the shipped binary is unchanged.

mod cgroup;
mod cli;
mod container;
#[cfg(fuzzing)]
pub mod fuzz;
mod init;
mod plan;
mod sandbox;
mod seccomp;
mod spec;
#[allow(unsafe_code)]
mod sys;
#[cfg(test)]
mod testutil;

/// The whole program: PID 1 of a board (the kernel's init), else the runc-style CLI.
/// Returns the process exit code.
pub fn main() -> i32 {
    if std::process::id() == 1 {
        init::main_as_pid1()
    } else {
        cli::main()
    }
}
