//! PKCE (RFC 7636): parsing challenges and verifiers, and checking one against the other.

use crate::rejection::{Reason, Rejection};
use crate::tokens::b64url;
use aws_lc_rs::digest;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// How the challenge was derived from the verifier (RFC 7636 §4.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChallengeMethod {
    S256,
    #[serde(rename = "plain")]
    Plain,
}

impl ChallengeMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ChallengeMethod::S256 => "S256",
            ChallengeMethod::Plain => "plain",
        }
    }
}

/// A `code_challenge` with its method, as received at /authorize.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CodeChallenge {
    pub value: String,
    pub method: ChallengeMethod,
}

/// RFC 7636 §4.1: `code-verifier = 43*128unreserved`, `unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"`.
fn check_shape(value: &str) -> Result<(), String> {
    let len = value.chars().count();
    if !(43..=128).contains(&len) {
        return Err(format!("length {len}, must be 43 to 128"));
    }
    if let Some(bad) = value.chars().find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~'))) {
        return Err(format!("character {bad:?} is not allowed"));
    }
    Ok(())
}

impl CodeChallenge {
    /// Parses `code_challenge` and `code_challenge_method` from an authorization request.
    ///
    /// RFC 7636 §4.3: "If no code_challenge_method is present ... defaults to plain": a challenge
    /// with no method is `plain`, never silently treated as S256.
    pub fn parse(value: &str, method: Option<&str>, plain_allowed: bool) -> Result<CodeChallenge, Rejection> {
        let method_sent = method.is_some();
        let method = match method {
            None | Some("plain") => ChallengeMethod::Plain,
            Some("S256") => ChallengeMethod::S256,
            Some(other) => {
                return Err(Rejection::new(Reason::PkceMethodNotAllowed)
                    .with("method", other)
                    .with("supported", if plain_allowed { "S256 plain" } else { "S256" }));
            }
        };
        if method == ChallengeMethod::Plain && !plain_allowed {
            return Err(Rejection::new(Reason::PkceMethodNotAllowed)
                .with("method", "plain")
                .with("method_was_sent", method_sent)
                .with("supported", "S256"));
        }
        check_shape(value)
            .map_err(|problem| Rejection::new(Reason::PkceChallengeMalformed).with("problem", problem))?;
        Ok(CodeChallenge { value: value.to_string(), method })
    }

    /// RFC 7636 §4.6: transform the verifier by the method and compare with the challenge (constant time).
    pub fn is_satisfied_by(&self, verifier: &CodeVerifier) -> bool {
        let derived = match self.method {
            ChallengeMethod::S256 => s256(&verifier.0),
            ChallengeMethod::Plain => verifier.0.clone(),
        };
        derived.as_bytes().ct_eq(self.value.as_bytes()).into()
    }
}

/// `BASE64URL-ENCODE(SHA256(ASCII(code_verifier)))`.
pub fn s256(verifier: &str) -> String {
    b64url(digest::digest(&digest::SHA256, verifier.as_bytes()).as_ref())
}

/// A `code_verifier` that has the shape RFC 7636 §4.1 requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeVerifier(String);

impl CodeVerifier {
    pub fn parse(value: &str) -> Result<CodeVerifier, Rejection> {
        check_shape(value)
            .map(|()| CodeVerifier(value.to_string()))
            .map_err(|problem| Rejection::new(Reason::PkceVerifierMalformed).with("problem", problem))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    #[test]
    fn the_rfc_7636_example_verifies() {
        let c = CodeChallenge::parse(CHALLENGE, Some("S256"), false).unwrap();
        assert!(c.is_satisfied_by(&CodeVerifier::parse(VERIFIER).unwrap()));
        assert_eq!(s256(VERIFIER), CHALLENGE);
    }

    #[test]
    fn a_challenge_without_method_is_plain_and_refused_unless_enabled() {
        let r = CodeChallenge::parse(CHALLENGE, None, false).unwrap_err();
        assert_eq!(r.reason, Reason::PkceMethodNotAllowed);
        let c = CodeChallenge::parse(CHALLENGE, None, true).unwrap();
        assert_eq!(c.method, ChallengeMethod::Plain);
        // A plain challenge is compared literally, never hashed.
        assert!(!c.is_satisfied_by(&CodeVerifier::parse(VERIFIER).unwrap()));
        assert!(c.is_satisfied_by(&CodeVerifier::parse(CHALLENGE).unwrap()));
    }

    #[test]
    fn verifiers_outside_the_rfc_shape_are_malformed() {
        assert_eq!(CodeVerifier::parse("short").unwrap_err().reason, Reason::PkceVerifierMalformed);
        let with_plus = format!("{}+", &VERIFIER[..43]);
        assert!(CodeVerifier::parse(&with_plus).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(129)).is_err());
        assert!(CodeVerifier::parse(&"a".repeat(128)).is_ok());
    }

    #[test]
    fn unknown_methods_are_refused() {
        let r = CodeChallenge::parse(CHALLENGE, Some("S512"), true).unwrap_err();
        assert_eq!(r.reason, Reason::PkceMethodNotAllowed);
    }
}
