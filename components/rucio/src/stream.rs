//! `application/x-json-stream`: Rucio's list answers, one JSON document per
//! line. A list of 100,000 replicas should not need one 100,000-element
//! array in memory, so lines are parsed one at a time, as they come.

use serde::de::DeserializeOwned;

use crate::error::RucioError;

/// Most bytes one line may have (a replica with many PFNs is a few KiB).
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// Splits bytes that arrive in pieces into complete lines and parses each.
#[derive(Default)]
pub struct JsonLines {
    pending: Vec<u8>,
    line: usize,
}

impl JsonLines {
    /// Feeds the next piece of the body; the items whose lines it completed.
    pub fn push<T: DeserializeOwned>(&mut self, bytes: &[u8]) -> Result<Vec<T>, RucioError> {
        let mut out = Vec::new();
        let mut rest = bytes;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            self.pending.extend_from_slice(&rest[..end]);
            rest = &rest[end + 1..];
            let line = std::mem::take(&mut self.pending);
            if let Some(item) = self.parse(&line)? {
                out.push(item);
            }
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() > MAX_LINE_BYTES {
            return Err(RucioError::invalid_answer(format!("line {} of a list is longer than {MAX_LINE_BYTES} bytes", self.line + 1)));
        }
        Ok(out)
    }

    /// The body ended: the last line, if it had no newline.
    pub fn finish<T: DeserializeOwned>(mut self) -> Result<Option<T>, RucioError> {
        let line = std::mem::take(&mut self.pending);
        self.parse(&line)
    }

    fn parse<T: DeserializeOwned>(&mut self, line: &[u8]) -> Result<Option<T>, RucioError> {
        self.line += 1;
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if text.is_empty() {
            return Ok(None);
        }
        serde_json::from_str(text)
            .map(Some)
            .map_err(|e| RucioError::invalid_answer(format!("line {} of a list is not the JSON expected ({e})", self.line)))
    }
}

/// A whole `x-json-stream` body (or a plain JSON array, which some
/// endpoints send instead).
pub fn parse_all<T: DeserializeOwned>(body: &[u8]) -> Result<Vec<T>, RucioError> {
    let trimmed = body.iter().position(|b| !b.is_ascii_whitespace()).map(|i| &body[i..]).unwrap_or_default();
    if trimmed.first() == Some(&b'[') {
        return serde_json::from_slice(trimmed).map_err(|e| RucioError::invalid_answer(format!("the list is not the JSON expected ({e})")));
    }
    let mut lines = JsonLines::default();
    let mut items = lines.push(body)?;
    items.extend(lines.finish()?);
    Ok(items)
}
