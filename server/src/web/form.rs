//! `application/x-www-form-urlencoded` bodies and query strings, as name/value pairs.
//!
//! Forms are read into [`FormData`] (ordered pairs, repeated names kept: role checkboxes send
//! `roles=guard&roles=custodian`), and each handler picks the fields it needs. Decoding is
//! strict: a `%` not followed by two hex digits, or bytes that are not UTF-8, make the whole
//! body unreadable rather than silently altered.

/// A decoded form or query string.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormData {
    pairs: Vec<(String, String)>,
}

/// The body or query string is not valid `application/x-www-form-urlencoded` UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed form data")]
pub struct MalformedForm;

impl FormData {
    /// Decode `name=value&...` (`+` is a space, `%XX` a byte).
    pub fn parse(text: &[u8]) -> Result<FormData, MalformedForm> {
        let mut pairs = Vec::new();
        for item in text.split(|b| *b == b'&').filter(|i| !i.is_empty()) {
            let (name, value) = match item.iter().position(|b| *b == b'=') {
                Some(at) => (&item[..at], &item[at + 1..]),
                None => (item, &b""[..]),
            };
            pairs.push((decode(name)?, decode(value)?));
        }
        Ok(FormData { pairs })
    }

    /// The first value of `name`, or `""` if absent.
    pub fn get(&self, name: &str) -> &str {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or `None` if absent or blank.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        Some(self.get(name).trim()).filter(|v| !v.is_empty())
    }

    /// Every value of `name`, in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn decode(text: &[u8]) -> Result<String, MalformedForm> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = text.get(i + 1).copied().and_then(hex_digit);
                let lo = text.get(i + 2).copied().and_then(hex_digit);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(MalformedForm);
                };
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| MalformedForm)
}

/// Percent-encode `text` for a query value: everything but the unreserved characters
/// (`A-Z a-z 0-9 - . _ ~`) and `/`.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn pairs_decode_with_plus_percent_and_repeats() {
        let f =
            FormData::parse(b"username=li+wei&roles=guard&roles=custodian&note=%E4%BF%9D%21&flag")
                .unwrap();
        assert_eq!(f.get("username"), "li wei");
        assert_eq!(f.all("roles").collect::<Vec<_>>(), ["guard", "custodian"]);
        assert_eq!(f.get("note"), "保!");
        assert_eq!(f.get("flag"), "");
        assert_eq!(f.get("absent"), "");
        assert_eq!(f.non_empty("flag"), None);
        assert_eq!(FormData::parse(b"").unwrap(), FormData::default());
        assert_eq!(FormData::parse(b"a=1&&b=2").unwrap().get("b"), "2");
        assert_eq!(FormData::parse(b"a=x%3Dy").unwrap().get("a"), "x=y");
    }

    #[test]
    fn malformed_escapes_and_bad_utf8_are_refused() {
        for bad in [&b"a=%"[..], b"a=%4", b"a=%zz", b"a=%FF", b"%C3=x"] {
            assert_eq!(FormData::parse(bad), Err(MalformedForm), "{bad:?}");
        }
    }

    #[test]
    fn encode_keeps_paths_readable() {
        assert_eq!(encode("/guard?x=1&y=两"), "/guard%3Fx%3D1%26y%3D%E4%B8%A4");
    }

    proptest! {
        /// Property: decoding what `encode` produced gives back the original text.
        #[test]
        fn encode_then_parse_is_identity(name in "[a-z_]{1,8}", value in "\\PC{0,40}") {
            let body = format!("{name}={}", encode(&value));
            let form = FormData::parse(body.as_bytes()).unwrap();
            prop_assert_eq!(form.get(&name), value.as_str());
        }

        /// Property: arbitrary bytes never panic the decoder.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = FormData::parse(&bytes);
        }
    }
}
