//! `platforms`: registered host platforms and their revocation.

use events::platform::{PlatformEvent, UPCASTERS};
use events::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::effects::ApplyError;

pub async fn apply(tx: &mut PgConnection, env: &Envelope) -> Result<(), ApplyError> {
    let event: PlatformEvent = env
        .decode(UPCASTERS)
        .map_err(|e| ApplyError::Poison(e.to_string()))?;
    let id = Uuid::parse_str(&env.aggregate_id).map_err(|e| ApplyError::Poison(e.to_string()))?;
    match event {
        PlatformEvent::PlatformRegistered { name, by, .. } => {
            sqlx::query(
                "INSERT INTO platforms (platform_id, name, registered_at, registered_by)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(name)
            .bind(env.occurred_at)
            .bind(by)
            .execute(&mut *tx)
            .await?;
        }
        PlatformEvent::PlatformRevoked { by } => {
            sqlx::query(
                "UPDATE platforms SET revoked_at = $2, revoked_by = $3, webhook_url = NULL
                  WHERE platform_id = $1",
            )
            .bind(id)
            .bind(env.occurred_at)
            .bind(by)
            .execute(&mut *tx)
            .await?;
        }
        PlatformEvent::PlatformWebhookSet { url, from_cursor } => {
            sqlx::query(
                "UPDATE platforms SET webhook_url = $2, webhook_from = $3 WHERE platform_id = $1",
            )
            .bind(id)
            .bind(url)
            .bind(from_cursor as i64)
            .execute(&mut *tx)
            .await?;
        }
        PlatformEvent::PlatformWebhookRemoved {} => {
            sqlx::query("UPDATE platforms SET webhook_url = NULL WHERE platform_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        PlatformEvent::WebhookAttempted {
            cursor,
            user_id,
            attempt,
            outcome,
            status,
            error,
        } => {
            sqlx::query(
                "INSERT INTO webhook_attempts (platform_id, cursor, attempt, user_id, outcome, status, error, at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(id)
            .bind(cursor as i64)
            .bind(attempt as i32)
            .bind(user_id)
            .bind(outcome)
            .bind(status.map(i32::from))
            .bind(error)
            .bind(env.occurred_at)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}
