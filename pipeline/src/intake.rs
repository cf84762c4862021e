//! Results intake: what workers publish on `RESULTS` becomes commands on their tasks.
//!
//! ```text
//!  RESULTS results.<workerId> ─intake─► Start / Complete / Fail on the task
//!        (a result from a worker for a task it does not hold is refused and logged)
//! ```

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use common::nats::{Delivery, Disposition};
use events::task::WorkerResult;
use events::topology::RESULTS_STREAM;
use postgres_es::PostgresCqrs;
use write::commands::{execute, CommandContext, CommandError};
use write::domain::voice_task::{Attempt, VoiceTask, VoiceTaskCommand, VoiceTaskError};

/// Why a worker result is to be tried again later.
#[derive(Debug, thiserror::Error)]
pub enum NotYet {
    /// The run's start is not recorded yet (a redelivered `Started` may be behind this result).
    #[error("the run's start is not recorded yet")]
    NotStarted,
    /// Postgres unreachable, a write conflict that outlasted its retries, and the like.
    #[error("{0}")]
    Transient(String),
}

/// How long a result whose run is not recorded as started keeps being retried before it is
/// dropped. A genuine `Started` is stored before its worker analyses anything, so it is recorded
/// first unless the intake was failing (Postgres down): the wait is judged by the result's age,
/// never by its delivery count, which an outage inflates. Past this the janitor has failed the
/// task anyway (it gives up on a run after 35 minutes).
pub const NOT_STARTED_PATIENCE: Duration = Duration::from_secs(40 * 60);

/// The intake stage: needs only the task aggregates' command side.
pub struct Intake {
    pub tasks: Arc<PostgresCqrs<VoiceTask>>,
}

impl Intake {
    /// Records one worker result. `Err` only for what may work later (the message is retried);
    /// a result the task refuses is logged, counted and dropped.
    pub async fn record(&self, subject: &str, payload: &[u8]) -> Result<(), NotYet> {
        let result: WorkerResult = match serde_json::from_slice(payload) {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, subject, "malformed worker result refused");
                return Ok(());
            }
        };
        let (task, worker, cmd) = command_of(result);
        // A worker can only publish on its own subject; the payload must agree with it.
        if subject.rsplit('.').next() != Some(worker.to_string().as_str()) {
            tracing::warn!(subject, %worker, "result claims another worker; refused");
            metrics::counter!("worker_results_refused_total").increment(1);
            return Ok(());
        }
        let ctx = CommandContext::new(format!("worker:{worker}"), None);
        match execute(&self.tasks, &task.to_string(), cmd, &ctx).await {
            Ok(_) => Ok(()),
            // Retried while the result is young (see `decide`).
            Err(CommandError::Domain(VoiceTaskError::NotStarted)) => Err(NotYet::NotStarted),
            Err(CommandError::Domain(refusal)) => {
                tracing::warn!(%task, %worker, %refusal, "result for a task this worker does not hold; refused");
                metrics::counter!("worker_results_refused_total").increment(1);
                Ok(())
            }
            Err(e) => Err(NotYet::Transient(e.to_string())),
        }
    }

    /// The stage's single step.
    pub async fn handle(&self, msg: Delivery) -> Disposition {
        decide(self.record(&msg.subject, &msg.payload).await, msg.age)
    }

    /// Consumes results until `shutdown` (the durable consumer is shared by every instance).
    pub async fn run(self, js: async_nats::jetstream::Context, shutdown: impl Future<Output = ()>) {
        common::nats::consume(
            js,
            RESULTS_STREAM,
            events::topology::intake_consumer(),
            |m| self.handle(m),
            shutdown,
        )
        .await
    }
}

/// The task, the worker and the command a result stands for.
fn command_of(result: WorkerResult) -> (uuid::Uuid, uuid::Uuid, VoiceTaskCommand) {
    match result {
        WorkerResult::Started {
            task_id,
            worker_id,
            delivery,
        } => (
            task_id,
            worker_id,
            VoiceTaskCommand::Start(Attempt {
                worker_id,
                delivery,
            }),
        ),
        WorkerResult::Completed {
            task_id,
            worker_id,
            delivery,
            result,
        } => (
            task_id,
            worker_id,
            VoiceTaskCommand::Complete {
                by: Attempt {
                    worker_id,
                    delivery,
                },
                result,
            },
        ),
        WorkerResult::Failed {
            task_id,
            worker_id,
            delivery,
            reason,
            retryable,
        } => (
            task_id,
            worker_id,
            VoiceTaskCommand::Fail {
                by: Some(Attempt {
                    worker_id,
                    delivery,
                }),
                reason,
                retryable,
            },
        ),
    }
}

/// What to tell JetStream about a result, given what recording it gave and how long ago it was
/// stored.
fn decide(recorded: Result<(), NotYet>, age: Duration) -> Disposition {
    match recorded {
        Ok(()) => Disposition::Ack,
        Err(NotYet::NotStarted) if age >= NOT_STARTED_PATIENCE => {
            tracing::warn!("result for a run never started; refused");
            metrics::counter!("worker_results_refused_total").increment(1);
            Disposition::Ack
        }
        Err(e) => {
            tracing::warn!(error = %e, "result not recorded; retrying");
            Disposition::Nak(Duration::from_secs(2))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The intake's decision needs no NATS: a recorded result is acked, a transient failure is
    /// retried, a result whose start never arrives is retried until it is older than the
    /// janitor's patience and then dropped — however often an outage made it redelivered.
    #[test]
    fn the_intake_retries_what_may_work_later_and_drops_the_rest() {
        let fresh = Duration::from_secs(1);
        assert_eq!(decide(Ok(()), fresh), Disposition::Ack);
        assert_eq!(
            decide(
                Err(NotYet::Transient("db down".into())),
                NOT_STARTED_PATIENCE * 2
            ),
            Disposition::Nak(Duration::from_secs(2))
        );
        // After a two-minute outage the result was delivered dozens of times: still kept.
        assert_eq!(
            decide(Err(NotYet::NotStarted), Duration::from_secs(120)),
            Disposition::Nak(Duration::from_secs(2))
        );
        assert_eq!(
            decide(Err(NotYet::NotStarted), NOT_STARTED_PATIENCE),
            Disposition::Ack
        );
    }

    /// A result names the command its task gets, with the attempt that produced it.
    #[test]
    fn a_result_becomes_the_command_of_its_kind() {
        let (task, worker) = (uuid::Uuid::new_v4(), uuid::Uuid::new_v4());
        let (t, w, cmd) = command_of(WorkerResult::Failed {
            task_id: task,
            worker_id: worker,
            delivery: Some(3),
            reason: "undecodable".into(),
            retryable: false,
        });
        assert_eq!((t, w), (task, worker));
        assert!(matches!(
            cmd,
            VoiceTaskCommand::Fail { by: Some(Attempt { worker_id, delivery: Some(3) }), retryable: false, .. }
                if worker_id == worker
        ));
    }
}
