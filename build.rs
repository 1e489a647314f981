//! Writes `pkgIndex.tcl` next to the built library, so the build directory
//! (`target/debug` or `target/release`) is itself a loadable Tcl package directory.
//!
//! The Tcl bindings and the link to the Tcl stub library (`libtclstub8.6.a`) come from
//! the `tcl-sys` crate; nothing links `libtcl8.6.so` itself, because every call goes
//! through the stubs table.

use std::env;
use std::fs;
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=pkgIndex.tcl.in");
    let version = env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let library = match target_os.as_str() {
        "windows" => "tclsmtp.dll",
        "macos" => "libtclsmtp.dylib",
        _ => "libtclsmtp.so",
    };
    let template = fs::read_to_string("pkgIndex.tcl.in").unwrap_or_else(|e| panic!("pkgIndex.tcl.in: {e}"));
    let index = template.replace("@VERSION@", &version).replace("@LIBRARY@", library);

    // OUT_DIR is <target>/<profile>/build/<crate>-<hash>/out; the library lands in <target>/<profile>.
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap_or_default());
    let Some(profile_dir) = out_dir.ancestors().nth(3) else {
        panic!("unexpected OUT_DIR layout: {}", out_dir.display());
    };
    fs::write(profile_dir.join("pkgIndex.tcl"), index).unwrap_or_else(|e| panic!("writing pkgIndex.tcl: {e}"));
}
