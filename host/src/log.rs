//! `-v` diagnostics on stderr. Callers never pass secrets here.

use std::sync::atomic::{AtomicBool, Ordering};

static VERBOSE: AtomicBool = AtomicBool::new(false);

pub fn set_verbose(on: bool) {
    VERBOSE.store(on, Ordering::Relaxed);
}

pub fn verbose(args: std::fmt::Arguments<'_>) {
    if VERBOSE.load(Ordering::Relaxed) {
        eprintln!("lakeport: {args}");
    }
}

/// `text` safe to print on a terminal: control characters (C0, DEL, C1)
/// and bidirectional overrides are written as `\u{…}` escapes, so a
/// server's text (a key, a message, a URL) cannot move the cursor, retitle
/// the terminal, hide what follows or reorder it.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    if !text.chars().any(unsafe_char) {
        return text.into();
    }
    text.chars().map(|c| if unsafe_char(c) { c.escape_unicode().to_string() } else { c.to_string() }).collect::<String>().into()
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped() {
        assert_eq!(printable("plain key/ü.txt"), "plain key/ü.txt");
        assert_eq!(printable("a\u{1b}[2Jb\u{7}\u{9b}c\nd"), "a\\u{1b}[2Jb\\u{7}\\u{9b}c\\u{a}d");
        assert_eq!(printable("x\u{202e}gnp.exe"), "x\\u{202e}gnp.exe");
    }
}
