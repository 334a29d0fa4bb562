//! Formats of the secrets Candor issues (codes, tokens, client secrets), their hashes, and
//! recognising what a client did to a value on its way back.
//!
//! A value is `<prefix><8 base64url chars: the time of issue><43 base64url chars = 256 random
//! bits><6 char checksum>`. The checksum lets Candor tell a value that was altered (truncated, a
//! `#fragment` glued on, `+` for a space) from one that was never issued.
//!
//! The time of issue (milliseconds since the epoch, 48 bits) is not secret and adds nothing to
//! the value's strength; it makes the value's stored key (`hash_secret`) sort by issue time, so
//! the store's index on those keys grows at its right edge instead of taking every new value on a
//! random page (docs/performance.md, "What changed, and its effect"). Values issued before it existed
//! (`<prefix><43><6>`) are still recognised and found.

use aws_lc_rs::{digest, rand};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use subtle::ConstantTimeEq;

pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s).ok()
}

/// `n` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> Result<[u8; N], RandomUnavailable> {
    let mut buf = [0u8; N];
    rand::fill(&mut buf).map_err(|_| RandomUnavailable)?;
    Ok(buf)
}

#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed")]
pub struct RandomUnavailable;

/// A random identifier for traces, sessions and interactions: 128 bits, hex.
pub fn random_id() -> Result<String, RandomUnavailable> {
    let bytes = random_bytes::<16>()?;
    Ok(hex(&bytes))
}

/// The prefix (12 hex characters) of the ordered ids and stored keys made in the millisecond that
/// starts second `unix_seconds`: every one made earlier sorts below it. The store bounds its
/// walks by time with it, so the encoding lives here only.
pub fn ordered_prefix(unix_seconds: i64) -> String {
    let millis = u64::try_from(unix_seconds).unwrap_or(0).saturating_mul(1000).min(0xffff_ffff_ffff);
    hex(&millis.to_be_bytes()[2..])
}

/// A unique identifier that sorts by creation time (grants, traces): 48 bits of milliseconds
/// since the epoch, then 80 random bits, in hex (32 characters). A database index on such ids
/// grows at its right edge, so inserting one rewrites the same few pages; a random id instead
/// lands on a random page of an index as large as its table, and every insert rewrites one more
/// page (docs/performance.md). The time it reveals is the time of a request its holder made.
pub fn ordered_id() -> Result<String, RandomUnavailable> {
    let millis = millis_now();
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random_bytes::<10>()?);
    Ok(hex(&bytes))
}

/// The kinds of secret value Candor issues, each with its own prefix so a value sent to the
/// wrong parameter is recognised.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretKind {
    AuthorizationCode,
    AccessToken,
    RefreshToken,
    ClientSecret,
    Session,
    Interaction,
    /// The value of a pushed authorization request's `request_uri` (RFC 9126).
    RequestUri,
    /// The device code of a device authorization (RFC 8628 §3.2).
    DeviceCode,
    /// The registration access token of a dynamically registered client (RFC 7592 §1.2).
    RegistrationAccessToken,
}

impl SecretKind {
    pub const ALL: [SecretKind; 9] = [
        SecretKind::AuthorizationCode,
        SecretKind::AccessToken,
        SecretKind::RefreshToken,
        SecretKind::ClientSecret,
        SecretKind::Session,
        SecretKind::Interaction,
        SecretKind::RequestUri,
        SecretKind::DeviceCode,
        SecretKind::RegistrationAccessToken,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            SecretKind::AuthorizationCode => "cdc_",
            SecretKind::AccessToken => "cda_",
            SecretKind::RefreshToken => "cdr_",
            SecretKind::ClientSecret => "cds_",
            SecretKind::Session => "cdx_",
            SecretKind::Interaction => "cdi_",
            SecretKind::RequestUri => "cdq_",
            SecretKind::DeviceCode => "cdv_",
            SecretKind::RegistrationAccessToken => "cdm_",
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecretKind::AuthorizationCode => "authorization code",
            SecretKind::AccessToken => "access token",
            SecretKind::RefreshToken => "refresh token",
            SecretKind::ClientSecret => "client secret",
            SecretKind::Session => "session id",
            SecretKind::Interaction => "interaction id",
            SecretKind::RequestUri => "request_uri",
            SecretKind::DeviceCode => "device code",
            SecretKind::RegistrationAccessToken => "registration access token",
        }
    }
}

const TIME_LEN: usize = 8; // 6 bytes (48-bit milliseconds), base64url
const RANDOM_LEN: usize = 43; // 32 bytes, base64url without padding
const CHECK_LEN: usize = 6;
/// Body lengths of the values Candor issues now, and of those it issued before the time of issue
/// led the value (still accepted, never issued).
const BODY_LEN: usize = TIME_LEN + RANDOM_LEN;
const LEGACY_BODY_LEN: usize = RANDOM_LEN;
const BODY_LENS: [usize; 2] = [BODY_LEN, LEGACY_BODY_LEN];

fn millis_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn checksum(prefix_and_body: &str) -> String {
    let d = digest::digest(&digest::SHA256, prefix_and_body.as_bytes());
    let enc = b64url(&d.as_ref()[..6]);
    enc[..CHECK_LEN].to_string()
}

/// A freshly generated secret value and its hash. The value leaves Candor once; the hash stays.
#[derive(Clone)]
pub struct Secret {
    pub value: String,
    pub hash: String,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret {{ hash: {} }}", self.hash)
    }
}

impl Secret {
    pub fn generate(kind: SecretKind) -> Result<Secret, RandomUnavailable> {
        Secret::issued_at(kind, millis_now())
    }

    fn issued_at(kind: SecretKind, millis: u64) -> Result<Secret, RandomUnavailable> {
        let time = b64url(&millis.to_be_bytes()[2..]);
        let random = b64url(&random_bytes::<32>()?);
        let head = format!("{}{time}{random}", kind.prefix());
        let value = format!("{head}{}", checksum(&head));
        let hash = hash_secret(&value);
        Ok(Secret { value, hash })
    }
}

/// The stored form of a secret: SHA-256 under a domain-separation label, in hex, preceded by the
/// value's time of issue in hex (12 characters) when the value carries one.
///
/// A 256-bit random value cannot be guessed, so a fast hash is enough (argon2 is for human
/// passwords); storing only this means a leaked store hands out no usable token. The time prefix
/// is readable in the value itself, so it discloses nothing the holder does not have; what it buys
/// is an index that appends (module docs). Anything else (a legacy value, a CSRF token, a value of
/// the wrong shape) is stored and looked up by the digest alone.
pub fn hash_secret(value: &str) -> String {
    let digest = digest_hex(value);
    match issue_time(value) {
        Some(time) => {
            let mut key = hex(&time);
            key.push_str(&digest);
            key
        }
        None => digest,
    }
}

/// The stored key of a JWT access token (RFC 9068) whose `jti` is an `ordered_id`: the jti's
/// time (12 hex characters), then the digest of the whole JWT, so that its key sorts by issue
/// time like every other token's (`hash_secret`) and only the exact token Candor signed is found.
/// A `jti` of another shape (a forgery: the lookup finds nothing) gives the bare digest.
pub fn jwt_key(jwt: &str, jti: &str) -> String {
    let digest = digest_hex(jwt);
    match jti.get(..12) {
        Some(time) if jti.len() == 32 && jti.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) => {
            format!("{time}{digest}")
        }
        _ => digest,
    }
}

/// Whether a presented value has the shape of a compact JWS (three base64url parts, the first
/// starting like a JSON object): a JWT access token, or an ID token sent in its place.
pub fn is_jwt_shaped(value: &str) -> bool {
    value.starts_with("eyJ")
        && value.split('.').count() == 3
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

fn digest_hex(value: &str) -> String {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"candor-secret-v1\0");
    ctx.update(value.as_bytes());
    hex(ctx.finish().as_ref())
}

/// The 6 time bytes of a value of the current shape (a known prefix, then the time, the random
/// part and the checksum, by length). The checksum is not checked: the stored key only has to be
/// a function of the value, and a forged time only chooses where a lookup searches.
fn issue_time(value: &str) -> Option<[u8; 6]> {
    let kind = SecretKind::ALL.into_iter().find(|k| value.starts_with(k.prefix()))?;
    let start = kind.prefix().len();
    if value.len() != start + BODY_LEN + CHECK_LEN {
        return None;
    }
    let decoded = b64url_decode(value.get(start..start + TIME_LEN)?)?;
    decoded.try_into().ok()
}

/// Lowercase hex, without a formatting call per byte (this is on every request's path).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// A short, non-reversible identifier of a value for logs and explanations: the first 12 hex
/// characters of its digest (not of its stored key, which starts with the time of issue).
pub fn fingerprint(value: &str) -> String {
    let mut digest = digest_hex(value);
    digest.truncate(12);
    digest
}

/// Whether a presented identifier is in fact one of Candor's secret values (a client secret pasted
/// as the client id, Basic credentials swapped...): such a value must never be echoed or logged.
pub fn looks_like_secret(value: &str) -> bool {
    SecretKind::ALL.iter().any(|k| value.starts_with(k.prefix()))
        || value.len() >= 40 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An identifier safe to show and log: itself, or a fingerprint if it looks like a secret.
pub fn safe_identifier(value: &str) -> String {
    if looks_like_secret(value) {
        format!("(a secret-looking value, fingerprint {})", fingerprint(value))
    } else {
        value.chars().take(128).collect()
    }
}

/// The value as Candor issued it, when the presented one only has characters added after it
/// (a `#fragment`, `&state=...`, whitespace).
pub fn issued_head(value: &str, kind: SecretKind) -> Option<&str> {
    let trimmed = value.trim();
    BODY_LENS.into_iter().find_map(|body| {
        let head = trimmed.get(..kind.prefix().len() + body + CHECK_LEN)?;
        has_valid_checksum(head, kind).then_some(head)
    })
}

/// Constant-time comparison of two stored hashes.
pub fn hashes_equal(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// What is wrong with a presented value that does not have the exact issued shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "defect", rename_all = "snake_case")]
pub enum Defect {
    /// A URL fragment (`#`, `#_=_`) was kept: the callback parser did not stop at `#`.
    UrlFragment { suffix: String },
    /// Another query parameter was glued on (`&state=...`): the parser did not stop at `&`.
    ParameterGluedOn { suffix: String },
    /// Leading or trailing whitespace or a line break.
    Whitespace,
    /// The value is still percent-encoded (`%23`, `%2B`...), or encoded twice.
    PercentEncoded { decoded_defect: Option<Box<Defect>> },
    /// A `+` or space replaced a character: form-decoding applied to a value that was not encoded.
    PlusOrSpace,
    /// Shorter than issued: cut off.
    Truncated { missing_chars: usize },
    /// The value of another kind: a refresh token sent as a code, say.
    WrongKind { sent: SecretKind },
    /// The shape is right but the checksum fails: some characters were changed.
    ChecksumMismatch,
    /// Nothing like a Candor value.
    NotACandorValue,
}

impl Defect {
    pub fn code(&self) -> &'static str {
        match self {
            Defect::UrlFragment { .. } => "url_fragment",
            Defect::ParameterGluedOn { .. } => "parameter_glued_on",
            Defect::Whitespace => "whitespace",
            Defect::PercentEncoded { .. } => "percent_encoded",
            Defect::PlusOrSpace => "plus_or_space",
            Defect::Truncated { .. } => "truncated",
            Defect::WrongKind { .. } => "wrong_kind",
            Defect::ChecksumMismatch => "checksum_mismatch",
            Defect::NotACandorValue => "not_a_candor_value",
        }
    }

    /// One sentence for the developer.
    pub fn explain(&self, kind: SecretKind) -> String {
        let what = kind.name();
        match self {
            Defect::UrlFragment { suffix } => format!(
                "the {what} carries the URL fragment {suffix:?}: the callback parser must stop at '#', which is not part of any query parameter"
            ),
            Defect::ParameterGluedOn { suffix } => {
                format!("the {what} has {suffix:?} glued on: the callback parser must split query parameters at '&'")
            }
            Defect::Whitespace => format!("the {what} has leading or trailing whitespace"),
            Defect::PercentEncoded { .. } => {
                format!("the {what} is still percent-encoded (or encoded twice): decode query parameters exactly once")
            }
            Defect::PlusOrSpace => format!(
                "a character of the {what} was turned into '+' or a space: encode it when building the request body"
            ),
            Defect::Truncated { missing_chars } => {
                format!("the {what} is {missing_chars} characters shorter than issued: it was cut off")
            }
            Defect::WrongKind { sent } => {
                format!("a {} was sent where a {what} belongs", sent.name())
            }
            Defect::ChecksumMismatch => {
                format!("the {what} has the right shape but some characters were changed on the way")
            }
            Defect::NotACandorValue => {
                format!("the value is not a {what} issued by Candor (wrong provider, or a placeholder)")
            }
        }
    }
}

fn has_valid_checksum(value: &str, kind: SecretKind) -> bool {
    let lengths = BODY_LENS.map(|body| kind.prefix().len() + body + CHECK_LEN);
    if !lengths.contains(&value.len()) || !value.starts_with(kind.prefix()) || !value.is_ascii() {
        return false;
    }
    let (head, check) = value.split_at(value.len() - CHECK_LEN);
    head[kind.prefix().len()..].bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        && checksum(head).as_bytes().ct_eq(check.as_bytes()).into()
}

/// Whether `value` is exactly a value of `kind` as Candor issues them (prefix, length, checksum).
/// The cheap test; `inspect` also says what is wrong with a value that is not.
pub fn is_shaped_as(value: &str, kind: SecretKind) -> bool {
    has_valid_checksum(value, kind)
}

/// Checks a presented value's shape; `Ok(())` means it is exactly as Candor would have issued
/// it (so a failed lookup means "never issued here"), `Err` names what the client did to it.
pub fn inspect(value: &str, kind: SecretKind) -> Result<(), Defect> {
    if has_valid_checksum(value, kind) {
        return Ok(());
    }
    Err(diagnose(value, kind))
}

fn diagnose(value: &str, kind: SecretKind) -> Defect {
    let full_len = kind.prefix().len() + BODY_LEN + CHECK_LEN;
    if value.trim() != value && has_valid_checksum(value.trim(), kind) {
        return Defect::Whitespace;
    }
    if let Some(other) = SecretKind::ALL.iter().copied().find(|k| *k != kind && has_valid_checksum(value, *k)) {
        return Defect::WrongKind { sent: other };
    }
    for len in BODY_LENS.map(|body| kind.prefix().len() + body + CHECK_LEN) {
        if value.len() <= len || !value.is_char_boundary(len) {
            continue;
        }
        let (head, suffix) = value.split_at(len);
        if has_valid_checksum(head, kind) {
            if suffix.starts_with('#') || suffix.starts_with("%23") {
                return Defect::UrlFragment { suffix: suffix.to_string() };
            }
            if suffix.starts_with('&') || suffix.starts_with("%26") {
                return Defect::ParameterGluedOn { suffix: short(suffix) };
            }
            if suffix.trim().is_empty() {
                return Defect::Whitespace;
            }
        }
    }
    if value.contains('%') {
        let once = percent_decode(value);
        if has_valid_checksum(&once, kind) {
            return Defect::PercentEncoded { decoded_defect: None };
        }
        if once != value
            && let Err(inner) = inspect(&once, kind)
            && !matches!(inner, Defect::ChecksumMismatch | Defect::NotACandorValue)
        {
            return Defect::PercentEncoded { decoded_defect: Some(Box::new(inner)) };
        }
    }
    if value.contains(' ') || value.contains('+') {
        // Base64url never contains '+' or ' ': one was introduced on the way. Try both readings.
        for candidate in [value.replace(' ', "+"), value.replace('+', "-"), value.replace(' ', "-")] {
            if has_valid_checksum(&candidate, kind) {
                return Defect::PlusOrSpace;
            }
        }
        if value.trim() != value {
            return Defect::Whitespace;
        }
        return Defect::PlusOrSpace;
    }
    if value.starts_with(kind.prefix()) {
        if value.len() < full_len
            && issued_head(value, kind).is_none()
            && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Defect::Truncated { missing_chars: full_len - value.len() };
        }
        return Defect::ChecksumMismatch;
    }
    Defect::NotACandorValue
}

fn short(s: &str) -> String {
    let cut: String = s.chars().take(24).collect();
    if cut.len() < s.len() { format!("{cut}...") } else { cut }
}

/// Percent-decodes once; malformed escapes are kept as written.
pub fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(v) = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code() -> String {
        Secret::generate(SecretKind::AuthorizationCode).unwrap().value
    }

    #[test]
    fn ordered_ids_sort_by_time_and_differ() {
        let a = ordered_id().unwrap();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ordered_id().unwrap();
        let c = ordered_id().unwrap();
        assert_eq!((a.len(), b.len()), (32, 32));
        assert!(a < b, "{a} then {b}");
        assert_ne!(b, c);
        assert!(a.bytes().all(|x| x.is_ascii_hexdigit() && !x.is_ascii_uppercase()));
        // The first 12 characters are the milliseconds since the epoch.
        let millis = u64::from_str_radix(&b[..12], 16).unwrap();
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        assert!(now - millis < 60_000, "{millis} vs {now}");
    }

    #[test]
    fn ordered_prefixes_bound_the_ids_made_before_and_after_them() {
        let now = i64::try_from(millis_now() / 1000).unwrap();
        let id = ordered_id().unwrap();
        assert!(ordered_prefix(now - 1) < id && id < ordered_prefix(now + 2), "{id}");
        assert_eq!(ordered_prefix(10), "000000002710");
        assert_eq!(ordered_prefix(-5), "000000000000");
    }

    #[test]
    fn hex_is_lowercase_two_digits_per_byte_and_hashes_keep_their_value() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        // Stored hashes must not change with the encoder: this value is in existing stores.
        let expected: String = {
            let mut ctx = digest::Context::new(&digest::SHA256);
            ctx.update(b"candor-secret-v1\0abc");
            ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
        };
        assert_eq!(hash_secret("abc"), expected);
    }

    #[test]
    fn generated_values_carry_256_bits_and_pass_inspection() {
        let s = Secret::generate(SecretKind::AuthorizationCode).unwrap();
        assert_eq!(s.value.len(), 4 + 8 + 43 + 6);
        assert_eq!(b64url_decode(&s.value[12..55]).unwrap().len(), 32);
        assert_eq!(inspect(&s.value, SecretKind::AuthorizationCode), Ok(()));
        assert_eq!(s.hash, hash_secret(&s.value));
        assert_ne!(s.value, code());
    }

    #[test]
    fn stored_keys_sort_by_time_of_issue_and_fingerprints_do_not() {
        let kind = SecretKind::AccessToken;
        let t = 1_790_000_000_123;
        let first = Secret::issued_at(kind, t).unwrap();
        let same_ms = Secret::issued_at(kind, t).unwrap();
        let later = Secret::issued_at(kind, t + 1).unwrap();
        assert_eq!(first.hash.len(), 12 + 64);
        assert_eq!(u64::from_str_radix(&first.hash[..12], 16).unwrap(), t);
        assert_eq!(&first.hash[12..], digest_hex(&first.value));
        assert!(first.hash < later.hash && same_ms.hash < later.hash, "{} {} {}", first.hash, same_ms.hash, later.hash);
        assert_ne!(first.hash, same_ms.hash);
        // The fingerprint comes from the digest: values issued in the same millisecond differ.
        assert_eq!(fingerprint(&first.value), first.hash[12..24]);
        assert_ne!(fingerprint(&first.value), fingerprint(&same_ms.value));
        // Another shape, or no Candor prefix, is keyed by its digest alone.
        assert_eq!(hash_secret("csrf\0browser\0interaction").len(), 64);
        assert_eq!(hash_secret(&first.value[..60]).len(), 64);
    }

    /// A value issued before values carried their time of issue: `<prefix><43><checksum>`.
    fn legacy(kind: SecretKind) -> String {
        let head = format!("{}{}", kind.prefix(), b64url(&random_bytes::<32>().unwrap()));
        format!("{head}{}", checksum(&head))
    }

    #[test]
    fn values_issued_before_the_time_prefix_are_still_recognised_and_keyed_as_before() {
        let k = SecretKind::RefreshToken;
        let old = legacy(k);
        assert_eq!(old.len(), 4 + 43 + 6);
        assert_eq!(inspect(&old, k), Ok(()));
        assert_eq!(hash_secret(&old), digest_hex(&old));
        assert_eq!(inspect(&format!("{old}#"), k), Err(Defect::UrlFragment { suffix: "#".into() }));
        assert_eq!(issued_head(&format!("{old}&state=x"), k), Some(old.as_str()));
        assert_eq!(inspect(&old, SecretKind::AuthorizationCode), Err(Defect::WrongKind { sent: k }));
        assert_eq!(inspect(&format!("{old}ab"), k), Err(Defect::ChecksumMismatch));
    }

    #[test]
    fn a_kept_fragment_is_named_with_its_suffix() {
        let c = code();
        assert_eq!(
            inspect(&format!("{c}#_=_"), SecretKind::AuthorizationCode),
            Err(Defect::UrlFragment { suffix: "#_=_".into() })
        );
        assert_eq!(
            inspect(&format!("{c}#"), SecretKind::AuthorizationCode),
            Err(Defect::UrlFragment { suffix: "#".into() })
        );
        assert!(matches!(
            inspect(&format!("{c}%23_%3D_"), SecretKind::AuthorizationCode),
            Err(Defect::UrlFragment { .. })
        ));
    }

    #[test]
    fn glued_parameters_whitespace_truncation_and_kind_are_told_apart() {
        let c = code();
        let k = SecretKind::AuthorizationCode;
        assert!(matches!(inspect(&format!("{c}&state=abc"), k), Err(Defect::ParameterGluedOn { .. })));
        assert_eq!(inspect(&format!(" {c}\n"), k), Err(Defect::Whitespace));
        assert_eq!(inspect(&c[..30], k), Err(Defect::Truncated { missing_chars: c.len() - 30 }));
        let r = Secret::generate(SecretKind::RefreshToken).unwrap().value;
        assert_eq!(inspect(&r, k), Err(Defect::WrongKind { sent: SecretKind::RefreshToken }));
        assert_eq!(inspect("SplxlOBeZQQYbYS6WxSbIA", k), Err(Defect::NotACandorValue));
        let mut altered = c.clone().into_bytes();
        altered[10] = if altered[10] == b'A' { b'B' } else { b'A' };
        assert_eq!(inspect(&String::from_utf8(altered).unwrap(), k), Err(Defect::ChecksumMismatch));
    }

    #[test]
    fn secret_looking_identifiers_are_replaced_by_fingerprints() {
        let secret = Secret::generate(SecretKind::ClientSecret).unwrap().value;
        assert!(!safe_identifier(&secret).contains(&secret));
        assert_eq!(safe_identifier("web-app"), "web-app");
        let c = code();
        assert_eq!(
            issued_head(&format!("{c}&state=abcdefghijklmnopqrstuvwxyz0123456789"), SecretKind::AuthorizationCode),
            Some(c.as_str())
        );
    }

    #[test]
    fn plus_for_dash_is_recognised() {
        let k = SecretKind::AuthorizationCode;
        let c = loop {
            let c = code();
            if c[4..].contains('-') {
                break c;
            }
        };
        assert_eq!(inspect(&c.replace('-', "+"), k), Err(Defect::PlusOrSpace));
    }
}
