//! One-time form tokens: a form submitted twice creates one record.
//!
//! The pages' script disables a form's button once it is sent, but a double click before the
//! script runs, a flaky network that makes the browser resend, or a user who presses Back and
//! sends again must not register a person or request a sign-out twice. So each creating form
//! carries a fresh random [`NONCE_FIELD`] ([`field`]); the handler [`claim`]s it before calling
//! the store:
//! - the first POST gets a [`Guard`]; on success the handler records where it redirected
//!   ([`Guard::done`]); on a refusal the guard is dropped and the token is free again, so the
//!   corrected form (which carries the same token) can be sent;
//! - a later POST with the same token (same user) is answered with the same 303 as the first,
//!   without touching the store;
//! - a POST that arrives while the first is still being processed is sent to the list page.
//!
//! Tokens are remembered in memory for [`KEEP`], at most [`MAX_ENTRIES`] of them. Forms whose
//! repeat the store refuses by itself (an issue, an approval, a status change) do not need
//! this.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use maud::{Markup, html};

use crate::auth::token;

/// The hidden form field carrying the token.
pub const NONCE_FIELD: &str = "nonce";
/// How long a used token is remembered.
pub const KEEP: Duration = Duration::from_secs(30 * 60);
/// The most tokens remembered; the oldest are forgotten first.
pub const MAX_ENTRIES: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Slot {
    Pending,
    Done(String),
}

#[derive(Debug)]
struct Entry {
    at: Instant,
    slot: Slot,
}

type Key = (String, String);

fn table() -> MutexGuard<'static, HashMap<Key, Entry>> {
    static SEEN: OnceLock<Mutex<HashMap<Key, Entry>>> = OnceLock::new();
    SEEN.get_or_init(|| Mutex::new(HashMap::new()))
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// A fresh token (empty if the random generator fails: the form then works unguarded).
pub fn fresh() -> String {
    token::generate().unwrap_or_default()
}

/// The hidden field with `nonce`, or with a fresh token if `nonce` is empty.
pub fn field(nonce: &str) -> Markup {
    let value = if nonce.is_empty() {
        fresh()
    } else {
        nonce.to_owned()
    };
    html! { input type="hidden" name=(NONCE_FIELD) value=(value); }
}

/// What a submitted token allows.
#[derive(Debug)]
pub enum Claim {
    /// First use: go ahead.
    Fresh(Guard),
    /// Already done: answer with a redirect to this location.
    Replay(String),
    /// The first submission is still being processed.
    InFlight,
    /// No usable token (absent or malformed): go ahead without protection.
    Unguarded,
}

/// The claim on a token while its form is processed; dropped without [`Guard::done`], it frees
/// the token.
#[derive(Debug)]
pub struct Guard {
    key: Option<Key>,
}

impl Guard {
    /// The form succeeded and redirected to `location`: repeats get the same answer.
    pub fn done(mut self, location: &str) {
        if let Some(key) = self.key.take() {
            table().insert(
                key,
                Entry {
                    at: Instant::now(),
                    slot: Slot::Done(location.to_owned()),
                },
            );
        }
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            table().remove(&key);
        }
    }
}

fn usable(nonce: &str) -> bool {
    (16..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Claim `nonce` for `user` (tokens of different users never meet).
pub fn claim(user: &str, nonce: &str) -> Claim {
    if !usable(nonce) {
        return Claim::Unguarded;
    }
    let key = (user.to_owned(), nonce.to_owned());
    let now = Instant::now();
    let mut seen = table();
    seen.retain(|_, e| now.duration_since(e.at) < KEEP);
    if seen.len() >= MAX_ENTRIES {
        if let Some(oldest) = seen
            .iter()
            .min_by_key(|(_, e)| e.at)
            .map(|(k, _)| k.clone())
        {
            seen.remove(&oldest);
        }
    }
    match seen.get(&key).map(|e| e.slot.clone()) {
        Some(Slot::Done(location)) => Claim::Replay(location),
        Some(Slot::Pending) => Claim::InFlight,
        None => {
            seen.insert(
                key.clone(),
                Entry {
                    at: now,
                    slot: Slot::Pending,
                },
            );
            Claim::Fresh(Guard { key: Some(key) })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_used_once_and_a_repeat_gets_the_first_answer() {
        let nonce = fresh();
        let Claim::Fresh(guard) = claim("cust", &nonce) else {
            panic!("first use")
        };
        assert!(matches!(claim("cust", &nonce), Claim::InFlight));
        assert!(
            matches!(claim("other", &nonce), Claim::Fresh(_)),
            "users do not share tokens"
        );
        guard.done("/people?created=4");
        match claim("cust", &nonce) {
            Claim::Replay(to) => assert_eq!(to, "/people?created=4"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_form_frees_its_token() {
        let nonce = fresh();
        match claim("cust", &nonce) {
            Claim::Fresh(guard) => drop(guard),
            other => panic!("{other:?}"),
        }
        assert!(matches!(claim("cust", &nonce), Claim::Fresh(_)));
    }

    #[test]
    fn malformed_tokens_are_not_tracked() {
        for bad in ["", "short", "has space in it....", &"x".repeat(200)] {
            assert!(matches!(claim("cust", bad), Claim::Unguarded), "{bad:?}");
        }
        assert!(field("").into_string().contains(r#"name="nonce""#));
        assert!(field("abc").into_string().contains(r#"value="abc""#));
    }
}
