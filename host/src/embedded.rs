//! The component files built by build.rs and embedded in the binary.

pub struct EmbeddedComponent {
    pub name: &'static str,
    /// The WIT world it implements, in package `lakeport:plugins`.
    pub world: &'static str,
    /// Hex SHA-256 of `bytes`; part of the compiled-cache key.
    pub sha256: &'static str,
    pub bytes: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/embedded_components.rs"));

pub fn find(name: &str) -> Option<&'static EmbeddedComponent> {
    EMBEDDED.iter().find(|c| c.name == name)
}
