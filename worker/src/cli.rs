//! `worker analyze FILE…`: the analysis of local recordings, one JSON line per file on stdout:
//! `{"file", "seconds", "result"}` or `{"file", "error"}`. Used by `make eval` and by anyone who
//! wants to see what the analyzer makes of a call without running the system.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context as _;
use events::task::CallerStanding;
use serde_json::json;

use crate::{build_analyzer, AnalysisConfig, Failure};

#[derive(clap::Parser, Debug)]
#[command(
    name = "worker analyze",
    about = "Analyse local recordings (no NATS needed)"
)]
pub struct AnalyzeCli {
    #[command(flatten)]
    pub analysis: AnalysisConfig,
    /// BCP 47 language hint (detected when absent).
    #[arg(long)]
    pub language: Option<String>,
    /// Pretend the caller's number has this standing (`dangerous`, `reported`, …).
    #[arg(long)]
    pub caller_status: Option<String>,
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
    /// Judge again the transcripts in this output of an earlier `worker analyze` (JSON lines)
    /// instead of hearing audio: a rules change is tried in seconds. Word times are spread over
    /// each segment.
    #[arg(long, conflicts_with = "files")]
    pub from_results: Option<PathBuf>,
    /// Audio files (WAV, MP3, FLAC, Ogg/WebM Opus, M4A, AAC).
    #[arg(required_unless_present = "from_results")]
    pub files: Vec<PathBuf>,
}

/// `--from-results`: each earlier result's segments judged again by today's rules.
fn rejudge(cli: &AnalyzeCli, earlier: &std::path::Path) -> anyhow::Result<()> {
    use crate::analyze::Heard;
    use crate::speech::{spread_words, Segment, Transcript};
    let mut config = cli.analysis.clone();
    config.asr_engine = "none".into();
    let analyzer = build_analyzer(&config)?;
    let text = std::fs::read_to_string(earlier)
        .with_context(|| format!("reading {}", earlier.display()))?;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let mut d: serde_json::Value = serde_json::from_str(line)?;
        let Some(old) = d.get("result").cloned() else {
            println!("{d}");
            continue;
        };
        let old: events::task::AnalysisResult = serde_json::from_value(old)?;
        if old.segments.is_empty() {
            println!("{d}");
            continue;
        }
        let segments: Vec<Segment> = old
            .segments
            .iter()
            .map(|s| Segment {
                text: s.text.clone(),
                start: s.start,
                end: s.end,
                no_speech: 0.0,
            })
            .collect();
        let words = segments
            .iter()
            .flat_map(|s| spread_words(&s.text, s.start, s.end))
            .collect();
        let heard = Heard::Speech(Transcript {
            language: old.language.clone(),
            segments,
            words,
        });
        let caller = old.caller_number.clone();
        d["result"] = serde_json::to_value(analyzer.judge(heard, old.audio.clone(), caller))?;
        println!("{d}");
    }
    Ok(())
}

pub async fn analyze_files(cli: AnalyzeCli) -> anyhow::Result<()> {
    if let Some(earlier) = &cli.from_results {
        return rejudge(&cli, earlier);
    }
    let started = Instant::now();
    let analyzer = build_analyzer(&cli.analysis)?;
    eprintln!(
        "analyzer {} loaded in {:.2} s",
        analyzer.identity().version,
        started.elapsed().as_secs_f64()
    );
    for file in &cli.files {
        let bytes = std::fs::read(file).with_context(|| format!("reading {}", file.display()))?;
        let caller = cli.caller_status.as_ref().map(|s| CallerStanding {
            phone_number: "+10000000000".into(),
            status: s.clone(),
        });
        let t = Instant::now();
        let out = analyzer
            .analyze_bytes(
                bytes,
                crate::audio::content_type_of(file),
                cli.language.as_deref(),
                caller,
            )
            .await;
        let line = match out {
            Ok(result) => json!({
                "file": file,
                "seconds": t.elapsed().as_secs_f64(),
                "result": result,
            }),
            Err(Failure::Permanent(e)) | Err(Failure::Retry(e)) => json!({
                "file": file,
                "seconds": t.elapsed().as_secs_f64(),
                "error": e,
            }),
        };
        println!("{line}");
    }
    Ok(())
}

/// `worker train-model --out FILE [--language en] [--version V] CALLS.jsonl…`: trains the learned
/// check on labelled written calls (`{"label": "scam"|"safe", "text": …}` per line; other lines
/// are skipped), deterministically. `make train-model` runs it on the tuning split of the audio
/// corpus and the written development set; the held-out split is never used.
#[derive(clap::Parser, Debug)]
#[command(
    name = "worker train-model",
    about = "Train the analyzer's learned check"
)]
pub struct TrainCli {
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value = "en")]
    pub language: String,
    #[arg(long)]
    pub version: Option<String>,
    #[arg(long, default_value_t = 400)]
    pub epochs: usize,
    /// Probability from which the check speaks (see docs/voice-analysis.md#the-learned-check).
    #[arg(long, default_value_t = 0.85)]
    pub threshold: f64,
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
}

pub fn train_model(cli: TrainCli) -> anyhow::Result<()> {
    let rules = crate::tactics::Rules::built_in(&cli.language)?
        .with_context(|| format!("no built-in rules for {:?}", cli.language))?;
    let mut examples = Vec::new();
    for input in &cli.inputs {
        let text = std::fs::read_to_string(input)
            .with_context(|| format!("reading {}", input.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line)
                .with_context(|| format!("{}: not JSON lines", input.display()))?;
            let (Some(label), Some(text)) = (v["label"].as_str(), v["text"].as_str()) else {
                continue;
            };
            if label != "scam" && label != "safe" {
                continue;
            }
            let stems = rules.stems(text);
            let refs: Vec<&str> = stems.iter().map(String::as_str).collect();
            examples.push((crate::model::features(&refs), label == "scam"));
        }
    }
    anyhow::ensure!(examples.len() >= 10, "too few labelled calls to train on");
    let version = cli.version.clone().unwrap_or_else(|| rules.version.clone());
    let mut model = crate::model::Model::train(&cli.language, &version, &examples, cli.epochs);
    anyhow::ensure!(
        (0.5..0.999).contains(&cli.threshold),
        "--threshold must be within 0.5..0.999"
    );
    model.threshold = cli.threshold;
    let right = examples
        .iter()
        .filter(|(f, y)| (model.score(f) >= 0.5) == *y)
        .count();
    std::fs::write(&cli.out, serde_json::to_string_pretty(&model)? + "\n")
        .with_context(|| format!("writing {}", cli.out.display()))?;
    eprintln!(
        "trained on {} calls, {} features; {right} classified right on the training data; wrote {}",
        examples.len(),
        model.weights.len(),
        cli.out.display()
    );
    Ok(())
}
