//! A form body or query string, as any stranger can send one to /token or /authorize.
#![no_main]
use candor_core::params::{Encoding, Params};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    for encoding in [Encoding::Form, Encoding::Query] {
        if let Ok(p) = Params::from_urlencoded(bytes, encoding) {
            let _ = p.first_duplicate();
            for (k, _) in p.pairs().to_vec() {
                let _ = p.get(&k);
                let _ = p.get_text(&k);
            }
        }
    }
});
