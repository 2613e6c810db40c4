//! config.json bytes through scan, parse, validation (with the seccomp compiler) and the
//! plan, as `dory run` and `dory create` take them (see dory's `src/fuzz.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dory::fuzz::config(data));
