//! Events of the `voice_task` aggregate (id = the upload id, which is also the task id).

use chrono::{DateTime, Utc};
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::task::AnalysisResult;
use crate::version::Upcaster;

pub const AGGREGATE_TYPE: &str = "voice_task";

pub const UPCASTERS: &[Upcaster] = &[];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all_fields = "camelCase")]
pub enum VoiceTaskEvent {
    /// A presigned PUT was issued for exactly this type and length.
    UploadAuthorized {
        object_key: String,
        content_type: String,
        content_length: u64,
        expires_at: DateTime<Utc>,
    },
    /// The upload was checked and the task queued. `email` stays in Postgres (a secret field).
    TaskSubmitted {
        #[serde(default)]
        email: Option<String>,
        caller_number: Option<String>,
        language: Option<String>,
        email_notification: bool,
    },
    /// A worker took the job (again, after a redelivery: `attempt` counts). From now on only
    /// this worker, for this JetStream delivery (`delivery`, when the worker names it), may
    /// complete or fail the task.
    TaskStarted {
        worker_id: Uuid,
        attempt: u32,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<u64>,
    },
    TaskCompleted {
        worker_id: Uuid,
        result: Box<AnalysisResult>,
    },
    TaskFailed {
        reason: String,
        retryable: bool,
        attempts: u32,
    },
    /// An admin asked for another run after a fix.
    TaskRequeued { by: String },
    /// An analyst or admin asked for a completed task to be analysed again with today's
    /// analyzer (one of a batch: `POST /admin/tasks/reanalyse`). The verdict stands meanwhile.
    TaskReanalysisRequested { batch_id: Uuid, by: String },
    /// A worker took the job of a re-analysis (the task stays `completed`); only this worker,
    /// for this delivery, may finish it.
    TaskReanalysisStarted {
        batch_id: Uuid,
        worker_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<u64>,
    },
    /// The new result of a re-analysis. The earlier `TaskCompleted` (and any earlier
    /// re-analysis) is kept: the task shows every result.
    TaskReanalysed {
        batch_id: Uuid,
        worker_id: Uuid,
        result: Box<AnalysisResult>,
    },
    /// A re-analysis that could not finish; the verdict before it stands.
    TaskReanalysisFailed { batch_id: Uuid, reason: String },
    /// The uploaded recording was deleted from storage (retention: RECORDING_RETENTION_DAYS
    /// after the task ended). The verdict is kept; the task can no longer be re-analysed or
    /// retried.
    RecordingDeleted { object_key: String, reason: String },
}

impl DomainEvent for VoiceTaskEvent {
    fn event_type(&self) -> String {
        match self {
            VoiceTaskEvent::UploadAuthorized { .. } => "UploadAuthorized",
            VoiceTaskEvent::TaskSubmitted { .. } => "TaskSubmitted",
            VoiceTaskEvent::TaskStarted { .. } => "TaskStarted",
            VoiceTaskEvent::TaskCompleted { .. } => "TaskCompleted",
            VoiceTaskEvent::TaskFailed { .. } => "TaskFailed",
            VoiceTaskEvent::TaskRequeued { .. } => "TaskRequeued",
            VoiceTaskEvent::TaskReanalysisRequested { .. } => "TaskReanalysisRequested",
            VoiceTaskEvent::TaskReanalysisStarted { .. } => "TaskReanalysisStarted",
            VoiceTaskEvent::TaskReanalysed { .. } => "TaskReanalysed",
            VoiceTaskEvent::TaskReanalysisFailed { .. } => "TaskReanalysisFailed",
            VoiceTaskEvent::RecordingDeleted { .. } => "RecordingDeleted",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
