//! Login throttling: after a number of free failures for one username, or from one client
//! address, each next attempt must wait, 1 s and then twice as long after every further failure,
//! up to `login_max_delay`. A throttled attempt is answered 429 with `Retry-After` before the
//! password is looked at, so guessing costs the guesser time and Candor no hashing.
//!
//! An attempt is admitted and counted in one step (`Throttle::begin`): while its password is
//! being hashed it counts as a failure, so attempts sent together cannot all pass the check before
//! the first of them has failed. Its outcome then makes it a failure or takes it back. An attempt
//! that only attempts still in flight stand in the way of waits (up to `QUEUE_WAIT`) for them to
//! settle instead of being refused: several right passwords at once all get in, one after the
//! other, while several guesses at once get no more password checks than the free failures.
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
/// How long an attempt waits for attempts in flight under its keys to settle, at most.
const QUEUE_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Debug, Clone, Default)]
struct Count {
    failures: u32,
    /// The time of the last failure.
    last: UnixTime,
    /// When each admitted attempt that has no outcome yet began; each counts as a failure then.
    in_flight: Vec<UnixTime>,
}

impl Count {
    /// Failures, in-flight attempts included, and the time of the last of them.
    fn effective(&self) -> (u32, UnixTime) {
        let pending = u32::try_from(self.in_flight.len()).unwrap_or(u32::MAX);
        let last = self.in_flight.iter().copied().fold(self.last, i64::max);
        (self.failures.saturating_add(pending), last)
    }

    fn forgotten(&self, now: UnixTime) -> bool {
        self.in_flight.is_empty() && now - self.last >= FORGET_AFTER
    }
}

/// One count: the key, the failures it may have for free, and whether a success clears it.
pub struct Key {
    name: String,
    free: u32,
    cleared_by_success: bool,
}

impl Key {
    pub fn username(username: &str, free: u32) -> Key {
        Key { name: format!("u:{}", username.trim().to_lowercase()), free, cleared_by_success: true }
    }

    pub fn address(ip: std::net::IpAddr, free: u32) -> Key {
        Key { name: format!("a:{ip}"), free, cleared_by_success: false }
    }

    /// Wrong user codes entered at the device verification page from one address (RFC 8628
    /// §5.1: the user code is guessable unless attempts are limited).
    pub fn user_code_address(ip: std::net::IpAddr, free: u32) -> Key {
        Key { name: format!("d:{ip}"), free, cleared_by_success: false }
    }

    /// Open registrations (no initial access token) from one address: every one counts, so a
    /// stranger cannot fill the store with clients at full speed.
    pub fn registration_address(ip: std::net::IpAddr, free: u32) -> Key {
        Key { name: format!("r:{ip}"), free, cleared_by_success: false }
    }
}

#[derive(Debug, Default)]
pub struct Throttle {
    counts: Mutex<HashMap<String, Count>>,
    /// Woken whenever an attempt settles (its count taken back or made a failure).
    settled: tokio::sync::Notify,
}

/// An admitted attempt: a failure unless `succeeded` is called (dropping it, whatever ended the
/// request, counts it as failed).
pub struct Attempt<'t> {
    throttle: &'t Throttle,
    keys: Vec<(String, bool)>,
    at: UnixTime,
    done: bool,
}

impl Attempt<'_> {
    /// The password was right: the username's count starts over; the address keeps its earlier
    /// failures, and this attempt is taken back.
    pub fn succeeded(mut self) {
        self.done = true;
        let throttle = self.throttle;
        let mut counts = throttle.counts();
        for (name, cleared_by_success) in &self.keys {
            if *cleared_by_success {
                counts.remove(name);
            } else if let Some(c) = counts.get_mut(name) {
                take_back(&mut c.in_flight, self.at);
                if c.failures == 0 && c.in_flight.is_empty() {
                    counts.remove(name);
                }
            }
        }
        drop(counts);
        throttle.settled.notify_waiters();
    }
}

impl Drop for Attempt<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut counts = self.throttle.counts();
        for (name, _) in &self.keys {
            let c = counts.entry(name.clone()).or_default();
            take_back(&mut c.in_flight, self.at);
            c.failures = c.failures.saturating_add(1);
            c.last = c.last.max(self.at);
        }
        drop(counts);
        self.throttle.settled.notify_waiters();
    }
}

/// Removes one in-flight attempt begun at `at`.
fn take_back(in_flight: &mut Vec<UnixTime>, at: UnixTime) {
    if let Some(i) = in_flight.iter().position(|t| *t == at) {
        in_flight.swap_remove(i);
    }
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
        waiting(&self.counts(), keys, max, now, true)
    }

    /// Admits an attempt under these keys, counted as a failure until its outcome is known, or
    /// tells how many seconds it must wait (a refused attempt is not counted). Where only
    /// attempts in flight stand in the way, it waits for them to settle, up to `QUEUE_WAIT`
    /// (then it must wait a second).
    pub async fn begin(&self, keys: &[Key], max: i64, now: UnixTime) -> Result<Attempt<'_>, i64> {
        let deadline = tokio::time::Instant::now() + QUEUE_WAIT;
        loop {
            // Registered before the counts are read, so a settling in between is not missed.
            let settled = self.settled.notified();
            let mut settled = std::pin::pin!(settled);
            settled.as_mut().enable();
            {
                let mut counts = self.counts();
                let recorded = waiting(&counts, keys, max, now, false);
                if recorded > 0 {
                    return Err(recorded);
                }
                if waiting(&counts, keys, max, now, true) == 0 {
                    make_room(&mut counts, now);
                    for k in keys {
                        let c = counts.entry(k.name.clone()).or_default();
                        if c.forgotten(now) {
                            c.failures = 0;
                        }
                        c.in_flight.push(now);
                    }
                    let keys = keys.iter().map(|k| (k.name.clone(), k.cleared_by_success)).collect();
                    return Ok(Attempt { throttle: self, keys, at: now, done: false });
                }
            }
            if tokio::time::timeout_at(deadline, settled).await.is_err() {
                return Err(1);
            }
        }
    }
}

/// The wait under `keys`: from the recorded failures alone, or (`in_flight`) counting the
/// attempts in flight as failures too.
fn waiting(counts: &HashMap<String, Count>, keys: &[Key], max: i64, now: UnixTime, in_flight: bool) -> i64 {
    keys.iter()
        .filter_map(|k| counts.get(&k.name).map(|c| (k, c)))
        .filter(|(_, c)| !c.forgotten(now))
        .map(|(k, c)| {
            let (failures, last) = if in_flight { c.effective() } else { (c.failures, c.last) };
            match delay(failures, k.free, max) {
                0 => 0,
                d => (last + d + 1 - now).max(0),
            }
        })
        .max()
        .unwrap_or(0)
}

/// Keeps the counts under `CAPACITY`: the forgotten ones go first, then the one whose last
/// failure is oldest.
fn make_room(counts: &mut HashMap<String, Count>, now: UnixTime) {
    if counts.len() >= CAPACITY {
        counts.retain(|_, c| !c.forgotten(now));
        if counts.len() >= CAPACITY
            && let Some(oldest) = counts.iter().min_by_key(|(_, c)| c.effective().1).map(|(k, _)| k.clone())
        {
            counts.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An attempt under `keys` at `now` that fails.
    async fn fail(t: &Throttle, keys: &[Key], now: UnixTime) {
        drop(t.begin(keys, 900, now).await.unwrap());
    }

    #[tokio::test(start_paused = true)]
    async fn waits_start_after_the_free_failures_double_and_stop_at_the_maximum() {
        let t = Throttle::default();
        let k = || [Key::username("Alice", 3)];
        let mut now = 1_000;
        for _ in 0..2 {
            fail(&t, &k(), now).await;
            assert_eq!(t.wait(&k(), 900, now), 0);
        }
        let mut waits = vec![];
        for _ in 0..12 {
            fail(&t, &k(), now).await;
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
        t.begin(&[Key::username("alice", 3)], 900, now + 901).await.unwrap().succeeded();
        assert_eq!(t.wait(&k(), 900, now), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn an_attempt_counts_from_its_admission_so_attempts_sent_together_cannot_all_pass() {
        let t = std::sync::Arc::new(Throttle::default());
        let address = |free| Key::address("203.0.113.9".parse().unwrap(), free);
        let k = move || [Key::username("bob", 2), address(20)];
        let now = 1_000;
        // Two attempts at once, none finished: both free. A third waits for them to settle, and
        // when they never do, it is told to come back in a second.
        let first = t.begin(&k(), 900, now).await.unwrap();
        let second = t.begin(&k(), 900, now).await.unwrap();
        assert_eq!(t.begin(&k(), 900, now).await.err(), Some(1));
        // One fails: a next attempt waits for the other. When that one fails too, the waiting
        // attempt is refused with the wait the two failures earn, before any password check.
        drop(first);
        let waiting = {
            let t = t.clone();
            tokio::spawn(async move { t.begin(&k(), 900, now).await.err() })
        };
        tokio::task::yield_now().await;
        drop(second);
        assert_eq!(waiting.await.unwrap(), Some(2));
        assert_eq!(t.wait(&[address(2)], 900, now), 2, "both failures count for the address too");
    }

    #[tokio::test(start_paused = true)]
    async fn right_passwords_at_once_all_get_in_one_after_the_other() {
        let t = std::sync::Arc::new(Throttle::default());
        let k = || [Key::username("carol", 1)];
        let first = t.begin(&k(), 900, 1_000).await.unwrap();
        let next = {
            let t = t.clone();
            tokio::spawn(async move { t.begin(&k(), 900, 1_000).await.map(Attempt::succeeded).is_ok() })
        };
        tokio::task::yield_now().await;
        first.succeeded();
        assert!(next.await.unwrap(), "admitted once the first settled as a success");
        assert_eq!(t.wait(&k(), 900, 1_000), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_success_takes_its_attempt_back_without_moving_the_address_s_last_failure() {
        let t = Throttle::default();
        let address = || Key::address("203.0.113.9".parse().unwrap(), 2);
        for user in ["a", "b"] {
            fail(&t, &[Key::username(user, 5), address()], 1_000).await;
        }
        // Waited out, the address's owner signs in at 1 010: the address still has its two
        // failures of 1 000, not a third, nor a later one.
        t.begin(&[Key::username("owner", 5), address()], 900, 1_010).await.unwrap().succeeded();
        assert_eq!(t.wait(&[address()], 900, 1_001), 1);
        assert_eq!(t.wait(&[address()], 900, 1_010), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn the_longest_wait_of_the_keys_applies_and_old_failures_are_forgotten() {
        let t = Throttle::default();
        let address = || Key::address("203.0.113.9".parse().unwrap(), 2);
        let now = 5_000;
        for user in ["a", "b"] {
            fail(&t, &[Key::username(user, 5), address()], now).await;
        }
        // Another username from the same address waits; the same username elsewhere does not.
        assert_eq!(t.wait(&[Key::username("d", 5), address()], 900, now), 2);
        assert_eq!(t.wait(&[Key::username("d", 5), Key::address("198.51.100.1".parse().unwrap(), 2)], 900, now), 0);
        // An hour after the last failure, the count is forgotten, and counting starts over.
        let later = now + FORGET_AFTER;
        assert_eq!(t.wait(&[address()], 900, later), 0);
        fail(&t, &[address()], later).await;
        assert_eq!(t.wait(&[address()], 900, later), 0);
    }
}
