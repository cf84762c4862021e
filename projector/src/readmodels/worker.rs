//! `workers`: registered workers and their revocation.

use events::worker::{WorkerEvent, UPCASTERS};
use events::Envelope;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::effects::ApplyError;

pub async fn apply(tx: &mut PgConnection, env: &Envelope) -> Result<(), ApplyError> {
    let event: WorkerEvent = env
        .decode(UPCASTERS)
        .map_err(|e| ApplyError::Poison(e.to_string()))?;
    let id = Uuid::parse_str(&env.aggregate_id).map_err(|e| ApplyError::Poison(e.to_string()))?;
    match event {
        WorkerEvent::WorkerRegistered { name, .. } => {
            sqlx::query("INSERT INTO workers (worker_id, name, registered_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(id)
                .bind(name)
                .bind(env.occurred_at)
                .execute(&mut *tx)
                .await?;
        }
        WorkerEvent::WorkerRevoked { by } => {
            sqlx::query("UPDATE workers SET revoked_at = $2, revoked_by = $3 WHERE worker_id = $1")
                .bind(id)
                .bind(env.occurred_at)
                .bind(by)
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}
