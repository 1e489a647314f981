//! tclsmtp: the Tcl `smtp` package (a drop-in for tcllib smtp 1.5.1), written in Rust.
//!
//! Layers, from Tcl down (dependencies point down only; only `smtp`, `sasl`, `secret` and
//! `spool` are public, for the fuzz targets and the benchmark):
//! - `tcl`: safe wrappers over the Tcl C API, the only unsafe code;
//! - `command`: `::smtp::sendmessage` and `::smtp::mail` options → a typed request,
//!   result → Tcl result, errors → Tcl errors (one conversion);
//! - `bridge` (+ `tcl/bridge.tcl`): reads tcllib mime tokens through mime's public API;
//! - `message`: envelope and header rules, no Tcl; `compose`: the message builder of
//!   `::smtp::mail`;
//! - `client`: tries the servers and drives the engine over connections, sending the
//!   message from its [`spool`] (which also converts it to 7 bits where needed);
//! - [`smtp`]: the protocol engine (no I/O, no clock, no Tcl); [`sasl`]: the AUTH
//!   mechanisms as pure functions; `transport`: TCP and TLS.

// Unsafe code is a compile error outside the Tcl glue (and the entry point Tcl calls).
#![deny(unsafe_code)]

mod bridge;
mod client;
mod command;
mod compose;
mod message;
mod random;
pub mod sasl;
pub mod secret;
pub mod smtp;
pub mod spool;
#[allow(unsafe_code)] // the Tcl C API: every unsafe block carries its SAFETY reason
mod tcl;
mod transport;

use std::ffi::c_int;

/// The package version, from Cargo.toml (also written into pkgIndex.tcl by build.rs).
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Tcl's `load` entry point: `load libtclsmtp.so Smtp`.
#[allow(unsafe_code)] // an exported symbol that Tcl's `load` looks up by name
#[no_mangle]
pub extern "C" fn Smtp_Init(interp: *mut tcl_sys::Tcl_Interp) -> c_int {
    tcl::init_extension(interp, command::panic_error, |interp| {
        interp.eval_script(bridge::SCRIPT)?;
        command::register(interp)?;
        interp.eval_script("namespace eval ::smtp {namespace export sendmessage mail}")?;
        interp.provide("smtp", VERSION)
    })
}
