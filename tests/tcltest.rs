//! Runs the tcltest suites (tests/all.tcl) against the library this `cargo test` built,
//! so `cargo test` covers everything.

use std::path::Path;
use std::process::Command;

#[test]
fn tcltest_suites_pass() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Integration tests live in <target>/<profile>/deps; the library is one level up.
    let exe = std::env::current_exe().expect("test binary path");
    let libdir = exe.parent().and_then(Path::parent).expect("profile directory");
    // `cargo test` links only the rlib for its test binaries; the cdylib that tclsh
    // loads must be built explicitly, in the same profile.
    let mut build = Command::new(env!("CARGO"));
    build.args(["build", "--lib", "--quiet"]).current_dir(root);
    if libdir.file_name().is_some_and(|p| p == "release") {
        build.arg("--release");
    }
    assert!(build.status().expect("cargo runs").success(), "cargo build --lib failed");
    assert!(libdir.join("libtclsmtp.so").exists(), "no libtclsmtp.so in {}", libdir.display());
    let status = Command::new("tclsh8.6")
        .arg(root.join("tests/all.tcl"))
        .env("TCLSMTP_LIBDIR", libdir)
        .current_dir(root)
        .status()
        .expect("tclsh8.6 runs");
    assert!(status.success(), "tests/all.tcl failed: {status}");
}
