//! board.json bytes through scan, parse, validation, start order and restart policy, as
//! PID 1 and `dory init --check` take them (see dory's `src/fuzz.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dory::fuzz::board(data));
