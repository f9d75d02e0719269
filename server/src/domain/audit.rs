//! The audit chain's entry hash: the frozen byte layout every stored entry is hashed with.
//!
//! Pure (no I/O): the store computes it when it appends an entry (each entry's hash covers the
//! previous one's, so the backend that knows the previous row links the chain), and
//! [`crate::audit::verify`] recomputes it. Changing the layout breaks every stored chain.
//!
//! # Entry hash (frozen layout, version 1)
//! ```text
//! hash = SHA-256(
//!     "custos-audit-entry-v1"         21 bytes, domain separation
//!     prev_hash                       32 bytes (entry 1: 32 zero bytes)
//!     id                              8 bytes, big-endian signed
//!     field(at)                       RFC 3339 text as stored
//!     field(actor)
//!     field(action)
//!     field(subject)
//!     opt(before_json)                JSON text as stored
//!     opt(after_json)
//! )
//! field(s) = u32 big-endian byte length of s || UTF-8 bytes of s
//! opt(x)   = 0x00 if absent | 0x01 || field(x) if present
//! ```

use ring::digest::{Context, SHA256};

/// The `prev_hash` of entry 1.
pub const GENESIS: [u8; 32] = [0; 32];
const ENTRY_TAG: &[u8] = b"custos-audit-entry-v1";

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The text fields of an entry exactly as stored, which is what the hash covers.
#[derive(Debug, Clone, Copy)]
pub struct EntryFields<'a> {
    /// `at`, RFC 3339 as stored.
    pub at: &'a str,
    /// The actor.
    pub actor: &'a str,
    /// The action.
    pub action: &'a str,
    /// The subject.
    pub subject: &'a str,
    /// `before_json` as stored.
    pub before: Option<&'a str>,
    /// `after_json` as stored.
    pub after: Option<&'a str>,
}

/// The hash of entry `id` with `fields`, linked to `prev` (the previous entry's hash).
pub fn entry_hash(prev: &[u8], id: i64, f: &EntryFields<'_>) -> [u8; 32] {
    fn field(ctx: &mut Context, s: &str) {
        // Lengths beyond u32 cannot occur: request bodies are limited far below 4 GiB.
        let len = u32::try_from(s.len()).unwrap_or(u32::MAX);
        ctx.update(&len.to_be_bytes());
        ctx.update(s.as_bytes());
    }
    fn opt(ctx: &mut Context, s: Option<&str>) {
        match s {
            None => ctx.update(&[0]),
            Some(s) => {
                ctx.update(&[1]);
                field(ctx, s);
            }
        }
    }
    let mut ctx = Context::new(&SHA256);
    ctx.update(ENTRY_TAG);
    ctx.update(prev);
    ctx.update(&id.to_be_bytes());
    field(&mut ctx, f.at);
    field(&mut ctx, f.actor);
    field(&mut ctx, f.action);
    field(&mut ctx, f.subject);
    opt(&mut ctx, f.before);
    opt(&mut ctx, f.after);
    let mut out = [0; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_layout_is_frozen() {
        // Known answer for the documented layout; changing the layout breaks every stored chain.
        let fields = EntryFields {
            at: "2025-01-01T00:00:00Z",
            actor: "a",
            action: "x",
            subject: "s",
            before: None,
            after: Some("{}"),
        };
        let mut manual = Vec::new();
        manual.extend_from_slice(b"custos-audit-entry-v1");
        manual.extend_from_slice(&[0; 32]);
        manual.extend_from_slice(&1_i64.to_be_bytes());
        for s in ["2025-01-01T00:00:00Z", "a", "x", "s"] {
            manual.extend_from_slice(&(s.len() as u32).to_be_bytes());
            manual.extend_from_slice(s.as_bytes());
        }
        manual.extend_from_slice(&[0, 1, 0, 0, 0, 2, b'{', b'}']);
        let expected = ring::digest::digest(&SHA256, &manual);
        assert_eq!(entry_hash(&GENESIS, 1, &fields)[..], *expected.as_ref());
        // Moving a byte between adjacent fields changes the hash (length prefixes).
        let shifted = EntryFields {
            actor: "ax",
            action: "",
            ..fields
        };
        assert_ne!(
            entry_hash(&GENESIS, 1, &shifted),
            entry_hash(&GENESIS, 1, &fields)
        );
    }
}
