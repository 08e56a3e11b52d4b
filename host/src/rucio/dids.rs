//! Listing DIDs: those of a scope matching a pattern, or a collection's content.

use anyhow::Result;

use super::session::Session;
use super::{Did, DidEntry, DidType};

/// For SCOPE:PATTERN (`*` as wildcard) the matching DIDs, of `did_type`
/// only when given; for SCOPE:NAME the DID itself, or the content of a
/// dataset or container.
pub fn list(s: &mut Session, text: &str, did_type: Option<&str>) -> Result<Vec<DidEntry>> {
    let Did { scope, name } = s.did(text)?;
    let pattern = name.contains('*');
    s.call(|r| {
        if pattern {
            let mut filters = vec![("name".to_string(), name.clone())];
            if let Some(t) = did_type {
                filters.push(("type".to_string(), t.to_ascii_lowercase()));
            }
            return r.search_dids(&scope, &filters);
        }
        let did = Did { scope: scope.clone(), name: name.clone() };
        let entry = r.get_did(&did)?;
        if matches!(entry.did_type, Some(DidType::Dataset | DidType::Container)) {
            r.list_content(&did)
        } else {
            Ok(vec![entry])
        }
    })
}
