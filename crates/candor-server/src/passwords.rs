//! Verifying human passwords (argon2id) on a few dedicated threads.
//!
//! argon2 is built to cost: about 17 ms of one core and 19 MiB of memory per verification with
//! the default parameters. Run on the async threads, it would stall every other request for that
//! long; run on tokio's blocking pool, each new thread would get its own allocator arena and keep
//! 19 MiB resident (hundreds of MiB after a burst of logins). So there is one thread per core,
//! each reusing one argon2 memory area, and logins beyond that wait their turn in a queue.

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use tokio::sync::oneshot;

struct Check {
    password: String,
    stored: String,
    reply: oneshot::Sender<bool>,
}

pub struct Verifier {
    queue: Mutex<mpsc::Sender<Check>>,
}

impl Verifier {
    /// Starts `threads` verifier threads; they end when the verifier is dropped.
    pub fn start(threads: usize) -> Verifier {
        let (queue, checks) = mpsc::channel::<Check>();
        let checks = Arc::new(Mutex::new(checks));
        for i in 0..threads.max(1) {
            let checks = checks.clone();
            let spawned = std::thread::Builder::new().name(format!("candor-password-{i}")).spawn(move || {
                let mut verifier = candor_core::password::Verifier::default();
                loop {
                    let next = match checks.lock() {
                        Ok(receiver) => receiver.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    let Ok(check) = next else { break };
                    let ok = verifier.verify(&check.password, &check.stored);
                    let _ = check.reply.send(ok);
                }
            });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "a password verifier thread could not start");
            }
        }
        Verifier { queue: Mutex::new(queue) }
    }

    /// True if `password` matches the stored hash. A verifier that cannot answer says no.
    pub async fn verify(&self, password: String, stored: String) -> bool {
        let (reply, answer) = oneshot::channel();
        let sent = match self.queue.lock() {
            Ok(q) => q.send(Check { password, stored, reply }),
            Err(poisoned) => poisoned.into_inner().send(Check { password, stored, reply }),
        };
        sent.is_ok() && answer.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_are_verified_off_the_async_threads() {
        let stored = candor_core::password::hash_password("right").unwrap();
        let v = Verifier::start(2);
        let (a, b, c) = tokio::join!(
            v.verify("right".into(), stored.clone()),
            v.verify("wrong".into(), stored.clone()),
            v.verify("right".into(), "not a hash".into())
        );
        assert!(a);
        assert!(!b);
        assert!(!c);
    }
}
