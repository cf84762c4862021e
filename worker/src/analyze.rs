//! One analysis: fetch the audio, decode it, transcribe it (if an ASR backend is configured),
//! find indicators, add the caller's standing, and decide.

use std::time::Duration;

use async_nats::jetstream;
use events::task::{AnalysisResult, CallerStanding, Indicator, Job};

use crate::audio::{self, AudioError};
use crate::rules::{risk_score, Rules};

/// Why a job did not complete.
#[derive(Debug)]
pub enum Failure {
    /// Will never work (undecodable or empty audio, a dead link): the task fails.
    Permanent(String),
    /// Might work later (a dependency is down): redelivered.
    Retry(String),
}

pub struct Analyzer {
    rules: Rules,
    http: reqwest::Client,
    asr_url: Option<String>,
    asr_key: Option<String>,
    asr_model: String,
    max_bytes: usize,
}

impl Analyzer {
    pub fn new(
        rules: Rules,
        asr_url: Option<String>,
        asr_key: Option<String>,
        asr_model: String,
        max_bytes: usize,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("HTTP client");
        Analyzer {
            rules,
            http,
            asr_url: asr_url.filter(|u| !u.is_empty()),
            asr_key,
            asr_model,
            max_bytes,
        }
    }

    /// `name` and `version` of this analyzer: rules version, plus the ASR model if any.
    pub fn identity(&self) -> events::task::Analyzer {
        let asr = self
            .asr_url
            .as_ref()
            .map(|_| format!("+asr:{}", self.asr_model))
            .unwrap_or_default();
        events::task::Analyzer {
            name: format!("blacklist-worker/{}", self.rules.name),
            version: format!(
                "{}+rules:{}{asr}",
                env!("CARGO_PKG_VERSION"),
                self.rules.version
            ),
        }
    }

    pub async fn analyze(
        &self,
        js: &jetstream::Context,
        job: &Job,
    ) -> Result<AnalysisResult, Failure> {
        let bytes = self.fetch(&job.audio_url).await?;
        let content_type = job.content_type.clone();
        let facts = {
            let bytes = bytes.clone();
            tokio::task::spawn_blocking(move || audio::analyse(bytes, content_type.as_deref()))
                .await
                .map_err(|e| Failure::Retry(format!("decoder crashed: {e}")))?
        };
        let facts = facts.map_err(|e: AudioError| Failure::Permanent(e.to_string()))?;
        let transcript = self.transcribe(bytes, job).await?;
        let mut indicators: Vec<Indicator> = transcript
            .as_deref()
            .map(|t| self.rules.indicators(t))
            .unwrap_or_default();
        let caller = match &job.caller_number {
            Some(n) => caller_standing(js, n).await,
            None => None,
        };
        if let Some(c) = &caller {
            let weight = match c.status.as_str() {
                "dangerous" => 0.5,
                "reported" => 0.2,
                _ => 0.0,
            };
            if weight > 0.0 {
                indicators.push(Indicator {
                    kind: "caller_number_reported".into(),
                    evidence: format!(
                        "{} is {} in the phone-number reputation",
                        c.phone_number, c.status
                    ),
                    weight,
                });
            }
        }
        let risk = risk_score(&indicators);
        let verdict = if transcript.is_none() && indicators.is_empty() {
            "inconclusive"
        } else if risk >= 0.7 {
            "scam"
        } else if risk >= 0.35 {
            "suspicious"
        } else {
            "safe"
        };
        Ok(AnalysisResult {
            verdict: verdict.into(),
            risk_score: risk,
            indicators,
            transcript,
            caller_number: caller,
            audio: facts,
            analyzer: self.identity(),
        })
    }

    async fn fetch(&self, url: &str) -> Result<Vec<u8>, Failure> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("fetching the audio: {e}")))?;
        let status = resp.status();
        if status.is_server_error() {
            return Err(Failure::Retry(format!("fetching the audio: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(Failure::Permanent(format!(
                "the audio could not be fetched: HTTP {status}"
            )));
        }
        if resp
            .content_length()
            .is_some_and(|n| n as usize > self.max_bytes)
        {
            return Err(Failure::Permanent(
                "the audio is larger than allowed".into(),
            ));
        }
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| Failure::Retry(format!("reading the audio: {e}")))?;
        if bytes.len() > self.max_bytes {
            return Err(Failure::Permanent(
                "the audio is larger than allowed".into(),
            ));
        }
        Ok(bytes.to_vec())
    }

    /// OpenAI-compatible `POST {ASR_URL}/v1/audio/transcriptions` (multipart `file`, `model`,
    /// `language`) → `{"text": …}`. The client's own transcript is never trusted.
    async fn transcribe(&self, bytes: Vec<u8>, job: &Job) -> Result<Option<String>, Failure> {
        let Some(base) = &self.asr_url else {
            return Ok(None);
        };
        let file = reqwest::multipart::Part::bytes(bytes)
            .file_name("audio")
            .mime_str(
                job.content_type
                    .as_deref()
                    .unwrap_or("application/octet-stream"),
            )
            .map_err(|e| Failure::Permanent(format!("content type: {e}")))?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", file)
            .text("model", self.asr_model.clone());
        if let Some(lang) = &job.language {
            form = form.text("language", lang.clone());
        }
        let mut req = self
            .http
            .post(format!(
                "{}/v1/audio/transcriptions",
                base.trim_end_matches('/')
            ))
            .multipart(form);
        if let Some(key) = &self.asr_key {
            req = req.bearer_auth(key);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| Failure::Retry(format!("ASR unreachable: {e}")))?;
        if !resp.status().is_success() {
            return Err(Failure::Retry(format!(
                "ASR answered HTTP {}",
                resp.status()
            )));
        }
        let body: serde_json::Value = resp
            .json()
            .await
            .map_err(|e| Failure::Retry(format!("ASR answer: {e}")))?;
        Ok(body
            .get("text")
            .and_then(|t| t.as_str())
            .map(|t| t.trim().to_owned()))
    }
}

/// What the `phone-reputation` bucket says about `number` (absent: unknown).
async fn caller_standing(js: &jetstream::Context, number: &str) -> Option<CallerStanding> {
    let key = events::phone_number::reputation_key(number);
    let status = match js
        .get_key_value(events::topology::PHONE_REPUTATION_BUCKET)
        .await
    {
        Ok(kv) => match kv.get(&key).await {
            Ok(Some(v)) => serde_json::from_slice::<serde_json::Value>(&v)
                .ok()
                .and_then(|v| v.get("status").and_then(|s| s.as_str()).map(str::to_owned))
                .unwrap_or_else(|| "unknown".into()),
            Ok(None) => "unknown".into(),
            Err(e) => {
                tracing::warn!(error = %e, "phone reputation not readable");
                return None;
            }
        },
        Err(e) => {
            tracing::warn!(error = %e, "phone reputation bucket not reachable");
            return None;
        }
    };
    Some(CallerStanding {
        phone_number: number.to_owned(),
        status,
    })
}
