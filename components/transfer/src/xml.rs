//! A small element tree over quick-xml for S3 answers, and escaping for the
//! request bodies this crate writes. Elements are named by local name, so
//! namespaces and prefixes do not matter; attributes are not kept (S3
//! answers carry nothing in them that a transfer needs).

use quick_xml::errors::Error as XmlError;
use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

use crate::error::{invalid_input, Result};

/// The S3 namespace of request bodies.
pub const S3_NAMESPACE: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Deeper than any S3 document.
const MAX_DEPTH: usize = 32;
/// More elements than a 1000-entry listing page holds many times over.
const MAX_ELEMENTS: usize = 200_000;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub name: String,
    /// All text directly inside the element (entities resolved).
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|c| c.name == name)
    }

    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> + 'a {
        self.children.iter().filter(move |c| c.name == name)
    }

    /// The text of the first child called `name`, trimmed of XML
    /// whitespace; `None` when there is no such child.
    pub fn text_of(&self, name: &str) -> Option<&str> {
        self.child(name).map(|c| trim_xml(&c.text))
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Malformed {
    /// The input ended inside the document.
    Truncated,
    /// Not well-formed, or not a single root element.
    Invalid,
    /// Deeper or larger than any S3 answer.
    TooLarge,
}

pub fn trim_xml(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

fn entity(r: &BytesRef<'_>) -> Option<char> {
    if r.is_char_ref() {
        return r.resolve_char_ref().ok().flatten();
    }
    match &**r {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        _ => None,
    }
}

/// Reads one XML document into a tree.
pub fn parse_document(text: &str) -> Result<Element, Malformed> {
    let mut reader = Reader::from_str(text);
    let mut open: Vec<Element> = Vec::new();
    let mut root: Option<Element> = None;
    let mut count = 0usize;
    loop {
        let event = reader.read_event().map_err(|e| match e {
            XmlError::Syntax(_) => Malformed::Truncated,
            _ => Malformed::Invalid,
        })?;
        match event {
            Event::Start(_) | Event::Empty(_) if open.is_empty() && root.is_some() => return Err(Malformed::Invalid),
            Event::Start(_) | Event::Empty(_) if open.len() >= MAX_DEPTH || count >= MAX_ELEMENTS => return Err(Malformed::TooLarge),
            Event::Start(e) => {
                count += 1;
                open.push(Element { name: e.local_name().into_inner().to_string(), ..Element::default() });
            }
            Event::Empty(e) => {
                count += 1;
                let element = Element { name: e.local_name().into_inner().to_string(), ..Element::default() };
                match open.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::End(_) => {
                let element = open.pop().ok_or(Malformed::Invalid)?;
                match open.last_mut() {
                    Some(parent) => parent.children.push(element),
                    None => root = Some(element),
                }
            }
            Event::Text(t) => match open.last_mut() {
                Some(e) => e.text.push_str(&t.xml10_content()),
                None if trim_xml(&t).is_empty() => {}
                None => return Err(Malformed::Invalid),
            },
            Event::CData(c) => match open.last_mut() {
                Some(e) => e.text.push_str(&c.xml10_content()),
                None => return Err(Malformed::Invalid),
            },
            Event::GeneralRef(r) => match (open.last_mut(), entity(&r)) {
                (Some(e), Some(c)) => e.text.push(c),
                _ => return Err(Malformed::Invalid),
            },
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
            Event::Eof => break,
        }
    }
    match (open.is_empty(), root) {
        (false, _) => Err(Malformed::Truncated),
        (true, None) => Err(Malformed::Invalid),
        (true, Some(root)) => Ok(root),
    }
}

/// Characters XML 1.0 can carry (in element text).
fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `text` escaped for element content. `\r` becomes `&#13;`, since
/// an XML reader would turn a raw one into `\n`. Text XML 1.0 cannot carry
/// (other control characters) is refused: `what` names it in the message.
pub fn push_escaped(out: &mut String, text: &str, what: &str) -> Result<()> {
    if let Some(c) = text.chars().find(|&c| !is_xml_char(c)) {
        return Err(invalid_input(format!(
            "{what} contains the character U+{:04X}, which an XML request body cannot carry",
            u32::from(c)
        )));
    }
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_tree_by_local_name() {
        let doc = parse_document(
            "<?xml version=\"1.0\"?>\n<s3:R xmlns:s3=\"u\"><s3:A> x &amp; &#34;y&#x22; </s3:A><B/><A>2</A><C><![CDATA[<z>]]></C></s3:R>\n",
        )
        .unwrap();
        assert_eq!(doc.name, "R");
        assert_eq!(doc.text_of("A"), Some("x & \"y\""));
        assert_eq!(doc.children_named("A").count(), 2);
        assert_eq!(doc.text_of("B"), Some(""));
        assert_eq!(doc.text_of("C"), Some("<z>"));
        assert_eq!(doc.text_of("D"), None);
    }

    #[test]
    fn malformed_documents() {
        assert_eq!(parse_document("<A><B></B>"), Err(Malformed::Truncated));
        assert_eq!(parse_document("<A></B>"), Err(Malformed::Invalid));
        assert_eq!(parse_document("<A/><B/>"), Err(Malformed::Invalid));
        assert_eq!(parse_document("text"), Err(Malformed::Invalid));
        assert_eq!(parse_document("<A>&bogus;</A>"), Err(Malformed::Invalid));
        assert_eq!(parse_document(&"<A>".repeat(40)), Err(Malformed::TooLarge));
    }

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
