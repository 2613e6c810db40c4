//! A command line (words separated by NUL bytes) through dory's argument parsers (see
//! dory's `src/cli/fuzz.rs`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| dory::fuzz::cli(data));
