//! Password hashing with Argon2id.
//!
//! Parameters: m = 19456 KiB, t = 2, p = 1 (the OWASP minimum for Argon2id), 16-byte salt from
//! the system CSPRNG, 32-byte output. Stored in the PHC string format
//! `$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>` (standard base64 without padding), so the
//! parameters can be raised later while old hashes still verify.
//!
//! Hashing costs tens of milliseconds of CPU and 19 MiB: callers run it on a blocking thread
//! (`tokio::task::spawn_blocking`), never on the async executor.

use std::sync::OnceLock;

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use ring::rand::{SecureRandom, SystemRandom};

/// Memory cost in KiB.
pub const M_COST_KIB: u32 = 19_456;
/// Iterations.
pub const T_COST: u32 = 2;
/// Parallelism.
pub const P_COST: u32 = 1;
const SALT_LEN: usize = 16;
const OUTPUT_LEN: usize = 32;

/// Hashing failures (never a wrong password: that is `Ok(false)` from [`verify`]).
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The system random generator failed.
    #[error("random generator failed")]
    Random,
    /// Argon2 refused its input or parameters.
    #[error("argon2: {0}")]
    Argon2(argon2::Error),
    /// A stored hash is not a PHC string this server understands.
    #[error("stored password hash is malformed")]
    Malformed,
}

fn argon2(m: u32, t: u32, p: u32) -> Result<Argon2<'static>, PasswordError> {
    let params = Params::new(m, t, p, Some(OUTPUT_LEN)).map_err(PasswordError::Argon2)?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hash `password` with a fresh salt; returns the PHC string.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0; SALT_LEN];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| PasswordError::Random)?;
    let mut out = [0; OUTPUT_LEN];
    argon2(M_COST_KIB, T_COST, P_COST)?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(PasswordError::Argon2)?;
    Ok(format!(
        "$argon2id$v=19$m={M_COST_KIB},t={T_COST},p={P_COST}${}${}",
        STANDARD_NO_PAD.encode(salt),
        STANDARD_NO_PAD.encode(out)
    ))
}

/// Check `password` against a stored PHC string, in constant time over the output.
pub fn verify(password: &str, phc: &str) -> Result<bool, PasswordError> {
    let parts: Vec<&str> = phc.split('$').collect();
    let ["", "argon2id", "v=19", params, salt, expected] = parts[..] else {
        return Err(PasswordError::Malformed);
    };
    let mut m = None;
    let mut t = None;
    let mut p = None;
    for kv in params.split(',') {
        let (key, value) = kv.split_once('=').ok_or(PasswordError::Malformed)?;
        let value: u32 = value.parse().map_err(|_| PasswordError::Malformed)?;
        match key {
            "m" => m = Some(value),
            "t" => t = Some(value),
            "p" => p = Some(value),
            _ => return Err(PasswordError::Malformed),
        }
    }
    let (Some(m), Some(t), Some(p)) = (m, t, p) else {
        return Err(PasswordError::Malformed);
    };
    let salt = STANDARD_NO_PAD
        .decode(salt)
        .map_err(|_| PasswordError::Malformed)?;
    let expected = STANDARD_NO_PAD
        .decode(expected)
        .map_err(|_| PasswordError::Malformed)?;
    if expected.is_empty() || expected.len() > 64 {
        return Err(PasswordError::Malformed);
    }
    let mut out = vec![0; expected.len()];
    argon2(m, t, p)?
        .hash_password_into(password.as_bytes(), &salt, &mut out)
        .map_err(PasswordError::Argon2)?;
    Ok(constant_time_eq(&out, &expected))
}

/// A hash of a random password nobody knows, verified when the username is unknown so that a
/// login for a missing user costs as much as one with a wrong password. Computed once.
pub fn decoy() -> Result<&'static str, PasswordError> {
    static DECOY: OnceLock<String> = OnceLock::new();
    if let Some(phc) = DECOY.get() {
        return Ok(phc);
    }
    let mut secret = [0; 32];
    SystemRandom::new()
        .fill(&mut secret)
        .map_err(|_| PasswordError::Random)?;
    let phc = hash(&STANDARD_NO_PAD.encode(secret))?;
    Ok(DECOY.get_or_init(|| phc))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_meet_the_policy() {
        // Argon2id with m >= 19456 KiB, t >= 2, p = 1.
        let phc = hash("correct horse battery").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        const { assert!(M_COST_KIB >= 19_456 && T_COST >= 2 && P_COST == 1) };
    }

    #[test]
    fn the_right_password_verifies_and_a_wrong_one_does_not() {
        let phc = hash("correct horse battery").unwrap();
        assert!(verify("correct horse battery", &phc).unwrap());
        assert!(!verify("correct horse batterY", &phc).unwrap());
        assert_ne!(hash("correct horse battery").unwrap(), phc, "salted");
    }

    #[test]
    fn the_decoy_is_well_formed_at_full_cost() {
        let decoy = decoy().unwrap();
        assert!(!verify("anything at all", decoy).unwrap());
        assert!(decoy.contains("m=19456,t=2,p=1"));
        assert!(
            std::ptr::eq(decoy, super::decoy().unwrap()),
            "computed once"
        );
    }

    #[test]
    fn malformed_hashes_are_errors_not_mismatches() {
        for bad in [
            "",
            "plain",
            "$argon2i$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1,x=1$c2FsdHNhbHQ$aGFzaA",
            "$argon2id$v=19$m=19456,t=2,p=1$!!$aGFzaA",
        ] {
            assert!(
                matches!(verify("pw", bad), Err(PasswordError::Malformed)),
                "{bad}"
            );
        }
    }

    #[test]
    fn constant_time_eq_compares_length_and_content() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
