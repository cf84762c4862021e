//! The voice-analysis pipeline's control-plane loops, run by every api instance (the durable
//! consumers share the work):
//!
//! ```text
//!  EVENTS ev.voice_task.*.TaskSubmitted|TaskRequeued|TaskReanalysisRequested ─dispatcher─► TASKS
//!        (presigned GET for the audio; Nats-Msg-Id <taskId>:<event sequence>; ack after the job is stored)
//!  EVENTS ev.voice_task.*.TaskCompleted|TaskReanalysed (verdict scam, caller known) ─dispatcher─►
//!        phone_number FileCallEvidence: a pending report for moderators, once per task
//!  RESULTS results.<workerId> ─intake─► Start / Complete / Fail on the task
//!        (a result from a worker for a task it does not hold is refused and logged)
//! ```

use std::future::Future;
use std::time::Duration;

use common::nats::{Delivery, Disposition};
use events::task::WorkerResult;
use events::topology::{EVENTS_STREAM, RESULTS_STREAM};
use events::voice_task::{VoiceTaskEvent, UPCASTERS};
use events::Envelope;
use uuid::Uuid;

use crate::app::AppState;
use crate::commands::{execute, CommandContext, CommandError};
use crate::domain::voice_task::{Attempt, TaskStatus, VoiceTask, VoiceTaskCommand, VoiceTaskError};
use crate::error::ApiError;

pub use ::pipeline::dispatch::{DispatchError, Dispatcher, AUDIO_URL_TTL};

/// The dispatcher of the API's own task store, object store and JetStream.
pub fn dispatcher_of(s: &AppState) -> Dispatcher {
    Dispatcher {
        store: s.voice_task_store.clone(),
        storage: s.storage.clone(),
        js: s.js.clone(),
    }
}

/// The dispatcher's single step: one event in, what to tell JetStream out.
async fn dispatch_event(d: &Dispatcher, phones: &Phones, msg: Delivery) -> Disposition {
    let env = match Envelope::from_bytes(&msg.payload) {
        Ok(env) => env,
        Err(e) => {
            tracing::error!(error = %e, "unreadable event on the dispatcher; skipped");
            return Disposition::Term;
        }
    };
    let Ok(id) = Uuid::parse_str(&env.aggregate_id) else {
        return Disposition::Ack;
    };
    let outcome = match env.decode::<VoiceTaskEvent>(UPCASTERS) {
        Ok(VoiceTaskEvent::TaskSubmitted { .. } | VoiceTaskEvent::TaskRequeued { .. }) => {
            // Only a task still waiting gets a job: replaying history (a republish, a reset
            // consumer) must not analyse finished tasks again.
            let waiting = |t: &VoiceTask| t.status() == TaskStatus::Queued;
            d.dispatch_when(id, format!("{id}:{}", env.sequence), waiting)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }
        Ok(VoiceTaskEvent::TaskReanalysisRequested { batch_id, .. }) => {
            // Still asked for (not already answered, e.g. on a replay of the history).
            let asked = |t: &VoiceTask| {
                t.status() == TaskStatus::Completed && t.reanalysis() == Some(batch_id)
            };
            d.dispatch_when(id, format!("{id}:{}", env.sequence), asked)
                .await
                .map(|_| ())
                .map_err(anyhow::Error::from)
        }
        Ok(
            VoiceTaskEvent::TaskCompleted { result, .. }
            | VoiceTaskEvent::TaskReanalysed { result, .. },
        ) => file_call_evidence(phones, id, &result)
            .await
            .map_err(anyhow::Error::from),
        _ => Ok(()),
    };
    match outcome {
        Ok(()) => Disposition::Ack,
        Err(e) => {
            tracing::warn!(error = %e, task = %id, "dispatch failed; retrying");
            Disposition::Nak(Duration::from_secs(2))
        }
    }
}

type Phones = std::sync::Arc<postgres_es::PostgresCqrs<crate::domain::phone_number::PhoneNumber>>;

/// A call judged a scam, from a known number: its evidence goes to the number's moderation
/// queue (a pending report, never a listing by itself), once per task.
pub async fn file_call_evidence(
    phones: &Phones,
    task_id: Uuid,
    result: &events::task::AnalysisResult,
) -> Result<(), ApiError> {
    let Some(caller) = &result.caller_number else {
        return Ok(());
    };
    if result.verdict != "scam" {
        return Ok(());
    }
    let tactics: Vec<&str> = result
        .indicators
        .iter()
        .map(|i| i.kind.as_str())
        .filter(|k| *k != "caller_number_reported")
        .collect();
    // Bounded: a fixed sentence and at most every tactic kind the rules know.
    let description = format!(
        "An analysed call from this number was judged a scam (risk {:.2}; task {task_id}). Tactics: {}.",
        result.risk_score,
        if tactics.is_empty() { "none named".into() } else { tactics.join(", ") }
    );
    let cmd = crate::domain::phone_number::PhoneCommand::FileCallEvidence {
        task_id,
        description,
        at: chrono::Utc::now(),
    };
    let ctx = CommandContext::new(format!("analysis:{task_id}"), None);
    execute(phones, &caller.phone_number, cmd, &ctx).await?;
    metrics::counter!("call_evidence_filed_total").increment(1);
    Ok(())
}

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

/// Records one worker result. `Err` only for what may work later (the message is retried);
/// a result the task refuses is logged, counted and dropped.
pub async fn record_result(s: &AppState, subject: &str, payload: &[u8]) -> Result<(), NotYet> {
    let result: WorkerResult = match serde_json::from_slice(payload) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, subject, "malformed worker result refused");
            return Ok(());
        }
    };
    let (task, worker, cmd) = match result {
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
    };
    // A worker can only publish on its own subject; the payload must agree with it.
    if subject.rsplit('.').next() != Some(worker.to_string().as_str()) {
        tracing::warn!(subject, %worker, "result claims another worker; refused");
        metrics::counter!("worker_results_refused_total").increment(1);
        return Ok(());
    }
    let ctx = CommandContext::new(format!("worker:{worker}"), None);
    match execute(&s.voice_tasks, &task.to_string(), cmd, &ctx).await {
        Ok(_) => Ok(()),
        // Retried, a bounded number of times (see `intake`).
        Err(CommandError::Domain(VoiceTaskError::NotStarted)) => Err(NotYet::NotStarted),
        Err(CommandError::Domain(refusal)) => {
            tracing::warn!(%task, %worker, %refusal, "result for a task this worker does not hold; refused");
            metrics::counter!("worker_results_refused_total").increment(1);
            Ok(())
        }
        Err(e) => Err(NotYet::Transient(e.to_string())),
    }
}

/// How long a result whose run is not recorded as started keeps being retried before it is
/// dropped. A genuine `Started` is stored before its worker analyses anything, so it is recorded
/// first unless the intake was failing (Postgres down): the wait is judged by the result's age,
/// never by its delivery count, which an outage inflates. Past this the janitor has failed the
/// task anyway (it gives up on a run after 35 minutes).
const NOT_STARTED_PATIENCE: Duration = Duration::from_secs(40 * 60);

/// The intake's single step.
async fn intake(s: &AppState, msg: Delivery) -> Disposition {
    decide_intake(record_result(s, &msg.subject, &msg.payload).await, msg.age)
}

/// What to tell JetStream about a result, given what recording it gave and how long ago it was
/// stored.
fn decide_intake(recorded: Result<(), NotYet>, age: Duration) -> Disposition {
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

pub async fn run_dispatcher(s: AppState, shutdown: impl Future<Output = ()>) {
    let d = dispatcher_of(&s);
    let phones = s.phones.clone();
    common::nats::consume(
        s.js.clone(),
        EVENTS_STREAM,
        events::topology::dispatcher_consumer(),
        |m| dispatch_event(&d, &phones, m),
        shutdown,
    )
    .await
}

pub async fn run_intake(s: AppState, shutdown: impl Future<Output = ()>) {
    let js = s.js.clone();
    common::nats::consume(
        js,
        RESULTS_STREAM,
        events::topology::intake_consumer(),
        |m| intake(&s, m),
        shutdown,
    )
    .await
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
        assert_eq!(decide_intake(Ok(()), fresh), Disposition::Ack);
        assert_eq!(
            decide_intake(
                Err(NotYet::Transient("db down".into())),
                NOT_STARTED_PATIENCE * 2
            ),
            Disposition::Nak(Duration::from_secs(2))
        );
        // After a two-minute outage the result was delivered dozens of times: still kept.
        assert_eq!(
            decide_intake(Err(NotYet::NotStarted), Duration::from_secs(120)),
            Disposition::Nak(Duration::from_secs(2))
        );
        assert_eq!(
            decide_intake(Err(NotYet::NotStarted), NOT_STARTED_PATIENCE),
            Disposition::Ack
        );
    }
}
