//! Crypto-shredding: personal data is sealed under a key of its own subject (a platform user,
//! a voice task), so destroying that one key makes every copy unreadable at once — in the event
//! store, on the stream, in a replay, in a backup.
//!
//! ```text
//!  seal(subject, clear) ─► "sealed:v1:<subject>:<base64url(nonce ‖ XChaCha20-Poly1305(clear))>"
//!                          (the subject is the associated data: a value cannot be moved to another)
//!  open(value)          ─► Clear(text) │ Erased (the subject's key is gone)
//!                          a value without the prefix is legacy clear text and opens as itself
//!  erase(subject)       ─► the key destroyed (subject_keys.key = NULL, erased_at = now)
//!  pseudonym(value)     ─► "pn:v1:<hex HMAC-SHA256>" for equality only ("same IP as")
//! ```
//!
//! Keys live in the `subject_keys` table, never on the stream. Each process caches the keys it
//! used for [`CACHE_TTL`]: an erasure reaches another process's cache within that time.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::PgPool;

/// The prefix of a sealed value (its format version included).
pub const SEALED: &str = "sealed:v1:";
/// The prefix of a pseudonym.
pub const PSEUDONYM: &str = "pn:v1:";
/// How long a process trusts a cached key (or its absence after an erasure).
pub const CACHE_TTL: Duration = Duration::from_secs(60);
const NONCE_LEN: usize = 24;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    /// Nothing new may be sealed for an erased subject.
    #[error("subject {0} was erased")]
    Erased(String),
    #[error("not a sealed value")]
    Malformed,
    #[error("the sealed value does not open with its subject's key (altered or moved)")]
    Forged,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

/// What a stored value holds once opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    Clear(String),
    /// Its subject was erased: the value is gone for good.
    Erased,
}

type Key = [u8; 32];

pub struct Vault {
    pool: PgPool,
    pseudonym_mac: Hmac<Sha256>,
    cache: Mutex<HashMap<String, (Instant, Option<Key>)>>,
}

/// The parts of a sealed value: (subject, nonce, ciphertext).
fn parse(value: &str) -> Option<(&str, Vec<u8>)> {
    let rest = value.strip_prefix(SEALED)?;
    let (subject, body) = rest.rsplit_once(':')?;
    let bytes = URL_SAFE_NO_PAD.decode(body).ok()?;
    (!subject.is_empty() && bytes.len() > NONCE_LEN).then_some((subject, bytes))
}

/// Whether `value` is sealed (as opposed to legacy clear text).
pub fn is_sealed(value: &str) -> bool {
    value.starts_with(SEALED)
}

impl Vault {
    /// `pseudonym_secret`: the HMAC key of [`Vault::pseudonym`], at least 32 bytes.
    pub fn new(pool: PgPool, pseudonym_secret: &[u8]) -> anyhow::Result<Vault> {
        if pseudonym_secret.len() < 32 {
            anyhow::bail!("the pseudonym secret must be at least 32 bytes");
        }
        let pseudonym_mac = <Hmac<Sha256> as Mac>::new_from_slice(pseudonym_secret)
            .map_err(|e| anyhow::anyhow!("pseudonym secret: {e}"))?;
        Ok(Vault {
            pool,
            pseudonym_mac,
            cache: Mutex::default(),
        })
    }

    fn cached(&self, subject: &str) -> Option<Option<Key>> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache
            .get(subject)
            .filter(|(at, _)| at.elapsed() < CACHE_TTL)
            .map(|(_, key)| *key)
    }

    fn remember(&self, subject: &str, key: Option<Key>) {
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= 100_000 {
            cache.retain(|_, (at, _)| at.elapsed() < CACHE_TTL);
        }
        cache.insert(subject.to_owned(), (Instant::now(), key));
    }

    /// The subject's key (`None`: erased); created on first use when `create`.
    async fn key(&self, subject: &str, create: bool) -> Result<Option<Key>, VaultError> {
        if let Some(key) = self.cached(subject) {
            return Ok(key);
        }
        if create {
            let fresh: Key = XChaCha20Poly1305::generate_key(&mut OsRng).into();
            sqlx::query(
                "INSERT INTO subject_keys (subject, key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(subject)
            .bind(fresh.as_slice())
            .execute(&self.pool)
            .await?;
        }
        let row: Option<Option<Vec<u8>>> =
            sqlx::query_scalar("SELECT key FROM subject_keys WHERE subject = $1")
                .bind(subject)
                .fetch_optional(&self.pool)
                .await?;
        // A subject without a row holds nothing sealed yet: not remembered, so a key another
        // process creates meanwhile is found next time.
        let known = row.is_some();
        let key = row.flatten().and_then(|k| Key::try_from(k.as_slice()).ok());
        if known {
            self.remember(subject, key);
        }
        Ok(key)
    }

    /// Seals `clear` under `subject`'s key (created on first use).
    pub async fn seal(&self, subject: &str, clear: &str) -> Result<String, VaultError> {
        let key = self
            .key(subject, true)
            .await?
            .ok_or_else(|| VaultError::Erased(subject.to_owned()))?;
        let cipher = XChaCha20Poly1305::new(&key.into());
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: clear.as_bytes(),
                    aad: subject.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Malformed)?;
        let mut bytes = nonce.to_vec();
        bytes.extend(sealed);
        Ok(format!(
            "{SEALED}{subject}:{}",
            URL_SAFE_NO_PAD.encode(bytes)
        ))
    }

    /// Opens a stored value: sealed ones with their subject's key, legacy clear text as itself.
    pub async fn open(&self, value: &str) -> Result<Opened, VaultError> {
        if !is_sealed(value) {
            return Ok(Opened::Clear(value.to_owned()));
        }
        let (subject, bytes) = parse(value).ok_or(VaultError::Malformed)?;
        let Some(key) = self.key(subject, false).await? else {
            return Ok(Opened::Erased);
        };
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| VaultError::Malformed)?;
        let clear = XChaCha20Poly1305::new(&key.into())
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: subject.as_bytes(),
                },
            )
            .map_err(|_| VaultError::Forged)?;
        String::from_utf8(clear)
            .map(Opened::Clear)
            .map_err(|_| VaultError::Forged)
    }

    /// Destroys `subject`'s key. `true` when this call erased it, `false` when it was already
    /// erased (idempotent). A subject with no key yet gets an erased marker: nothing can be
    /// sealed for it afterwards.
    pub async fn erase(&self, subject: &str) -> Result<bool, VaultError> {
        let erased = sqlx::query(
            "INSERT INTO subject_keys (subject, key, erased_at) VALUES ($1, NULL, now())
             ON CONFLICT (subject) DO UPDATE SET key = NULL, erased_at = now()
              WHERE subject_keys.erased_at IS NULL",
        )
        .bind(subject)
        .execute(&self.pool)
        .await?
        .rows_affected()
            > 0;
        self.remember(subject, None);
        Ok(erased)
    }

    /// A keyed pseudonym of `value`: equal values give equal pseudonyms, and nothing else can
    /// be learnt from it without the secret.
    pub fn pseudonym(&self, value: &str) -> String {
        let mut mac = self.pseudonym_mac.clone();
        mac.update(value.as_bytes());
        let digest = mac.finalize().into_bytes();
        let hex: String = digest[..16].iter().map(|b| format!("{b:02x}")).collect();
        format!("{PSEUDONYM}{hex}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_are_recognised_and_parsed_and_garbage_is_not() {
        let body = URL_SAFE_NO_PAD.encode([7u8; 40]);
        let value = format!("{SEALED}platform_user/u1:{body}");
        assert!(is_sealed(&value));
        let (subject, bytes) = parse(&value).unwrap();
        assert_eq!((subject, bytes.len()), ("platform_user/u1", 40));
        for bad in [
            "203.0.113.9".to_owned(),
            SEALED.to_owned(),
            format!("{SEALED}s:"),
            format!("{SEALED}:{body}"),
            format!("{SEALED}s:not base64!"),
            format!("{SEALED}s:{}", URL_SAFE_NO_PAD.encode([1u8; 10])),
        ] {
            assert!(parse(&bad).is_none(), "{bad}");
        }
    }
}
