//! One analysis: fetch the audio, decode it, hear it (Whisper by default, offline), find the
//! tactics with the time they were said, add the caller's standing, and decide — or say why no
//! verdict can be given (`inconclusive`: silence, no intelligible speech, a language without
//! rules).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use events::task::{AnalysisResult, AudioFacts, CallerStanding, Indicator, Job, Span};

use crate::audio::{self, AudioError};
use crate::speech::{self, OpenAiAsr, Prepared, SpeechError, Transcript, Whisper};
use crate::tactics::{self, Rules};

/// Why a job did not complete.
#[derive(Debug)]
pub enum Failure {
    /// Will never work (undecodable or empty audio, a dead link): the task fails.
    Permanent(String),
    /// Might work later (a dependency is down): redelivered.
    Retry(String),
}

/// How the worker hears speech.
pub enum Hearing {
    /// whisper.cpp in this process (the default).
    Whisper(Arc<Whisper>),
    /// An OpenAI-compatible transcription service.
    OpenAi(OpenAiAsr),
    /// No speech recognition: verdicts rest on the caller's standing alone.
    None,
}

impl Hearing {
    pub fn label(&self) -> Option<String> {
        match self {
            Hearing::Whisper(w) => Some(w.label()),
            Hearing::OpenAi(o) => Some(o.label()),
            Hearing::None => None,
        }
    }
}

/// Below these, what was heard is not speech the analyzer can judge.
const MIN_WORDS: usize = 4;
const MIN_MEAN_PROB: f32 = 0.45;
const MAX_NO_SPEECH: f32 = 0.6;

pub struct Analyzer {
    /// Rules by language (ISO 639-1).
    rules: BTreeMap<String, Rules>,
    hearing: Hearing,
    /// Decoding in a limited child process (`None`: in this process).
    decoder: Option<crate::sandbox::Limits>,
    http: reqwest::Client,
    max_bytes: usize,
    /// Audio beyond this is not analysed (the verdict says so).
    max_seconds: f64,
    /// Time allowed per minute of audio (plus 30 s).
    per_minute: Duration,
}

impl Analyzer {
    pub fn new(
        rules: Vec<Rules>,
        hearing: Hearing,
        decoder: Option<crate::sandbox::Limits>,
        max_bytes: usize,
        max_seconds: f64,
        per_minute: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .expect("HTTP client");
        Analyzer {
            rules: rules.into_iter().map(|r| (r.language.clone(), r)).collect(),
            hearing,
            decoder,
            http,
            max_bytes,
            max_seconds,
            per_minute,
        }
    }

    fn main_rules(&self) -> Option<&Rules> {
        self.rules.get("en").or_else(|| self.rules.values().next())
    }

    /// `name` and `version` of this analyzer: rules version and speech model, so that a verdict
    /// can be re-derived and compared later.
    pub fn identity(&self) -> events::task::Analyzer {
        self.identity_with(self.main_rules())
    }

    /// The identity of a result judged by `rules` (its language's, not always the main one).
    fn identity_with(&self, rules: Option<&Rules>) -> events::task::Analyzer {
        let (rules_name, rules_version) = rules
            .map(|r| (r.name.clone(), r.version.clone()))
            .unwrap_or_else(|| ("none".into(), "none".into()));
        let speech_model = self.hearing.label();
        let asr = speech_model
            .as_ref()
            .map(|m| format!("+asr:{m}"))
            .unwrap_or_default();
        events::task::Analyzer {
            name: format!("blacklist-worker/{rules_name}"),
            version: format!("{}+rules:{rules_version}{asr}", env!("CARGO_PKG_VERSION")),
            rules_version: Some(rules_version),
            speech_model,
        }
    }

    pub async fn analyze(
        &self,
        js: &jetstream::Context,
        job: &Job,
    ) -> Result<AnalysisResult, Failure> {
        let bytes = self.fetch(&job.audio_url).await?;
        let caller = match &job.caller_number {
            Some(n) => caller_standing(js, n).await,
            None => None,
        };
        self.analyze_bytes(
            bytes,
            job.content_type.as_deref(),
            job.language.as_deref(),
            caller,
        )
        .await
    }

    /// The analysis of audio already fetched (also what `worker analyze FILE` runs).
    pub async fn analyze_bytes(
        &self,
        bytes: Vec<u8>,
        content_type: Option<&str>,
        language: Option<&str>,
        caller: Option<CallerStanding>,
    ) -> Result<AnalysisResult, Failure> {
        let max_seconds = self.max_seconds;
        let decoded = match &self.decoder {
            Some(limits) => crate::sandbox::decode(limits, bytes, content_type, max_seconds).await,
            None => {
                let content_type = content_type.map(str::to_owned);
                tokio::task::spawn_blocking(move || {
                    audio::decode(bytes, content_type.as_deref(), max_seconds)
                })
                .await
                .map_err(|e| Failure::Permanent(format!("the decoder crashed: {e}")))?
            }
        }
        .map_err(|e: AudioError| Failure::Permanent(e.to_string()))?;
        let facts = decoded.facts.clone();
        let prepared = {
            let samples = decoded.speech;
            tokio::task::spawn_blocking(move || speech::prepare(&samples))
                .await
                .map_err(|e| Failure::Permanent(format!("preparing the audio failed: {e}")))?
        };
        let hint = language
            .map(|l| l.split(['-', '_']).next().unwrap_or(l).to_lowercase())
            .filter(|l| l.len() == 2);
        let heard = match (&self.hearing, prepared) {
            (Hearing::None, _) => Heard::NoRecognizer,
            (_, None) => Heard::Silence,
            (hearing, Some(p)) => Heard::Speech(self.hear(hearing, &p, hint.as_deref()).await?),
        };
        let mut result = self.judge(heard, facts, caller);
        if decoded.truncated {
            if let Some(e) = result.explanation.as_mut() {
                e.push_str(&format!(
                    " Only the first {} minutes were analysed.",
                    (self.max_seconds / 60.0).round()
                ));
            }
        }
        Ok(result)
    }

    async fn hear(
        &self,
        hearing: &Hearing,
        prepared: &Prepared,
        hint: Option<&str>,
    ) -> Result<Transcript, Failure> {
        let budget = speech::time_budget(prepared.seconds(), self.per_minute);
        let timed_out = || {
            Failure::Permanent(format!(
                "the analysis took longer than the {:.1} s allowed for {:.0} s of audio",
                budget.as_secs_f64(),
                prepared.seconds()
            ))
        };
        match hearing {
            Hearing::Whisper(w) => {
                let (w, p, hint) = (w.clone(), prepared.clone(), hint.map(str::to_owned));
                let started = Instant::now();
                let t =
                    tokio::task::spawn_blocking(move || w.transcribe(&p, hint.as_deref(), budget))
                        .await
                        .map_err(|e| {
                            Failure::Permanent(format!("speech recognition crashed: {e}"))
                        })?;
                metrics::histogram!("worker_asr_seconds").record(started.elapsed().as_secs_f64());
                match t {
                    Ok(t) => Ok(t),
                    Err(SpeechError::TimedOut) => Err(timed_out()),
                    Err(SpeechError::Failed(e)) => Err(Failure::Permanent(e)),
                }
            }
            Hearing::OpenAi(o) => tokio::time::timeout(budget, o.transcribe(prepared, hint))
                .await
                .map_err(|_| timed_out())?,
            Hearing::None => Ok(Transcript::default()),
        }
    }

    /// The verdict from what was heard and who called.
    pub fn judge(
        &self,
        heard: Heard,
        audio: AudioFacts,
        caller: Option<CallerStanding>,
    ) -> AnalysisResult {
        let mut result = AnalysisResult {
            verdict: "inconclusive".into(),
            audio,
            analyzer: self.identity(),
            ..Default::default()
        };
        let caller_indicator = caller.as_ref().and_then(caller_indicator);
        result.caller_number = caller;
        let no_verdict = |result: &mut AnalysisResult, why: String| {
            // A number reported as dangerous is a warning on its own, speech or not.
            if let Some(ind) = &caller_indicator {
                result.risk_score = ind.weight;
                result.verdict = tactics::verdict_for(ind.weight).into();
                result.explanation = Some(format!(
                    "{why} But the calling number is {} in our phone-number reports.",
                    result
                        .caller_number
                        .as_ref()
                        .map(|c| c.status.as_str())
                        .unwrap_or("reported")
                ));
                result.indicators.push(ind.clone());
            } else {
                result.explanation = Some(why);
            }
        };
        let transcript = match heard {
            Heard::NoRecognizer => {
                no_verdict(
                    &mut result,
                    "No verdict: this worker has no speech recognition configured.".into(),
                );
                return result;
            }
            Heard::Silence => {
                no_verdict(&mut result, "No verdict: the recording is silent.".into());
                return result;
            }
            Heard::Speech(t) => t,
        };
        let text = transcript.text();
        result.transcript = (!text.is_empty()).then_some(text);
        result.language = transcript.language.clone();
        result.segments = transcript
            .segments
            .iter()
            .filter(|s| !s.text.is_empty())
            .map(|s| Span {
                start: round2(s.start),
                end: round2(s.end),
                text: s.text.clone(),
            })
            .collect();
        let real_words = transcript
            .words
            .iter()
            .filter(|w| w.text.chars().any(char::is_alphanumeric))
            .count();
        if real_words < MIN_WORDS
            || transcript.mean_prob() < MIN_MEAN_PROB
            || (transcript.no_speech() > MAX_NO_SPEECH && transcript.mean_prob() < 0.7)
        {
            result.transcript = None;
            result.segments.clear();
            no_verdict(
                &mut result,
                "No verdict: no intelligible speech was heard (silence, music, a tone or noise)."
                    .into(),
            );
            return result;
        }
        let language = transcript.language.clone().unwrap_or_else(|| "en".into());
        let Some(rules) = self.rules.get(&language) else {
            let name = language_name(&language);
            let have: Vec<String> = self.rules.keys().map(|l| language_name(l)).collect();
            no_verdict(
                &mut result,
                format!(
                    "No verdict: the call is in {name}, and the analyzer has rules for {} only.",
                    have.join(", ")
                ),
            );
            return result;
        };
        // The rules that judged it: their language's version, not the main one's.
        result.analyzer = self.identity_with(Some(rules));
        let found = rules.find(&transcript.words);
        result.indicators = found.indicators;
        result.counter_evidence = found.counter;
        let mut risk = tactics::risk_score(&result.indicators, &result.counter_evidence);
        if let Some(ind) = caller_indicator {
            // A dangerous number makes the call at least suspicious on its own.
            risk = (1.0 - (1.0 - risk) * (1.0 - ind.weight)).max(ind.weight);
            risk = (risk * 1000.0).round() / 1000.0;
            result.indicators.push(ind);
        }
        result.risk_score = risk;
        result.verdict = tactics::verdict_for(risk).into();
        let says = |kind: &str| -> Option<String> {
            match kind {
                "caller_number_reported" => Some("called from a number reported to us".into()),
                "denies_asking" => Some("said they would not ask for it".into()),
                "scam_language" => Some("spoke the way scam calls do".into()),
                k => rules.says(k).map(str::to_owned),
            }
        };
        result.explanation = Some(tactics::explain(
            &result.verdict,
            &result.indicators,
            &result.counter_evidence,
            says,
        ));
        result
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
}

/// What the recogniser made of the recording.
pub enum Heard {
    NoRecognizer,
    Silence,
    Speech(Transcript),
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn language_name(code: &str) -> String {
    whisper_rs::get_lang_id(code)
        .and_then(whisper_rs::get_lang_str_full)
        .map(|n| {
            let mut c = n.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .unwrap_or_else(|| code.to_owned())
}

/// The caller's standing as evidence: a dangerous number alone makes a call suspicious.
fn caller_indicator(c: &CallerStanding) -> Option<Indicator> {
    let weight = match c.status.as_str() {
        "dangerous" => tactics::SUSPICIOUS_AT + 0.05,
        "reported" => 0.2,
        _ => return None,
    };
    Some(Indicator {
        kind: "caller_number_reported".into(),
        evidence: format!(
            "{} is {} in the phone-number reputation",
            c.phone_number, c.status
        ),
        weight,
        spans: vec![],
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::speech::{spread_words, Segment};

    fn analyzer() -> Analyzer {
        Analyzer::new(
            vec![Rules::built_in("en").unwrap().unwrap()],
            Hearing::None,
            None,
            1 << 20,
            600.0,
            Duration::from_secs(60),
        )
    }

    fn heard(text: &str, language: &str) -> Heard {
        Heard::Speech(Transcript {
            language: Some(language.into()),
            segments: vec![Segment {
                text: text.into(),
                start: 0.0,
                end: 10.0,
                no_speech: 0.05,
            }],
            words: spread_words(text, 0.0, 10.0)
                .into_iter()
                .map(|mut w| {
                    w.prob = 0.9;
                    w
                })
                .collect(),
        })
    }

    fn dangerous() -> Option<CallerStanding> {
        Some(CallerStanding {
            phone_number: "+14155550100".into(),
            status: "dangerous".into(),
        })
    }

    #[test]
    fn a_dangerous_number_makes_even_a_harmless_call_suspicious() {
        let a = analyzer();
        let r = a.judge(
            heard(
                "Hi, I am calling about your order of flowers for Sunday.",
                "en",
            ),
            AudioFacts::default(),
            dangerous(),
        );
        assert_eq!(r.verdict, "suspicious");
        assert!(r
            .indicators
            .iter()
            .any(|i| i.kind == "caller_number_reported"));
        let r = a.judge(Heard::Silence, AudioFacts::default(), dangerous());
        assert_eq!(r.verdict, "suspicious", "{r:?}");
        let r = a.judge(Heard::Silence, AudioFacts::default(), None);
        assert_eq!(r.verdict, "inconclusive");
        assert!(r.explanation.unwrap().contains("silent"));
    }

    #[test]
    fn speech_in_a_language_without_rules_is_inconclusive_with_the_reason() {
        let r = analyzer().judge(
            heard(
                "Bonjour, ici la police, vous devez payer avec des cartes cadeaux immédiatement.",
                "fr",
            ),
            AudioFacts::default(),
            None,
        );
        assert_eq!(r.verdict, "inconclusive");
        assert_eq!(r.language.as_deref(), Some("fr"));
        let why = r.explanation.unwrap();
        assert!(why.contains("French") && why.contains("English"), "{why}");
    }

    #[test]
    fn too_few_or_unsure_words_are_no_verdict() {
        let a = analyzer();
        let r = a.judge(heard("Thank you.", "en"), AudioFacts::default(), None);
        assert_eq!(r.verdict, "inconclusive");
        assert!(r.explanation.unwrap().contains("no intelligible speech"));
        let Heard::Speech(mut t) = heard("please read me the code we just sent you now", "en")
        else {
            unreachable!()
        };
        t.words.iter_mut().for_each(|w| w.prob = 0.1);
        let r = a.judge(Heard::Speech(t), AudioFacts::default(), None);
        assert_eq!(r.verdict, "inconclusive");
    }

    #[test]
    fn a_scam_result_carries_spans_segments_language_and_a_sentence() {
        let r = analyzer().judge(
            heard("This is the fraud department of your bank. Read me the six digit code we just sent you, and do not tell anyone.", "en"),
            AudioFacts::default(),
            None,
        );
        assert_eq!(r.verdict, "scam", "{r:?}");
        assert_eq!(r.language.as_deref(), Some("en"));
        assert_eq!(r.segments.len(), 1);
        assert!(r.indicators.iter().all(|i| !i.spans.is_empty()));
        assert!(r.explanation.unwrap().starts_with("Likely a scam"));
        assert_eq!(r.analyzer.rules_version.as_deref(), Some("2026.11.2"));
    }
}
