//! Password hashing with argon2id on threads of its own, as many as
//! may hash at once (S-03): each hash takes ~19 MiB and tens of ms.
//!
//! Each thread allocates its argon2 memory once and reuses it. argon2's own
//! `hash_password` allocates 19 MiB per hash and frees it after; on the
//! first such free glibc raises its mmap threshold above that size, and
//! from then on blocks that size come from the arenas of the threads that
//! ask and stay resident there. In a 10-minute soak (RELIABILITY.md) that
//! held 620-720 MiB on the blocking pool, ~300 MiB on two threads of its
//! own, and 65-75 MiB with the memory kept; a hash no longer zeroes a
//! fresh block either, and sign-in took 14 ms instead of 23.
//!
//! Hashing is admitted, not queued without end: a caller waits at most
//! `max_wait` for one of the threads and is otherwise told [`HasherBusy`]
//! (a 503 with Retry-After), so a flood of password forms costs its own
//! requests a refusal instead of every reader's sign-in a 30 s timeout, and
//! memory stays flat. A caller that has gone (client hung up, request timed
//! out) gives up its place before its hash starts.

use std::{
    cell::RefCell,
    sync::{Arc, Mutex, mpsc},
    time::Duration,
};

use anyhow::Context;
use argon2::{
    Algorithm, Argon2, Block, Params, Version,
    password_hash::phc::{Output, PasswordHash},
};

use crate::domain::NewPassword;

type Job = Box<dyn FnOnce() + Send>;

/// Every hashing thread stayed busy for as long as a caller may wait.
#[derive(Debug, thiserror::Error)]
#[error("every password hashing thread is busy")]
pub struct HasherBusy;

#[derive(Clone)]
pub struct PasswordHasher {
    /// To the hashing threads, which end when the last clone is dropped.
    /// Never holds more jobs than there are threads: each holds a slot.
    jobs: mpsc::Sender<Job>,
    /// One per thread; a job is sent only with one, and frees it when done.
    slots: Arc<tokio::sync::Semaphore>,
    /// How long a caller waits for a slot before [`HasherBusy`].
    max_wait: Duration,
    /// Verified against when the account does not exist, so that unknown
    /// addresses take as long as wrong passwords.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// `concurrency` threads hash; further callers wait their turn, in
    /// order, for at most `max_wait`.
    pub fn new(concurrency: usize, max_wait: Duration) -> anyhow::Result<Self> {
        let concurrency = concurrency.max(1);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..concurrency {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for the next job.
                        let next = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok(job) = next else { return };
                        // A panicking job fails its own request, not the thread.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .context("starting a password hashing thread")?;
        }
        Ok(Self {
            jobs,
            slots: Arc::new(tokio::sync::Semaphore::new(concurrency)),
            max_wait,
            dummy_hash: dummy_hash()?.into(),
        })
    }

    /// A PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$…`.
    pub async fn hash(&self, password: &NewPassword) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        self.run(move || {
            let params = Params::default();
            let salt = rand::random::<[u8; 16]>();
            let mut output = [0; Params::DEFAULT_OUTPUT_LEN];
            with_memory(&params, |memory| {
                Argon2::default().hash_password_into_with_memory(
                    password.as_bytes(),
                    &salt,
                    &mut output,
                    memory,
                )
            })
            .map_err(|e| anyhow::anyhow!("argon2: {e}"))?;
            phc_string(&params, &salt, &output)
        })
        .await
    }

    /// True if `password` matches `hash`; with no hash, spends the same time
    /// and answers false.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> anyhow::Result<bool> {
        let password = password.to_owned();
        let (hash, known) = match hash {
            Some(hash) => (hash.to_owned(), true),
            None => (self.dummy_hash.to_string(), false),
        };
        let matches = self
            .run(move || Ok(matches(password.as_bytes(), &hash) == Some(true)))
            .await?;
        Ok(known && matches)
    }

    /// Runs `work` on a hashing thread once one is free; [`HasherBusy`] if
    /// none is within `max_wait`. Dropping the future before the work
    /// starts (the caller has gone) skips it.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        // Tokio's semaphore is fair: callers are served in arrival order.
        let slot =
            match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
                Ok(slot) => slot.context("the password hashing threads have stopped")?,
                Err(_) => return Err(HasherBusy.into()),
            };
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _slot = slot;
                if !done.is_closed() {
                    let _ = done.send(work());
                }
            }))
            .ok()
            .context("the password hashing threads have stopped")?;
        result.await.context("password hashing failed")?
    }
}

thread_local! {
    /// This hashing thread's argon2 memory, kept from one hash to the next.
    static MEMORY: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` with this thread's argon2 memory, grown to what `params` need.
fn with_memory<T>(params: &Params, work: impl FnOnce(&mut [Block]) -> T) -> T {
    MEMORY.with_borrow_mut(|memory| {
        if memory.len() < params.block_count() {
            memory.resize(params.block_count(), Block::new());
        }
        work(memory)
    })
}

/// Whether `password` hashes to the stored PHC string `hash`, computed with
/// the algorithm, version and parameters the string names; `None` if the
/// string is not one argon2 can check.
fn matches(password: &[u8], hash: &str) -> Option<bool> {
    let hash = PasswordHash::new(hash).ok()?;
    let (salt, expected) = (hash.salt.as_ref()?, hash.hash.as_ref()?);
    let params = Params::try_from(&hash).ok()?;
    let version = hash
        .version
        .map_or(Ok(Version::default()), Version::try_from);
    let argon2 = Argon2::new(
        Algorithm::try_from(hash.algorithm.as_str()).ok()?,
        version.ok()?,
        params.clone(),
    );
    let mut output = vec![0; expected.len()];
    with_memory(&params, |memory| {
        argon2.hash_password_into_with_memory(password, salt, &mut output, memory)
    })
    .ok()?;
    // Output's comparison takes the same time wherever the bytes differ.
    Some(Output::new(&output).ok()? == *expected)
}

/// The PHC string of an argon2id hash with `params`.
fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> anyhow::Result<String> {
    use argon2::password_hash::phc::Salt;
    let salt = Salt::new(salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let output = Output::new(output).map_err(|e| anyhow::anyhow!("output: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${salt}${output}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    ))
}

/// A hash of no password, with the parameters real hashes have (argon2's
/// defaults: argon2id, m = 19456 KiB, t = 2, p = 1, OWASP's figure), so
/// verifying against it takes as long. Random salt and output, not a real
/// hash: hashing at start-up took most of the start-up time (85 → 31 ms,
/// BENCHMARKS.md).
fn dummy_hash() -> anyhow::Result<String> {
    phc_string(
        &Params::default(),
        &rand::random::<[u8; 16]>(),
        &rand::random::<[u8; Params::DEFAULT_OUTPUT_LEN]>(),
    )
}

#[cfg(test)]
mod tests {
    use argon2::{PasswordHasher as _, PasswordVerifier as _};

    use super::*;

    const WAIT: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn callers_past_the_wait_are_refused_and_those_gone_are_skipped() {
        let hasher = PasswordHasher::new(1, Duration::from_millis(50)).unwrap();
        let (started, release) = (
            Arc::new(std::sync::Barrier::new(2)),
            Arc::new(std::sync::Barrier::new(2)),
        );
        let (s, r) = (started.clone(), release.clone());
        // The one thread is held until the test lets it go.
        let holding = tokio::spawn({
            let hasher = hasher.clone();
            async move {
                hasher
                    .run(move || {
                        s.wait();
                        r.wait();
                        Ok(())
                    })
                    .await
            }
        });
        tokio::task::spawn_blocking(move || started.wait())
            .await
            .unwrap();
        let refused = hasher.run(|| Ok(())).await.unwrap_err();
        assert!(refused.is::<HasherBusy>(), "{refused:#}");
        // A caller that gives up while waiting never runs.
        let ran = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = ran.clone();
        let gone = tokio::time::timeout(
            Duration::from_millis(10),
            hasher.run(move || {
                flag.store(true, std::sync::atomic::Ordering::SeqCst);
                Ok(())
            }),
        )
        .await;
        assert!(gone.is_err(), "it was still waiting");
        tokio::task::spawn_blocking(move || release.wait())
            .await
            .unwrap();
        holding.await.unwrap().unwrap();
        // The slot is free again, and the one given up was not run.
        hasher.run(|| Ok(())).await.unwrap();
        assert!(!ran.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn hashes_are_the_ones_argon2_itself_makes_and_checks() {
        let hasher = PasswordHasher::new(1, WAIT).unwrap();
        // Stored before the memory was kept: argon2's own hash verifies.
        let theirs = Argon2::default()
            .hash_password(b"correct horse battery staple")
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify("correct horse battery staple", Some(&theirs))
                .await
                .unwrap()
        );
        assert!(!hasher.verify("wrong", Some(&theirs)).await.unwrap());
        // And ours verifies with argon2's own check.
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        let ours = hasher.hash(&password).await.unwrap();
        let parsed = argon2::PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"correct horse battery staple", &parsed)
                .is_ok()
        );
        // Cheaper parameters are checked with their own, in the same memory.
        let cheap = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(64, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw")
        .unwrap()
        .to_string();
        assert!(hasher.verify("pw", Some(&cheap)).await.unwrap());
        assert!(!hasher.verify("pw", Some("not a hash")).await.unwrap());
    }

    #[test]
    fn the_dummy_hash_costs_what_a_real_hash_costs() {
        let dummy = dummy_hash().unwrap();
        let parsed = argon2::PasswordHash::new(&dummy).expect("a valid PHC string");
        let real = Argon2::default()
            .hash_password(b"password")
            .unwrap()
            .to_string();
        let real = argon2::PasswordHash::new(&real).unwrap();
        assert_eq!(parsed.algorithm, real.algorithm);
        assert_eq!(parsed.params, real.params);
        assert_eq!(parsed.version, real.version);
        assert_eq!(parsed.hash.map(|h| h.len()), real.hash.map(|h| h.len()));
        // A wrong password, not a hash argon2 refuses to run.
        assert!(matches!(
            Argon2::default().verify_password(b"password", &parsed),
            Err(argon2::password_hash::Error::PasswordInvalid)
        ));
    }

    #[tokio::test]
    async fn a_hash_verifies_its_password_only() {
        let hasher = PasswordHasher::new(2, WAIT).unwrap();
        let password = NewPassword::parse("correct horse battery staple").unwrap();
        let hash = hasher.hash(&password).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify("correct horse battery staple", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("wrong horse battery staple", Some(&hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify("correct horse battery staple", None)
                .await
                .unwrap()
        );
    }
}
