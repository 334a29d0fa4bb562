//! The device authorization grant (RFC 8628): a device that cannot show a browser (a TV, a CLI on
//! a server) asks for a device code and a user code; the user enters the user code at the
//! verification page on another device, logs in and approves; the device polls the token
//! endpoint with the device code until the user has decided.

use crate::clock::{UnixTime, rfc3339};
use crate::model::{Client, DeviceCodeRecord, DeviceStatus, GrantType};
use crate::params::Params;
use crate::rejection::{Reason, Rejection};
use crate::resource;
use crate::scope::Scope;
use crate::settings::Settings;
use crate::tokens::{RandomUnavailable, Secret, SecretKind, hash_secret, ordered_id, random_bytes};
use serde::{Deserialize, Serialize};

/// RFC 8628 §6.1: a user code of 8 characters from "BCDFGHJKLMNPQRSTVWXZ" (20 consonants: no
/// vowels, so no words; no digits, so nothing to confuse with letters) has 34.5 bits of entropy,
/// which with the verification page's throttle is enough for a code that lives minutes.
pub const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
pub const USER_CODE_LEN: usize = 8;
/// RFC 8628 §3.5: at each `slow_down` "the interval MUST be increased by 5 seconds for this and
/// all subsequent requests".
pub const SLOW_DOWN_STEP: i64 = 5;
/// Where the user enters the code (`verification_uri`).
pub const VERIFICATION_PATH: &str = "/device";

/// A user code, normalised: 8 characters of the alphabet, upper case, no separator.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode(String);

impl std::fmt::Debug for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("UserCode(..)")
    }
}

impl UserCode {
    pub fn generate() -> Result<UserCode, RandomUnavailable> {
        let mut code = String::with_capacity(USER_CODE_LEN);
        // Rejection sampling: a byte below 240 (12 × 20) maps to each letter equally often.
        while code.len() < USER_CODE_LEN {
            for b in random_bytes::<16>()? {
                if b < 240 && code.len() < USER_CODE_LEN {
                    code.push(char::from(USER_CODE_ALPHABET[usize::from(b % 20)]));
                }
            }
        }
        Ok(UserCode(code))
    }

    /// Reads what a user typed: case does not matter, nor spaces or dashes (RFC 8628 §6.1). Any
    /// other character, or a wrong length, is named, so the page can say what to check.
    pub fn parse(input: &str) -> Result<UserCode, Rejection> {
        let code: String =
            input.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_uppercase()).collect();
        let unknown = |problem: String| Rejection::new(Reason::UserCodeUnknown).with("problem", problem);
        if code.is_empty() {
            return Err(unknown("no code was entered".into()));
        }
        let mut foreign: Vec<char> =
            code.chars().filter(|c| !c.is_ascii() || !USER_CODE_ALPHABET.contains(&(*c as u8))).collect();
        foreign.dedup();
        if !foreign.is_empty() {
            let shown: Vec<String> = foreign.iter().take(5).map(|c| format!("{c:?}")).collect();
            return Err(unknown(format!(
                "it contains {} which no code has: codes use only the letters BCDFGHJKLMNPQRSTVWXZ (no vowels, no digits)",
                shown.join(", ")
            )));
        }
        if code.chars().count() != USER_CODE_LEN {
            return Err(unknown(format!("it has {} letters; a code has {USER_CODE_LEN}", code.chars().count())));
        }
        Ok(UserCode(code))
    }

    /// As shown to the user: two groups of four, `BCDF-GHJK`.
    pub fn display(&self) -> String {
        let (a, b) = self.0.split_at(USER_CODE_LEN / 2);
        format!("{a}-{b}")
    }

    /// The stored form (a user code is a secret while it is pending).
    pub fn hash(&self) -> String {
        hash_secret(&format!("user_code\0{}", self.0))
    }
}

/// A device authorization, accepted: what the device receives and the record to store.
#[derive(Debug)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: UserCode,
    pub record: DeviceCodeRecord,
}

/// Checks a device authorization request of the authenticated `client` (RFC 8628 §3.1): the
/// client must be registered for the grant, and its scopes and resources are checked as at
/// /authorize.
pub fn authorize(
    params: &Params,
    client: &Client,
    settings: &Settings,
    now: UnixTime,
    trace: &str,
) -> Result<DeviceAuthorization, Rejection> {
    if !client.may_use(GrantType::DeviceCode) {
        return Err(Rejection::new(Reason::GrantTypeNotAllowedForClient)
            .with("client_id", client.id.clone())
            .with("grant_type", GrantType::DeviceCode.as_str())
            .with("allowed", client.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" ")));
    }
    let scope = Scope::parse(params.get("scope")?.unwrap_or(""))?;
    scope.require_allowed(&Scope::from_stored(&client.scopes.join(" ")))?;
    let resources = resource::requested(params)?;
    resource::check_allowed(client, &resources)?;
    let internal = |_| Rejection::internal();
    let device_code = Secret::generate(SecretKind::DeviceCode).map_err(internal)?;
    let user_code = UserCode::generate().map_err(internal)?;
    let record = DeviceCodeRecord {
        hash: device_code.hash.clone(),
        user_code_hash: user_code.hash(),
        grant_id: ordered_id().map_err(internal)?,
        client_id: client.id.clone(),
        scope: scope.to_string(),
        resources,
        issued_at: now,
        expires_at: now + settings.device_code_lifetime,
        poll_interval: settings.device_poll_interval,
        last_polled_at: None,
        status: DeviceStatus::Pending,
        user_id: None,
        auth_time: None,
        decided_at: None,
        decided_trace: None,
        redeemed_at: None,
        redeemed_trace: None,
        issued_trace: trace.to_string(),
    };
    Ok(DeviceAuthorization { device_code, user_code, record })
}

impl DeviceAuthorization {
    /// A fresh user code, for when the one drawn is taken (the store refused it as a conflict).
    pub fn redraw_user_code(&mut self) -> Result<(), Rejection> {
        self.user_code = UserCode::generate().map_err(|_| Rejection::internal())?;
        self.record.user_code_hash = self.user_code.hash();
        Ok(())
    }
}

/// The device authorization a code entered at the verification page stands for, if the user may
/// still decide it.
pub fn check_user_code(found: Option<DeviceCodeRecord>, now: UnixTime) -> Result<DeviceCodeRecord, Rejection> {
    let Some(record) = found else {
        return Err(Rejection::new(Reason::UserCodeUnknown)
            .with("problem", "no device is waiting for this code: check each letter against the device's screen"));
    };
    if now >= record.expires_at {
        return Err(Rejection::new(Reason::UserCodeExpired)
            .with("expired_at", rfc3339(record.expires_at))
            .with("lifetime_seconds", record.expires_at - record.issued_at));
    }
    if record.status != DeviceStatus::Pending {
        let mut r = Rejection::new(Reason::UserCodeUsed).with("decision", record.status.as_str());
        if let Some(at) = record.decided_at {
            r = r.with("decided_at", rfc3339(at));
        }
        return Err(r);
    }
    Ok(record)
}

/// What the verification page's interaction carries: the device authorization being decided.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceRequest {
    /// Hash of the device code (the record's key).
    pub device_hash: String,
    pub grant_id: String,
    pub client_id: String,
    pub scope: String,
    pub resources: Vec<String>,
    /// The user code as displayed, so the user can compare it with the device's screen.
    pub user_code: String,
    pub expires_at: UnixTime,
}

impl DeviceRequest {
    pub fn new(record: &DeviceCodeRecord, user_code: &UserCode) -> DeviceRequest {
        DeviceRequest {
            device_hash: record.hash.clone(),
            grant_id: record.grant_id.clone(),
            client_id: record.client_id.clone(),
            scope: record.scope.clone(),
            resources: record.resources.clone(),
            user_code: user_code.display(),
            expires_at: record.expires_at,
        }
    }
}

/// The user's decision at the verification page.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    Approved { user_id: String, auth_time: UnixTime },
    Denied { user_id: String },
}

/// What one poll of a pending device code found (recorded atomically by the store).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Poll {
    /// The time of the poll before this one, if any.
    pub previous: Option<UnixTime>,
    /// The interval now in force: the store raised it by `SLOW_DOWN_STEP` if this poll came
    /// sooner than the interval before it.
    pub interval: i64,
}

impl Poll {
    /// Whether this poll came too soon. The store raised the interval exactly when the gap was
    /// below the interval in force before the poll (`interval - SLOW_DOWN_STEP` if it did), and
    /// a gap at least that interval leaves it unchanged, so the gap alone tells which.
    pub fn too_fast(&self, now: UnixTime) -> bool {
        self.previous.is_some_and(|p| now - p < self.interval - SLOW_DOWN_STEP)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_use_the_rfc_alphabet_and_read_back_however_typed() {
        for _ in 0..200 {
            let c = UserCode::generate().unwrap();
            assert_eq!(c.0.len(), USER_CODE_LEN);
            assert!(c.0.bytes().all(|b| USER_CODE_ALPHABET.contains(&b)));
            let shown = c.display();
            assert_eq!(shown.len(), 9);
            assert_eq!(UserCode::parse(&shown).unwrap(), c);
            assert_eq!(UserCode::parse(&shown.to_lowercase()).unwrap(), c);
            assert_eq!(UserCode::parse(&format!(" {} {} ", &c.0[..4], &c.0[4..])).unwrap().hash(), c.hash());
        }
    }

    #[test]
    fn a_mistyped_code_is_told_apart() {
        let problem = |s: &str| {
            let r = UserCode::parse(s).unwrap_err();
            assert_eq!(r.reason, Reason::UserCodeUnknown);
            r.facts.get("problem").unwrap().as_str().unwrap().to_string()
        };
        assert!(problem("BCDF-GHJ0").contains("'0'"), "{}", problem("BCDF-GHJ0"));
        assert!(problem("BCDA-GHJK").contains("'A'"));
        assert!(problem("BCDF-GHJ").contains("7 letters"));
        assert!(problem("  ").contains("no code"));
    }

    #[test]
    fn a_slow_down_is_read_from_the_raised_interval() {
        // Interval 5: a poll 3 s after the last raises it to 10 (too fast); one 5 s after keeps 5.
        assert!(Poll { previous: Some(100), interval: 10 }.too_fast(103));
        assert!(!Poll { previous: Some(100), interval: 5 }.too_fast(105));
        assert!(!Poll { previous: None, interval: 5 }.too_fast(100));
        // Interval 10 after a slow-down: 9 s is too fast (15 now), 10 s is not.
        assert!(Poll { previous: Some(100), interval: 15 }.too_fast(109));
        assert!(!Poll { previous: Some(100), interval: 10 }.too_fast(110));
    }

    #[test]
    fn a_code_is_decided_only_while_pending_and_unexpired() {
        let rec = |status, expires_at| DeviceCodeRecord {
            hash: "h".into(),
            user_code_hash: "u".into(),
            grant_id: "g".into(),
            client_id: "tv".into(),
            scope: "openid".into(),
            resources: vec![],
            issued_at: 0,
            expires_at,
            poll_interval: 5,
            last_polled_at: None,
            status,
            user_id: None,
            auth_time: None,
            decided_at: Some(50),
            decided_trace: None,
            redeemed_at: None,
            redeemed_trace: None,
            issued_trace: "t".into(),
        };
        assert!(check_user_code(Some(rec(DeviceStatus::Pending, 600)), 100).is_ok());
        assert_eq!(check_user_code(None, 100).unwrap_err().reason, Reason::UserCodeUnknown);
        assert_eq!(
            check_user_code(Some(rec(DeviceStatus::Pending, 100)), 100).unwrap_err().reason,
            Reason::UserCodeExpired
        );
        let used = check_user_code(Some(rec(DeviceStatus::Denied, 600)), 100).unwrap_err();
        assert_eq!((used.reason, used.facts.get("decision").unwrap().as_str()), (Reason::UserCodeUsed, Some("denied")));
    }
}
