//! Password hashing with argon2id on threads of its own, as many as
//! may hash at once (S-03): each hash takes ~19 MiB and tens of ms.
//!
//! Not on tokio's blocking pool: glibc gives each thread that allocates an
//! arena of its own and keeps a freed 19 MiB block there for the next
//! allocation, so hashes spread over the pool's threads kept ~19 MiB per
//! thread (620-720 MiB resident in a 10-minute soak, RELIABILITY.md). A few
//! long-lived threads keep only their own.

use std::sync::{Arc, Mutex, mpsc};

use anyhow::Context;
use argon2::{Argon2, PasswordHasher as _, PasswordVerifier as _};

use crate::domain::NewPassword;

type Job = Box<dyn FnOnce() + Send>;

#[derive(Clone)]
pub struct PasswordHasher {
    /// To the hashing threads, which end when the last clone is dropped.
    jobs: mpsc::Sender<Job>,
    /// Verified against when the account does not exist, so that unknown
    /// addresses take as long as wrong passwords.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    /// `concurrency` threads hash; further requests wait their turn.
    pub fn new(concurrency: usize) -> anyhow::Result<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for n in 0..concurrency.max(1) {
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
            dummy_hash: dummy_hash()?.into(),
        })
    }

    /// A PHC string such as `$argon2id$v=19$m=19456,t=2,p=1$…`.
    pub async fn hash(&self, password: &NewPassword) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        self.run(move || {
            Argon2::default()
                .hash_password(password.as_bytes())
                .map(|hash| hash.to_string())
                .map_err(|e| anyhow::anyhow!("argon2: {e}"))
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
            .run(move || {
                Ok(Argon2::default()
                    .verify_password(password.as_bytes(), hash.as_str())
                    .is_ok())
            })
            .await?;
        Ok(known && matches)
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = done.send(work());
            }))
            .ok()
            .context("the password hashing threads have stopped")?;
        result.await.context("password hashing failed")?
    }
}

/// A hash of no password, with the parameters real hashes have (argon2's
/// defaults: argon2id, m = 19456 KiB, t = 2, p = 1, OWASP's figure), so
/// verifying against it takes as long. Random salt and output, not a real
/// hash: hashing at start-up took most of the start-up time (85 → 31 ms,
/// BENCHMARKS.md).
fn dummy_hash() -> anyhow::Result<String> {
    use argon2::password_hash::phc::{Output, Salt};
    let params = argon2::Params::default();
    let salt = Salt::new(&rand::random::<[u8; 16]>()).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let output =
        Output::new(&rand::random::<[u8; 32]>()).map_err(|e| anyhow::anyhow!("output: {e}"))?;
    Ok(format!(
        "$argon2id$v=19$m={},t={},p={}${salt}${output}",
        params.m_cost(),
        params.t_cost(),
        params.p_cost()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let hasher = PasswordHasher::new(2).unwrap();
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
