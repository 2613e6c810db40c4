//! runc-compatible command line.

pub fn main() -> i32 {
    // TEMPORARY wiring by the init helper for testing; the lead owns this file.
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("init") => crate::init::main_from_cli(args.get(2..).unwrap_or_default()),
        Some("ctl") => crate::init::ctl_main(args.get(2..).unwrap_or_default()),
        _ => 0,
    }
}
