//! PID 1.

pub fn main_as_pid1() -> i32 {
    0
}
