//! Decoding with symphonia: audio facts, and a clear refusal of undecodable or empty audio.

use std::io::Cursor;

use symphonia::core::audio::SampleBuffer;
use symphonia::core::codecs::{DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymError;
use symphonia::core::formats::FormatOptions;
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

use events::task::AudioFacts;

/// Shortest audio worth analysing.
pub const MIN_SECONDS: f64 = 0.5;

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AudioError {
    #[error("the file is not audio this worker can decode: {0}")]
    Undecodable(String),
    #[error("the recording is empty (under {MIN_SECONDS} s of audio)")]
    Empty,
}

fn extension(content_type: Option<&str>) -> Option<&'static str> {
    Some(match content_type?.split(';').next()?.trim() {
        "audio/wav" | "audio/x-wav" | "audio/wave" => "wav",
        "audio/mpeg" | "audio/mp3" => "mp3",
        "audio/ogg" => "ogg",
        "audio/webm" => "webm",
        "audio/mp4" | "audio/m4a" | "audio/x-m4a" => "m4a",
        "audio/flac" | "audio/x-flac" => "flac",
        "audio/aac" => "aac",
        _ => return None,
    })
}

fn dbfs(x: f64) -> f64 {
    if x <= 1e-10 {
        -200.0
    } else {
        (20.0 * x.log10() * 10.0).round() / 10.0
    }
}

/// Decodes every packet of the first audio track.
pub fn analyse(bytes: Vec<u8>, content_type: Option<&str>) -> Result<AudioFacts, AudioError> {
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
    let codec = symphonia::default::get_codecs()
        .get_codec(track.codec_params.codec)
        .map(|d| d.short_name.to_string())
        .unwrap_or_else(|| "unknown".into());
    let mut decoder = symphonia::default::get_codecs()
        .make(&track.codec_params, &DecoderOptions::default())
        .map_err(|e| undecodable(&e))?;

    let (mut sample_rate, mut channels) = (track.codec_params.sample_rate.unwrap_or(0), 0u32);
    let (mut frames, mut peak, mut sum_sq, mut count) = (0u64, 0f64, 0f64, 0u64);
    let (mut windows, mut silent_windows, mut win_sq, mut win_n) = (0u64, 0u64, 0f64, 0u64);
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
        sample_rate = spec.rate;
        channels = spec.channels.count() as u32;
        frames += decoded.frames() as u64;
        let b = buf.get_or_insert_with(|| SampleBuffer::new(decoded.capacity() as u64, spec));
        if b.capacity() < decoded.capacity() {
            *b = SampleBuffer::new(decoded.capacity() as u64, spec);
        }
        b.copy_interleaved_ref(decoded);
        let window = (sample_rate as u64 * channels.max(1) as u64 / 20).max(1);
        for &s in b.samples() {
            let s = s as f64;
            peak = peak.max(s.abs());
            sum_sq += s * s;
            count += 1;
            win_sq += s * s;
            win_n += 1;
            if win_n == window {
                windows += 1;
                if dbfs((win_sq / win_n as f64).sqrt()) < -50.0 {
                    silent_windows += 1;
                }
                win_sq = 0.0;
                win_n = 0;
            }
        }
    }
    let duration = if sample_rate > 0 {
        frames as f64 / sample_rate as f64
    } else {
        0.0
    };
    if frames == 0 || duration < MIN_SECONDS {
        return Err(AudioError::Empty);
    }
    Ok(AudioFacts {
        duration_seconds: (duration * 1000.0).round() / 1000.0,
        sample_rate,
        channels,
        codec,
        peak_dbfs: dbfs(peak),
        rms_dbfs: dbfs((sum_sq / count.max(1) as f64).sqrt()),
        silence_ratio: if windows > 0 {
            ((silent_windows as f64 / windows as f64) * 1000.0).round() / 1000.0
        } else {
            1.0
        },
    })
}

/// A mono 16-bit PCM WAV of `seconds` of a 440 Hz tone (tests and examples).
pub fn tone_wav(seconds: f64, sample_rate: u32) -> Vec<u8> {
    let n = (seconds * sample_rate as f64) as u32;
    let mut out = Vec::with_capacity(44 + n as usize * 2);
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
    for i in 0..n {
        let v = (i as f64 * 440.0 * 2.0 * std::f64::consts::PI / sample_rate as f64).sin() * 0.5;
        out.extend_from_slice(&((v * i16::MAX as f64) as i16).to_le_bytes());
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
