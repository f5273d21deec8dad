//! `ui/pass/`: compiled and run as hosted processes (they must exit 0).
//! `ui/fail/`: must fail to compile with exactly the committed `.stderr`.
//! Refresh snapshots after an intended change with `TRYBUILD=overwrite`.

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/pass/*.rs");
    t.compile_fail("tests/ui/fail/*.rs");
}
