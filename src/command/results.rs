//! The Tcl values of a send's result: the list of refused recipients, and the dict a
//! `-command` callback gets.

use crate::client::Delivery;
use crate::smtp::Refusal;
use crate::tcl::{Interp, Obj, TclError};

/// The result of a send: a list of `{address code diagnostic}`, one per refused
/// recipient (an empty list, i.e. `""`, when every recipient was accepted).
pub fn refusals(interp: &Interp<'_>, refused: &[Refusal]) -> Obj {
    let items: Vec<Obj> = refused
        .iter()
        .map(|r| {
            interp.new_list(&[
                interp.new_string(&r.address),
                interp.new_int(i64::from(r.reply.code)),
                interp.new_string(r.reply.text()),
            ])
        })
        .collect();
    interp.new_list(&items)
}

/// What a `-command` callback gets: `status ok refused {…} refusedenhanced {…}` or
/// `status error refused {} refusedenhanced {} error message errorcode {…} enhanced code`.
/// `refusedenhanced` maps each refused address whose reply had an enhanced status code
/// (RFC 3463) to it; `enhanced` is the failing reply's, the last word of the errorcode
/// when there is one, else empty.
pub fn callback_dict(interp: &Interp<'_>, result: &Result<Delivery, TclError>) -> Obj {
    let mut pairs = Vec::with_capacity(12);
    let text = |s: &str| interp.new_string(s);
    match result {
        Ok(delivery) => {
            pairs.extend([text("status"), text("ok")]);
            pairs.extend([text("refused"), refusals(interp, &delivery.refused)]);
            let enhanced: Vec<Obj> = delivery
                .refused
                .iter()
                .filter_map(|r| r.reply.enhanced.map(|code| [text(&r.address), text(&code.to_string())]))
                .flatten()
                .collect();
            pairs.extend([text("refusedenhanced"), interp.new_list(&enhanced)]);
        }
        Err(e) => {
            let code: Vec<Obj> = e.errorcode.iter().map(|w| text(w)).collect();
            pairs.extend([text("status"), text("error")]);
            pairs.extend([text("refused"), interp.new_list(&[])]);
            pairs.extend([text("refusedenhanced"), interp.new_list(&[])]);
            pairs.extend([text("error"), text(&e.message)]);
            pairs.extend([text("errorcode"), interp.new_list(&code)]);
            let last = e.errorcode.last().filter(|w| is_enhanced_code(w));
            pairs.extend([text("enhanced"), text(last.map_or("", String::as_str))]);
        }
    }
    interp.new_list(&pairs)
}

/// Whether `word` has the form of an enhanced status code (`5.7.1`).
fn is_enhanced_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    parts.len() == 3 && parts.iter().all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
}
