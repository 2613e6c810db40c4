//! Long waits in the container path (a hook, the container's setup answering, a cgroup
//! emptying) call [`tick`] between polls and end at [`deadline`]. The CLI leaves both as
//! runc has them (nothing to pet; only the config's own timeouts). PID 1 registers its
//! watchdog pet and a default deadline ([`set_pid1`]): a step the config leaves open must
//! neither starve the watchdog nor hold the supervisor's loop for ever.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

static TICK: OnceLock<fn()> = OnceLock::new();
static DEFAULT_LIMIT: OnceLock<Duration> = OnceLock::new();

/// PID 1: what to call while waiting, and how long a step may take when the config does
/// not say. Set once; later calls are ignored.
pub fn set_pid1(tick: fn(), limit: Duration) {
    let _ = TICK.set(tick);
    let _ = DEFAULT_LIMIT.set(limit);
}

/// Called between polls of a long wait (pets PID 1's watchdog when due).
pub fn tick() {
    if let Some(f) = TICK.get() {
        f();
    }
}

/// When a wait started now must end: after `configured` if the config gives a limit,
/// else after PID 1's default, else never (the CLI, as runc).
pub fn deadline(configured: Option<Duration>) -> Option<Instant> {
    configured
        .or_else(|| DEFAULT_LIMIT.get().copied())
        .and_then(|d| Instant::now().checked_add(d))
}

/// The limit [`deadline`] applies when the config gives none, for error messages.
pub fn default_limit() -> Option<Duration> {
    DEFAULT_LIMIT.get().copied()
}
