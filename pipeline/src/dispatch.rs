//! Publishing analysis jobs: a task's job on `TASKS` with a presigned link to its audio.

use std::time::Duration;

use async_nats::jetstream::{self, message::PublishMessage};
use cqrs_es::{AggregateContext, EventStore};
use events::task::Job;
use uuid::Uuid;
use write::domain::voice_task::VoiceTask;

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
