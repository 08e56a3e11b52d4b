//! XML for S3: the element tree of answers (from lakeport-xml) and escaping
//! for the request bodies this crate writes.

use crate::error::{invalid_input, Result};

/// The S3 namespace of request bodies.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

pub use lakeport_xml::{parse_document, trim_xml, Element, Malformed};

/// Appends `text` escaped for element content (`\r` as `&#13;`: see
/// [`lakeport_xml::push_escaped`]). Text XML 1.0 cannot carry (other control
/// characters) is refused: `what` names it in the message.
pub fn push_escaped(out: &mut String, text: &str, what: &str) -> Result<()> {
    if let Some(c) = text.chars().find(|&c| !lakeport_xml::is_xml_char(c)) {
        return Err(invalid_input(format!(
            "{what} contains the character U+{:04X}, which an XML request body cannot carry",
            u32::from(c)
        )));
    }
    lakeport_xml::push_escaped(out, text);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_for_bodies() {
        let mut out = String::new();
        push_escaped(&mut out, "a&b<c>\"d'\r\n\tü", "key").unwrap();
        assert_eq!(out, "a&amp;b&lt;c&gt;&quot;d&apos;&#13;\n\tü");
        let err = push_escaped(&mut String::new(), "a\u{1}b", "the key \"a\"").unwrap_err().to_string();
        assert!(err.contains("U+0001"), "{err}");
        // What is written reads back as the same text.
        let doc = parse_document(&format!("<K>{out}</K>")).unwrap();
        assert_eq!(doc.text, "a&b<c>\"d'\r\n\tü");
    }
}
