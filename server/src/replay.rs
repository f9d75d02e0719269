//! One-time form tokens: a form submitted twice creates one record.
//!
//! The pages' script disables a form's button once it is sent, but a double click before the
//! script runs, a flaky network that makes the browser resend, or a user who presses Back and
//! sends again must not register a person or request a sign-out twice. So each creating form
//! carries a fresh random [`NONCE_FIELD`] ([`field`]); the handler claims it
//! ([`FormTokens::claim`], on the server's [`AppState::form_tokens`](crate::AppState::form_tokens))
//! before calling the store:
//! - the first POST gets a [`Guard`]; on success the handler records where it redirected
//!   ([`Guard::done`]); on a refusal the guard is dropped and the token is free again, so the
//!   corrected form (which carries the same token) can be sent;
//! - a later POST with the same token (same user) is answered with the same 303 as the first,
//!   without touching the store;
//! - a POST that arrives while the first is still being processed is sent to the list page.
//!
//! Tokens are remembered in memory for [`KEEP`], at most [`MAX_ENTRIES`] of them, by the
//! server's [`FormTokens`] (owned by its state, dropped with it). Forms whose repeat the store
//! refuses by itself (an issue, an approval, a status change) do not need this.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
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

/// The one-time form tokens used recently, per user. Cheap to clone (clones share the tokens).
#[derive(Debug, Clone)]
pub struct FormTokens {
    seen: Arc<Mutex<HashMap<Key, Entry>>>,
    keep: Duration,
    max_entries: usize,
}

impl Default for FormTokens {
    fn default() -> Self {
        FormTokens::new()
    }
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
    tokens: FormTokens,
    key: Option<Key>,
}

impl Guard {
    /// The form succeeded and redirected to `location`: repeats get the same answer.
    pub fn done(mut self, location: &str) {
        if let Some(key) = self.key.take() {
            self.tokens.table().insert(
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
            self.tokens.table().remove(&key);
        }
    }
}

fn usable(nonce: &str) -> bool {
    (16..=128).contains(&nonce.len())
        && nonce
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl FormTokens {
    /// No tokens yet; used ones are kept for [`KEEP`], at most [`MAX_ENTRIES`].
    pub fn new() -> FormTokens {
        FormTokens::with_limits(KEEP, MAX_ENTRIES)
    }

    fn with_limits(keep: Duration, max_entries: usize) -> FormTokens {
        FormTokens {
            seen: Arc::new(Mutex::new(HashMap::new())),
            keep,
            max_entries,
        }
    }

    fn table(&self) -> MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding the lock leaves a usable map behind (entries are plain values).
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Claim `nonce` for `user` (tokens of different users never meet).
    pub fn claim(&self, user: &str, nonce: &str) -> Claim {
        if !usable(nonce) {
            return Claim::Unguarded;
        }
        let key = (user.to_owned(), nonce.to_owned());
        let now = Instant::now();
        let mut seen = self.table();
        seen.retain(|_, e| now.duration_since(e.at) < self.keep);
        if seen.len() >= self.max_entries {
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
                drop(seen);
                Claim::Fresh(Guard {
                    tokens: self.clone(),
                    key: Some(key),
                })
            }
        }
    }

    /// How many tokens are remembered now (used or in flight).
    pub fn len(&self) -> usize {
        self.table().len()
    }

    /// Whether no token is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_used_once_and_a_repeat_gets_the_first_answer() {
        let tokens = FormTokens::new();
        let nonce = fresh();
        let Claim::Fresh(guard) = tokens.claim("cust", &nonce) else {
            panic!("first use")
        };
        assert!(matches!(tokens.claim("cust", &nonce), Claim::InFlight));
        assert!(
            matches!(tokens.claim("other", &nonce), Claim::Fresh(_)),
            "users do not share tokens"
        );
        guard.done("/people?created=4");
        match tokens.claim("cust", &nonce) {
            Claim::Replay(to) => assert_eq!(to, "/people?created=4"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_refused_form_frees_its_token() {
        let tokens = FormTokens::new();
        let nonce = fresh();
        match tokens.claim("cust", &nonce) {
            Claim::Fresh(guard) => drop(guard),
            other => panic!("{other:?}"),
        }
        assert!(tokens.is_empty(), "the dropped guard removed its entry");
        assert!(matches!(tokens.claim("cust", &nonce), Claim::Fresh(_)));
    }

    #[test]
    fn malformed_tokens_are_not_tracked() {
        let tokens = FormTokens::new();
        for bad in ["", "short", "has space in it....", &"x".repeat(200)] {
            assert!(
                matches!(tokens.claim("cust", bad), Claim::Unguarded),
                "{bad:?}"
            );
        }
        assert!(tokens.is_empty());
        assert!(field("").into_string().contains(r#"name="nonce""#));
        assert!(field("abc").into_string().contains(r#"value="abc""#));
    }

    #[test]
    fn each_server_has_its_own_tokens() {
        let (one, two) = (FormTokens::new(), FormTokens::new());
        let nonce = fresh();
        let Claim::Fresh(guard) = one.claim("cust", &nonce) else {
            panic!("first use")
        };
        guard.done("/people");
        assert!(matches!(one.claim("cust", &nonce), Claim::Replay(_)));
        assert!(matches!(two.claim("cust", &nonce), Claim::Fresh(_)));
        // Clones share them (the state is cloned into every handler).
        assert!(matches!(
            one.clone().claim("cust", &nonce),
            Claim::Replay(_)
        ));
    }

    #[test]
    fn old_tokens_are_forgotten_and_the_oldest_go_first_when_full() {
        let tokens = FormTokens::with_limits(KEEP, 2);
        let nonces: Vec<String> = (0..3).map(|_| fresh()).collect();
        for nonce in &nonces {
            match tokens.claim("cust", nonce) {
                Claim::Fresh(guard) => guard.done("/people"),
                other => panic!("{other:?}"),
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(tokens.len(), 2);
        assert!(
            matches!(tokens.claim("cust", &nonces[2]), Claim::Replay(_)),
            "the newest is kept"
        );
        let expiring = FormTokens::with_limits(Duration::ZERO, MAX_ENTRIES);
        match expiring.claim("cust", &nonces[0]) {
            Claim::Fresh(guard) => guard.done("/people"),
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(expiring.claim("cust", &nonces[0]), Claim::Fresh(_)),
            "a token older than the keep time is forgotten"
        );
    }
}
