//! `admin_accounts`, `admin_sessions`, and the `admin-revoked` KV bucket.

use events::admin::{AdminEvent, AdminSessionEvent, SESSION_UPCASTERS, UPCASTERS};
use events::topology::ADMIN_REVOKED_BUCKET;
use events::Envelope;
use sqlx::PgConnection;

use crate::effects::{ApplyError, Effects};

fn poison(e: events::DecodeError) -> ApplyError {
    ApplyError::Poison(e.to_string())
}

/// Events of the `admin` aggregate.
pub async fn apply(tx: &mut PgConnection, env: &Envelope) -> Result<(), ApplyError> {
    let at = env.occurred_at;
    match env.decode::<AdminEvent>(UPCASTERS).map_err(poison)? {
        AdminEvent::AdminCreated { username, .. } => {
            sqlx::query(
                "INSERT INTO admin_accounts (username, created_at) VALUES ($1, $2)
                 ON CONFLICT (username) DO NOTHING",
            )
            .bind(username)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        AdminEvent::AdminPasswordChanged { .. } => {
            sqlx::query("UPDATE admin_accounts SET password_changed_at = $2 WHERE username = $1")
                .bind(&env.aggregate_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Events of the `admin_session` aggregate.
pub async fn apply_session(
    tx: &mut PgConnection,
    env: &Envelope,
    fx: &mut Effects,
) -> Result<(), ApplyError> {
    let at = env.occurred_at;
    match env
        .decode::<AdminSessionEvent>(SESSION_UPCASTERS)
        .map_err(poison)?
    {
        AdminSessionEvent::AdminLoggedIn {
            token_id,
            username,
            expires_at,
            ip,
        } => {
            sqlx::query(
                "UPDATE admin_accounts SET last_login_at = $2, login_count = login_count + 1
                  WHERE username = $1",
            )
            .bind(&username)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO admin_sessions (token_id, username, issued_at, expires_at, ip)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT (token_id) DO NOTHING",
            )
            .bind(token_id)
            .bind(&username)
            .bind(at)
            .bind(expires_at)
            .bind(ip)
            .execute(&mut *tx)
            .await?;
        }
        AdminSessionEvent::AdminLoggedOut {
            token_id,
            username,
            expires_at,
        } => {
            sqlx::query(
                "UPDATE admin_accounts SET logout_count = logout_count + 1 WHERE username = $1",
            )
            .bind(&username)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE admin_sessions SET revoked_at = $2 WHERE token_id = $1")
                .bind(token_id)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            if expires_at > chrono::Utc::now() {
                fx.put(
                    ADMIN_REVOKED_BUCKET,
                    token_id.to_string(),
                    expires_at.to_rfc3339(),
                );
            }
        }
    }
    Ok(())
}
