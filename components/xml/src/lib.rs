//! Reading the XML answers of S3-style services (S3, STS): a small element
//! tree named by local name (namespaces and prefixes do not matter), the
//! entity rules, and telling a proxy's HTML page from an XML answer. One
//! place for what the sts and transfer parsers both need.

use quick_xml::errors::Error as XmlError;
use quick_xml::events::{BytesRef, Event};
use quick_xml::Reader;

/// Deeper than any S3 or STS document.
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
    /// Deeper or larger than any S3 or STS answer.
    TooLarge,
}

/// `s` without XML whitespace at either end.
pub fn trim_xml(s: &str) -> &str {
    s.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'))
}

/// The character an entity or character reference stands for; `None`
/// for unknown entities (XML defines five).
pub fn entity(r: &BytesRef<'_>) -> Option<char> {
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

/// An HTML page, by its first bytes, or by its content type unless the
/// body declares itself XML (an error document mislabelled as HTML is
/// still read).
pub fn looks_like_html(content_type: Option<&str>, text: &str) -> bool {
    let ct_html = content_type.is_some_and(|c| {
        let c = c.trim_start().to_ascii_lowercase();
        c.starts_with("text/html") || c.starts_with("application/xhtml")
    }) && !text.starts_with("<?xml");
    let head: String = text.chars().take(256).collect::<String>().to_ascii_lowercase();
    let mut rest = head.as_str();
    // An XML declaration or comments may come first.
    loop {
        rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix("<?") {
            rest = after.split_once("?>").map_or("", |(_, r)| r);
        } else if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.split_once("-->").map_or("", |(_, r)| r);
        } else {
            break;
        }
    }
    ct_html || rest.starts_with("<!doctype html") || rest.starts_with("<html") || rest.starts_with("<head") || rest.starts_with("<body")
}


/// Characters XML 1.0 can carry (in element text).
pub fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// Appends `text` escaped for element content or a quoted attribute:
/// `&`, `<`, `>` and quotes as entities, and `\r` as `&#13;`, since an XML
/// reader would turn a raw one into `\n`. The caller deals with characters
/// XML cannot carry ([`is_xml_char`]) first.
pub fn push_escaped(out: &mut String, text: &str) {
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
}

/// A server-provided string (an error code or message) made printable and
/// short enough for a one-line error: whitespace and control characters
/// collapse to single spaces, and the rest is cut at `max_chars` with `…`.
pub fn clean(s: &str, max_chars: usize) -> String {
    let flat = s.split(|c: char| c.is_whitespace() || c.is_control()).filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max_chars {
        let mut out: String = flat.chars().take(max_chars).collect();
        out.push('…');
        out
    } else {
        flat
    }
}

/// "HTTP 502 (text/html)": what came back, in general terms; the content
/// type only when it is a short printable word, never the body.
pub fn describe_answer(status: u16, content_type: Option<&str>) -> String {
    let ct = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty() && c.len() <= 64 && c.bytes().all(|b| b.is_ascii_graphic()));
    match ct {
        Some(ct) => format!("HTTP {status} ({ct})"),
        None => format!("HTTP {status}"),
    }
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
    fn server_strings_are_flattened_and_cut() {
        assert_eq!(clean(" Access\n\tDenied\u{7} now ", 100), "Access Denied now");
        assert_eq!(clean("abcdef", 3), "abc…");
    }

    #[test]
    fn answers_are_described_without_their_body() {
        assert_eq!(describe_answer(502, Some("text/html; charset=utf-8")), "HTTP 502 (text/html)");
        assert_eq!(describe_answer(200, Some("")), "HTTP 200");
        assert_eq!(describe_answer(500, Some("a b")), "HTTP 500");
    }

    #[test]
    fn html_pages_are_recognised() {
        assert!(looks_like_html(None, "<!DOCTYPE html><html>"));
        assert!(looks_like_html(None, "<?xml version=\"1.0\"?><!-- x --><html>"));
        assert!(looks_like_html(Some("text/html; charset=utf-8"), "<h1>502</h1>"));
        assert!(!looks_like_html(Some("text/html"), "<?xml version=\"1.0\"?><Error/>"), "an XML error labelled as HTML is read");
        assert!(!looks_like_html(Some("application/xml"), "<Error><Code>x</Code></Error>"));
    }
}
