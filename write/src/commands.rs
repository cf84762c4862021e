//! Executing commands: metadata for every event, per-aggregate serialisation within this
//! instance, retries on optimistic-lock conflicts, and reading back what a command produced.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::OnceLock;

use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};
use events::envelope::{META_ACTOR, META_CORRELATION_ID};
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

/// Metadata key of the id of the command that produced an event.
pub const META_COMMAND_ID: &str = "commandId";

/// Who asked, and the request it came from; stored with every event the command produces.
#[derive(Debug, Clone)]
pub struct CommandContext {
    pub actor: String,
    pub correlation_id: Option<String>,
}

impl CommandContext {
    pub fn new(actor: impl Into<String>, correlation_id: Option<String>) -> Self {
        CommandContext {
            actor: actor.into(),
            correlation_id,
        }
    }

    fn metadata(&self, command_id: Uuid) -> HashMap<String, String> {
        let mut m = HashMap::from([
            (META_ACTOR.to_string(), self.actor.clone()),
            (META_COMMAND_ID.to_string(), command_id.to_string()),
        ]);
        if let Some(c) = &self.correlation_id {
            m.insert(META_CORRELATION_ID.to_string(), c.clone());
        }
        m
    }
}

/// How often a command is re-run when another instance wrote the same aggregate first.
const CONFLICT_RETRIES: usize = 10;

/// Striped locks: commands on one aggregate run one at a time in this process, so concurrent
/// requests queue instead of burning conflict retries. Other instances still race; their
/// conflicts are retried.
fn stripe(aggregate_type: &str, id: &str) -> &'static Mutex<()> {
    const STRIPES: usize = 1024;
    static LOCKS: OnceLock<Vec<Mutex<()>>> = OnceLock::new();
    let locks = LOCKS.get_or_init(|| (0..STRIPES).map(|_| Mutex::new(())).collect());
    let mut h = DefaultHasher::new();
    (aggregate_type, id).hash(&mut h);
    &locks[(h.finish() as usize) % STRIPES]
}

/// Why a command did not produce its events. The aggregate's own refusal stays typed
/// (`Domain`), so callers decide on domain outcomes, not on HTTP codes; the HTTP layer maps it
/// with `From<CommandError<E>> for ApiError`.
#[derive(Debug, thiserror::Error)]
pub enum CommandError<E: std::error::Error> {
    /// The aggregate refused the command.
    #[error(transparent)]
    Domain(E),
    /// Other writers kept changing the aggregate (after every retry).
    #[error("the resource was changed concurrently; retry")]
    Conflict,
    /// The event store could not be reached.
    #[error("the event store is unavailable")]
    Unavailable,
    /// Anything else (a stored event that does not read back, an unexpected database error).
    #[error("{0}")]
    Internal(String),
}

impl<E: std::error::Error> From<AggregateError<E>> for CommandError<E> {
    fn from(err: AggregateError<E>) -> Self {
        match err {
            AggregateError::UserError(e) => CommandError::Domain(e),
            AggregateError::AggregateConflict => CommandError::Conflict,
            AggregateError::DatabaseConnectionError(_) => CommandError::Unavailable,
            AggregateError::DeserializationError(e) => CommandError::Internal(e.to_string()),
            AggregateError::UnexpectedError(e) => match e.downcast::<sqlx::Error>() {
                Ok(sql) if common::db::is_unavailable(&sql) => CommandError::Unavailable,
                Ok(sql) => CommandError::Internal(sql.to_string()),
                Err(e) => CommandError::Internal(e.to_string()),
            },
        }
    }
}

/// Runs `command` on aggregate `id`; returns the command id recorded with its events.
pub async fn execute<A, ES>(
    cqrs: &CqrsFramework<A, ES>,
    id: &str,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<Uuid, CommandError<A::Error>>
where
    A: Aggregate,
    A::Command: Clone,
    ES: EventStore<A>,
{
    let command_id = Uuid::new_v4();
    let _serial = stripe(A::TYPE, id).lock().await;
    let mut attempt = 0;
    loop {
        match cqrs
            .execute_with_metadata(id, command.clone(), ctx.metadata(command_id))
            .await
        {
            Ok(()) => return Ok(command_id),
            Err(AggregateError::AggregateConflict) if attempt < CONFLICT_RETRIES => {
                attempt += 1;
                metrics::counter!("command_conflict_retries_total", "aggregate" => A::TYPE)
                    .increment(1);
                let jitter = rand::random::<u64>() % (5 * attempt as u64 + 1);
                tokio::time::sleep(std::time::Duration::from_millis(jitter)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs `command` and returns the events it produced, in order.
pub async fn execute_returning<A, ES>(
    cqrs: &CqrsFramework<A, ES>,
    pool: &PgPool,
    id: &str,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<Vec<A::Event>, CommandError<A::Error>>
where
    A: Aggregate,
    A::Command: Clone,
    ES: EventStore<A>,
{
    let command_id = execute(cqrs, id, command, ctx).await?;
    let payloads: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT payload::jsonb FROM events
          WHERE aggregate_type = $1 AND aggregate_id = $2 AND metadata->>'commandId' = $3
          ORDER BY sequence",
    )
    .bind(A::TYPE)
    .bind(id)
    .bind(command_id.to_string())
    .fetch_all(pool)
    .await
    .map_err(|e| {
        if common::db::is_unavailable(&e) {
            CommandError::Unavailable
        } else {
            CommandError::Internal(e.to_string())
        }
    })?;
    payloads
        .into_iter()
        .map(|p| {
            serde_json::from_value(p)
                .map_err(|e| CommandError::Internal(format!("reading back events: {e}")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::voice_task::VoiceTaskError;

    /// Callers decide on the aggregate's own refusal, never on a transport's code.
    #[test]
    fn an_aggregates_refusal_stays_typed() {
        let refused: CommandError<VoiceTaskError> =
            AggregateError::UserError(VoiceTaskError::NotHolder).into();
        assert!(matches!(
            refused,
            CommandError::Domain(VoiceTaskError::NotHolder)
        ));
        let raced: CommandError<VoiceTaskError> = AggregateError::AggregateConflict.into();
        assert!(matches!(raced, CommandError::Conflict));
        let down: CommandError<VoiceTaskError> =
            AggregateError::DatabaseConnectionError("refused".into()).into();
        assert!(matches!(down, CommandError::Unavailable));
    }
}
