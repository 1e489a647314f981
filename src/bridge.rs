//! The Rust side of the mime bridge: calls the procs of `tcl/bridge.tcl` (public mime API
//! only) and turns their results into plain Rust values.

use std::fs::File;

use crate::message::{AddressParser, Mailbox};
use crate::tcl::{Interp, Obj, TclError};

/// The Tcl procs, evaluated into each interpreter by `Smtp_Init`.
pub const SCRIPT: &str = include_str!("../tcl/bridge.tcl");

/// What a message needs from the interpreter's surroundings.
#[derive(Debug, Clone)]
pub struct Context {
    pub hostname: String,
    pub user: String,
    /// A Date value for now, in mime's RFC 5322 format.
    pub date: String,
}

/// A rendered mime token.
#[derive(Debug)]
pub struct Rendered {
    /// The message as mime renders it (line ends not yet normalised), in a temporary
    /// file that no longer has a name: it goes when the file is closed.
    pub file: File,
    /// The token's own header fields (name, value), for injection checks.
    pub fields: Vec<(String, String)>,
}

/// Calls into one interpreter's bridge procs.
pub struct Bridge<'a, 'i> {
    interp: &'a Interp<'i>,
}

impl<'a, 'i> Bridge<'a, 'i> {
    pub fn new(interp: &'a Interp<'i>) -> Self {
        Bridge { interp }
    }

    fn call(&self, proc_name: &str, args: &[Obj]) -> Result<Vec<Obj>, TclError> {
        let mut words = vec![self.interp.new_string(proc_name)];
        words.extend_from_slice(args);
        let result = self.interp.eval_global(&words)?;
        self.interp.list_elements(&result)
    }

    pub fn context(&self) -> Result<Context, TclError> {
        let words = self.call("::smtp::bridge::context", &[])?;
        let text = |i: usize| words.get(i).map(Obj::text).unwrap_or_default();
        Ok(Context { hostname: text(0), user: text(1), date: text(2) })
    }

    /// Renders `token`; fails with `invalid mime token "X"` for anything else.
    pub fn render(&self, token: &Obj) -> Result<Rendered, TclError> {
        let words = self.call("::smtp::bridge::message", std::slice::from_ref(token))?;
        let (Some(message), Some(fields)) = (words.first(), words.get(1)) else {
            return Err(TclError::new("mime bridge returned a malformed result", &["SMTP", "INTERNAL", "BRIDGE"]));
        };
        let path = message.text();
        let opened = File::open(&path);
        // Unlinked at once: nothing is left behind, whatever happens to the send.
        let _ = std::fs::remove_file(&path);
        let file = opened
            .map_err(|e| TclError::new(format!("cannot read the rendered message: {e}"), &["SMTP", "MIME", "BUILD"]))?;
        let flat = self.interp.list_elements(fields)?;
        let fields = flat.chunks(2).map(|p| (text_at(p, 0), text_at(p, 1))).collect();
        Ok(Rendered { file, fields })
    }
}

fn text_at(words: &[Obj], i: usize) -> String {
    words.get(i).map(Obj::text).unwrap_or_default()
}

impl AddressParser for Bridge<'_, '_> {
    fn parse(&mut self, text: &str) -> Result<Vec<Mailbox>, String> {
        let arg = self.interp.new_string(text);
        let flat = self.call("::smtp::bridge::parseaddress", &[arg]).map_err(|e| e.message)?;
        Ok(flat.chunks(2).map(|p| Mailbox { address: text_at(p, 0), error: text_at(p, 1) }).collect())
    }
}
