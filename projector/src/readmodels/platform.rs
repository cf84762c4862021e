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
                "UPDATE platforms SET revoked_at = $2, revoked_by = $3 WHERE platform_id = $1",
            )
            .bind(id)
            .bind(env.occurred_at)
            .bind(by)
            .execute(&mut *tx)
            .await?;
        }
    }
    Ok(())
}
