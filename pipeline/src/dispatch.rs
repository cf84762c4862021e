//! Publishing analysis jobs: a task's job on `TASKS` with a presigned link to its audio, and
//! the dispatcher stage that publishes them as tasks are submitted, requeued or re-analysed.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use common::nats::{Delivery, Disposition};
use cqrs_es::{AggregateContext, EventStore};
use events::task::{AnalysisResult, Job};
use events::topology::EVENTS_STREAM;
use events::voice_task::{VoiceTaskEvent, UPCASTERS};
use events::Envelope;
use postgres_es::PostgresCqrs;
use uuid::Uuid;
use write::commands::{execute, CommandContext, CommandError};
use write::domain::phone_number::{PhoneCommand, PhoneError, PhoneNumber};
use write::domain::voice_task::{TaskStatus, VoiceTask};

/// How long a worker's audio link stays valid (a job may wait in the queue).
pub const AUDIO_URL_TTL: Duration = Duration::from_secs(6 * 24 * 3600);

/// What publishing a job needs: the task's upload, a presigned link, JetStream.
#[derive(Clone)]
pub struct Dispatcher {
    pub store: std::sync::Arc<
        cqrs_es::persist::PersistedEventStore<postgres_es::PostgresEventRepository, VoiceTask>,
    >,
    pub storage: crate::storage::Storage,
    pub js: jetstream::Context,
}

/// Why a job was not published (each may work on a later try).
#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    /// The task could not be read.
    #[error("reading the task: {0}")]
    Store(write::commands::CommandError<write::domain::voice_task::VoiceTaskError>),
    #[error(transparent)]
    Storage(#[from] crate::storage::StorageError),
    /// JetStream did not take or acknowledge the job.
    #[error("publishing the job: {0}")]
    Nats(String),
}

impl Dispatcher {
    /// Publishes the job of task `id` when `accept` takes the task as it is now (idempotent per
    /// `msg_id` within the dedup window). `Ok(false)`: not accepted, nothing sent.
    pub async fn dispatch_when(
        &self,
        id: Uuid,
        msg_id: String,
        accept: impl Fn(&VoiceTask) -> bool,
    ) -> Result<bool, DispatchError> {
        let mut ctx = self
            .store
            .load_aggregate(&id.to_string())
            .await
            .map_err(|e| DispatchError::Store(e.into()))?;
        let task = ctx.aggregate();
        if !accept(task) {
            return Ok(false);
        }
        let (key, content_type, _) = task.upload();
        let job = Job {
            task_id: id,
            audio_url: self.storage.presign_get(key, AUDIO_URL_TTL).await?,
            content_type: Some(content_type.to_owned()),
            caller_number: task.caller_number().map(str::to_owned),
            language: task.language().map(str::to_owned),
        };
        let payload = serde_json::to_vec(&job).map_err(|e| DispatchError::Nats(e.to_string()))?;
        let publish = PublishMessage::build()
            .payload(payload.into())
            .message_id(msg_id);
        let ack = self
            .js
            .send_publish(events::task::job_subject(id), publish)
            .await
            .map_err(|e| DispatchError::Nats(e.to_string()))?;
        ack.await.map_err(|e| DispatchError::Nats(e.to_string()))?;
        metrics::counter!("voice_jobs_dispatched_total").increment(1);
        Ok(true)
    }
}

/// The dispatcher stage: turns task events into jobs, and a scam verdict on a known number
/// into evidence for that number's moderators.
///
/// ```text
///  EVENTS ev.voice_task.*.TaskSubmitted|TaskRequeued|TaskReanalysisRequested ─► TASKS
///        (presigned GET for the audio; Nats-Msg-Id <taskId>:<event sequence>; ack after the job is stored)
///  EVENTS ev.voice_task.*.TaskCompleted|TaskReanalysed (verdict scam, caller known) ─►
///        phone_number FileCallEvidence: a pending report for moderators, once per task
/// ```
pub struct DispatchStage {
    pub dispatcher: Dispatcher,
    pub phones: Phones,
}

/// The phone-number aggregates' command side.
pub type Phones = Arc<PostgresCqrs<PhoneNumber>>;

impl DispatchStage {
    /// The stage's single step: one event in, what to tell JetStream out.
    pub async fn handle(&self, msg: Delivery) -> Disposition {
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
        let msg_id = format!("{id}:{}", env.sequence);
        let outcome = match env.decode::<VoiceTaskEvent>(UPCASTERS) {
            Ok(VoiceTaskEvent::TaskSubmitted { .. } | VoiceTaskEvent::TaskRequeued { .. }) => {
                // Only a task still waiting gets a job: replaying history (a republish, a reset
                // consumer) must not analyse finished tasks again.
                let waiting = |t: &VoiceTask| t.status() == TaskStatus::Queued;
                self.dispatcher
                    .dispatch_when(id, msg_id, waiting)
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
            }
            Ok(VoiceTaskEvent::TaskReanalysisRequested { batch_id, .. }) => {
                // Still asked for (not already answered, e.g. on a replay of the history).
                let asked = |t: &VoiceTask| {
                    t.status() == TaskStatus::Completed && t.reanalysis() == Some(batch_id)
                };
                self.dispatcher
                    .dispatch_when(id, msg_id, asked)
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from)
            }
            Ok(
                VoiceTaskEvent::TaskCompleted { result, .. }
                | VoiceTaskEvent::TaskReanalysed { result, .. },
            ) => file_call_evidence(&self.phones, id, &result)
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

    /// Consumes task events until `shutdown` (the durable consumer is shared by every instance).
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        common::nats::consume(
            self.dispatcher.js.clone(),
            EVENTS_STREAM,
            events::topology::dispatcher_consumer(),
            |m| self.handle(m),
            shutdown,
        )
        .await
    }
}

/// A call judged a scam, from a known number: its evidence goes to the number's moderation
/// queue (a pending report, never a listing by itself), once per task.
pub async fn file_call_evidence(
    phones: &Phones,
    task_id: Uuid,
    result: &AnalysisResult,
) -> Result<(), CommandError<PhoneError>> {
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
    let cmd = PhoneCommand::FileCallEvidence {
        task_id,
        description,
        at: chrono::Utc::now(),
    };
    let ctx = CommandContext::new(format!("analysis:{task_id}"), None);
    execute(phones, &caller.phone_number, cmd, &ctx).await?;
    metrics::counter!("call_evidence_filed_total").increment(1);
    Ok(())
}
