//! Hearing the call: phone audio made ready for recognition, and the speech engines.
//!
//! ```text
//!  16 kHz mono ──► prepare: trim leading/trailing silence, normalise loudness, windows ≤ 30 s
//!              ──► engine: Whisper (whisper.cpp, offline, default) | OpenAI-compatible HTTP
//!              ──► Transcript: language, segments and words with their times in the recording
//! ```
//!
//! Windows are cut at the quietest moment near 30 s, and overlap by a second; a segment belongs
//! to the window on whose side of the cut its middle lies, so nothing is heard twice. Short clips
//! do not pay for a full 30 s window: Whisper's audio context is trimmed to the clip.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use sha2::Digest as _;

use crate::audio::SPEECH_RATE;

const RATE: f64 = SPEECH_RATE as f64;
/// Whisper's window.
const WINDOW_SECONDS: f64 = 30.0;
/// Where a window may end: the quietest 100 ms within the last this-many seconds of it.
const CUT_SEARCH_SECONDS: f64 = 6.0;
const OVERLAP_SECONDS: f64 = 1.0;
/// Kept around speech when trimming silence.
const TRIM_MARGIN_SECONDS: f64 = 0.3;
/// Loudness of the speech after normalisation (RMS of its active frames).
const TARGET_DBFS: f64 = -20.0;

/// A recognised word (or segment), with its time in the original recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Word {
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// The recogniser's confidence, 0..1.
    pub prob: f32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub text: String,
    pub start: f64,
    pub end: f64,
    /// The recogniser's belief that this stretch held no speech at all.
    pub no_speech: f32,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Transcript {
    /// ISO 639-1 code of the language heard.
    pub language: Option<String>,
    pub segments: Vec<Segment>,
    pub words: Vec<Word>,
}

impl Transcript {
    pub fn text(&self) -> String {
        self.segments
            .iter()
            .map(|s| s.text.trim())
            .filter(|t| !t.is_empty())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Mean word confidence (1 for engines that give none).
    pub fn mean_prob(&self) -> f32 {
        if self.words.is_empty() {
            return 0.0;
        }
        self.words.iter().map(|w| w.prob).sum::<f32>() / self.words.len() as f32
    }

    /// Mean no-speech belief, weighted by segment length.
    pub fn no_speech(&self) -> f32 {
        let total: f64 = self
            .segments
            .iter()
            .map(|s| (s.end - s.start).max(0.01))
            .sum();
        if total <= 0.0 {
            return 1.0;
        }
        (self
            .segments
            .iter()
            .map(|s| s.no_speech as f64 * (s.end - s.start).max(0.01))
            .sum::<f64>()
            / total) as f32
    }
}

/// The speech of a call, ready for recognition.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// 16 kHz mono, silence trimmed, loudness normalised.
    pub samples: Vec<f32>,
    /// Seconds trimmed from the start: add to every time heard.
    pub offset: f64,
    /// Share of 20 ms frames that carry sound above the noise floor.
    pub active_ratio: f64,
}

impl Prepared {
    pub fn seconds(&self) -> f64 {
        self.samples.len() as f64 / RATE
    }
}

fn frame_db(frame: &[f32]) -> f64 {
    let ms = frame.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() / frame.len().max(1) as f64;
    10.0 * ms.max(1e-12).log10()
}

/// Trims leading and trailing silence and normalises loudness. `None` when nothing in it rises
/// above silence.
pub fn prepare(samples: &[f32]) -> Option<Prepared> {
    const FRAME: usize = (RATE as usize) / 50;
    let levels: Vec<f64> = samples.chunks(FRAME).map(frame_db).collect();
    if levels.is_empty() {
        return None;
    }
    let mut sorted = levels.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let floor = sorted[sorted.len() / 10];
    let loud = sorted[sorted.len() * 9 / 10];
    // Active: well above the noise floor (or, for a sound of constant level such as a tone,
    // near its level), and above digital silence.
    let threshold = (floor + 10.0).min(loud - 6.0).max(-55.0);
    let active: Vec<usize> = (0..levels.len())
        .filter(|&i| levels[i] > threshold)
        .collect();
    let (first, last) = (*active.first()?, *active.last()?);
    let margin = (TRIM_MARGIN_SECONDS * RATE) as usize;
    let start = (first * FRAME).saturating_sub(margin);
    let end = ((last + 1) * FRAME + margin).min(samples.len());
    let active_energy: f64 = active
        .iter()
        .map(|&i| 10f64.powf(levels[i] / 10.0))
        .sum::<f64>()
        / active.len() as f64;
    let active_db = 10.0 * active_energy.max(1e-12).log10();
    let peak = samples[start..end]
        .iter()
        .fold(0f32, |m, v| m.max(v.abs()))
        .max(1e-6) as f64;
    // Towards the target, never clipping, and never more than +30 dB (noise stays noise).
    let gain_db = (TARGET_DBFS - active_db).min(30.0);
    let gain = 10f64.powf(gain_db / 20.0).min(0.95 / peak) as f32;
    Some(Prepared {
        samples: samples[start..end].iter().map(|v| v * gain).collect(),
        offset: start as f64 / RATE,
        active_ratio: active.len() as f64 / levels.len() as f64,
    })
}

/// Window boundaries (sample indices): each at most 30 s, cut at the quietest 100 ms near its
/// end, and the next starting a second before that cut. Returns `(start, end, cut_before,
/// cut_after)`: segments whose middle lies outside `cut_before..cut_after` belong to a neighbour.
pub fn windows(samples: &[f32]) -> Vec<(usize, usize, usize, usize)> {
    let window = (WINDOW_SECONDS * RATE) as usize;
    let overlap = (OVERLAP_SECONDS * RATE) as usize;
    let search = (CUT_SEARCH_SECONDS * RATE) as usize;
    let hop = (RATE as usize) / 10;
    let mut out = Vec::new();
    let (mut start, mut cut_before) = (0usize, 0usize);
    loop {
        if samples.len() - start <= window {
            out.push((start, samples.len(), cut_before, samples.len()));
            return out;
        }
        let limit = start + window;
        // The quietest 100 ms in [limit - search, limit - overlap).
        let (lo, hi) = (limit - search, limit - overlap);
        let mut cut = hi;
        let mut quietest = f64::INFINITY;
        let mut at = lo;
        while at + hop <= hi {
            let db = frame_db(&samples[at..at + hop]);
            if db < quietest {
                quietest = db;
                cut = at + hop / 2;
            }
            at += hop;
        }
        out.push((start, (cut + overlap).min(samples.len()), cut_before, cut));
        start = cut - overlap;
        cut_before = cut;
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpeechError {
    #[error("the analysis took longer than allowed for this much audio")]
    TimedOut,
    #[error("speech recognition failed: {0}")]
    Failed(String),
}

/// Known converted models: file name → sha256 of the ggml file `scripts/ensure-model.sh` makes.
/// A file with one of these names and another hash is corrupt and refused at start.
pub const KNOWN_MODELS: &[(&str, &str, &str)] = &[
    (
        "ggml-base.bin",
        "whisper-base",
        "3551203850c3202bb3b0e0fae98de942f1162cb813b83960f9702cd7621477ff",
    ),
    (
        "ggml-tiny.en.bin",
        "whisper-tiny.en",
        "ed0eed2823c9c0c5b5e6f1c240a4f76591013648677e146655bb80a0834a3366",
    ),
];

/// sha256 of a file, hex.
pub fn sha256_file(path: &Path) -> anyhow::Result<String> {
    let mut file =
        std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher).with_context(|| format!("reading {}", path.display()))?;
    Ok(format!("{:x}", hasher.finalize()))
}

/// One window as heard: the language detected, its segments and its words (window times).
type Heard = (Option<String>, Vec<Segment>, Vec<Word>);

/// Whisper through whisper.cpp: one model in memory, one recognition at a time (it uses every
/// core it is given; two at once would only share them).
pub struct Whisper {
    ctx: whisper_rs::WhisperContext,
    state: Mutex<Option<whisper_rs::WhisperState>>,
    threads: usize,
    label: String,
    multilingual: bool,
}

impl Whisper {
    /// Loads and checks the model. A missing, corrupt or unknown-shaped file is an error that
    /// names the file and the way to get a good one.
    pub fn load(path: &Path, threads: usize) -> anyhow::Result<Whisper> {
        let how =
            "get it with `scripts/ensure-model.sh` (docs/voice-analysis.md) and set WHISPER_MODEL";
        anyhow::ensure!(
            path.is_file(),
            "the speech model {} does not exist: {how}",
            path.display()
        );
        let sha = sha256_file(path)?;
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let known = KNOWN_MODELS.iter().find(|(name, _, _)| *name == file_name);
        if let Some((_, _, want)) = known {
            anyhow::ensure!(
                *want == sha,
                "the speech model {} is corrupt: sha256 {sha}, expected {want}; delete it and {how}",
                path.display()
            );
        }
        let name = KNOWN_MODELS
            .iter()
            .find(|(_, _, h)| *h == sha)
            .map(|(_, n, _)| n.to_string())
            .unwrap_or_else(|| {
                let stem = file_name
                    .trim_end_matches(".bin")
                    .trim_start_matches("ggml-");
                format!("whisper-{stem}")
            });
        whisper_rs::install_logging_hooks();
        let path_str = path
            .to_str()
            .with_context(|| format!("{} is not UTF-8", path.display()))?;
        let ctx = whisper_rs::WhisperContext::new_with_params(
            path_str,
            whisper_rs::WhisperContextParameters::default(),
        )
        .map_err(|e| {
            anyhow::anyhow!(
                "the speech model {} could not be loaded ({e}): it is not a whisper.cpp model; {how}",
                path.display()
            )
        })?;
        let state = ctx
            .create_state()
            .map_err(|e| anyhow::anyhow!("whisper state: {e}"))?;
        let multilingual = ctx.is_multilingual();
        Ok(Whisper {
            ctx,
            state: Mutex::new(Some(state)),
            threads: threads.max(1),
            label: format!("{name}@{}", &sha[..8]),
            multilingual,
        })
    }

    fn run_window(
        &self,
        state: &mut whisper_rs::WhisperState,
        pcm: &[f32],
        language: Option<&str>,
        deadline: Instant,
    ) -> Result<Heard, SpeechError> {
        let mut params =
            whisper_rs::FullParams::new(whisper_rs::SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(self.threads as i32);
        params.set_translate(false);
        params.set_no_context(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        params.set_token_timestamps(true);
        params.set_suppress_blank(true);
        params.set_suppress_nst(true);
        params.set_temperature(0.0);
        params.set_temperature_inc(0.2);
        let lang = if self.multilingual {
            language
        } else {
            Some("en")
        };
        params.set_language(Some(lang.unwrap_or("auto")));
        // Short clips: trim the encoder's context to the clip (50 frames a second), with a
        // margin; measured ~4× faster on 5 s clips with the words kept.
        let seconds = pcm.len() as f64 / RATE;
        if seconds < WINDOW_SECONDS - 1.0 {
            let ctx = (((seconds + 1.0) * 50.0).ceil() as i32).clamp(128, 1500);
            params.set_audio_ctx(ctx);
        }
        params.set_abort_callback_safe(move || Instant::now() > deadline);
        // Whisper needs at least a second; pad short clips with silence.
        let padded;
        let pcm = if pcm.len() < SPEECH_RATE as usize + 1600 {
            let mut p = pcm.to_vec();
            p.resize(SPEECH_RATE as usize + 1600, 0.0);
            padded = p;
            &padded[..]
        } else {
            pcm
        };
        let run = state.full(params, pcm);
        if Instant::now() > deadline {
            return Err(SpeechError::TimedOut);
        }
        run.map_err(|e| SpeechError::Failed(e.to_string()))?;
        let lang = whisper_rs::get_lang_str(state.full_lang_id_from_state()).map(str::to_owned);
        let eot = self.ctx.token_eot();
        let mut segments = Vec::new();
        let mut words: Vec<Word> = Vec::new();
        for seg in state.as_iter() {
            let text = seg
                .to_str_lossy()
                .map(|t| t.into_owned())
                .unwrap_or_default();
            segments.push(Segment {
                text: text.trim().to_owned(),
                start: seg.start_timestamp() as f64 / 100.0,
                end: seg.end_timestamp() as f64 / 100.0,
                no_speech: seg.no_speech_probability(),
            });
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                if tok.token_id() >= eot {
                    continue;
                }
                let data = tok.token_data();
                let piece = tok
                    .to_str_lossy()
                    .map(|t| t.into_owned())
                    .unwrap_or_default();
                let (t0, t1) = (data.t0 as f64 / 100.0, data.t1 as f64 / 100.0);
                match words.last_mut() {
                    Some(w) if !piece.starts_with(' ') && !w.text.is_empty() => {
                        w.text.push_str(&piece);
                        w.end = w.end.max(t1);
                        w.prob = w.prob.min(data.p);
                    }
                    _ => words.push(Word {
                        text: piece.trim_start().to_owned(),
                        start: t0,
                        end: t1.max(t0),
                        prob: data.p,
                    }),
                }
            }
        }
        words.retain(|w| !w.text.trim().is_empty());
        Ok((lang, segments, words))
    }
}

impl Whisper {
    /// What `analyzer.speechModel` says, e.g. `whisper-base@35512038` (sha256 prefix of the file).
    pub fn label(&self) -> String {
        self.label.clone()
    }

    /// Hears `speech` (blocking: call it from `spawn_blocking`). `language`: an ISO 639-1 hint,
    /// or `None` to detect it. `budget` starts when the recognition does (not while it waits
    /// for the model).
    pub fn transcribe(
        &self,
        speech: &Prepared,
        language: Option<&str>,
        budget: Duration,
    ) -> Result<Transcript, SpeechError> {
        let mut guard = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let deadline = Instant::now() + budget;
        if guard.is_none() {
            *guard = Some(
                self.ctx
                    .create_state()
                    .map_err(|e| SpeechError::Failed(e.to_string()))?,
            );
        }
        let Some(state) = guard.as_mut() else {
            return Err(SpeechError::Failed("no recognition state".into()));
        };
        let mut out = Transcript::default();
        let mut language = language.map(str::to_owned);
        for (start, end, cut_before, cut_after) in windows(&speech.samples) {
            let at = start as f64 / RATE;
            let (lo, hi) = (cut_before as f64 / RATE, cut_after as f64 / RATE);
            let result = self.run_window(
                state,
                &speech.samples[start..end],
                language.as_deref(),
                deadline,
            );
            let (lang, segments, words) = match result {
                Ok(r) => r,
                Err(e) => {
                    // A failed or aborted run may leave the state half-written: start afresh.
                    *guard = None;
                    return Err(e);
                }
            };
            if language.is_none() {
                language = lang.clone();
            }
            if out.language.is_none() {
                out.language = lang;
            }
            let keep = |s: f64, e: f64| {
                let mid = at + (s + e) / 2.0;
                mid >= lo && mid <= hi
            };
            for mut s in segments {
                if keep(s.start, s.end) {
                    s.start += at + speech.offset;
                    s.end += at + speech.offset;
                    out.segments.push(s);
                }
            }
            for mut w in words {
                if keep(w.start, w.end) {
                    w.start += at + speech.offset;
                    w.end += at + speech.offset;
                    out.words.push(w);
                }
            }
        }
        Ok(out)
    }
}

/// An OpenAI-compatible `POST {base}/v1/audio/transcriptions` (e.g. a faster-whisper server).
/// Asked for `verbose_json` with segment and word times; plain `{"text"}` answers work too.
pub struct OpenAiAsr {
    pub base: String,
    pub key: Option<String>,
    pub model: String,
    pub http: reqwest::Client,
}

impl OpenAiAsr {
    pub fn label(&self) -> String {
        format!("openai-compatible:{}", self.model)
    }

    pub async fn transcribe(
        &self,
        speech: &Prepared,
        language: Option<&str>,
    ) -> Result<Transcript, crate::Failure> {
        use crate::Failure;
        let wav = wav_16k(&speech.samples);
        let file = reqwest::multipart::Part::bytes(wav)
            .file_name("audio.wav")
            .mime_str("audio/wav")
            .map_err(|e| Failure::Permanent(format!("content type: {e}")))?;
        let mut form = reqwest::multipart::Form::new()
            .part("file", file)
            .text("model", self.model.clone())
            .text("response_format", "verbose_json")
            .text("timestamp_granularities[]", "segment")
            .text("timestamp_granularities[]", "word");
        if let Some(lang) = language {
            form = form.text("language", lang.to_owned());
        }
        let mut req = self
            .http
            .post(format!(
                "{}/v1/audio/transcriptions",
                self.base.trim_end_matches('/')
            ))
            .multipart(form);
        if let Some(key) = &self.key {
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
        Ok(parse_openai(&body, speech))
    }
}

/// The OpenAI transcription answer as a transcript (times shifted by the trimmed offset).
fn parse_openai(body: &serde_json::Value, speech: &Prepared) -> Transcript {
    let num = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_f64()).unwrap_or(0.0);
    let text_of = |v: &serde_json::Value, k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .unwrap_or_default()
            .trim()
            .to_owned()
    };
    let mut t = Transcript {
        language: body
            .get("language")
            .and_then(|l| l.as_str())
            .map(language_code),
        ..Default::default()
    };
    let duration = speech.seconds();
    if let Some(segs) = body.get("segments").and_then(|s| s.as_array()) {
        for s in segs.iter().take(10_000) {
            t.segments.push(Segment {
                text: text_of(s, "text"),
                start: num(s, "start") + speech.offset,
                end: num(s, "end") + speech.offset,
                no_speech: num(s, "no_speech_prob") as f32,
            });
        }
    }
    if t.segments.is_empty() {
        let text = text_of(body, "text");
        if !text.is_empty() {
            t.segments.push(Segment {
                text,
                start: speech.offset,
                end: speech.offset + duration,
                no_speech: 0.0,
            });
        }
    }
    if let Some(words) = body.get("words").and_then(|w| w.as_array()) {
        for w in words.iter().take(100_000) {
            t.words.push(Word {
                text: text_of(w, "word"),
                start: num(w, "start") + speech.offset,
                end: num(w, "end") + speech.offset,
                prob: w.get("probability").and_then(|p| p.as_f64()).unwrap_or(1.0) as f32,
            });
        }
    }
    if t.words.is_empty() {
        // No word times: spread each segment's words over it, by length.
        for s in &t.segments {
            t.words.extend(spread_words(&s.text, s.start, s.end));
        }
    }
    t
}

/// Words of `text` spread over `start..end` in proportion to their length.
pub fn spread_words(text: &str, start: f64, end: f64) -> Vec<Word> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let total: usize = words.iter().map(|w| w.chars().count() + 1).sum();
    let mut at = start;
    let per = (end - start).max(0.0) / total.max(1) as f64;
    words
        .into_iter()
        .map(|w| {
            let len = (w.chars().count() + 1) as f64 * per;
            let word = Word {
                text: w.to_owned(),
                start: at,
                end: at + len,
                prob: 1.0,
            };
            at += len;
            word
        })
        .collect()
}

/// "english" or "en" → "en" (OpenAI answers with names).
fn language_code(l: &str) -> String {
    let l = l.trim().to_lowercase();
    if l.len() == 2 {
        return l;
    }
    (0..=whisper_rs::get_lang_max_id())
        .find(|&id| whisper_rs::get_lang_str_full(id) == Some(l.as_str()))
        .and_then(whisper_rs::get_lang_str)
        .map(str::to_owned)
        .unwrap_or(l)
}

/// 16-bit PCM WAV of 16 kHz mono samples.
pub fn wav_16k(samples: &[f32]) -> Vec<u8> {
    crate::audio::pcm16_wav(samples, SPEECH_RATE)
}

/// Where the model is by default: what `scripts/ensure-model.sh` prints.
pub fn default_model_path() -> PathBuf {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache.join("blacklist/models/ggml-base.bin")
}

/// How long hearing a call may take: a budget per minute of audio (short calls count as half a
/// minute, so model warm-up never fails them).
pub fn time_budget(seconds_of_audio: f64, per_minute: Duration) -> Duration {
    per_minute.mul_f64((seconds_of_audio.max(0.0) / 60.0).max(0.5))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tone(seconds: f64, level: f32) -> Vec<f32> {
        (0..(seconds * RATE) as usize)
            .map(|i| (i as f32 * 0.07).sin() * level)
            .collect()
    }

    #[test]
    fn silence_is_trimmed_and_the_offset_kept() {
        let mut s = vec![0.0f32; 32_000];
        s.extend(tone(2.0, 0.05));
        s.extend(vec![0.0f32; 16_000]);
        let p = prepare(&s).unwrap();
        assert!((p.offset - 1.7).abs() < 0.05, "{}", p.offset);
        assert!((p.seconds() - 2.6).abs() < 0.1, "{}", p.seconds());
        // Normalised towards -20 dBFS RMS: a 0.05 sine (≈ -29 dBFS) gets louder.
        let rms = (p.samples.iter().map(|v| v * v).sum::<f32>() / p.samples.len() as f32).sqrt();
        assert!(rms > 0.06, "{rms}");
    }

    #[test]
    fn digital_silence_has_nothing_to_prepare() {
        assert!(prepare(&vec![0.0f32; 48_000]).is_none());
        assert!(prepare(&[]).is_none());
    }

    #[test]
    fn loud_audio_is_never_clipped() {
        let p = prepare(&tone(2.0, 0.99)).unwrap();
        assert!(p.samples.iter().all(|v| v.abs() <= 0.951));
    }

    #[test]
    fn short_audio_is_one_window() {
        let s = tone(12.0, 0.1);
        assert_eq!(windows(&s), vec![(0, s.len(), 0, s.len())]);
    }

    #[test]
    fn long_audio_is_cut_at_pauses_into_windows_that_cover_it_once() {
        // 70 s of "speech" with a pause at 27 s and at 55 s.
        let mut s = tone(70.0, 0.1);
        for at in [27.0, 55.0] {
            let i = (at * RATE) as usize;
            s[i..i + 4000].iter_mut().for_each(|v| *v = 0.0);
        }
        let w = windows(&s);
        assert_eq!(w.len(), 3, "{w:?}");
        for (start, end, _, _) in &w {
            assert!(end - start <= (WINDOW_SECONDS * RATE) as usize);
        }
        // Cut in the pauses.
        assert!(((w[0].3 as f64 / RATE) - 27.1).abs() < 0.2, "{w:?}");
        assert!(((w[1].3 as f64 / RATE) - 55.1).abs() < 0.2, "{w:?}");
        // The owned ranges tile the audio.
        assert_eq!(w[0].2, 0);
        assert_eq!(w[0].3, w[1].2);
        assert_eq!(w[1].3, w[2].2);
        assert_eq!(w[2].3, s.len());
        // Neighbours overlap by a second.
        assert_eq!(w[0].1 - w[1].0, (OVERLAP_SECONDS * RATE) as usize * 2);
    }

    #[test]
    fn openai_answers_with_and_without_times_become_transcripts() {
        let speech = Prepared {
            samples: vec![0.0; 16_000 * 4],
            offset: 1.0,
            active_ratio: 1.0,
        };
        let t = parse_openai(
            &serde_json::json!({"text": "Read me the code now", "language": "english"}),
            &speech,
        );
        assert_eq!(t.language.as_deref(), Some("en"));
        assert_eq!(t.text(), "Read me the code now");
        assert_eq!(t.words.len(), 5);
        assert!((t.words[0].start - 1.0).abs() < 1e-9);
        assert!((t.words[4].end - 5.0).abs() < 1e-9);
        let t = parse_openai(
            &serde_json::json!({
                "text": "hi there",
                "segments": [{"start": 0.5, "end": 1.5, "text": " hi there", "no_speech_prob": 0.1}],
                "words": [{"word": "hi", "start": 0.5, "end": 0.9}, {"word": "there", "start": 0.9, "end": 1.5}]
            }),
            &speech,
        );
        assert_eq!(t.segments[0].start, 1.5);
        assert_eq!(t.words[1].text, "there");
        assert_eq!(t.words[1].end, 2.5);
    }
}
