//! Reading and writing the few cookies Candor sets: the session and the browser binding.

use axum::http::{HeaderMap, HeaderValue, header};

pub const SESSION: &str = "candor_session";
/// Binds an interaction (login/consent in progress) to the browser that started it.
pub const BROWSER: &str = "candor_browser";

/// The value of cookie `name`, if the request carries it exactly once.
pub fn get(headers: &HeaderMap, name: &str) -> Option<String> {
    let mut found = None;
    for value in headers.get_all(header::COOKIE) {
        let Ok(text) = value.to_str() else { continue };
        for pair in text.split(';') {
            if let Some((k, v)) = pair.trim().split_once('=')
                && k == name
            {
                if found.is_some() {
                    return None;
                }
                found = Some(v.to_string());
            }
        }
    }
    found
}

/// `Set-Cookie` with HttpOnly, SameSite=Lax, Path=/, and Secure when the issuer is https.
pub fn set(headers: &mut HeaderMap, name: &str, value: &str, max_age: i64, secure: bool) {
    let cookie = format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        headers.append(header::SET_COOKIE, v);
    }
}

/// Removes cookie `name` from the browser (`Max-Age=0`, same attributes as when it was set).
pub fn clear(headers: &mut HeaderMap, name: &str, secure: bool) {
    set(headers, name, "", 0, secure);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_and_refuses_ambiguity() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; candor_session=xyz; b=2"));
        assert_eq!(get(&h, SESSION).as_deref(), Some("xyz"));
        h.append(header::COOKIE, HeaderValue::from_static("candor_session=other"));
        assert_eq!(get(&h, SESSION), None);
    }
}
