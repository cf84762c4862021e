//! The vault (crypto-shredding) against Postgres: sealed values open with their subject's key,
//! cannot be moved or altered, and are gone for good once the subject is erased.

use common::vault::{Opened, Vault, VaultError, SEALED};

#[tokio::test]
async fn sealed_data_opens_until_its_subject_is_erased_and_never_after() {
    let db = testkit::Db::fresh().await.unwrap();
    let secret = [7u8; 32];
    let vault = Vault::new(db.pool.clone(), &secret).unwrap();
    // Another process: its own cache, the same keys.
    let other = Vault::new(db.pool.clone(), &secret).unwrap();
    assert!(Vault::new(db.pool.clone(), b"short").is_err());

    let ann = vault
        .seal("platform_user/ann", "203.0.113.9")
        .await
        .unwrap();
    let bob = vault
        .seal("platform_user/bob", "Bob Example")
        .await
        .unwrap();
    assert!(
        ann.starts_with(SEALED) && !ann.contains("203.0.113.9"),
        "{ann}"
    );
    assert_ne!(
        vault
            .seal("platform_user/ann", "203.0.113.9")
            .await
            .unwrap(),
        ann,
        "a fresh nonce each time"
    );
    assert_eq!(
        other.open(&ann).await.unwrap(),
        Opened::Clear("203.0.113.9".into())
    );
    // Legacy clear text opens as itself; garbage and moved or altered values are refused.
    assert_eq!(
        vault.open("198.51.100.1").await.unwrap(),
        Opened::Clear("198.51.100.1".into())
    );
    assert!(matches!(
        vault.open(&format!("{SEALED}x:!!")).await,
        Err(VaultError::Malformed)
    ));
    let moved = ann.replacen("platform_user/ann", "platform_user/bob", 1);
    assert!(matches!(vault.open(&moved).await, Err(VaultError::Forged)));
    // One character in the middle of the ciphertext (any other base64 digit keeps it decodable).
    let mut altered: Vec<char> = ann.chars().collect();
    let at = altered.len() - 10;
    altered[at] = if altered[at] == 'A' { 'B' } else { 'A' };
    let altered: String = altered.into_iter().collect();
    assert!(matches!(
        vault.open(&altered).await,
        Err(VaultError::Forged)
    ));

    // Erased: idempotent; nothing opens, nothing new is sealed; Bob is untouched.
    assert!(vault.erase("platform_user/ann").await.unwrap());
    assert!(!vault.erase("platform_user/ann").await.unwrap());
    assert_eq!(vault.open(&ann).await.unwrap(), Opened::Erased);
    assert!(matches!(
        vault.seal("platform_user/ann", "again").await,
        Err(VaultError::Erased(_))
    ));
    assert_eq!(
        vault.open(&bob).await.unwrap(),
        Opened::Clear("Bob Example".into())
    );
    // A process that never cached Ann's key cannot open it either; the key is gone from the table.
    let fresh = Vault::new(db.pool.clone(), &secret).unwrap();
    assert_eq!(fresh.open(&ann).await.unwrap(), Opened::Erased);
    let left: Option<Vec<u8>> =
        sqlx::query_scalar("SELECT key FROM subject_keys WHERE subject = 'platform_user/ann'")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(left.is_none());

    // Pseudonyms: equality without the value.
    let p = vault.pseudonym("203.0.113.9");
    assert_eq!(p, other.pseudonym("203.0.113.9"));
    assert_ne!(p, vault.pseudonym("203.0.113.10"));
    assert!(!p.contains("203"));
    let rotated = Vault::new(db.pool.clone(), &[8u8; 32]).unwrap();
    assert_ne!(
        p,
        rotated.pseudonym("203.0.113.9"),
        "another secret, another pseudonym"
    );
}
