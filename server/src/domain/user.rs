//! Account rules: usernames and the password policy.

use super::role::{Role, RoleError, Roles};

/// Minimum password length in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;
/// Maximum password length in bytes (bounds the hashing work an attacker can ask for).
pub const MAX_PASSWORD_BYTES: usize = 1024;

/// Why a password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    /// Fewer than [`MIN_PASSWORD_CHARS`] characters.
    #[error("password must have at least 12 characters")]
    TooShort,
    /// More than [`MAX_PASSWORD_BYTES`] bytes.
    #[error("password must have at most 1024 bytes")]
    TooLong,
}

/// The password policy: at least 12 characters, at most 1024 bytes.
pub fn check_password(password: &str) -> Result<(), PasswordPolicyError> {
    if password.len() > MAX_PASSWORD_BYTES {
        Err(PasswordPolicyError::TooLong)
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(PasswordPolicyError::TooShort)
    } else {
        Ok(())
    }
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
    if let Err(e) = check_password(password) {
        errors.push(AccountError::Password(e));
    }
    match roles {
        Some(roles) if errors.is_empty() => Ok(roles),
        _ => Err(errors),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_policy_counts_characters_not_bytes() {
        assert_eq!(
            check_password("elevenchars"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(check_password("twelve chars"), Ok(()));
        // Twelve CJK characters are 36 bytes but twelve characters: accepted.
        assert_eq!(check_password("保密管理保密管理保密管理"), Ok(()));
        assert_eq!(
            check_password("保密管理保密管理保密"),
            Err(PasswordPolicyError::TooShort)
        );
        assert_eq!(
            check_password(&"x".repeat(1025)),
            Err(PasswordPolicyError::TooLong)
        );
    }

    #[test]
    fn usernames_use_the_name_alphabet() {
        assert!(is_valid_username("alice.w"));
        assert!(!is_valid_username("alice w"));
        assert!(!is_valid_username("@init"));
        assert!(!is_valid_username(""));
    }
}
