//! Executing commands: metadata for every event, and retries on optimistic-lock conflicts.

use std::collections::HashMap;

use cqrs_es::{Aggregate, AggregateError, CqrsFramework, EventStore};
use events::envelope::{META_ACTOR, META_CORRELATION_ID};

use crate::error::ApiError;

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

    fn metadata(&self) -> HashMap<String, String> {
        let mut m = HashMap::from([(META_ACTOR.to_string(), self.actor.clone())]);
        if let Some(c) = &self.correlation_id {
            m.insert(META_CORRELATION_ID.to_string(), c.clone());
        }
        m
    }
}

/// How often a command is re-run when another command on the same aggregate won the race.
const CONFLICT_RETRIES: usize = 5;

/// Runs `command` on aggregate `id`. A concurrent write to the same aggregate (AggregateConflict)
/// reloads and re-runs it, so invariants are checked against the winner's events; after
/// [`CONFLICT_RETRIES`] it is a 409.
pub async fn execute<A, ES>(
    cqrs: &CqrsFramework<A, ES>,
    id: &str,
    command: A::Command,
    ctx: &CommandContext,
) -> Result<(), ApiError>
where
    A: Aggregate,
    A::Command: Clone,
    A::Error: Into<ApiError>,
    ES: EventStore<A>,
{
    let mut attempt = 0;
    loop {
        match cqrs
            .execute_with_metadata(id, command.clone(), ctx.metadata())
            .await
        {
            Ok(()) => return Ok(()),
            Err(AggregateError::AggregateConflict) if attempt < CONFLICT_RETRIES => {
                attempt += 1;
                metrics::counter!("command_conflict_retries_total", "aggregate" => A::TYPE)
                    .increment(1);
                tokio::task::yield_now().await;
            }
            Err(e) => return Err(ApiError::from_aggregate(e)),
        }
    }
}
