//! tclsmtp: the Tcl `smtp` package (a drop-in for tcllib smtp 1.5.1), written in Rust.
//!
//! Layers, from Tcl down (dependencies point down only):
//! - [`tcl`]: safe wrappers over the Tcl C API, the only unsafe code;
//! - `command`: `::smtp::sendmessage` options → a typed request, outcome → Tcl result;
//! - `bridge` (+ `tcl/bridge.tcl`): reads tcllib mime tokens through mime's public API;
//! - `message`: envelope and header rules, no Tcl;
//! - [`client`]: tries the servers and drives the engine over connections, sending the
//!   message from its [`spool`];
//! - [`smtp`]: the protocol engine (no I/O, no clock, no Tcl); [`sasl`]: the AUTH
//!   mechanisms as pure functions; [`transport`]: TCP and TLS.

mod bridge;
pub mod client;
mod command;
pub mod compose;
pub mod message;
pub mod sasl;
pub mod secret;
pub mod smtp;
pub mod spool;
mod tcl;
pub mod transport;

use std::ffi::c_int;

/// The package version, from Cargo.toml (also written into pkgIndex.tcl by build.rs).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Tcl's `load` entry point: `load libtclsmtp.so Smtp`.
#[no_mangle]
pub extern "C" fn Smtp_Init(interp: *mut tcl_sys::Tcl_Interp) -> c_int {
    tcl::init_extension(interp, |interp| {
        interp.eval_script(bridge::SCRIPT)?;
        command::register(interp)?;
        interp.eval_script("namespace eval ::smtp {namespace export sendmessage mail}")?;
        interp.provide("smtp", VERSION)
    })
}
