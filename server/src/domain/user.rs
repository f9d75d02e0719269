//! Account rules: usernames and the password policy.
//!
//! # The password policy
//! A password must have 12 to 1024 bytes' worth of characters (at least 12 characters, at most
//! 1024 bytes), and is refused when it is one character repeated (`aaaaaaaaaaaa`, twelve
//! spaces), when it equals or contains the username (case-insensitively; containment is
//! checked for usernames of at least [`MIN_USERNAME_CHARS_CONTAINED`] characters, since every
//! password "contains" a one-letter name), or when it is a common password. Length alone lets
//! the first guesses of any password-spraying list through, and the account names are known
//! to whoever can see the user list or an audit entry.
//!
//! The common passwords are the first 5,000 lines of Django 5.2's
//! `django/contrib/auth/common-passwords.txt.gz` (Royce Williams' list, lowercased and
//! deduplicated; BSD-3-Clause), shipped in `common-passwords.txt` beside this file and
//! embedded at build time: no look-up leaves the server. Almost all of them are shorter than
//! 12 characters, so the check also refuses a listed password padded with digits, punctuation
//! or spaces (`password1234!`, `  dragon2024  `) and one repeated (`qwertyqwerty`).

use std::collections::HashSet;
use std::sync::OnceLock;

use super::role::{Role, RoleError, Roles};

/// Minimum password length in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum password length in bytes (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;
/// Usernames at least this long may not appear anywhere in the password.
pub const MIN_USERNAME_CHARS_CONTAINED: usize = 3;

const COMMON_PASSWORDS: &str = include_str!("common-passwords.txt");

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("password must have at least 12 characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("password must have at most 1024 bytes")]
    TooLong,
    /// Every character is the same.
    #[error("password must not be one character repeated")]
    OneCharacter,
    /// The password equals or contains the username.
    #[error("password must not contain the username")]
    ContainsUsername,
    /// The password is (a padded or repeated form of) a common password.
    #[error("password is too common")]
    Common,
}

impl PasswordPolicyError {
    /// The machine-readable reason (the API's 422 code).
    pub fn code(self) -> &'static str {
        match self {
            PasswordPolicyError::TooShort | PasswordPolicyError::TooLong => "weak_password",
            PasswordPolicyError::OneCharacter => "password_one_character",
            PasswordPolicyError::ContainsUsername => "password_contains_username",
            PasswordPolicyError::Common => "password_common",
        }
    }
}

fn common_passwords() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON_PASSWORDS
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    })
}

/// Whether `password` is a common password, padded with digits, punctuation or spaces, or
/// repeated.
fn is_common(password: &str) -> bool {
    let list = common_passwords();
    let lower = password.to_lowercase();
    let padding = |c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace();
    let core = lower.trim_matches(padding);
    if list.contains(lower.as_str()) || (!core.is_empty() && list.contains(core)) {
        return true;
    }
    // A repeated unit: "qwertyqwerty", "123456123456".
    let chars: Vec<char> = lower.chars().collect();
    (1..=chars.len() / 2)
        .filter(|unit| chars.len() % unit == 0)
        .any(|unit| {
            chars.chunks(unit).all(|c| c == &chars[..unit]) && {
                let unit: String = chars[..unit].iter().collect();
                list.contains(unit.as_str()) || list.contains(unit.trim_matches(padding))
            }
        })
}

/// The password policy (see the module documentation) for an account named `username`.
pub fn check_password(password: &str, username: &str) -> Result<(), PasswordPolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        return Err(PasswordPolicyError::TooLong);
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort);
    }
    let mut chars = password.chars();
    if let Some(first) = chars.next() {
        if chars.all(|c| c == first) {
            return Err(PasswordPolicyError::OneCharacter);
        }
    }
    let name = username.to_lowercase();
    let lower = password.to_lowercase();
    if !name.is_empty()
        && (lower == name
            || (name.chars().count() >= MIN_USERNAME_CHARS_CONTAINED && lower.contains(&name)))
    {
        return Err(PasswordPolicyError::ContainsUsername);
    }
    if is_common(password) {
        return Err(PasswordPolicyError::Common);
    }
    Ok(())
}

/// Whether a username is acceptable: 1..=64 of `[A-Za-z0-9._-]` (unique without regard to case).
pub fn is_valid_username(name: &str) -> bool {
    super::ids::is_valid_name(name)
}

/// Why a new account is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    /// The username breaks the alphabet or length rule.
    #[error("username must be 1 to 64 characters of A-Z a-z 0-9 . _ -")]
    Username,
    /// The roles break the separation-of-duties rule.
    #[error(transparent)]
    Roles(RoleError),
    /// The password breaks the policy.
    #[error(transparent)]
    Password(PasswordPolicyError),
}

/// Check a new account: every problem, in the order username, roles, password. With none,
/// the roles as a set.
pub fn check_new_account(
    username: &str,
    password: &str,
    roles: &[Role],
) -> Result<Roles, Vec<AccountError>> {
    let mut errors = Vec::new();
    if !is_valid_username(username) {
        errors.push(AccountError::Username);
    }
    let roles = Roles::new(roles)
        .map_err(|e| errors.push(AccountError::Roles(e)))
        .ok();
    if let Err(e) = check_password(password, username) {
        errors.push(AccountError::Password(e));
    }
    match roles {
        Some(roles) if errors.is_empty() => Ok(roles),
        _ => Err(errors),
    }
}

/// Why a change to an existing account is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccountChangeError {
    /// An administrator may not disable their own account (the last one would lock every
    /// administrator out; another administrator can do it).
    #[error("an administrator cannot disable their own account")]
    DisableSelf,
    /// The account's person has departed: it stays disabled.
    #[error("the account's person has departed")]
    PersonDeparted,
    /// The current password given for a change is wrong.
    #[error("the current password is wrong")]
    WrongPassword,
    /// The new password is the current one (after a reset, the administrator knows it).
    #[error("the new password must differ from the current one")]
    PasswordUnchanged,
    /// The new password breaks the policy.
    #[error(transparent)]
    Policy(PasswordPolicyError),
}

impl AccountChangeError {
    /// The machine-readable reason.
    pub fn code(self) -> &'static str {
        match self {
            AccountChangeError::DisableSelf => "cannot_disable_self",
            AccountChangeError::PersonDeparted => "person_departed",
            AccountChangeError::WrongPassword => "wrong_password",
            AccountChangeError::PasswordUnchanged => "password_unchanged",
            AccountChangeError::Policy(e) => e.code(),
        }
    }
}

/// A password an account's holder chooses to replace `old`: the policy, and not `old` itself.
pub fn check_new_password(username: &str, old: &str, new: &str) -> Result<(), AccountChangeError> {
    check_password(new, username).map_err(AccountChangeError::Policy)?;
    if old == new {
        return Err(AccountChangeError::PasswordUnchanged);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(password: &str) -> Result<(), PasswordPolicyError> {
        check_password(password, "zhang.wei")
    }

    #[test]
    fn password_policy_counts_characters_not_bytes() {
        assert_eq!(check("elevenchars"), Err(PasswordPolicyError::TooShort));
        assert_eq!(check("twelve chars"), Ok(()));
        // Twelve CJK characters are 36 bytes but twelve characters: accepted.
        assert_eq!(check("保密管理保密管理保密管理"), Ok(()));
        assert_eq!(
            check("保密管理保密管理保密"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(check(&"x".repeat(1025)), Err(PasswordPolicyError::TooLong));
    }

    #[test]
    fn one_character_repeated_is_refused() {
        assert_eq!(
            check("aaaaaaaaaaaa"),
            Err(PasswordPolicyError::OneCharacter)
        );
        assert_eq!(
            check(&" ".repeat(12)),
            Err(PasswordPolicyError::OneCharacter)
        );
        assert_eq!(
            check(&"密".repeat(12)),
            Err(PasswordPolicyError::OneCharacter)
        );
        assert_eq!(check("aaaaaaaaaaab"), Ok(()));
    }

    #[test]
    fn the_username_may_not_be_the_password_or_in_it() {
        let e = Err(PasswordPolicyError::ContainsUsername);
        assert_eq!(check_password("zhang.wei.2024", "zhang.wei.2024"), e);
        assert_eq!(check_password("Zhang.Wei.2024", "zhang.wei.2024"), e);
        assert_eq!(check("my ZHANG.WEI secret"), e);
        assert_eq!(check_password("admin password 1", "admin"), e);
        // A name of one or two characters is not looked for inside a password.
        assert_eq!(check_password("a very long phrase", "a"), Ok(()));
        assert_eq!(
            check_password("xy", "xy"),
            Err(PasswordPolicyError::TooShort)
        );
    }

    #[test]
    fn common_passwords_are_refused_even_padded_or_repeated() {
        let e = Err(PasswordPolicyError::Common);
        assert!(
            common_passwords().len() >= 4900,
            "{}",
            common_passwords().len()
        );
        // On the list as they are (the list has a few of 12 characters or more).
        assert_eq!(check("1q2w3e4r5t6y"), e);
        assert_eq!(check("PASSWORD1234"), e);
        // Padded with digits, punctuation and spaces, in any case.
        assert_eq!(check("Password1234!"), e);
        assert_eq!(check("  dragon2024  "), e);
        assert_eq!(check("!!!qwerty!!!"), e);
        // Repeated.
        assert_eq!(check("qwertyqwerty"), e);
        assert_eq!(check("123456123456"), e);
        // A passphrase that merely contains a common word is fine.
        assert_eq!(check("correct horse battery"), Ok(()));
        assert_eq!(check("long enough password"), Ok(()));
    }

    #[test]
    fn usernames_use_the_name_alphabet() {
        assert!(is_valid_username("alice.w"));
        assert!(!is_valid_username("alice w"));
        assert!(!is_valid_username("@init"));
        assert!(!is_valid_username(""));
    }

    #[test]
    fn a_new_password_follows_the_policy_and_differs_from_the_old() {
        assert_eq!(
            check_new_password("li", "first password 1", "first password 1"),
            Err(AccountChangeError::PasswordUnchanged)
        );
        assert_eq!(
            check_new_password("li.na", "first password 1", "li.na li.na li.na"),
            Err(AccountChangeError::Policy(
                PasswordPolicyError::ContainsUsername
            ))
        );
        assert_eq!(
            check_new_password("li", "first password 1", "short"),
            Err(AccountChangeError::Policy(PasswordPolicyError::TooShort))
        );
        assert_eq!(
            check_new_password("li", "first password 1", "second password 2"),
            Ok(())
        );
    }
}
