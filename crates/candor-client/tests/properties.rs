//! Property tests of what the client tools parse from a user's paste: a callback URL, a token
//! request, a JWT. Whatever the text, a value or an error, never a panic; a code survives the
//! callback parser exactly, and a fragment is kept apart from it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use candor_client::jwt;
use candor_client::request::{UrlParts, parse_token_request};
use proptest::prelude::*;

proptest! {
    #[test]
    fn pasted_text_never_panics(text in "\\PC{0,300}", bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        let lossy = String::from_utf8_lossy(&bytes).into_owned();
        for input in [&text, &lossy] {
            let _ = UrlParts::parse(input);
            let _ = parse_token_request(input);
            let _ = jwt::decode(input);
        }
    }

    #[test]
    fn a_callback_gives_back_its_code_and_keeps_the_fragment_apart(code in "[A-Za-z0-9._~-]{1,80}",
        state in "\\PC{0,30}", fragment in proptest::option::of("[A-Za-z0-9=&_-]{0,20}")) {
        let query = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", &code)
            .append_pair("state", &state)
            .finish();
        let url = match &fragment {
            Some(f) => format!("https://app.example.com/cb?{query}#{f}"),
            None => format!("https://app.example.com/cb?{query}"),
        };
        let parts = UrlParts::parse(&url).unwrap();
        prop_assert_eq!(parts.get("code"), Some(code.as_str()));
        prop_assert_eq!(parts.get("state"), Some(state.as_str()));
        prop_assert_eq!(parts.fragment, fragment);
    }
}
