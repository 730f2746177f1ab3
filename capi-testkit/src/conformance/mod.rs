//! The black-box conformance suite for infrastructure providers, in any language.
//!
//! Layer 1 ([`static_checks`]) reads a provider's CRDs and release files.

pub mod static_checks;

// MERGE: replace with capi-core's flect port (naming module) once it lands.
pub(crate) fn plural_interim(kind: &str) -> String {
    let k = kind.to_lowercase();
    if k.ends_with('s') || k.ends_with('x') || k.ends_with("ch") || k.ends_with("sh") {
        format!("{k}es")
    } else if k.ends_with('y') && !k.ends_with("ay") && !k.ends_with("ey") && !k.ends_with("oy") {
        format!("{}ies", &k[..k.len() - 1])
    } else {
        format!("{k}s")
    }
}
