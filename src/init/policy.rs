//! The restart policy of a service as a pure state machine: events in, decisions out.
//!
//! Event: the service exited (code or signal, or was killed for failing its health probe)
//! at time `t` after running since `started`. Decision: restart at `t + delay`, stay down,
//! or give up.
//!
//! Rules:
//! - `never`: stay down after any exit.
//! - `on-failure`: a clean exit (status 0) stays down; a failure (non-zero status, killed by
//!   a signal, unhealthy) restarts.
//! - `always`: every exit restarts.
//! - Each restart counts as a retry. Delay for retry n (0-based) is
//!   `initialDelayMs × factor^n`, capped at `maxDelayMs`. When `maxRetries` retries have been
//!   used, the next exit gives up (`onGiveUp` decides what then).
//! - Window reset: a run that lasted at least `resetWindowSecs` proves the service healthy,
//!   so the retry count (and with it the backoff) starts over from 0 at that exit.
//! - A manual `start`/`restart` (ctl) also starts over from 0.

/// When a service is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    Always,
    OnFailure,
    Never,
}

/// `restart` of board.json.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartSpec {
    pub policy: Policy,
    pub initial_delay_ms: u32,
    pub factor: u32,
    pub max_delay_ms: u32,
    pub max_retries: u32,
    pub reset_window_secs: u32,
}

/// How a service's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Exited with this status.
    Code(i32),
    /// Killed by this signal number.
    Signal(i32),
    /// Killed by dory after `failures` consecutive failed health probes.
    Unhealthy,
}

impl Exit {
    pub fn is_failure(self) -> bool {
        !matches!(self, Exit::Code(0))
    }
}

/// What to do after an exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Start again at `at_ms` (`delay_ms` after the exit); this is retry number `retry`
    /// (1-based) of at most `max_retries`.
    Restart {
        at_ms: u64,
        delay_ms: u64,
        retry: u32,
    },
    /// Stay down: the policy does not restart this exit.
    Stay,
    /// `retries` restarts were used up; stay down and apply `onGiveUp`.
    GiveUp { retries: u32 },
}

/// The per-service memory of the policy: how many retries were used.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestartState {
    pub retries: u32,
}

/// Backoff delay before retry number `n` (0-based). At most 33 multiplications whatever
/// `n`: a factor of 2 or more passes any u32 cap by then, and a factor of 1 (or an
/// initial delay of 0) never grows the delay.
pub fn backoff_ms(spec: &RestartSpec, n: u32) -> u64 {
    let cap = u64::from(spec.max_delay_ms);
    let mut d = u64::from(spec.initial_delay_ms);
    if spec.factor <= 1 || d == 0 {
        return d.min(cap);
    }
    for _ in 0..n {
        if d >= cap {
            break;
        }
        d = d.saturating_mul(u64::from(spec.factor));
    }
    d.min(cap)
}

impl RestartState {
    /// Starts over (manual start or restart).
    pub fn reset(&mut self) {
        self.retries = 0;
    }

    /// The service started at `started_ms` ended as `exit` at `now_ms`.
    pub fn on_exit(
        &mut self,
        spec: &RestartSpec,
        started_ms: u64,
        now_ms: u64,
        exit: Exit,
    ) -> Decision {
        let ran_ms = now_ms.saturating_sub(started_ms);
        if ran_ms >= u64::from(spec.reset_window_secs).saturating_mul(1000) {
            self.retries = 0;
        }
        let restart = match spec.policy {
            Policy::Never => false,
            Policy::OnFailure => exit.is_failure(),
            Policy::Always => true,
        };
        if !restart {
            return Decision::Stay;
        }
        if self.retries >= spec.max_retries {
            return Decision::GiveUp {
                retries: self.retries,
            };
        }
        let delay_ms = backoff_ms(spec, self.retries);
        self.retries += 1;
        Decision::Restart {
            at_ms: now_ms.saturating_add(delay_ms),
            delay_ms,
            retry: self.retries,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(policy: Policy) -> RestartSpec {
        RestartSpec {
            policy,
            initial_delay_ms: 100,
            factor: 2,
            max_delay_ms: 1000,
            max_retries: 6,
            reset_window_secs: 60,
        }
    }

    /// Runs a crash loop: each run lasts `run_ms`, exits with `exit`; returns decisions.
    fn crash_loop(spec: &RestartSpec, exit: Exit, run_ms: u64, n: usize) -> Vec<Decision> {
        let mut st = RestartState::default();
        let mut t = 0;
        let mut out = vec![];
        for _ in 0..n {
            let started = t;
            t += run_ms;
            let d = st.on_exit(spec, started, t, exit);
            if let Decision::Restart { at_ms, .. } = d {
                t = at_ms;
            }
            out.push(d);
        }
        out
    }

    #[test]
    fn crash_loop_backs_off_caps_and_gives_up() {
        let s = spec(Policy::Always);
        let d = crash_loop(&s, Exit::Code(1), 10, 8);
        let delays: Vec<u64> = d
            .iter()
            .filter_map(|d| match d {
                Decision::Restart { delay_ms, .. } => Some(*delay_ms),
                _ => None,
            })
            .collect();
        assert_eq!(delays, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(d[6], Decision::GiveUp { retries: 6 });
        assert_eq!(d[7], Decision::GiveUp { retries: 6 });
        // Restart times are exit time + delay: first exit at 10 → 110.
        assert_eq!(
            d[0],
            Decision::Restart {
                at_ms: 110,
                delay_ms: 100,
                retry: 1
            }
        );
        assert_eq!(
            d[1],
            Decision::Restart {
                at_ms: 320,
                delay_ms: 200,
                retry: 2
            }
        );
    }

    #[test]
    fn issue_crasher_gives_up_after_two() {
        let s = RestartSpec {
            max_retries: 2,
            ..spec(Policy::OnFailure)
        };
        let d = crash_loop(&s, Exit::Signal(9), 5, 3);
        assert!(matches!(
            d[0],
            Decision::Restart {
                delay_ms: 100,
                retry: 1,
                ..
            }
        ));
        assert!(matches!(
            d[1],
            Decision::Restart {
                delay_ms: 200,
                retry: 2,
                ..
            }
        ));
        assert_eq!(d[2], Decision::GiveUp { retries: 2 });
    }

    #[test]
    fn window_reset_starts_over() {
        let s = spec(Policy::Always);
        let mut st = RestartState::default();
        assert!(matches!(
            st.on_exit(&s, 0, 10, Exit::Code(1)),
            Decision::Restart { delay_ms: 100, .. }
        ));
        assert!(matches!(
            st.on_exit(&s, 110, 120, Exit::Code(1)),
            Decision::Restart { delay_ms: 200, .. }
        ));
        // This run lasted exactly the window (60 s): count starts over.
        let started = 320;
        let d = st.on_exit(&s, started, started + 60_000, Exit::Code(1));
        assert!(matches!(
            d,
            Decision::Restart {
                delay_ms: 100,
                retry: 1,
                ..
            }
        ));
        // One ms short of the window does not reset.
        let mut st2 = RestartState { retries: 3 };
        assert!(matches!(
            st2.on_exit(&s, 0, 59_999, Exit::Code(1)),
            Decision::Restart {
                delay_ms: 800,
                retry: 4,
                ..
            }
        ));
    }

    #[test]
    fn on_failure_vs_always_vs_never() {
        let mut st = RestartState::default();
        let of = spec(Policy::OnFailure);
        assert_eq!(st.on_exit(&of, 0, 5, Exit::Code(0)), Decision::Stay);
        assert!(matches!(
            st.on_exit(&of, 0, 5, Exit::Code(3)),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            st.on_exit(&of, 0, 5, Exit::Signal(15)),
            Decision::Restart { .. }
        ));
        assert!(matches!(
            st.on_exit(&of, 0, 5, Exit::Unhealthy),
            Decision::Restart { .. }
        ));

        let mut st = RestartState::default();
        let al = spec(Policy::Always);
        assert!(matches!(
            st.on_exit(&al, 0, 5, Exit::Code(0)),
            Decision::Restart { retry: 1, .. }
        ));
        assert!(matches!(
            st.on_exit(&al, 0, 5, Exit::Code(2)),
            Decision::Restart { retry: 2, .. }
        ));

        let mut st = RestartState::default();
        let nv = spec(Policy::Never);
        for e in [
            Exit::Code(0),
            Exit::Code(1),
            Exit::Signal(9),
            Exit::Unhealthy,
        ] {
            assert_eq!(st.on_exit(&nv, 0, 5, e), Decision::Stay);
        }
    }

    #[test]
    fn manual_reset_and_zero_retries() {
        let s = RestartSpec {
            max_retries: 0,
            ..spec(Policy::Always)
        };
        let mut st = RestartState::default();
        assert_eq!(
            st.on_exit(&s, 0, 1, Exit::Code(1)),
            Decision::GiveUp { retries: 0 }
        );
        let s = spec(Policy::Always);
        let mut st = RestartState { retries: 6 };
        assert!(matches!(
            st.on_exit(&s, 0, 1, Exit::Code(1)),
            Decision::GiveUp { .. }
        ));
        st.reset();
        assert!(matches!(
            st.on_exit(&s, 0, 1, Exit::Code(1)),
            Decision::Restart { delay_ms: 100, .. }
        ));
    }

    #[test]
    fn backoff_does_not_overflow() {
        let s = RestartSpec {
            initial_delay_ms: u32::MAX,
            factor: u32::MAX,
            max_delay_ms: u32::MAX,
            ..spec(Policy::Always)
        };
        assert_eq!(backoff_ms(&s, 1000), u64::from(u32::MAX));
        let s = RestartSpec {
            factor: 1,
            ..spec(Policy::Always)
        };
        assert_eq!(backoff_ms(&s, 50), 100);
    }

    /// Found by the board fuzz target: with a factor of 1 the delay never reached the cap,
    /// so the delay of retry n took n multiplications; PID 1 computes it at every exit of
    /// a crash-looping service (maxRetries up to 2^32-1), ever slower.
    #[test]
    fn backoff_takes_the_same_time_for_any_retry() {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let one = RestartSpec {
                factor: 1,
                max_retries: u32::MAX,
                ..spec(Policy::Always)
            };
            let zero = RestartSpec {
                initial_delay_ms: 0,
                ..one
            };
            let two = RestartSpec { factor: 2, ..one };
            let _ = tx.send([
                backoff_ms(&one, u32::MAX - 1),
                backoff_ms(&zero, u32::MAX - 1),
                backoff_ms(&two, u32::MAX - 1),
            ]);
        });
        let got = rx
            .recv_timeout(std::time::Duration::from_secs(2))
            .expect("backoff_ms took more than 2 s");
        assert_eq!(got, [100, 0, 1000]);
    }
}
