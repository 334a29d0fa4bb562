//! Scopes: a set of space-separated tokens (RFC 6749 §3.3).

use crate::rejection::{Reason, Rejection};
use std::collections::BTreeSet;
use std::fmt;

pub const OPENID: &str = "openid";
pub const PROFILE: &str = "profile";
pub const EMAIL: &str = "email";
pub const OFFLINE_ACCESS: &str = "offline_access";

/// Scopes Candor knows; a client may be allowed more (API scopes) by registration.
pub const STANDARD: [&str; 4] = [OPENID, PROFILE, EMAIL, OFFLINE_ACCESS];

/// An ordered set of scope tokens.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope(BTreeSet<String>);

impl Scope {
    /// RFC 6749 §3.3: `scope-token = 1*( %x21 / %x23-5B / %x5D-7E )`, separated by spaces.
    pub fn parse(s: &str) -> Result<Scope, Rejection> {
        let mut set = BTreeSet::new();
        for token in s.split(' ').filter(|t| !t.is_empty()) {
            if !token.bytes().all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b)) {
                return Err(Rejection::invalid("scope", format!("{token:?} is not a valid scope token")));
            }
            set.insert(token.to_string());
        }
        Ok(Scope(set))
    }

    /// Parses a scope stored by Candor itself (already validated).
    pub fn from_stored(s: &str) -> Scope {
        Scope(s.split(' ').filter(|t| !t.is_empty()).map(str::to_string).collect())
    }

    pub fn contains(&self, token: &str) -> bool {
        self.0.contains(token)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn is_subset_of(&self, other: &Scope) -> bool {
        self.0.is_subset(&other.0)
    }

    /// The tokens of `self` not in `other`.
    pub fn minus(&self, other: &Scope) -> Vec<String> {
        self.0.difference(&other.0).cloned().collect()
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }

    pub fn without(&self, token: &str) -> Scope {
        Scope(self.0.iter().filter(|t| *t != token).cloned().collect())
    }

    /// Checks every token is allowed for the client.
    pub fn require_allowed(&self, allowed: &Scope) -> Result<(), Rejection> {
        let extra = self.minus(allowed);
        if extra.is_empty() {
            Ok(())
        } else {
            Err(Rejection::new(Reason::ScopeNotAllowed)
                .with("not_allowed", extra.join(" "))
                .with("allowed", allowed.to_string()))
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v: Vec<&str> = self.iter().collect();
        f.write_str(&v.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sets_and_rejects_bad_characters() {
        let s = Scope::parse("openid  profile openid").unwrap();
        assert_eq!(s.to_string(), "openid profile");
        assert!(Scope::parse("openid \"x\"").is_err());
        assert!(Scope::parse("").unwrap().is_empty());
    }

    #[test]
    fn disallowed_scopes_are_named() {
        let allowed = Scope::parse("openid profile").unwrap();
        let r = Scope::parse("openid admin").unwrap().require_allowed(&allowed).unwrap_err();
        assert_eq!(r.reason, Reason::ScopeNotAllowed);
        assert_eq!(r.facts.get("not_allowed").unwrap(), "admin");
    }
}
