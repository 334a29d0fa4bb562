//! A JSON body sent to /token (refused with a precise reason, never a panic).
#![no_main]
use candor_core::params::Params;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(p) = Params::from_json(bytes) {
        let _ = p.first_duplicate();
        for (k, _) in p.pairs().to_vec() {
            let _ = p.get(&k);
        }
    }
});
