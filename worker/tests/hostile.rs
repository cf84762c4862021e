//! Hostile audio never takes the worker down: each file is decoded in a limited child process
//! (worker/src/sandbox.rs). `worker analyze` goes on to the next file after each one, so one run
//! over a corpus of broken files shows the worker staying up.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// The 26-byte WebM from the hardening review: an EBML header of unknown size whose DocType
/// length says 2^48 bytes. Decoded in-process it aborts on a 281 TB allocation.
const EVIL_WEBM: &[u8] = &[
    0x1a, 0x45, 0xdf, 0xa3, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x42, 0x82, 0x01, 0x00,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x77, 0x65, 0x62, 0x6d,
];

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// A deterministic corpus: each accepted format truncated at several points and bit-flipped
/// with several seeds.
fn mutated(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for name in [
        "tone-1500ms.webm",
        "tone-1500ms.opus",
        "tone-1500ms.mp3",
        "tone-1500ms.flac",
        "tone-1500ms.m4a",
        "tone-1500ms.aac",
    ] {
        let bytes = std::fs::read(fixtures().join(name)).unwrap();
        let ext = name.rsplit('.').next().unwrap();
        for cut in [7, 33, 100, bytes.len() / 2] {
            let p = dir.join(format!("cut{cut}-{name}"));
            std::fs::write(&p, &bytes[..cut.min(bytes.len())]).unwrap();
            out.push(p);
        }
        for seed in 1u64..=4 {
            let mut b = bytes.clone();
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            for _ in 0..(b.len() / 50).max(3) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % b.len();
                b[i] ^= (x >> 32) as u8 | 1;
            }
            let p = dir.join(format!("flip{seed}.{ext}"));
            std::fs::write(&p, b).unwrap();
            out.push(p);
        }
    }
    let wav = worker::audio::tone_wav(1.0, 8000);
    let mut huge = wav.clone();
    huge[40..44].copy_from_slice(&u32::MAX.to_le_bytes());
    let p = dir.join("huge-data-size.wav");
    std::fs::write(&p, huge).unwrap();
    out.push(p);
    out
}

#[test]
fn hostile_and_broken_files_fail_one_by_one_and_the_worker_stays_up() {
    let dir = std::env::temp_dir().join(format!("worker-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let evil = dir.join("evil.webm");
    std::fs::write(&evil, EVIL_WEBM).unwrap();
    let good = fixtures().join("tone-1500ms.flac");
    let mut files = vec![evil.clone()];
    files.extend(mutated(&dir));
    // A good file last: still analysed after every broken one.
    files.push(good.clone());
    let out = Command::new(env!("CARGO_BIN_EXE_worker"))
        .arg("analyze")
        .args(&files)
        .env("ASR_ENGINE", "none")
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the worker died: {:?}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), files.len(), "one answer per file");
    // The 2^48-byte WebM: refused with a reason, not a crash.
    let first = &lines[0];
    let err = first["error"].as_str().unwrap_or_default();
    assert!(
        err.contains("decoder could not handle this file"),
        "{first}"
    );
    // Every broken file: a result or a reason.
    for l in &lines {
        assert!(
            l.get("result").is_some() || l["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{l}"
        );
    }
    // The good one after them all.
    let last = lines.last().unwrap();
    assert!(
        (last["result"]["audio"]["durationSeconds"].as_f64().unwrap() - 1.5).abs() < 0.1,
        "{last}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_decoder_child_over_its_memory_limit_fails_the_file_with_a_reason() {
    // A valid 7-minute 48 kHz WAV (40 MB) cannot be decoded in 64 MiB of address space: the
    // child runs out and the file fails with a reason; with the default limit it decodes.
    let dir = std::env::temp_dir().join(format!("worker-memlimit-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let big = dir.join("long.wav");
    std::fs::write(&big, worker::audio::tone_wav(420.0, 48_000)).unwrap();
    let run = |limit: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_worker"));
        cmd.arg("analyze")
            .arg(&big)
            .env("ASR_ENGINE", "none")
            .env("RUST_LOG", "warn");
        if let Some(l) = limit {
            cmd.env("DECODER_MEMORY_MB", l);
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success());
        serde_json::from_slice::<Value>(out.stdout.split(|b| *b == b'\n').next().unwrap()).unwrap()
    };
    let limited = run(Some("64"));
    assert!(
        limited["error"]
            .as_str()
            .is_some_and(|e| e.contains("decoder could not handle this file")),
        "{limited}"
    );
    let normal = run(None);
    assert!(
        (normal["result"]["audio"]["durationSeconds"]
            .as_f64()
            .unwrap()
            - 420.0)
            .abs()
            < 0.1
    );
    std::fs::remove_dir_all(&dir).ok();
}
