//! Plain HTTP values: what the core asks to send and what came back. The
//! component bindings (or a test) do the actual I/O.

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    pub method: &'static str,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpRequest {
    pub fn get(url: String) -> Self {
        HttpRequest { method: "GET", url, headers: vec![("Accept".into(), "application/json".into())], body: Vec::new() }
    }

    /// An `application/x-www-form-urlencoded` POST.
    pub fn form(url: String, fields: &[(&str, &str)], extra_headers: Vec<(String, String)>) -> Self {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let mut headers = vec![
            ("Content-Type".into(), "application/x-www-form-urlencoded".into()),
            ("Accept".into(), "application/json".into()),
        ];
        headers.extend(extra_headers);
        HttpRequest { method: "POST", url, headers, body: form.finish().into_bytes() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// A short, printable excerpt of the body for error messages (proxies
    /// answer with HTML pages; nobody wants all of it).
    pub fn excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let mut out: String = flat.chars().take(160).collect();
        if flat.chars().count() > 160 {
            out.push('…');
        }
        if out.is_empty() {
            out.push_str("(empty body)");
        }
        out
    }
}
