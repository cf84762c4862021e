//! Decoding with symphonia: audio facts, the speech as 16 kHz mono for recognition, and a clear
//! refusal of undecodable or empty audio.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL, CODEC_TYPE_OPUS};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use events::task::AudioFacts;

use crate::resample::Resampler;

/// The rate Whisper listens at.
pub const SPEECH_RATE: u32 = 16_000;

/// Shortest audio worth analysing.
pub const MIN_SECONDS: f64 = 0.5;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AudioError {
    #[error("the file is not audio this worker can decode: {0}")]
    Undecodable(String),
    #[error("the recording is empty (under {MIN_SECONDS} s of audio)")]
    Empty,
}

/// The accepted formats: file extension and content types (the first is the canonical one).
const FORMATS: &[(&str, &[&str])] = &[
    ("wav", &["audio/wav", "audio/x-wav", "audio/wave"]),
    ("mp3", &["audio/mpeg", "audio/mp3"]),
    ("ogg", &["audio/ogg"]),
    ("webm", &["audio/webm"]),
    ("m4a", &["audio/mp4", "audio/m4a", "audio/x-m4a"]),
    ("flac", &["audio/flac", "audio/x-flac"]),
    ("aac", &["audio/aac"]),
];

fn extension(content_type: Option<&str>) -> Option<&'static str> {
    let ct = content_type?.split(';').next()?.trim();
    FORMATS
        .iter()
        .find(|(_, types)| types.contains(&ct))
        .map(|(ext, _)| *ext)
}

/// The content type of a local file, from its extension (`worker analyze`).
pub fn content_type_of(path: &std::path::Path) -> Option<&'static str> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    let ext = match ext.as_str() {
        "opus" | "oga" => "ogg",
        "mp4" => "m4a",
        e => e,
    };
    FORMATS
        .iter()
        .find(|(e, _)| *e == ext)
        .map(|(_, types)| types[0])
}

/// Decoded audio: its facts and the first `max_seconds` of it as 16 kHz mono.
#[derive(Debug)]
pub struct Decoded {
    pub facts: AudioFacts,
    /// Mono, 16 kHz, in -1..1.
    pub speech: Vec<f32>,
    /// The recording was longer than the cap; `speech` holds its beginning.
    pub truncated: bool,
}

/// Downmixes interleaved chunks to mono and converts them to 16 kHz as they are decoded, so
/// memory follows the speech kept (64 kB a second), not the source format.
struct Speech {
    resampler: Option<(u32, Resampler)>,
    out: Vec<f32>,
    mono: Vec<f32>,
    max_samples: usize,
    truncated: bool,
}

impl Speech {
    fn new(max_seconds: f64) -> Speech {
        Speech {
            resampler: None,
            out: Vec::new(),
            mono: Vec::new(),
            max_samples: (max_seconds.max(0.0) * SPEECH_RATE as f64) as usize,
            truncated: false,
        }
    }

    fn push(&mut self, samples: &[f32], channels: u32, rate: u32) {
        if self.truncated || rate == 0 {
            return;
        }
        if self.out.len() >= self.max_samples {
            self.truncated = true;
            return;
        }
        let channels = channels.max(1) as usize;
        self.mono.clear();
        self.mono.extend(
            samples
                .chunks(channels)
                .map(|frame| frame.iter().sum::<f32>() / channels as f32),
        );
        // A stream whose rate changes mid-way (allowed by some containers) restarts the filter.
        if self.resampler.as_ref().map(|(r, _)| *r) != Some(rate) {
            if let Some((_, mut old)) = self.resampler.take() {
                old.finish(&mut self.out);
            }
            self.resampler = Some((rate, Resampler::new(rate, SPEECH_RATE)));
        }
        if let Some((_, r)) = self.resampler.as_mut() {
            r.push(&self.mono, &mut self.out);
        }
    }

    fn finish(mut self) -> (Vec<f32>, bool) {
        if let Some((_, mut r)) = self.resampler.take() {
            r.finish(&mut self.out);
        }
        let truncated = self.truncated || self.out.len() > self.max_samples;
        self.out.truncate(self.max_samples);
        (self.out, truncated)
    }
}

fn dbfs(x: f64) -> f64 {
    if x <= 1e-10 {
        -200.0
    } else {
        (20.0 * x.log10() * 10.0).round() / 10.0
    }
}

/// Running level statistics over interleaved samples.
struct Levels {
    frames: u64,
    peak: f64,
    sum_sq: f64,
    count: u64,
    windows: u64,
    silent_windows: u64,
    win_sq: f64,
    win_n: u64,
}

impl Levels {
    fn new() -> Levels {
        Levels {
            frames: 0,
            peak: 0.0,
            sum_sq: 0.0,
            count: 0,
            windows: 0,
            silent_windows: 0,
            win_sq: 0.0,
            win_n: 0,
        }
    }

    /// Adds `samples` (interleaved, `channels` wide, at `rate` Hz).
    fn push(&mut self, samples: &[f32], channels: u32, rate: u32) {
        let channels = channels.max(1);
        self.frames += samples.len() as u64 / channels as u64;
        let window = (rate as u64 * channels as u64 / 20).max(1);
        for &s in samples {
            let s = s as f64;
            self.peak = self.peak.max(s.abs());
            self.sum_sq += s * s;
            self.count += 1;
            self.win_sq += s * s;
            self.win_n += 1;
            if self.win_n == window {
                self.windows += 1;
                if dbfs((self.win_sq / self.win_n as f64).sqrt()) < -50.0 {
                    self.silent_windows += 1;
                }
                self.win_sq = 0.0;
                self.win_n = 0;
            }
        }
    }

    fn facts(&self, rate: u32, channels: u32, codec: String) -> Result<AudioFacts, AudioError> {
        let duration = if rate > 0 {
            self.frames as f64 / rate as f64
        } else {
            0.0
        };
        if self.frames == 0 || duration < MIN_SECONDS {
            return Err(AudioError::Empty);
        }
        let silence = if self.windows > 0 {
            self.silent_windows as f64 / self.windows as f64
        } else {
            1.0
        };
        Ok(AudioFacts {
            duration_seconds: (duration * 1000.0).round() / 1000.0,
            sample_rate: rate,
            channels,
            codec,
            peak_dbfs: dbfs(self.peak),
            rms_dbfs: dbfs((self.sum_sq / self.count.max(1) as f64).sqrt()),
            silence_ratio: (silence * 1000.0).round() / 1000.0,
        })
    }
}

/// Decodes every packet of the first audio track. Opus (the usual codec of browser recordings
/// in WebM and Ogg) is decoded with the pure-Rust `opus-decoder`; every other codec by symphonia.
/// A decoder that panics on hostile input makes the file undecodable, not the worker crash.
pub fn analyse(bytes: Vec<u8>, content_type: Option<&str>) -> Result<AudioFacts, AudioError> {
    decode(bytes, content_type, 0.0).map(|d| d.facts)
}

/// Decodes the file: its facts, and its first `max_seconds` as 16 kHz mono for recognition.
pub fn decode(
    bytes: Vec<u8>,
    content_type: Option<&str>,
    max_seconds: f64,
) -> Result<Decoded, AudioError> {
    let content_type = content_type.map(str::to_owned);
    std::panic::catch_unwind(move || decode_inner(bytes, content_type.as_deref(), max_seconds))
        .unwrap_or_else(|_| {
            Err(AudioError::Undecodable(
                "the decoder rejected the stream".into(),
            ))
        })
}

fn decode_inner(
    bytes: Vec<u8>,
    content_type: Option<&str>,
    max_seconds: f64,
) -> Result<Decoded, AudioError> {
    let undecodable = |e: &dyn std::fmt::Display| AudioError::Undecodable(e.to_string());
    let mut hint = Hint::new();
    if let Some(ext) = extension(content_type) {
        hint.with_extension(ext);
    }
    let mss = MediaSourceStream::new(Box::new(Cursor::new(bytes)), Default::default());
    let probed = symphonia::default::get_probe()
        .format(
            &hint,
            mss,
            &FormatOptions::default(),
            &MetadataOptions::default(),
        )
        .map_err(|e| undecodable(&e))?;
    let mut format = probed.format;
    let track = format
        .tracks()
        .iter()
        .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
        .ok_or_else(|| AudioError::Undecodable("no audio track".into()))?;
    let track_id = track.id;
    let params = track.codec_params.clone();
    let mut levels = Levels::new();
    let mut speech = Speech::new(max_seconds);
    let done = |levels: Levels, speech: Speech, rate: u32, channels: u32, codec: String| {
        let facts = levels.facts(rate, channels, codec)?;
        let (speech, truncated) = speech.finish();
        Ok(Decoded {
            facts,
            speech,
            truncated,
        })
    };

    if params.codec == CODEC_TYPE_OPUS {
        const RATE: u32 = 48_000;
        let channels = params
            .channels
            .map(|c| c.count() as u32)
            .unwrap_or(1)
            .clamp(1, 2);
        let mut decoder =
            opus_decoder::OpusDecoder::new(RATE, channels as usize).map_err(|e| undecodable(&e))?;
        let mut pcm = vec![0f32; decoder.max_frame_size_per_channel() * channels as usize];
        let mut decoded_any = false;
        loop {
            let packet = match format.next_packet() {
                Ok(p) => p,
                Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
                Err(SymError::ResetRequired) => break,
                Err(e) => return Err(undecodable(&e)),
            };
            if packet.track_id() != track_id || packet.data.is_empty() {
                continue;
            }
            match decoder.decode_float(&packet.data, &mut pcm, false) {
                Ok(n) => {
                    decoded_any = true;
                    levels.push(&pcm[..n * channels as usize], channels, RATE);
                    speech.push(&pcm[..n * channels as usize], channels, RATE);
                }
                // A damaged packet is skipped, as symphonia does for its codecs.
                Err(_) if decoded_any => continue,
                Err(e) => return Err(undecodable(&e)),
            }
        }
        return done(levels, speech, RATE, channels, "opus".into());
    }

    let codec = symphonia::default::get_codecs()
        .get_codec(params.codec)
        .map(|d| d.short_name.to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut decoder = symphonia::default::get_codecs()
        .make(&params, &DecoderOptions::default())
        .map_err(|e| undecodable(&e))?;
    let (mut rate, mut channels) = (params.sample_rate.unwrap_or(0), 0u32);
    let mut buf: Option<SampleBuffer<f32>> = None;
    loop {
        let packet = match format.next_packet() {
            Ok(p) => p,
            Err(SymError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(SymError::ResetRequired) => break,
            Err(e) => return Err(undecodable(&e)),
        };
        if packet.track_id() != track_id {
            continue;
        }
        let decoded = match decoder.decode(&packet) {
            Ok(d) => d,
            Err(SymError::DecodeError(_)) => continue,
            Err(e) => return Err(undecodable(&e)),
        };
        let spec = *decoded.spec();
        rate = spec.rate;
        channels = spec.channels.count() as u32;
        let b = buf.get_or_insert_with(|| SampleBuffer::new(decoded.capacity() as u64, spec));
        if b.capacity() < decoded.capacity() {
            *b = SampleBuffer::new(decoded.capacity() as u64, spec);
        }
        b.copy_interleaved_ref(decoded);
        levels.push(b.samples(), channels, rate);
        speech.push(b.samples(), channels, rate);
    }
    done(levels, speech, rate, channels, codec)
}

/// A mono 16-bit PCM WAV of `seconds` of a 440 Hz tone (tests and examples).
pub fn tone_wav(seconds: f64, sample_rate: u32) -> Vec<u8> {
    let n = (seconds * sample_rate as f64) as u32;
    let tone: Vec<f32> = (0..n)
        .map(|i| {
            ((i as f64 * 440.0 * 2.0 * std::f64::consts::PI / sample_rate as f64).sin() * 0.5)
                as f32
        })
        .collect();
    pcm16_wav(&tone, sample_rate)
}

/// A mono 16-bit PCM WAV of `samples` (in -1..1) at `sample_rate`.
pub fn pcm16_wav(samples: &[f32], sample_rate: u32) -> Vec<u8> {
    let n = samples.len() as u32;
    let mut out = Vec::with_capacity(44 + samples.len() * 2);
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + n * 2).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&sample_rate.to_le_bytes());
    out.extend_from_slice(&(sample_rate * 2).to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&16u16.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&(n * 2).to_le_bytes());
    for s in samples {
        out.extend_from_slice(&((s.clamp(-1.0, 1.0) * i16::MAX as f32) as i16).to_le_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wav_gives_its_facts() {
        let facts = analyse(tone_wav(2.0, 8000), Some("audio/wav")).unwrap();
        assert_eq!((facts.sample_rate, facts.channels), (8000, 1));
        assert!((facts.duration_seconds - 2.0).abs() < 0.01);
        assert!((facts.peak_dbfs - -6.0).abs() < 0.5, "{}", facts.peak_dbfs);
        assert!(facts.silence_ratio < 0.05);
    }

    #[test]
    fn ogg_opus_from_a_browser_style_recording_decodes() {
        // 1.5 s of a 440 Hz tone at half scale, encoded with opusenc (24 kbit/s).
        let bytes = include_bytes!("../tests/fixtures/tone-1500ms.opus").to_vec();
        let facts = analyse(bytes, Some("audio/ogg")).unwrap();
        assert_eq!(
            (facts.codec.as_str(), facts.sample_rate, facts.channels),
            ("opus", 48_000, 1)
        );
        assert!(
            (facts.duration_seconds - 1.5).abs() < 0.05,
            "{}",
            facts.duration_seconds
        );
        assert!((facts.peak_dbfs - -6.0).abs() < 1.5, "{}", facts.peak_dbfs);
        assert!(facts.silence_ratio < 0.1, "{}", facts.silence_ratio);
    }

    #[test]
    fn mp3_flac_and_aac_decode() {
        // The same 1.5 s tone through lame (32 kbit/s), flac, and ffmpeg's AAC (m4a and ADTS).
        for (bytes, content_type, codec) in [
            (
                include_bytes!("../tests/fixtures/tone-1500ms.mp3").to_vec(),
                "audio/mpeg",
                "mp3",
            ),
            (
                include_bytes!("../tests/fixtures/tone-1500ms.flac").to_vec(),
                "audio/flac",
                "flac",
            ),
            (
                include_bytes!("../tests/fixtures/tone-1500ms.m4a").to_vec(),
                "audio/mp4",
                "aac",
            ),
            (
                include_bytes!("../tests/fixtures/tone-1500ms.aac").to_vec(),
                "audio/aac",
                "aac",
            ),
        ] {
            let facts = analyse(bytes, Some(content_type)).unwrap();
            assert_eq!(facts.codec, codec);
            // lossy encoders pad both ends
            assert!(
                (facts.duration_seconds - 1.5).abs() < 0.1,
                "{codec}: {}",
                facts.duration_seconds
            );
            assert!(
                (facts.peak_dbfs - -6.0).abs() < 1.5,
                "{codec}: {}",
                facts.peak_dbfs
            );
        }
    }

    #[test]
    fn webm_opus_as_browsers_record_it_decodes() {
        // The same stream muxed into WebM (mkvmerge --webm), MediaRecorder's usual output.
        let bytes = include_bytes!("../tests/fixtures/tone-1500ms.webm").to_vec();
        let facts = analyse(bytes, Some("audio/webm")).unwrap();
        assert_eq!(facts.codec, "opus");
        assert!(
            (facts.duration_seconds - 1.5).abs() < 0.05,
            "{}",
            facts.duration_seconds
        );
        assert!((facts.peak_dbfs - -6.0).abs() < 1.5, "{}", facts.peak_dbfs);
    }

    #[test]
    fn a_damaged_opus_stream_never_crashes_the_worker() {
        let mut bytes = include_bytes!("../tests/fixtures/tone-1500ms.opus").to_vec();
        for i in (200..bytes.len()).step_by(7) {
            bytes[i] = bytes[i].wrapping_mul(31).wrapping_add(17);
        }
        // Whatever survives of it is decoded or refused; the call returns either way.
        match analyse(bytes, Some("audio/ogg")) {
            Ok(facts) => assert_eq!(facts.codec, "opus"),
            Err(e) => assert!(matches!(e, AudioError::Undecodable(_) | AudioError::Empty)),
        }
    }

    #[test]
    fn the_speech_is_16_khz_mono_and_capped() {
        let d = decode(tone_wav(2.0, 8000), Some("audio/wav"), 60.0).unwrap();
        assert!(
            (d.speech.len() as i64 - 32_000).abs() <= 2,
            "{}",
            d.speech.len()
        );
        assert!(!d.truncated);
        let peak = d.speech.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!((peak - 0.5).abs() < 0.02, "{peak}");
        let d = decode(tone_wav(2.0, 8000), Some("audio/wav"), 1.0).unwrap();
        assert_eq!(d.speech.len(), 16_000);
        assert!(d.truncated);
        // The facts still describe the whole recording.
        assert!((d.facts.duration_seconds - 2.0).abs() < 0.01);
        let d = decode(
            include_bytes!("../tests/fixtures/tone-1500ms.webm").to_vec(),
            Some("audio/webm"),
            60.0,
        )
        .unwrap();
        assert!((d.speech.len() as f64 / 16_000.0 - 1.5).abs() < 0.05);
    }

    #[test]
    fn garbage_and_empty_audio_are_refused_with_a_reason() {
        assert!(matches!(
            analyse(b"this is not audio".to_vec(), Some("audio/wav")),
            Err(AudioError::Undecodable(_))
        ));
        assert!(matches!(
            analyse(Vec::new(), None),
            Err(AudioError::Undecodable(_))
        ));
        assert_eq!(
            analyse(tone_wav(0.1, 8000), Some("audio/wav")),
            Err(AudioError::Empty)
        );
    }
}
