//! The worker hears real speech: `worker analyze` with the real Whisper model (WHISPER_MODEL,
//! set by `make test` through scripts/ensure-model.sh) on phone-band recordings made with
//! Debian's speech synthesisers (flite, espeak-ng; 8 kHz, band-passed, FLAC).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn model() -> PathBuf {
    let path = std::env::var_os("WHISPER_MODEL")
        .map(PathBuf::from)
        .expect("WHISPER_MODEL is not set: run the tests with `make test` (scripts/test-env.sh)");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn analyze(files: &[PathBuf], extra: &[&str]) -> Vec<Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("analyze")
        .args(extra)
        .args(files)
        .env("WHISPER_MODEL", model())
        .env("RUST_LOG", "warn")
        .env_remove("ASR_URL")
        .env_remove("ASR_ENGINE")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn tone_file(dir: &Path) -> PathBuf {
    let p = dir.join("tone.wav");
    std::fs::write(&p, worker::audio::tone_wav(6.0, 8000)).unwrap();
    p
}

fn silence_file(dir: &Path) -> PathBuf {
    // The tone's header with every sample zeroed.
    let mut wav = worker::audio::tone_wav(5.0, 8000);
    wav[44..].iter_mut().for_each(|b| *b = 0);
    let p = dir.join("silence.wav");
    std::fs::write(&p, wav).unwrap();
    p
}

#[test]
fn a_spoken_scam_call_is_heard_and_flagged_with_the_words_and_when_they_were_said() {
    let dir = tempfile_dir();
    let results = analyze(
        &[
            fixture("speech-scam.flac"),
            fixture("speech-safe.flac"),
            tone_file(&dir),
            silence_file(&dir),
        ],
        &[],
    );
    let scam = &results[0]["result"];
    assert_eq!(scam["verdict"], "scam", "{scam:#}");
    assert_eq!(scam["language"], "en");
    let transcript = scam["transcript"].as_str().unwrap().to_lowercase();
    assert!(transcript.contains("google play"), "{transcript}");
    let kinds: Vec<&str> = scam["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["kind"].as_str().unwrap())
        .collect();
    for want in [
        "authority_impersonation",
        "unusual_payment",
        "secrecy_isolation",
    ] {
        assert!(kinds.contains(&want), "missing {want} in {kinds:?}");
    }
    // Each indicator says when its words were said, inside the 13 s recording, in order.
    let pay = scam["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "unusual_payment")
        .unwrap();
    let span = &pay["spans"][0];
    let (start, end) = (
        span["start"].as_f64().unwrap(),
        span["end"].as_f64().unwrap(),
    );
    assert!(start > 3.0 && end < 13.2 && start < end, "{pay}");
    assert!(
        span["text"]
            .as_str()
            .unwrap()
            .to_lowercase()
            .contains("google play"),
        "{pay}"
    );
    let secrecy = scam["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["kind"] == "secrecy_isolation")
        .unwrap();
    assert!(
        secrecy["spans"][0]["start"].as_f64().unwrap() > start,
        "{secrecy}"
    );
    assert!(!scam["segments"].as_array().unwrap().is_empty());
    assert!(scam["explanation"]
        .as_str()
        .unwrap()
        .starts_with("Likely a scam"));
    let analyzer = &scam["analyzer"];
    assert!(
        analyzer["speechModel"]
            .as_str()
            .unwrap()
            .starts_with("whisper-base@35512038"),
        "{analyzer}"
    );
    assert!(analyzer["version"]
        .as_str()
        .unwrap()
        .contains("+asr:whisper-base@"));

    let safe = &results[1]["result"];
    assert_eq!(safe["verdict"], "safe", "{safe:#}");
    assert!(safe["transcript"]
        .as_str()
        .unwrap()
        .to_lowercase()
        .contains("reminder"));

    for r in &results[2..] {
        assert_eq!(r["result"]["verdict"], "inconclusive", "{r:#}");
        assert!(r["result"]["explanation"]
            .as_str()
            .unwrap()
            .starts_with("No verdict"));
    }
}

#[test]
fn a_dangerous_caller_makes_a_harmless_call_suspicious() {
    let results = analyze(
        &[fixture("speech-safe.flac")],
        &["--caller-status", "dangerous"],
    );
    let r = &results[0]["result"];
    assert_eq!(r["verdict"], "suspicious", "{r:#}");
    assert!(r["indicators"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["kind"] == "caller_number_reported"));
}

#[test]
fn an_analysis_that_overruns_its_time_budget_fails_with_the_reason() {
    // 0.1 s per minute of audio: the 13 s call gets 0.05 s, far less than recognition needs.
    let results = analyze(
        &[fixture("speech-scam.flac")],
        &["--analysis-seconds-per-minute", "0.1"],
    );
    let err = results[0]["error"].as_str().unwrap_or_default();
    assert!(err.contains("took longer than"), "{:#}", results[0]);
}

#[test]
fn a_corrupt_or_missing_model_stops_the_worker_at_start_with_a_clear_message() {
    let dir = tempfile_dir();
    // A known model's file name with other bytes: refused by its checksum.
    let mut bytes = std::fs::read(model()).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0xff;
    let corrupt = dir.join("ggml-base.bin");
    std::fs::write(&corrupt, &bytes).unwrap();
    // An unknown file that is not a model at all: refused by the loader.
    let garbage = dir.join("mine.bin");
    std::fs::write(&garbage, b"not a model").unwrap();
    for (path, says) in [
        (corrupt.clone(), "is corrupt"),
        (garbage, "could not be loaded"),
        (dir.join("absent.bin"), "does not exist"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_worker"))
            .env_clear()
            .env("WORKER_TOKEN", "blw_00000000-0000-0000-0000-000000000001_x")
            .env("NATS_URL", "nats://127.0.0.1:9")
            .env("WHISPER_MODEL", &path)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(says) && err.contains("ensure-model.sh"),
            "{path:?}: {err}"
        );
    }
    std::fs::remove_dir_all(dir).ok();
}

fn tempfile_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("worker-speech-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
