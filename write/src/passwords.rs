//! Argon2id password hashing, off the async runtime, on a small pool of its own threads.
//!
//! Each hash takes 19 MiB. Hashes run on `threads` dedicated threads (the core count by default)
//! with a bounded queue in front: however many logins arrive at once, at most `threads` hashes
//! are in memory, and the allocator's per-thread arenas stay as few as the threads. A full queue
//! answers [`PasswordError::Busy`] at once (the HTTP layer turns it into a 503 with
//! `Retry-After`) instead of queueing without bound.

use std::sync::{mpsc, Arc, Mutex, OnceLock};

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::{Algorithm, Argon2, Params, Version};

/// Hashes and verifies passwords. Cheap to clone; clones share one pool.
#[derive(Clone)]
pub struct Passwords {
    params: Params,
    pool: Arc<Pool>,
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    /// Every hashing thread is busy and the queue is full: try again in a moment.
    #[error("too many password checks at once")]
    Busy,
}

type Job = Box<dyn FnOnce() + Send>;

/// Threads started on first use (so building a `Passwords` costs nothing).
struct Pool {
    threads: usize,
    queue: usize,
    sender: OnceLock<mpsc::SyncSender<Job>>,
}

impl Pool {
    fn new(threads: usize, queue: usize) -> Self {
        Pool {
            threads: threads.max(1),
            queue,
            sender: OnceLock::new(),
        }
    }

    fn sender(&self) -> &mpsc::SyncSender<Job> {
        self.sender.get_or_init(|| {
            let (tx, rx) = mpsc::sync_channel::<Job>(self.queue);
            let rx = Arc::new(Mutex::new(rx));
            for i in 0..self.threads {
                let rx = rx.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("argon2-{i}"))
                    .spawn(move || loop {
                        // The lock is held only while waiting for the next job.
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "could not start a password hashing thread");
                }
            }
            tx
        })
    }

    /// Runs `f` on the pool; `Busy` when the queue is full.
    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = tx.send(f());
        });
        match self.sender().try_send(job) {
            Ok(()) => {}
            Err(mpsc::TrySendError::Full(_)) => {
                metrics::counter!("password_hash_busy_total").increment(1);
                return Err(PasswordError::Busy);
            }
            Err(mpsc::TrySendError::Disconnected(_)) => {
                return Err(PasswordError::Hash("no hashing thread is running".into()))
            }
        }
        rx.await
            .map_err(|_| PasswordError::Hash("the hashing thread stopped".into()))
    }
}

/// Hashing threads: the core count (argon2 with one lane uses one core per hash).
fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Waiting hashes per thread before `Busy` (about a second of work each at the default cost).
const QUEUE_PER_THREAD: usize = 16;

impl Default for Passwords {
    /// OWASP's argon2id recommendation: 19 MiB, 2 iterations, 1 lane.
    fn default() -> Self {
        Passwords::with_threads(default_threads())
    }
}

impl Passwords {
    /// The default cost on `threads` hashing threads (`PASSWORD_HASH_THREADS`).
    pub fn with_threads(threads: usize) -> Self {
        let threads = if threads == 0 {
            default_threads()
        } else {
            threads
        };
        Passwords {
            params: Params::new(19 * 1024, 2, 1, None).expect("valid argon2 params"),
            pool: Arc::new(Pool::new(threads, threads * QUEUE_PER_THREAD)),
        }
    }

    /// Minimal cost, for aggregate tests and benches of non-password paths only.
    pub fn insecure_fast() -> Self {
        Passwords {
            params: Params::new(8, 1, 1, None).expect("valid argon2 params"),
            pool: Arc::new(Pool::new(2, 64)),
        }
    }

    fn argon2(&self) -> Argon2<'static> {
        Argon2::new(Algorithm::Argon2id, Version::V0x13, self.params.clone())
    }

    pub async fn hash(&self, password: String) -> Result<String, PasswordError> {
        let argon = self.argon2();
        self.pool
            .run(move || {
                let salt = SaltString::generate(&mut OsRng);
                argon
                    .hash_password(password.as_bytes(), &salt)
                    .map(|h| h.to_string())
                    .map_err(|e| PasswordError::Hash(e.to_string()))
            })
            .await?
    }

    /// `Ok(false)` for a wrong password or an unparseable hash; `Err(Busy)` when the pool is
    /// saturated.
    pub async fn verify(&self, password: String, hash: String) -> Result<bool, PasswordError> {
        let argon = self.argon2();
        self.pool
            .run(move || {
                PasswordHash::new(&hash)
                    .map(|parsed| argon.verify_password(password.as_bytes(), &parsed).is_ok())
                    .unwrap_or(false)
            })
            .await
    }
}

/// A random password of `len` characters from an unambiguous alphabet.
pub fn generate(len: usize) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn verifies_only_the_right_password() {
        let p = Passwords::insecure_fast();
        let h = p.hash("correct horse".into()).await.unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(p.verify("correct horse".into(), h.clone()).await.unwrap());
        assert!(!p.verify("wrong".into(), h).await.unwrap());
        assert!(!p.verify("x".into(), "not a hash".into()).await.unwrap());
    }

    /// The hardening review: 40 concurrent logins took the api from 697 MB to 1.43 GB. However
    /// many arrive, at most `threads` hashes run and a bounded number wait; the rest are told to
    /// come back (`Busy`), at once.
    #[tokio::test]
    async fn a_burst_of_hashes_runs_a_bounded_number_at_once_and_refuses_the_overflow() {
        let p = Passwords::with_threads(1);
        let h = p.hash("pw".into()).await.unwrap();
        let burst: Vec<_> = (0..60)
            .map(|_| {
                let (p, h) = (p.clone(), h.clone());
                tokio::spawn(async move { p.verify("pw".into(), h).await })
            })
            .collect();
        let (mut ok, mut busy) = (0, 0);
        for r in burst {
            match r.await.unwrap() {
                Ok(true) => ok += 1,
                Err(PasswordError::Busy) => busy += 1,
                other => panic!("{other:?}"),
            }
        }
        assert!((1..=1 + QUEUE_PER_THREAD).contains(&ok), "{ok} ran");
        assert_eq!(ok + busy, 60);
        let threads = std::fs::read_dir("/proc/self/task")
            .unwrap()
            .filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
            .filter(|name| name.starts_with("argon2-"))
            .count();
        assert_eq!(threads, 1, "one hashing thread");
        // And once the burst is over, it hashes again.
        assert!(p.verify("pw".into(), h).await.unwrap());
    }

    #[test]
    fn generated_passwords_are_random_and_long() {
        let a = generate(24);
        assert_eq!(a.chars().count(), 24);
        assert_ne!(a, generate(24));
    }
}
