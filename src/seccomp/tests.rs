const PODMAN: &str = include_str!("../../tests/fixtures/podman-4.3-config.json");
#[test]
fn stack_parse() {
    let s = crate::spec::parse_unvalidated(PODMAN.as_bytes()).unwrap();
    assert!(s.linux.is_some());
}
#[test]
fn stack_compile() {
    let s = crate::spec::parse_unvalidated(PODMAN.as_bytes()).unwrap();
    let p = super::compile(s.linux.as_ref().unwrap().seccomp.as_ref().unwrap()).unwrap();
    eprintln!("{p:?}");
}
