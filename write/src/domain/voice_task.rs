//! The `voice_task` aggregate (id = upload id = task id): a recording from upload to verdict.
//!
//! ```text
//!  authorized ─Submit─► queued ─Start─► processing ─Complete─► completed
//!                         ▲               │  ▲ Start (redelivered)
//!                         │               └──┘
//!                         │               ─Fail─► failed ─Requeue─► queued
//!
//!  completed ─RequestReanalysis─► completed + re-analysis pending ─Complete─► TaskReanalysed
//!                                                                 ─Fail─────► TaskReanalysisFailed
//! ```
//! A task moves only along these arrows; exactly one `TaskCompleted` (a late duplicate result
//! is refused); submitting twice returns the same task (idempotent, no new event). A
//! re-analysis keeps the verdict until its result arrives, and that result is a new event
//! beside the old one; one re-analysis at a time.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use events::task::AnalysisResult;
use events::voice_task::VoiceTaskEvent;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TaskStatus {
    #[default]
    None,
    Authorized,
    Queued,
    Processing,
    Completed,
    Failed,
}

#[derive(Debug, Clone)]
pub enum VoiceTaskCommand {
    AuthorizeUpload {
        object_key: String,
        content_type: String,
        content_length: u64,
        expires_at: DateTime<Utc>,
    },
    Submit {
        email: Option<String>,
        caller_number: Option<String>,
        language: Option<String>,
        email_notification: bool,
    },
    Start(Attempt),
    Complete {
        by: Attempt,
        result: Box<AnalysisResult>,
    },
    /// `by`: the worker's own failure; `None`: the system's (dead letter, time-out).
    Fail {
        by: Option<Attempt>,
        reason: String,
        retryable: bool,
    },
    Requeue {
        by: String,
    },
    RequestReanalysis {
        batch_id: Uuid,
        by: String,
    },
    /// Retention: the recording is gone from storage (the caller deleted it first).
    DeleteRecording {
        reason: String,
    },
}

/// A worker's run of a job: who, and which JetStream delivery (when the worker says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub worker_id: Uuid,
    pub delivery: Option<u64>,
}

impl Attempt {
    /// Whether a result from `self` belongs to the run that started last (`holder`). A result
    /// that does not name its delivery (an older worker) is matched by worker alone.
    fn finishes(&self, holder: &Attempt) -> bool {
        self.worker_id == holder.worker_id
            && (self.delivery.is_none()
                || holder.delivery.is_none()
                || self.delivery == holder.delivery)
    }
}

#[derive(Debug, PartialEq, thiserror::Error)]
pub enum VoiceTaskError {
    /// 422 `upload_missing` on submission (404 for an admin retry)
    #[error("no such upload")]
    UnknownUpload,
    /// 409
    #[error("this upload id is already in use")]
    UploadExists,
    /// 409: the state machine forbids it.
    #[error("a {0} task cannot {1}")]
    InvalidTransition(&'static str, &'static str),
    /// 409: a result from a worker (or delivery) that does not hold the task's current run.
    #[error("this worker does not hold the task's current run")]
    NotHolder,
    /// 409: a result for a run whose start is not recorded yet (the intake retries it).
    #[error("the task's run has not been recorded as started")]
    NotStarted,
    /// 409 `recording_deleted`: retention deleted the recording; the verdict stands.
    #[error("the recording was deleted (retention); the task cannot be analysed again")]
    RecordingDeleted,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct VoiceTask {
    status: TaskStatus,
    object_key: String,
    content_type: String,
    content_length: u64,
    /// Until when the upload link is valid (the relay enforces it; S3 enforces its own).
    #[serde(default)]
    upload_expires_at: Option<DateTime<Utc>>,
    attempts: u32,
    caller_number: Option<String>,
    language: Option<String>,
    /// The batch of a re-analysis in progress.
    #[serde(default)]
    reanalysis: Option<Uuid>,
    /// The worker run that started last (of the analysis or the re-analysis in progress).
    #[serde(default)]
    holder: Option<Attempt>,
    /// Retention deleted the recording.
    #[serde(default)]
    recording_deleted: bool,
}

impl VoiceTask {
    /// The batch of the re-analysis in progress, if any.
    pub fn reanalysis(&self) -> Option<Uuid> {
        self.reanalysis
    }

    pub fn status(&self) -> TaskStatus {
        self.status
    }

    pub fn upload(&self) -> (&str, &str, u64) {
        (&self.object_key, &self.content_type, self.content_length)
    }

    pub fn upload_expires_at(&self) -> Option<DateTime<Utc>> {
        self.upload_expires_at
    }

    pub fn caller_number(&self) -> Option<&str> {
        self.caller_number.as_deref()
    }

    pub fn language(&self) -> Option<&str> {
        self.language.as_deref()
    }

    /// Whether the run `by` may finish the task: only the worker (and delivery) that started
    /// last. No run recorded yet is `NotStarted` (its start may still be on the way).
    fn check_holder(&self, by: &Attempt) -> Result<(), VoiceTaskError> {
        match &self.holder {
            None => Err(VoiceTaskError::NotStarted),
            Some(holder) if by.finishes(holder) => Ok(()),
            Some(_) => Err(VoiceTaskError::NotHolder),
        }
    }

    fn name(&self) -> &'static str {
        match self.status {
            TaskStatus::None => "unknown",
            TaskStatus::Authorized => "unsubmitted",
            TaskStatus::Queued => "queued",
            TaskStatus::Processing => "processing",
            TaskStatus::Completed => "completed",
            TaskStatus::Failed => "failed",
        }
    }
}

impl Aggregate for VoiceTask {
    const TYPE: &'static str = events::voice_task::AGGREGATE_TYPE;
    type Command = VoiceTaskCommand;
    type Event = VoiceTaskEvent;
    type Error = VoiceTaskError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        use TaskStatus::*;
        let refuse = |what| Err(VoiceTaskError::InvalidTransition(self.name(), what));
        let event = match command {
            VoiceTaskCommand::AuthorizeUpload {
                object_key,
                content_type,
                content_length,
                expires_at,
            } => {
                if self.status != None {
                    return Err(VoiceTaskError::UploadExists);
                }
                VoiceTaskEvent::UploadAuthorized {
                    object_key,
                    content_type,
                    content_length,
                    expires_at,
                }
            }
            VoiceTaskCommand::Submit {
                email,
                caller_number,
                language,
                email_notification,
            } => match self.status {
                None => return Err(VoiceTaskError::UnknownUpload),
                Authorized => VoiceTaskEvent::TaskSubmitted {
                    email,
                    caller_number,
                    language,
                    email_notification,
                },
                // Idempotent: the same upload submitted again is the same task.
                _ => return Ok(()),
            },
            VoiceTaskCommand::Start(Attempt {
                worker_id,
                delivery,
            }) => match (self.status, self.reanalysis) {
                (Queued | Processing, _) => VoiceTaskEvent::TaskStarted {
                    worker_id,
                    attempt: self.attempts + 1,
                    delivery,
                },
                // A re-analysis runs without changing the task's status.
                (Completed, Some(batch_id)) => VoiceTaskEvent::TaskReanalysisStarted {
                    batch_id,
                    worker_id,
                    delivery,
                },
                _ => return refuse("start"),
            },
            VoiceTaskCommand::Complete { by, result } => match (self.status, self.reanalysis) {
                (Queued | Processing, _) => {
                    self.check_holder(&by)?;
                    VoiceTaskEvent::TaskCompleted {
                        worker_id: by.worker_id,
                        result,
                    }
                }
                (Completed, Some(batch_id)) => {
                    self.check_holder(&by)?;
                    VoiceTaskEvent::TaskReanalysed {
                        batch_id,
                        worker_id: by.worker_id,
                        result,
                    }
                }
                _ => return refuse("complete"),
            },
            VoiceTaskCommand::Fail {
                by,
                reason,
                retryable,
            } => match (self.status, self.reanalysis) {
                (Queued | Processing, _) => {
                    by.map_or(Ok(()), |by| self.check_holder(&by))?;
                    VoiceTaskEvent::TaskFailed {
                        reason,
                        retryable,
                        attempts: self.attempts,
                    }
                }
                (Completed, Some(batch_id)) => {
                    by.map_or(Ok(()), |by| self.check_holder(&by))?;
                    VoiceTaskEvent::TaskReanalysisFailed { batch_id, reason }
                }
                _ => return refuse("fail"),
            },
            VoiceTaskCommand::RequestReanalysis { .. } | VoiceTaskCommand::Requeue { .. }
                if self.recording_deleted =>
            {
                return Err(VoiceTaskError::RecordingDeleted)
            }
            VoiceTaskCommand::DeleteRecording { reason } => match (self.status, self.reanalysis) {
                _ if self.recording_deleted => return Ok(()),
                (Completed, Option::None) | (Failed, _) => VoiceTaskEvent::RecordingDeleted {
                    object_key: self.object_key.clone(),
                    reason,
                },
                (None, _) => return Err(VoiceTaskError::UnknownUpload),
                _ => return refuse("lose its recording"),
            },
            VoiceTaskCommand::RequestReanalysis { batch_id, by } => {
                match (self.status, self.reanalysis) {
                    (None, _) => return Err(VoiceTaskError::UnknownUpload),
                    (Completed, Option::None) => {
                        VoiceTaskEvent::TaskReanalysisRequested { batch_id, by }
                    }
                    // One at a time: asking again while one runs changes nothing.
                    (Completed, Some(_)) => return Ok(()),
                    _ => return refuse("be re-analysed"),
                }
            }
            VoiceTaskCommand::Requeue { by } => match self.status {
                Failed => VoiceTaskEvent::TaskRequeued { by },
                None => return Err(VoiceTaskError::UnknownUpload),
                _ => return refuse("be retried"),
            },
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            VoiceTaskEvent::UploadAuthorized {
                object_key,
                content_type,
                content_length,
                expires_at,
            } => {
                self.upload_expires_at = Some(expires_at);
                self.status = TaskStatus::Authorized;
                self.object_key = object_key;
                self.content_type = content_type;
                self.content_length = content_length;
            }
            VoiceTaskEvent::TaskSubmitted {
                caller_number,
                language,
                ..
            } => {
                self.status = TaskStatus::Queued;
                self.caller_number = caller_number;
                self.language = language;
            }
            VoiceTaskEvent::TaskRequeued { .. } => {
                self.status = TaskStatus::Queued;
                self.attempts = 0;
                self.holder = Option::None;
            }
            VoiceTaskEvent::TaskStarted {
                attempt,
                worker_id,
                delivery,
            } => {
                self.status = TaskStatus::Processing;
                self.attempts = attempt;
                self.holder = Some(Attempt {
                    worker_id,
                    delivery,
                });
            }
            VoiceTaskEvent::TaskReanalysisStarted {
                worker_id,
                delivery,
                ..
            } => {
                self.holder = Some(Attempt {
                    worker_id,
                    delivery,
                })
            }
            VoiceTaskEvent::TaskCompleted { .. } => self.status = TaskStatus::Completed,
            VoiceTaskEvent::TaskFailed { .. } => self.status = TaskStatus::Failed,
            VoiceTaskEvent::TaskReanalysisRequested { batch_id, .. } => {
                self.reanalysis = Some(batch_id);
                self.holder = Option::None;
            }
            VoiceTaskEvent::TaskReanalysed { .. } | VoiceTaskEvent::TaskReanalysisFailed { .. } => {
                self.reanalysis = Option::None
            }
            VoiceTaskEvent::RecordingDeleted { .. } => self.recording_deleted = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;
    use events::task::{Analyzer, AudioFacts};

    type Given = TestFramework<VoiceTask>;

    fn authorized() -> VoiceTaskEvent {
        VoiceTaskEvent::UploadAuthorized {
            object_key: "uploads/u1".into(),
            content_type: "audio/wav".into(),
            content_length: 1000,
            expires_at: "2026-11-21T10:00:00Z".parse().unwrap(),
        }
    }

    fn submitted() -> VoiceTaskEvent {
        VoiceTaskEvent::TaskSubmitted {
            email: None,
            caller_number: None,
            language: None,
            email_notification: false,
        }
    }

    fn submit() -> VoiceTaskCommand {
        VoiceTaskCommand::Submit {
            email: None,
            caller_number: None,
            language: None,
            email_notification: false,
        }
    }

    fn w() -> Uuid {
        Uuid::from_u128(7)
    }

    /// The run of worker `w()` on its first delivery.
    fn run() -> Attempt {
        Attempt {
            worker_id: w(),
            delivery: Some(1),
        }
    }

    fn started_by(worker_id: Uuid, attempt: u32, delivery: u64) -> VoiceTaskEvent {
        VoiceTaskEvent::TaskStarted {
            worker_id,
            attempt,
            delivery: Some(delivery),
        }
    }

    fn result() -> Box<AnalysisResult> {
        Box::new(AnalysisResult {
            verdict: "safe".into(),
            risk_score: 0.0,
            indicators: vec![],
            transcript: None,
            caller_number: None,
            audio: AudioFacts {
                duration_seconds: 1.0,
                sample_rate: 8000,
                channels: 1,
                codec: "pcm_s16le".into(),
                peak_dbfs: -6.0,
                rms_dbfs: -9.0,
                silence_ratio: 0.0,
            },
            analyzer: Analyzer {
                name: "t".into(),
                version: "1".into(),
                ..Default::default()
            },
            ..Default::default()
        })
    }

    #[test]
    fn submitting_queues_once_and_again_is_the_same_task() {
        Given::with(())
            .given(vec![authorized()])
            .when(submit())
            .then_expect_events(vec![submitted()]);
        Given::with(())
            .given(vec![authorized(), submitted()])
            .when(submit())
            .then_expect_events(vec![]);
        Given::with(())
            .given_no_previous_events()
            .when(submit())
            .then_expect_error(VoiceTaskError::UnknownUpload);
    }

    #[test]
    fn redelivery_counts_attempts_and_only_one_completion_lands() {
        let started = |attempt| started_by(w(), attempt, attempt as u64);
        Given::with(())
            .given(vec![authorized(), submitted(), started(1)])
            .when(VoiceTaskCommand::Start(Attempt {
                worker_id: w(),
                delivery: Some(2),
            }))
            .then_expect_events(vec![started(2)]);
        let done = VoiceTaskEvent::TaskCompleted {
            worker_id: w(),
            result: result(),
        };
        Given::with(())
            .given(vec![authorized(), submitted(), started(1)])
            .when(VoiceTaskCommand::Complete {
                by: run(),
                result: result(),
            })
            .then_expect_events(vec![done.clone()]);
        Given::with(())
            .given(vec![authorized(), submitted(), started(1), done])
            .when(VoiceTaskCommand::Complete {
                by: run(),
                result: result(),
            })
            .then_expect_error(VoiceTaskError::InvalidTransition("completed", "complete"));
    }

    #[test]
    fn only_failed_tasks_are_requeued_and_then_run_again() {
        let failed = VoiceTaskEvent::TaskFailed {
            reason: "boom".into(),
            retryable: true,
            attempts: 5,
        };
        let requeued = VoiceTaskEvent::TaskRequeued { by: "admin".into() };
        Given::with(())
            .given(vec![authorized(), submitted()])
            .when(VoiceTaskCommand::Requeue { by: "admin".into() })
            .then_expect_error(VoiceTaskError::InvalidTransition("queued", "be retried"));
        Given::with(())
            .given(vec![authorized(), submitted(), failed.clone()])
            .when(VoiceTaskCommand::Requeue { by: "admin".into() })
            .then_expect_events(vec![requeued.clone()]);
        Given::with(())
            .given(vec![authorized(), submitted(), failed, requeued])
            .when(VoiceTaskCommand::Start(run()))
            .then_expect_events(vec![started_by(w(), 1, 1)]);
    }

    #[test]
    fn a_reanalysis_keeps_the_verdict_until_its_result_arrives_beside_the_old_one() {
        let batch = Uuid::from_u128(42);
        let done = VoiceTaskEvent::TaskCompleted {
            worker_id: w(),
            result: result(),
        };
        let asked = VoiceTaskEvent::TaskReanalysisRequested {
            batch_id: batch,
            by: "admin".into(),
        };
        let request = || VoiceTaskCommand::RequestReanalysis {
            batch_id: batch,
            by: "admin".into(),
        };
        let history = vec![authorized(), submitted(), done.clone()];
        // Only a completed task is re-analysed.
        Given::with(())
            .given(vec![authorized(), submitted()])
            .when(request())
            .then_expect_error(VoiceTaskError::InvalidTransition(
                "queued",
                "be re-analysed",
            ));
        Given::with(())
            .given_no_previous_events()
            .when(request())
            .then_expect_error(VoiceTaskError::UnknownUpload);
        Given::with(())
            .given(history.clone())
            .when(request())
            .then_expect_events(vec![asked.clone()]);
        let pending = [history.clone(), vec![asked.clone()]].concat();
        // One at a time; a start records who runs it (the task stays completed).
        Given::with(())
            .given(pending.clone())
            .when(request())
            .then_expect_events(vec![]);
        let running = VoiceTaskEvent::TaskReanalysisStarted {
            batch_id: batch,
            worker_id: w(),
            delivery: Some(1),
        };
        Given::with(())
            .given(pending.clone())
            .when(VoiceTaskCommand::Start(run()))
            .then_expect_events(vec![running.clone()]);
        Given::with(())
            .given(pending.clone())
            .when(VoiceTaskCommand::Complete {
                by: run(),
                result: result(),
            })
            .then_expect_error(VoiceTaskError::NotStarted);
        let pending = [pending, vec![running]].concat();
        let mut newer = result();
        newer.verdict = "scam".into();
        let reanalysed = VoiceTaskEvent::TaskReanalysed {
            batch_id: batch,
            worker_id: w(),
            result: newer.clone(),
        };
        Given::with(())
            .given(pending.clone())
            .when(VoiceTaskCommand::Complete {
                by: run(),
                result: newer.clone(),
            })
            .then_expect_events(vec![reanalysed.clone()]);
        Given::with(())
            .given(pending.clone())
            .when(VoiceTaskCommand::Fail {
                by: Some(run()),
                reason: "undecodable".into(),
                retryable: false,
            })
            .then_expect_events(vec![VoiceTaskEvent::TaskReanalysisFailed {
                batch_id: batch,
                reason: "undecodable".into(),
            }]);
        // Done: a late duplicate is refused, and another re-analysis may be asked for.
        let after = [pending, vec![reanalysed]].concat();
        Given::with(())
            .given(after.clone())
            .when(VoiceTaskCommand::Complete {
                by: run(),
                result: newer,
            })
            .then_expect_error(VoiceTaskError::InvalidTransition("completed", "complete"));
        Given::with(())
            .given(after)
            .when(request())
            .then_expect_events(vec![asked]);
    }

    #[test]
    fn retention_deletes_a_finished_task_s_recording_once_and_the_verdict_stays() {
        let completed = VoiceTaskEvent::TaskCompleted {
            worker_id: w(),
            result: result(),
        };
        let delete = || VoiceTaskCommand::DeleteRecording {
            reason: "retention".into(),
        };
        let deleted = VoiceTaskEvent::RecordingDeleted {
            object_key: "uploads/u1".into(),
            reason: "retention".into(),
        };
        let done = vec![authorized(), submitted(), started_by(w(), 1, 1), completed];
        Given::with(())
            .given(done.clone())
            .when(delete())
            .then_expect_events(vec![deleted.clone()]);
        // A queued or running task keeps its recording.
        Given::with(())
            .given(vec![authorized(), submitted()])
            .when(delete())
            .then_expect_error(VoiceTaskError::InvalidTransition(
                "queued",
                "lose its recording",
            ));
        let gone = [done, vec![deleted]].concat();
        Given::with(())
            .given(gone.clone())
            .when(delete())
            .then_expect_events(vec![]);
        Given::with(())
            .given(gone)
            .when(VoiceTaskCommand::RequestReanalysis {
                batch_id: Uuid::from_u128(3),
                by: "admin".into(),
            })
            .then_expect_error(VoiceTaskError::RecordingDeleted);
    }

    #[test]
    fn finished_tasks_do_not_move() {
        let failed = VoiceTaskEvent::TaskFailed {
            reason: "undecodable".into(),
            retryable: false,
            attempts: 1,
        };
        Given::with(())
            .given(vec![authorized(), submitted(), failed])
            .when(VoiceTaskCommand::Fail {
                by: None,
                reason: "again".into(),
                retryable: false,
            })
            .then_expect_error(VoiceTaskError::InvalidTransition("failed", "fail"));
        Given::with(())
            .given(vec![authorized()])
            .when(VoiceTaskCommand::Start(run()))
            .then_expect_error(VoiceTaskError::InvalidTransition("unsubmitted", "start"));
    }

    /// The hardening review: a second worker completed a task the first had started, and the
    /// genuine result was then refused.
    #[test]
    fn only_the_worker_and_delivery_that_started_last_may_finish_the_task() {
        let other = Uuid::from_u128(8);
        let by = |worker_id, delivery| Attempt {
            worker_id,
            delivery: Some(delivery),
        };
        let complete = |attempt| VoiceTaskCommand::Complete {
            by: attempt,
            result: result(),
        };
        let fail = |attempt| VoiceTaskCommand::Fail {
            by: Some(attempt),
            reason: "forged".into(),
            retryable: false,
        };
        let held = vec![authorized(), submitted(), started_by(w(), 1, 1)];
        // Another worker can neither complete nor fail it.
        Given::with(())
            .given(held.clone())
            .when(complete(by(other, 1)))
            .then_expect_error(VoiceTaskError::NotHolder);
        Given::with(())
            .given(held.clone())
            .when(fail(by(other, 1)))
            .then_expect_error(VoiceTaskError::NotHolder);
        // The holder still can.
        Given::with(())
            .given(held.clone())
            .when(complete(run()))
            .then_expect_events(vec![VoiceTaskEvent::TaskCompleted {
                worker_id: w(),
                result: result(),
            }]);
        // Redelivered to another worker, the first one's late result is refused.
        let taken = [held.clone(), vec![started_by(other, 2, 2)]].concat();
        Given::with(())
            .given(taken.clone())
            .when(complete(run()))
            .then_expect_error(VoiceTaskError::NotHolder);
        Given::with(())
            .given(taken)
            .when(complete(by(other, 2)))
            .then_expect_events(vec![VoiceTaskEvent::TaskCompleted {
                worker_id: other,
                result: result(),
            }]);
        // Redelivered to the same worker, the stale delivery's result is refused.
        let again = [held.clone(), vec![started_by(w(), 2, 2)]].concat();
        Given::with(())
            .given(again.clone())
            .when(complete(run()))
            .then_expect_error(VoiceTaskError::NotHolder);
        Given::with(())
            .given(again)
            .when(complete(by(w(), 2)))
            .then_expect_events(vec![VoiceTaskEvent::TaskCompleted {
                worker_id: w(),
                result: result(),
            }]);
        // No run recorded yet: the intake retries (the start may be on its way).
        Given::with(())
            .given(vec![authorized(), submitted()])
            .when(complete(run()))
            .then_expect_error(VoiceTaskError::NotStarted);
        // The system (dead letter, time-out) fails a task whoever holds it.
        Given::with(())
            .given(held)
            .when(VoiceTaskCommand::Fail {
                by: None,
                reason: "the analysis timed out".into(),
                retryable: true,
            })
            .then_expect_events(vec![VoiceTaskEvent::TaskFailed {
                reason: "the analysis timed out".into(),
                retryable: true,
                attempts: 1,
            }]);
    }
}
