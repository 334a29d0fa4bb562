//! Reading a token request as users paste it: a curl command line, a raw HTTP request, or
//! key=value pairs; and a callback or authorize URL, with its query and fragment apart.

use base64::Engine;

/// How a token request was given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Curl,
    Http,
    Pairs,
}

/// A token request, as sent.
#[derive(Debug, Clone, Default)]
pub struct TokenRequest {
    pub source: Option<Source>,
    pub url: Option<String>,
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    /// The body exactly as sent.
    pub body: Option<String>,
    /// Things the parser noticed that change what is sent (`curl -G`, multipart...).
    pub notes: Vec<String>,
}

impl TokenRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    pub fn content_type(&self) -> Option<&str> {
        self.header("content-type")
    }

    /// The media type of the body, lowercase, without parameters.
    pub fn media_type(&self) -> Option<String> {
        self.content_type().map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
    }

    pub fn is_json(&self) -> bool {
        self.media_type().is_some_and(|m| m == "application/json" || m.ends_with("+json"))
            || self.body.as_deref().is_some_and(|b| b.trim_start().starts_with('{'))
    }

    /// Basic credentials (id, secret), decoded as RFC 6749 §2.3.1 says.
    pub fn basic(&self) -> Option<Result<(String, String), String>> {
        let v = self.header("authorization")?;
        let (scheme, creds) = v.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        Some(candor_core::client_auth::decode_basic(creds).map_err(|r| r.describe(false)))
    }

    /// The body's parameters in order, duplicates kept (form or JSON object).
    pub fn params(&self) -> Vec<(String, String)> {
        let Some(body) = &self.body else { return Vec::new() };
        if self.is_json() {
            candor_core::params::Params::from_json(body.as_bytes()).map(|p| p.pairs().to_vec()).unwrap_or_default()
        } else {
            url::form_urlencoded::parse(body.as_bytes()).into_owned().collect()
        }
    }

    /// The raw (still encoded) value of a form parameter, to spot encoding mistakes.
    pub fn raw_form_value(&self, name: &str) -> Option<String> {
        if self.is_json() {
            return None;
        }
        self.body.as_deref()?.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=')?;
            (k == name).then(|| v.to_string())
        })
    }
}

/// Parses a token request given in any of the three forms.
pub fn parse_token_request(text: &str) -> Result<TokenRequest, String> {
    let t = text.trim();
    if t.starts_with("curl ") || t.starts_with("curl\t") || t == "curl" {
        parse_curl(t)
    } else if t.starts_with("POST ") || t.starts_with("GET ") || t.starts_with("PUT ") {
        Ok(parse_http(t))
    } else {
        Ok(parse_pairs(t))
    }
}

fn parse_curl(text: &str) -> Result<TokenRequest, String> {
    // A backslash at the end of a line continues the command (as pasted from docs).
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let words = shell_words::split(&joined).map_err(|e| format!("the curl command cannot be split into words: {e}"))?;
    let mut req = TokenRequest { source: Some(Source::Curl), ..TokenRequest::default() };
    let mut data: Vec<String> = Vec::new();
    let mut json_flag = false;
    let mut get = false;
    let mut words = words.into_iter();
    words.next(); // "curl"
    let mut it = words.peekable();
    while let Some(w) = it.next() {
        let (flag, inline) = match w.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (w.clone(), None),
        };
        let value = |it: &mut std::iter::Peekable<std::vec::IntoIter<String>>| inline.clone().or_else(|| it.next());
        match flag.as_str() {
            "-X" | "--request" => req.method = value(&mut it),
            "-H" | "--header" => {
                if let Some((k, v)) = value(&mut it).as_deref().and_then(|h| h.split_once(':')) {
                    req.headers.push((k.trim().to_string(), v.trim().to_string()));
                }
            }
            "-d" | "--data" | "--data-ascii" | "--data-binary" | "--data-raw" => {
                if let Some(v) = value(&mut it) {
                    if v.starts_with('@') && flag != "--data-raw" {
                        req.notes.push(format!(
                            "the body is read from the file {v:?}: paste its content instead to check it"
                        ));
                    }
                    data.push(v);
                }
            }
            "--data-urlencode" => {
                if let Some(v) = value(&mut it) {
                    let encoded = match v.split_once('=') {
                        Some((name, content)) => {
                            format!(
                                "{name}={}",
                                url::form_urlencoded::byte_serialize(content.as_bytes()).collect::<String>()
                            )
                        }
                        None => url::form_urlencoded::byte_serialize(v.as_bytes()).collect(),
                    };
                    data.push(encoded);
                }
            }
            "--json" => {
                json_flag = true;
                if let Some(v) = value(&mut it) {
                    data.push(v);
                }
            }
            "-u" | "--user" => {
                if let Some(v) = value(&mut it) {
                    let enc = base64::engine::general_purpose::STANDARD.encode(v.as_bytes());
                    req.headers.push(("Authorization".into(), format!("Basic {enc}")));
                }
            }
            "-F" | "--form" => {
                let _ = value(&mut it);
                req.notes.push(
                    "-F sends multipart/form-data; token endpoints expect application/x-www-form-urlencoded (use -d)"
                        .into(),
                );
            }
            "-G" | "--get" => get = true,
            "--url" => req.url = value(&mut it),
            f if f.starts_with('-') => {
                // Options that take a value we do not need.
                if matches!(
                    f,
                    "-o" | "--output"
                        | "-A"
                        | "--user-agent"
                        | "-e"
                        | "--referer"
                        | "-b"
                        | "--cookie"
                        | "-c"
                        | "--cookie-jar"
                        | "-m"
                        | "--max-time"
                        | "--connect-timeout"
                        | "-w"
                        | "--write-out"
                        | "--cacert"
                        | "--cert"
                        | "--key"
                        | "-x"
                        | "--proxy"
                ) && inline.is_none()
                {
                    it.next();
                }
            }
            _ => {
                if req.url.is_none() {
                    req.url = Some(w);
                }
            }
        }
    }
    if !data.is_empty() {
        req.body = Some(data.join("&"));
        if json_flag {
            req.body = Some(data.concat());
            if req.content_type().is_none() {
                req.headers.push(("Content-Type".into(), "application/json".into()));
            }
        } else if req.content_type().is_none() {
            // curl's default for -d.
            req.headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
        }
        if req.method.is_none() {
            req.method = Some(if get { "GET".into() } else { "POST".into() });
        }
    }
    if get {
        req.notes.push(
            "-G moves the data into the URL's query string and sends GET: the token endpoint needs POST with a body"
                .into(),
        );
    }
    Ok(req)
}

fn parse_http(text: &str) -> TokenRequest {
    let normalized = text.replace("\r\n", "\n");
    let (head, body) = normalized.split_once("\n\n").unwrap_or((&normalized, ""));
    let mut lines = head.lines();
    let mut req = TokenRequest { source: Some(Source::Http), ..TokenRequest::default() };
    if let Some(first) = lines.next() {
        let mut parts = first.split_whitespace();
        req.method = parts.next().map(str::to_string);
        req.url = parts.next().map(str::to_string);
    }
    for line in lines {
        if let Some((k, v)) = line.split_once(':') {
            req.headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    if let (Some(path), Some(host)) = (req.url.clone(), req.header("host").map(str::to_string))
        && path.starts_with('/')
    {
        req.url = Some(format!("https://{host}{path}"));
    }
    let body = body.trim_end_matches('\n');
    if !body.is_empty() {
        req.body = Some(body.to_string());
    }
    req
}

fn parse_pairs(text: &str) -> TokenRequest {
    let mut req = TokenRequest { source: Some(Source::Pairs), ..TokenRequest::default() };
    let mut pairs = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some((k, v)) = line
            .split_once(':')
            .filter(|(k, _)| k.eq_ignore_ascii_case("authorization") || k.eq_ignore_ascii_case("content-type"))
        {
            req.headers.push((k.trim().to_string(), v.trim().to_string()));
        } else {
            pairs.push(line.to_string());
        }
    }
    let body = pairs.join("&");
    if body.trim_start().starts_with('{') {
        if req.content_type().is_none() {
            req.headers.push(("Content-Type".into(), "application/json".into()));
        }
    } else if req.content_type().is_none() {
        req.headers.push(("Content-Type".into(), "application/x-www-form-urlencoded".into()));
    }
    req.method = Some("POST".into());
    req.body = Some(body);
    req
}

/// A URL's query parameters (duplicates kept) and its fragment, read exactly: the fragment
/// is not part of any parameter.
#[derive(Debug, Clone, Default)]
pub struct UrlParts {
    pub without_query: String,
    pub query: Vec<(String, String)>,
    pub fragment: Option<String>,
}

impl UrlParts {
    pub fn parse(url: &str) -> Result<UrlParts, String> {
        let url = url.trim();
        let (before_fragment, fragment) = match url.split_once('#') {
            Some((a, f)) => (a, Some(f.to_string())),
            None => (url, None),
        };
        let (base, query) = before_fragment.split_once('?').unwrap_or((before_fragment, ""));
        if !base.contains("://") && !base.contains(":/") {
            return Err(format!("{url:?} is not an absolute URL"));
        }
        Ok(UrlParts {
            without_query: base.to_string(),
            query: url::form_urlencoded::parse(query.as_bytes()).into_owned().collect(),
            fragment,
        })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub fn count(&self, name: &str) -> usize {
        self.query.iter().filter(|(k, _)| k == name).count()
    }
}

/// A value form-encoded, for a query string or a form body.
pub fn encode(v: &str) -> String {
    url::form_urlencoded::byte_serialize(v.as_bytes()).collect()
}

/// `n` random base64url characters (at most 43): states, nonces, verifiers, jtis.
pub fn random(n: usize) -> Result<String, String> {
    let bytes = candor_core::tokens::random_bytes::<32>().map_err(|e| e.to_string())?;
    Ok(candor_core::tokens::b64url(&bytes).chars().take(n).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_curl_command_is_read_like_curl_would_send_it() {
        let r = parse_token_request(
            "curl -s -X POST https://id.example.com/oauth/token \\\n  -u 'app:s3cret' \\\n  -d grant_type=authorization_code -d 'code=abc#' \\\n  --data-urlencode 'redirect_uri=https://app.example.com/cb'",
        )
        .unwrap();
        assert_eq!(r.url.as_deref(), Some("https://id.example.com/oauth/token"));
        assert_eq!(r.media_type().as_deref(), Some("application/x-www-form-urlencoded"));
        assert_eq!(r.basic().unwrap().unwrap(), ("app".into(), "s3cret".into()));
        let p = r.params();
        assert!(p.contains(&("redirect_uri".into(), "https://app.example.com/cb".into())));
        assert_eq!(r.raw_form_value("code").as_deref(), Some("abc#"));
    }

    #[test]
    fn json_curl_and_raw_http_and_pairs_are_understood() {
        let r = parse_token_request(r#"curl https://x/token -H 'Content-Type: application/json' -d '{"grant_type":"authorization_code","code":"c"}'"#).unwrap();
        assert!(r.is_json());
        assert_eq!(r.params()[1], ("code".into(), "c".into()));
        let r = parse_token_request("POST /token HTTP/1.1\r\nHost: id.example.com\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\ngrant_type=authorization_code&code=x").unwrap();
        assert_eq!(r.url.as_deref(), Some("https://id.example.com/token"));
        assert_eq!(r.params().len(), 2);
        let r = parse_token_request("grant_type=authorization_code\ncode=x\nredirect_uri=https://a/cb").unwrap();
        assert_eq!(r.params().len(), 3);
    }

    #[test]
    fn the_fragment_is_not_part_of_any_parameter() {
        let u = UrlParts::parse("https://app.example.com/cb?code=Q8f2&state=s1#_=_").unwrap();
        assert_eq!(u.get("code"), Some("Q8f2"));
        assert_eq!(u.get("state"), Some("s1"));
        assert_eq!(u.fragment.as_deref(), Some("_=_"));
    }
}
