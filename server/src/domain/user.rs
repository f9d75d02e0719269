//! Account rules: usernames and the password policy.

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
