//! Speech figures for `make bench`: model load time, real-time factor on a 10 s and a 60 s
//! phone call, peak memory of a worker, and calls a second with one worker — measured in a child
//! process of its own (`bench speech-child`), so its peak RSS is the worker's alone.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// Targets of issue 9.
pub const RTF_TARGET: f64 = 0.3;
pub const RSS_TARGET_MB: f64 = 600.0;
const RUNS: usize = 3;

/// The speech fixtures (flite and espeak-ng, phone band) joined and cut into a `seconds` call.
fn call_of(seconds: f64, repo: &Path) -> anyhow::Result<Vec<u8>> {
    let mut pcm = Vec::new();
    for name in ["speech-scam.flac", "speech-safe.flac"] {
        let bytes = std::fs::read(repo.join("worker/tests/fixtures").join(name))?;
        let decoded = worker::audio::decode(bytes, Some("audio/flac"), 600.0)
            .map_err(|e| anyhow::anyhow!("{name}: {e}"))?;
        pcm.extend(decoded.speech);
        pcm.extend(std::iter::repeat_n(0.0f32, 8_000));
    }
    let want = (seconds * worker::audio::SPEECH_RATE as f64) as usize;
    let mut call = Vec::with_capacity(want);
    while call.len() < want {
        call.extend_from_slice(&pcm[..pcm.len().min(want - call.len())]);
    }
    Ok(worker::speech::wav_16k(&call))
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

/// `bench speech-child FILE…`: what one worker process does, timed; JSON on stdout.
pub async fn child(files: Vec<PathBuf>) -> anyhow::Result<()> {
    let started = Instant::now();
    let analyzer = worker::build_analyzer(&worker::AnalysisConfig {
        asr_engine: "whisper".into(),
        ..Default::default()
    })?;
    let load = started.elapsed().as_secs_f64();
    let mut out = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f)?;
        let mut times = Vec::new();
        let mut audio = 0.0;
        let mut verdict = String::new();
        for _ in 0..RUNS {
            let t = Instant::now();
            let r = analyzer
                .analyze_bytes(bytes.clone(), Some("audio/wav"), None, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            times.push(t.elapsed().as_secs_f64());
            audio = r.audio.duration_seconds;
            verdict = r.verdict;
        }
        times.sort_by(f64::total_cmp);
        out.push(json!({"audio": audio, "median": times[RUNS / 2], "verdict": verdict}));
    }
    println!(
        "{}",
        json!({"load": load, "calls": out, "rssMb": peak_rss_mb(), "threads": worker::default_threads()})
    );
    Ok(())
}

/// Runs the child on a 10 s and a 60 s call and prints the figures.
pub async fn figures() -> anyhow::Result<()> {
    let repo = testkit::repo_root();
    let dir = testkit::TempDir::new("bl-bench-speech");
    let mut files = Vec::new();
    for secs in [10.0, 60.0] {
        let p = dir.0.join(format!("call-{secs}s.wav"));
        std::fs::write(&p, call_of(secs, &repo)?)?;
        files.push(p);
    }
    let out = tokio::time::timeout(
        Duration::from_secs(600),
        tokio::process::Command::new(std::env::current_exe()?)
            .arg("speech-child")
            .args(&files)
            .env("RUST_LOG", "warn")
            .output(),
    )
    .await??;
    anyhow::ensure!(
        out.status.success(),
        "speech child failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout)?;
    let rss = v["rssMb"].as_f64().unwrap_or(0.0);
    println!(
        "speech recognition (Whisper base, whisper.cpp, {} thread(s); one worker process)",
        v["threads"]
    );
    println!(
        "  model load                         {:>7.2} s",
        v["load"].as_f64().unwrap_or(0.0)
    );
    for c in v["calls"].as_array().into_iter().flatten() {
        let (audio, took) = (
            c["audio"].as_f64().unwrap_or(1.0),
            c["median"].as_f64().unwrap_or(0.0),
        );
        let rtf = took / audio;
        println!(
            "  {audio:>4.0} s call: analysed in {took:>6.2} s   real-time factor {rtf:.3} = {:.0}% of the {RTF_TARGET} ceiling   {:.2} calls/s with one worker",
            100.0 * rtf / RTF_TARGET,
            1.0 / took.max(1e-9)
        );
    }
    println!(
        "  peak RSS of the worker             {rss:>7.0} MB = {:.0}% of the {RSS_TARGET_MB:.0} MB ceiling",
        100.0 * rss / RSS_TARGET_MB
    );
    println!();
    Ok(())
}
