//! Request parameters as they arrived: form-urlencoded or JSON, with duplicates remembered
//! so that RFC 6749 §3.1 ("MUST NOT be included more than once") can be enforced per parameter.

use crate::rejection::{Reason, Rejection};
use serde::Serialize;

/// How the parameters were sent; recorded because a JSON token request is a common client mistake.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Encoding {
    Query,
    Form,
    Json,
}

#[derive(Debug, Clone)]
pub struct Params {
    pairs: Vec<(String, String)>,
    pub encoding: Encoding,
}

/// The parameters that may be sent more than once: RFC 8707 §2 `resource`, one per resource.
pub const MULTI_VALUED: [&str; 1] = ["resource"];

/// The longest value Candor accepts for any single parameter.
pub const MAX_VALUE_LEN: usize = 4096;

impl Params {
    /// Parses `application/x-www-form-urlencoded` bytes (a query string or a form body).
    /// Non-UTF-8 input is refused rather than replaced.
    pub fn from_urlencoded(bytes: &[u8], encoding: Encoding) -> Result<Params, Rejection> {
        // Decoded here rather than by `url::form_urlencoded::parse`, which replaces invalid UTF-8
        // with U+FFFD: a code or secret must never be silently altered, and a U+FFFD actually
        // sent must not be taken for a decoding error.
        // Copies only what needs it: a part with `+` (a space) or an escape.
        let decode = |part: &[u8]| {
            let part: std::borrow::Cow<'_, [u8]> = if part.contains(&b'+') {
                part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect::<Vec<u8>>().into()
            } else {
                part.into()
            };
            match percent_encoding::percent_decode(&part).decode_utf8() {
                Ok(text) => Ok(text.into_owned()),
                Err(_) => {
                    let bytes: Vec<u8> = percent_encoding::percent_decode(&part).collect();
                    Err(String::from_utf8_lossy(&bytes).replace('\u{FFFD}', "?"))
                }
            }
        };
        let mut pairs = Vec::new();
        for part in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (k, v) = match part.iter().position(|&b| b == b'=') {
                Some(i) => (&part[..i], &part[i + 1..]),
                None => (part, &part[part.len()..]),
            };
            let not_utf8 = |name: String| {
                Rejection::new(Reason::BodyMalformed)
                    .with("problem", format!("parameter {name:?} is not valid UTF-8 after percent-decoding"))
            };
            let k = decode(k).map_err(not_utf8)?;
            let v = decode(v).map_err(|_| not_utf8(k.clone()))?;
            pairs.push((k, v));
        }
        Ok(Params { pairs, encoding })
    }

    /// Parses a JSON object whose values are strings (numbers and booleans are taken as text).
    /// Members are kept in order with duplicates, so a key sent twice is refused like a form parameter.
    pub fn from_json(bytes: &[u8]) -> Result<Params, Rejection> {
        let JsonPairs(members) = serde_json::from_slice(bytes)
            .map_err(|e| Rejection::new(Reason::BodyMalformed).with("problem", format!("invalid JSON: {e}")))?;
        let mut pairs = Vec::new();
        for (k, v) in members {
            let text = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                serde_json::Value::Null => continue,
                _ => {
                    return Err(Rejection::new(Reason::BodyMalformed)
                        .with("problem", format!("JSON member {k:?} must be a string")));
                }
            };
            pairs.push((k, text));
        }
        Ok(Params { pairs, encoding: Encoding::Json })
    }

    /// The single value of `name`: `Ok(None)` if absent, an error if sent twice, longer than
    /// `MAX_VALUE_LEN`, or holding a control character. No OAuth or OpenID parameter may hold one
    /// (RFC 6749 Appendix A: values are `VSCHAR`s, `NQCHAR`s or URIs), and a CR or LF in a value
    /// that is echoed (`state`) or logged is how headers and log lines get forged.
    /// RFC 6749 §3.1: "Parameters sent without a value MUST be treated as if they were omitted".
    pub fn get(&self, name: &str) -> Result<Option<&str>, Rejection> {
        let found = self.get_text(name)?;
        if let Some(v) = found
            && let Some(c) = v.chars().find(|c| c.is_control())
        {
            return Err(Rejection::new(Reason::ParameterInvalid)
                .with("parameter", name.to_string())
                .with("problem", format!("contains the control character U+{:04X}", u32::from(c))));
        }
        Ok(found)
    }

    /// Like `get`, for text a person typed that may hold any character (a password).
    pub fn get_text(&self, name: &str) -> Result<Option<&str>, Rejection> {
        let mut found = None;
        for (k, v) in &self.pairs {
            if k == name && !v.is_empty() {
                if found.is_some() {
                    return Err(Rejection::duplicated(name));
                }
                found = Some(v.as_str());
            }
        }
        if let Some(v) = found
            && v.len() > MAX_VALUE_LEN
        {
            return Err(Rejection::new(Reason::ParameterInvalid)
                .with("parameter", name.to_string())
                .with("problem", format!("{} bytes, at most {MAX_VALUE_LEN} are accepted", v.len())));
        }
        Ok(found)
    }

    /// The value of a required parameter.
    pub fn require(&self, name: &'static str) -> Result<&str, Rejection> {
        self.get(name)?.ok_or_else(|| Rejection::missing(name))
    }

    /// Every value of a parameter that may be sent several times (`MULTI_VALUED`), in order;
    /// each is checked as `get` checks a single value.
    pub fn all(&self, name: &str) -> Result<Vec<&str>, Rejection> {
        let mut out = Vec::new();
        for (k, v) in &self.pairs {
            if k != name || v.is_empty() {
                continue;
            }
            if v.len() > MAX_VALUE_LEN {
                return Err(Rejection::new(Reason::ParameterInvalid)
                    .with("parameter", name.to_string())
                    .with("problem", format!("{} bytes, at most {MAX_VALUE_LEN} are accepted", v.len())));
            }
            out.push(v.as_str());
        }
        Ok(out)
    }

    /// The first parameter sent more than once, if any, among those that may be sent once only.
    pub fn first_duplicate(&self) -> Option<&str> {
        self.pairs.iter().enumerate().find_map(|(i, (k, v))| {
            (!v.is_empty()
                && !MULTI_VALUED.contains(&k.as_str())
                && self.pairs[..i].iter().any(|(k2, v2)| k2 == k && !v2.is_empty()))
            .then_some(k.as_str())
        })
    }

    /// Every parameter in the order sent, duplicates included.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.pairs
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.pairs.iter().map(|(k, _)| k.as_str())
    }
}

/// A JSON object's members in order, duplicates kept (a map would silently keep the last).
struct JsonPairs(Vec<(String, serde_json::Value)>);

impl<'de> serde::Deserialize<'de> for JsonPairs {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Members;
        impl<'de> serde::de::Visitor<'de> for Members {
            type Value = JsonPairs;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<JsonPairs, A::Error> {
                let mut out = Vec::new();
                while let Some(entry) = map.next_entry::<String, serde_json::Value>()? {
                    out.push(entry);
                }
                Ok(JsonPairs(out))
            }
        }
        d.deserialize_map(Members)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_by_name_and_empty_means_absent() {
        let p = Params::from_urlencoded(b"a=1&a=2&b=&c=3", Encoding::Form).unwrap();
        assert_eq!(p.get("a").unwrap_err().reason, Reason::ParameterDuplicated);
        assert_eq!(p.get("b").unwrap(), None);
        assert_eq!(p.get("c").unwrap(), Some("3"));
        assert_eq!(p.first_duplicate(), Some("a"));
    }

    #[test]
    fn control_characters_are_refused_by_name_except_in_typed_text() {
        for (body, shown) in
            [("state=a%0D%0ASet-Cookie:%20x", "U+000D"), ("state=a%00", "U+0000"), ("state=%7F", "U+007F")]
        {
            let p = Params::from_urlencoded(body.as_bytes(), Encoding::Query).unwrap();
            let r = p.get("state").unwrap_err();
            assert_eq!(r.reason, Reason::ParameterInvalid);
            let facts = format!("{:?}", r);
            assert!(facts.contains("state") && facts.contains(shown), "{facts}");
            // A password may hold anything a person can type.
            assert!(p.get_text("state").unwrap().is_some());
        }
        // Printable text beyond ASCII is not a control character.
        let p = Params::from_urlencoded("state=caf%C3%A9%20%E2%9C%93".as_bytes(), Encoding::Query).unwrap();
        assert_eq!(p.get("state").unwrap(), Some("café ✓"));
        // Duplicates and length are still checked for typed text.
        let p = Params::from_urlencoded(b"password=a&password=b", Encoding::Form).unwrap();
        assert_eq!(p.get_text("password").unwrap_err().reason, Reason::ParameterDuplicated);
    }

    #[test]
    fn non_utf8_is_refused() {
        assert_eq!(Params::from_urlencoded(b"a=%FF", Encoding::Form).unwrap_err().reason, Reason::BodyMalformed);
        assert_eq!(Params::from_urlencoded(b"a=\xff", Encoding::Form).unwrap_err().reason, Reason::BodyMalformed);
        let r = Params::from_urlencoded(b"c%FF=1", Encoding::Form).unwrap_err();
        assert!(format!("{r:?}").contains(r#"\"c?\""#), "{r:?}");
        // U+FFFD actually sent is a character like any other (found by tests/properties.rs).
        let p = Params::from_urlencoded(b"a=%EF%BF%BD", Encoding::Form).unwrap();
        assert_eq!(p.get("a").unwrap(), Some("\u{FFFD}"));
    }

    #[test]
    fn forms_decode_as_the_url_standard_says() {
        let p = Params::from_urlencoded(b"&&a=b=c&d&e=x+y%2B%26&=v", Encoding::Form).unwrap();
        let expected: Vec<(String, String)> =
            url::form_urlencoded::parse(b"&&a=b=c&d&e=x+y%2B%26&=v").into_owned().collect();
        assert_eq!(p.pairs(), &expected[..]);
        assert_eq!(p.get("e").unwrap(), Some("x y+&"));
    }

    #[test]
    fn json_objects_of_strings_are_accepted() {
        let p = Params::from_json(br#"{"grant_type":"authorization_code","n":5}"#).unwrap();
        assert_eq!(p.get("grant_type").unwrap(), Some("authorization_code"));
        assert_eq!(p.encoding, Encoding::Json);
        assert!(Params::from_json(b"[1]").is_err());
        assert!(Params::from_json(br#"{"a":{"b":1}}"#).is_err());
        let dup = Params::from_json(br#"{"code":"a","code":"b"}"#).unwrap();
        assert_eq!(dup.get("code").unwrap_err().reason, Reason::ParameterDuplicated);
    }
}
