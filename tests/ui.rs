//! Compile-fail cases: each file in tests/ui/<macro>/ must fail to compile
//! with the message in its .stderr snapshot (`cargo xtask bless` rewrites
//! the snapshots after an intended change).

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/spawn/*.rs");
    cases.compile_fail("tests/ui/task/*.rs");
    cases.compile_fail("tests/ui/datadeps/*.rs");
    cases.compile_fail("tests/ui/streaming/*.rs");
}
