//! Bearer credentials of the form `<prefix><owner id, 32 hex>_<secret>` (worker tokens, platform
//! API keys): the id finds the owner, the secret proves the holder. Only the SHA-256 of the whole
//! credential is stored; the secret is 190 random bits, so a fast hash is enough.

use sha2::{Digest, Sha256};

/// A new credential for `owner`.
pub fn issue(prefix: &str, owner: uuid::Uuid) -> String {
    format!(
        "{prefix}{}_{}",
        owner.simple(),
        crate::passwords::generate(32)
    )
}

/// What is stored of a credential.
pub fn hash(credential: &str) -> String {
    let digest = Sha256::digest(credential.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `credential` hashes to `stored`, without revealing where they differ.
pub fn matches(credential: &str, stored: &str) -> bool {
    let given = hash(credential);
    given.len() == stored.len()
        && given
            .bytes()
            .zip(stored.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}
