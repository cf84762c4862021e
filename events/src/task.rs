//! The worker contract: jobs on `TASKS` and results on `RESULTS`.
//!
//! A job carries only what analysis needs — never the submitter's email or IP (invariant 5).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
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

/// An explainable finding: what was heard, the words, and when they were said.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Indicator {
    /// The tactic heard (`authority_impersonation`, `bank_impersonation`, `company_impersonation`, `urgency_threat`, `credential_request`, `unusual_payment`, `remote_access`, `advance_fee`, `secrecy_isolation`, `family_emergency`, `romance_investment`, `warranty_benefits`), `scam_language` (the analyzer's learned check: scam wording in the call as a whole, its evidence the words that weighed most), `caller_number_reported` (the caller's standing), or, in `counterEvidence`, `never_asks_for_secrets`, `call_official_number`, `talks_about_scams`, `denies_asking`. A rules file for another language may name other kinds.
    pub kind: String,
    /// The words that matched, as heard (several phrases joined by ", ").
    pub evidence: String,
    /// How much it counts (a tactic heard in several phrasings up to 20% more, at most 0.95, and below 0.4 if its own weight is; `scam_language` 0.25 to 0.5).
    #[schema(minimum = 0, maximum = 1)]
    pub weight: f64,
    /// When each matched phrase was said. Omitted for evidence that does not come from speech (`caller_number_reported`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub spans: Vec<Span>,
}

/// Words heard between `start` and `end` seconds of the recording (rounded to 0.01 s).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Seconds from the start of the recording (the original upload, before any silence was trimmed).
    #[schema(minimum = 0)]
    pub start: f64,
    /// Seconds from the start of the recording.
    #[schema(minimum = 0)]
    pub end: f64,
    /// The words heard in that stretch, as recognised.
    pub text: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AudioFacts {
    pub duration_seconds: f64,
    pub sample_rate: u32,
    pub channels: u32,
    pub codec: String,
    /// Peak level in dBFS.
    pub peak_dbfs: f64,
    /// RMS level in dBFS.
    pub rms_dbfs: f64,
    /// Share of 50 ms windows below -50 dBFS.
    #[schema(minimum = 0, maximum = 1)]
    pub silence_ratio: f64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Analyzer {
    /// `blacklist-worker/<rules name>`.
    pub name: String,
    /// `<worker version>+rules:<rules version>+asr:<speech model>` (no `+asr:` part without speech recognition): enough to trace a verdict to what produced it.
    pub version: String,
    /// Version of the analyzer rules (e.g. `2026.11.2`); compared by `POST /admin/tasks/reanalyse`. Absent in results from before issue 9.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "2026.11.2")]
    pub rules_version: Option<String>,
    /// The speech recogniser: `whisper-<model>@<first 8 hex digits of the model file's sha256>`, or `openai-compatible:<ASR_MODEL>`. Absent without speech recognition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "whisper-base@35512038")]
    pub speech_model: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallerStanding {
    /// E.164
    pub phone_number: String,
    /// `dangerous`, `reported` or `unknown`.
    pub status: String,
}

/// What the worker found. Fields added by issue 9 (`explanation`, `language`, `segments`, `counterEvidence`, indicator `spans`, analyzer `rulesVersion`/`speechModel`) are omitted when empty and absent from older results.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisResult {
    /// `scam` (risk ≥ 0.7), `suspicious` (≥ 0.4), `safe`, or `inconclusive` when no verdict can be given (see `explanation`).
    pub verdict: String,
    /// 1 − Π(1 − weight) over the indicators, scaled down by Π(1 − weight) of the counter-evidence.
    #[schema(minimum = 0, maximum = 1)]
    pub risk_score: f64,
    /// The tactics heard, strongest reasons first in `explanation`; `scam_language` when the learned check is confident; `caller_number_reported` when the caller's number is `dangerous` or `reported`.
    pub indicators: Vec<Indicator>,
    /// What was said, as recognised (segments joined). Null or absent when nothing intelligible was heard or no speech recogniser is configured.
    pub transcript: Option<String>,
    pub caller_number: Option<CallerStanding>,
    pub audio: AudioFacts,
    pub analyzer: Analyzer,
    /// The verdict in one sentence (for `inconclusive`, why: no speech recognition configured, a silent recording, no intelligible speech, a language the analyzer has no rules for). Ends with "Only the first N minutes were analysed." when the recording was longer than the worker's `MAX_AUDIO_SECONDS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explanation: Option<String>,
    /// The language heard (ISO 639-1, e.g. `en`). Omitted when no speech was recognised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "en")]
    pub language: Option<String>,
    /// The transcript with times, one entry per recognised segment. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
    pub segments: Vec<Span>,
    /// What speaks against a scam ("we will never ask for your PIN", "call the number on the back of your card"); each lowers the risk. Omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schema(required = false)]
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
