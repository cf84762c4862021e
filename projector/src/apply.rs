//! Applying one envelope to the read models.

use events::Envelope;
use sqlx::PgConnection;

pub use crate::effects::{ApplyError, Effects, KvOp};
use crate::readmodels;

/// Checkpoint name of the read models (they move together, in one transaction).
pub const PROJECTION: &str = "read_models";

/// Advisory lock serialising batches and rebuilds ("blproj").
pub const PROJECTOR_LOCK: i64 = 0x626c_7072_6f6a;

/// Applies one event from its raw message bytes. Unknown aggregate types are skipped (a newer
/// producer may already write them); undecodable ones are poison.
pub async fn apply_event(
    tx: &mut PgConnection,
    raw: &[u8],
    fx: &mut Effects,
) -> Result<(), ApplyError> {
    let env = Envelope::from_bytes(raw).map_err(|e| ApplyError::Poison(e.to_string()))?;
    let applied = match env.aggregate_type.as_str() {
        events::admin::AGGREGATE_TYPE => readmodels::admin::apply(tx, &env).await,
        events::admin::SESSION_AGGREGATE_TYPE => {
            readmodels::admin::apply_session(tx, &env, fx).await
        }
        events::platform_user::AGGREGATE_TYPE => {
            readmodels::platform_user::apply(tx, &env, fx).await
        }
        events::phone_number::AGGREGATE_TYPE => readmodels::phone_number::apply(tx, &env, fx).await,
        events::worker::AGGREGATE_TYPE => readmodels::worker::apply(tx, &env).await,
        events::platform::AGGREGATE_TYPE => readmodels::platform::apply(tx, &env).await,
        events::voice_task::AGGREGATE_TYPE => readmodels::voice_task::apply(tx, &env).await,
        other => {
            tracing::debug!(aggregate_type = other, "no read model for this aggregate");
            return Ok(());
        }
    };
    let lag = (chrono::Utc::now() - env.occurred_at)
        .num_milliseconds()
        .max(0) as f64
        / 1000.0;
    metrics::histogram!("projection_lag_seconds").record(lag);
    applied
}

/// Every read-model table, emptied by a rebuild.
pub const READ_MODEL_TABLES: &[&str] = readmodels::TABLES;
