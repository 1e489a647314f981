//! The Tcl glue: the only module with `unsafe` code.
//!
//! Everything above this layer sees safe types: [`Interp`] (a borrowed interpreter),
//! [`Obj`] (a reference-counted `Tcl_Obj`), and [`TclError`] (a message plus an
//! `-errorcode` list). Every Tcl C function is reached through the stubs table
//! (`Tcl_InitStubs`), so the library never links `libtcl8.6.so` directly and loads into
//! any Tcl 8.6 build.
#![deny(clippy::undocumented_unsafe_blocks)]

mod api;
mod event;
mod interp;
mod obj;
pub mod utf;

pub use event::{ThreadRelease, Waker};
pub use interp::{init_extension, panic_message, Interp, InterpHandle, TclError};
pub use obj::Obj;
