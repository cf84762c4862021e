//! The worker contract: jobs on `TASKS` and results on `RESULTS`.
//!
//! A job carries only what analysis needs — never the submitter's email or IP (invariant 5).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// One analysis job (`tasks.analyze.<taskId>`). `Nats-Msg-Id` is `<taskId>:<sequence of the
/// TaskSubmitted or TaskRequeued event>` (or `<taskId>:reconciled:<time>` when re-dispatched).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    pub task_id: Uuid,
    /// Where to GET the audio (a presigned URL).
    pub audio_url: String,
    pub content_type: Option<String>,
    /// E.164, when the submitter gave one.
    pub caller_number: Option<String>,
    /// BCP 47 hint for transcription.
    pub language: Option<String>,
}

/// An explainable indicator: which tactic was found, the words that showed it and when they
/// were said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    /// The tactic (`credential_request`, `unusual_payment`, …) or `caller_number_reported`.
    pub kind: String,
    /// The words that matched, as heard (several phrases joined by ", ").
    pub evidence: String,
    pub weight: f64,
    /// Where in the recording each phrase was said (absent for evidence not from speech).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spans: Vec<Span>,
}

/// Words heard between `start` and `end` seconds of the recording.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    pub start: f64,
    pub end: f64,
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AudioFacts {
    pub duration_seconds: f64,
    pub sample_rate: u32,
    pub channels: u32,
    pub codec: String,
    /// Peak and RMS level in dBFS.
    pub peak_dbfs: f64,
    pub rms_dbfs: f64,
    /// Share of 50 ms windows below -50 dBFS.
    pub silence_ratio: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Analyzer {
    pub name: String,
    /// `<worker version>+rules:<rules version>+asr:<speech model>`: enough to re-derive a verdict.
    pub version: String,
    /// The rules file's version (e.g. `2026.11.2`), compared by re-analysis filters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rules_version: Option<String>,
    /// The speech model, e.g. `whisper-base@35512038` (name and sha256 prefix of its ggml file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speech_model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallerStanding {
    pub phone_number: String,
    pub status: String,
}

/// What API.md calls `result`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisResult {
    /// scam | suspicious | safe | inconclusive
    pub verdict: String,
    pub risk_score: f64,
    pub indicators: Vec<Indicator>,
    pub transcript: Option<String>,
    pub caller_number: Option<CallerStanding>,
    pub audio: AudioFacts,
    pub analyzer: Analyzer,
    /// The verdict in one sentence (for `inconclusive`, why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The language heard (ISO 639-1, e.g. `en`), when speech was recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The transcript with timestamps, one entry per recognised segment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub segments: Vec<Span>,
    /// What speaks against a scam (e.g. "we will never ask for your PIN"); lowers the risk.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub counter_evidence: Vec<Indicator>,
}

/// What a worker publishes on `results.<workerId>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "outcome",
    rename_all = "lowercase",
    rename_all_fields = "camelCase"
)]
pub enum WorkerResult {
    /// A worker took the job (published, and stored, before it starts analysing). `delivery`
    /// is the job's JetStream delivery count; the final result repeats it, and only the result
    /// of the worker and delivery that started last is recorded.
    Started {
        task_id: Uuid,
        worker_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<u64>,
    },
    Completed {
        task_id: Uuid,
        worker_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<u64>,
        result: Box<AnalysisResult>,
    },
    /// `retryable: false` for input that will never work (undecodable or empty audio).
    Failed {
        task_id: Uuid,
        worker_id: Uuid,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        delivery: Option<u64>,
        reason: String,
        retryable: bool,
    },
}

/// Subject of one task's job: `tasks.analyze.<taskId>`.
pub fn job_subject(task_id: Uuid) -> String {
    format!("tasks.analyze.{task_id}")
}

pub fn results_subject(worker_id: Uuid) -> String {
    format!("results.{worker_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_camel_case_and_tagged_by_outcome() {
        let r = WorkerResult::Failed {
            task_id: Uuid::nil(),
            worker_id: Uuid::nil(),
            delivery: Some(2),
            reason: "x".into(),
            retryable: false,
        };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["outcome"], "failed");
        assert!(v.get("taskId").is_some() && v.get("workerId").is_some());
        assert_eq!(serde_json::from_value::<WorkerResult>(v).unwrap(), r);
    }
}
