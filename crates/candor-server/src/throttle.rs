//! Login throttling: after a number of free failures for one username, or from one client
//! address, each next attempt must wait, 1 s and then twice as long after every further failure,
//! up to `login_max_delay`. A throttled attempt is answered 429 with `Retry-After` before the
//! password is looked at, so guessing costs the guesser time and Candor no hashing.
//!
//! Unknown usernames are counted like known ones (the answer must not tell them apart). A success
//! clears its username's count but not its address's: otherwise an attacker with one account of
//! their own could clear their address between guesses at others. A count is forgotten
//! `FORGET_AFTER` seconds after its last failure.
//!
//! The counts are kept in this node's memory: with several nodes, a guesser spread over all of
//! them gets each node's allowance (docs/security.md).

use candor_core::clock::UnixTime;
use std::collections::HashMap;
use std::sync::Mutex;

/// Counts kept at most (about 100 bytes each); when full, the stale ones go first, and if none
/// is stale, the one whose last failure is oldest.
const CAPACITY: usize = 100_000;
/// Seconds after its last failure that a count is forgotten.
const FORGET_AFTER: i64 = 3600;

#[derive(Debug, Clone, Copy)]
struct Count {
    failures: u32,
    last: UnixTime,
}

/// One count: the key and the failures it may have for free.
pub struct Key {
    name: String,
    free: u32,
}

impl Key {
    pub fn username(username: &str, free: u32) -> Key {
        Key { name: format!("u:{}", username.trim().to_lowercase()), free }
    }

    pub fn address(ip: std::net::IpAddr, free: u32) -> Key {
        Key { name: format!("a:{ip}"), free }
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    counts: Mutex<HashMap<String, Count>>,
}

/// The wait after `failures` failures of which `free` are free: none, then 1 s, doubling, at most `max`.
fn delay(failures: u32, free: u32, max: i64) -> i64 {
    if failures < free {
        return 0;
    }
    let doublings = (failures - free).min(30);
    (1i64 << doublings).min(max)
}

impl Throttle {
    fn counts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Count>> {
        self.counts.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Seconds the next attempt under these keys must still wait (0: it may go ahead). Times
    /// are whole seconds, so a failure at 10.9 s counts as 10 s; the wait runs until the second
    /// after `last + delay`, so that at least `delay` seconds really pass (up to one more).
    pub fn wait(&self, keys: &[Key], max: i64, now: UnixTime) -> i64 {
        let counts = self.counts();
        keys.iter()
            .filter_map(|k| counts.get(&k.name).map(|c| (k, c)))
            .filter(|(_, c)| now - c.last < FORGET_AFTER)
            .map(|(k, c)| match delay(c.failures, k.free, max) {
                0 => 0,
                d => (c.last + d + 1 - now).max(0),
            })
            .max()
            .unwrap_or(0)
    }

    /// An attempt under these keys failed.
    pub fn failed(&self, keys: &[Key], now: UnixTime) {
        let mut counts = self.counts();
        if counts.len() >= CAPACITY {
            counts.retain(|_, c| now - c.last < FORGET_AFTER);
            if counts.len() >= CAPACITY
                && let Some(oldest) = counts.iter().min_by_key(|(_, c)| c.last).map(|(k, _)| k.clone())
            {
                counts.remove(&oldest);
            }
        }
        for k in keys {
            let c = counts.entry(k.name.clone()).or_insert(Count { failures: 0, last: now });
            if now - c.last >= FORGET_AFTER {
                c.failures = 0;
            }
            c.failures = c.failures.saturating_add(1);
            c.last = now;
        }
    }

    /// An attempt under this key succeeded: its count starts over.
    pub fn succeeded(&self, key: &Key) {
        self.counts().remove(&key.name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_after_the_free_failures_double_and_stop_at_the_maximum() {
        let t = Throttle::default();
        let k = || [Key::username("Alice", 3)];
        let mut now = 1_000;
        for _ in 0..2 {
            t.failed(&k(), now);
            assert_eq!(t.wait(&k(), 900, now), 0);
        }
        let mut waits = vec![];
        for _ in 0..12 {
            t.failed(&k(), now);
            let w = t.wait(&k(), 900, now);
            waits.push(w);
            now += w;
            // Once waited out, the next attempt may go ahead.
            assert_eq!(t.wait(&k(), 900, now), 0);
        }
        // The delays 1, 2, 4 … 900, each plus the second the failure fell in.
        assert_eq!(waits, [2, 3, 5, 9, 17, 33, 65, 129, 257, 513, 901, 901]);
        // Usernames are counted case-insensitively; a success clears the count.
        assert!(t.wait(&[Key::username(" ALICE", 3)], 900, now - 1) > 0);
        t.succeeded(&Key::username("alice", 3));
        assert_eq!(t.wait(&k(), 900, now), 0);
    }

    #[test]
    fn the_longest_wait_of_the_keys_applies_and_old_failures_are_forgotten() {
        let t = Throttle::default();
        let address = || Key::address("203.0.113.9".parse().unwrap(), 2);
        let now = 5_000;
        for user in ["a", "b", "c"] {
            t.failed(&[Key::username(user, 5), address()], now);
        }
        // Another username from the same address waits; the same username elsewhere does not.
        assert_eq!(t.wait(&[Key::username("d", 5), address()], 900, now), 3);
        assert_eq!(t.wait(&[Key::username("d", 5), Key::address("198.51.100.1".parse().unwrap(), 2)], 900, now), 0);
        // An hour after the last failure, the count is forgotten, and counting starts over.
        let later = now + FORGET_AFTER;
        assert_eq!(t.wait(&[address()], 900, later), 0);
        t.failed(&[address()], later);
        assert_eq!(t.wait(&[address()], 900, later), 0);
    }
}
