//! The analysis worker. Runs anywhere with nothing but `NATS_URL` and `WORKER_TOKEN`.
//!
//! ```text
//!  TASKS (durable "workers", pull) ──► job ──► GET audio_url ──► symphonia: facts + 16 kHz mono
//!        in-progress acks every ack_wait/3          ──► speech: Whisper (offline, default)
//!                                                       or an OpenAI-compatible service
//!                                             ──► tactics: indicators with words and times
//!                                             ──► KV phone-reputation: caller standing
//!  results.<workerId> ◄── Completed | Failed{retryable}      then ack (or nak to retry,
//!  workers.heartbeat.<workerId> every 5 s                      term for a malformed job)
//! ```
//!
//! Its NATS permissions (granted by the api's auth callout) cover only these subjects.

pub mod analyze;
pub mod audio;
pub mod cli;
pub mod model;
pub mod resample;
pub mod sandbox;
pub mod speech;
pub mod tactics;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use async_nats::jetstream::{self, AckKind};
use common::config::Secret;
use events::task::{Job, WorkerResult};
use futures::StreamExt;
use serde_json::json;
use uuid::Uuid;

pub use analyze::{Analyzer, Failure, Hearing};

#[derive(clap::Parser, Clone, Debug)]
#[command(
    name = "worker",
    version,
    about = "blacklist voice-call analysis worker"
)]
pub struct Config {
    /// NATS server(s) of the control plane.
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4333")]
    pub nats_url: String,
    /// The token from `POST /api/v1/admin/workers` (shown once).
    #[arg(long, env = "WORKER_TOKEN", hide_env_values = true)]
    pub worker_token: Secret,
    /// Optional address of /healthz, /readyz, /metrics.
    #[arg(long, env = "HTTP_ADDR")]
    pub http_addr: Option<SocketAddr>,
    /// Jobs analysed at once.
    #[arg(long, env = "WORKER_CONCURRENCY", default_value_t = 2)]
    pub concurrency: usize,
    #[command(flatten)]
    pub analysis: AnalysisConfig,
    #[arg(long, env = "LOG_FORMAT", default_value = "text")]
    pub log_format: String,
}

/// Log filter when `RUST_LOG` is unset: whisper.cpp's model-loading lines only as warnings.
pub const LOG_DEFAULT: &str = "info,whisper_rs=warn";

/// How the worker analyses (also what `worker analyze FILE` reads).
#[derive(clap::Args, Clone, Debug)]
pub struct AnalysisConfig {
    /// Speech recognition: `whisper` (offline, in this process), `openai` (an OpenAI-compatible
    /// service at ASR_URL), `none`, or `auto` (openai when ASR_URL is set, else whisper).
    #[arg(long, env = "ASR_ENGINE", default_value = "auto")]
    pub asr_engine: String,
    /// The whisper.cpp model file (`scripts/ensure-model.sh` prints its path).
    /// Default: ~/.cache/blacklist/models/ggml-base.bin.
    #[arg(long, env = "WHISPER_MODEL")]
    pub whisper_model: Option<std::path::PathBuf>,
    /// Threads for one recognition (default: every core but one, at least one). whisper.cpp's
    /// threads wait for each other by spinning: sharing every core with other busy processes
    /// (api, Postgres, NATS on one machine) slows it many times over. On a machine of its own,
    /// set it to the number of cores.
    #[arg(long, env = "WHISPER_THREADS")]
    pub whisper_threads: Option<usize>,
    /// OpenAI-compatible transcription endpoint base (e.g. http://asr:8000).
    #[arg(long, env = "ASR_URL")]
    pub asr_url: Option<String>,
    #[arg(long, env = "ASR_API_KEY", hide_env_values = true)]
    pub asr_api_key: Option<Secret>,
    #[arg(long, env = "ASR_MODEL", default_value = "whisper-1")]
    pub asr_model: String,
    /// A rules file (worker/rules/<lang>.json format) replacing the built-in rules of its language.
    #[arg(long, env = "ANALYZER_RULES_FILE")]
    pub rules_file: Option<std::path::PathBuf>,
    /// A learned-check file (worker/rules/<lang>.model.json format) replacing the built-in one
    /// of its language; `none` turns the learned check off.
    #[arg(long, env = "ANALYZER_MODEL_FILE")]
    pub model_file: Option<std::path::PathBuf>,
    /// `process`: each file is decoded in a child process of this binary under memory, CPU and
    /// time limits, so a hostile file fails its task instead of taking the worker down;
    /// `inline`: in this process (only for embedding the analyzer in another program).
    #[arg(long, env = "WORKER_DECODER", default_value = "process")]
    pub decoder: String,
    /// Address space a decoder child may use, MiB.
    #[arg(long, env = "DECODER_MEMORY_MB", default_value_t = 1024)]
    pub decoder_memory_mb: u64,
    /// CPU seconds a decoder child may use; wall-clock limit: twice that.
    #[arg(long, env = "DECODER_CPU_SECONDS", default_value_t = 60)]
    pub decoder_cpu_seconds: u64,
    /// Audio analysed at most, in seconds (the rest of a longer call is not heard).
    #[arg(long, env = "MAX_AUDIO_SECONDS", default_value_t = 1800.0)]
    pub max_audio_seconds: f64,
    /// Time hearing a call may take per minute of audio, in seconds (calls under 30 s count as
    /// half a minute); beyond it the task fails for good, with the reason.
    #[arg(
        long,
        env = "ANALYSIS_SECONDS_PER_AUDIO_MINUTE",
        default_value_t = 120.0
    )]
    pub analysis_seconds_per_minute: f64,
    /// Largest audio file fetched, in bytes.
    #[arg(long, env = "MAX_UPLOAD_BYTES", default_value_t = 25 * 1024 * 1024)]
    pub max_audio_bytes: usize,
}

impl Default for AnalysisConfig {
    /// The defaults of the command line (Whisper base from the model cache).
    fn default() -> Self {
        use clap::Parser as _;
        #[derive(clap::Parser)]
        struct Only {
            #[command(flatten)]
            a: AnalysisConfig,
        }
        Only::parse_from(["worker"]).a
    }
}

/// Every core but one (at least one): see `WHISPER_THREADS`.
pub fn default_threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get().saturating_sub(1))
        .unwrap_or(1)
        .max(1)
}

/// The analyzer the configuration asks for. A missing or corrupt speech model, or a bad rules
/// file, stops the worker here, at start, with a message that says what to do.
pub fn build_analyzer(config: &AnalysisConfig) -> anyhow::Result<Analyzer> {
    let mut rules = Vec::new();
    for (lang, _, _) in tactics::BUILT_IN {
        rules.extend(tactics::Rules::built_in(lang)?);
    }
    if let Some(path) = &config.rules_file {
        let json =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let custom = tactics::Rules::parse(&json)
            .with_context(|| format!("analyzer rules {}", path.display()))?;
        rules.retain(|r| r.language != custom.language);
        rules.push(custom);
    }
    match config.model_file.as_deref() {
        Some(p) if p == std::path::Path::new("none") => {
            rules.iter_mut().for_each(|r| r.model = None)
        }
        Some(path) => {
            let json = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            let model = model::Model::parse(&json)
                .with_context(|| format!("analyzer model {}", path.display()))?;
            let r = rules
                .iter_mut()
                .find(|r| r.language == model.language)
                .with_context(|| {
                    format!(
                        "{}: no rules for its language {:?}",
                        path.display(),
                        model.language
                    )
                })?;
            r.model = Some(model);
        }
        None => {}
    }
    let asr_url = config.asr_url.clone().filter(|u| !u.is_empty());
    let engine = match (config.asr_engine.as_str(), &asr_url) {
        ("auto", Some(_)) => "openai",
        ("auto", None) => "whisper",
        (e, _) => e,
    };
    let hearing = match engine {
        "whisper" => {
            let path = config
                .whisper_model
                .clone()
                .unwrap_or_else(speech::default_model_path);
            let threads = config.whisper_threads.unwrap_or_else(default_threads);
            let started = std::time::Instant::now();
            let whisper = speech::Whisper::load(&path, threads)?;
            tracing::info!(model = %whisper.label(), path = %path.display(), threads,
                seconds = started.elapsed().as_secs_f64(), "speech model loaded");
            Hearing::Whisper(Arc::new(whisper))
        }
        "openai" => Hearing::OpenAi(speech::OpenAiAsr {
            base: asr_url.context("ASR_ENGINE=openai needs ASR_URL")?,
            key: config.asr_api_key.as_ref().map(|k| k.expose().to_owned()),
            model: config.asr_model.clone(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()
                .context("HTTP client")?,
        }),
        "none" => Hearing::None,
        other => anyhow::bail!("ASR_ENGINE must be whisper, openai, none or auto, not {other:?}"),
    };
    anyhow::ensure!(
        config.max_audio_seconds > 0.0 && config.max_audio_seconds.is_finite(),
        "MAX_AUDIO_SECONDS must be positive"
    );
    anyhow::ensure!(
        config.analysis_seconds_per_minute > 0.0 && config.analysis_seconds_per_minute <= 86_400.0,
        "ANALYSIS_SECONDS_PER_AUDIO_MINUTE must be above 0 and at most 86400"
    );
    let decoder = match config.decoder.as_str() {
        "process" => match sandbox::own_worker_binary() {
            Some(binary) => Some(sandbox::Limits {
                binary,
                memory_bytes: config.decoder_memory_mb.max(64) * 1024 * 1024,
                cpu_seconds: config.decoder_cpu_seconds.max(1),
                timeout: Duration::from_secs(config.decoder_cpu_seconds.max(1) * 2),
            }),
            None => {
                tracing::warn!(
                    "not running as the worker binary: audio is decoded in this process"
                );
                None
            }
        },
        "inline" => None,
        other => anyhow::bail!("WORKER_DECODER must be process or inline, not {other:?}"),
    };
    Ok(Analyzer::new(
        rules,
        hearing,
        decoder,
        config.max_audio_bytes,
        config.max_audio_seconds,
        Duration::from_secs_f64(config.analysis_seconds_per_minute),
    ))
}

/// A spawned task that ends when its owner is dropped: if a job or the worker itself is
/// cancelled, its in-progress acks and heartbeats stop too, so JetStream redelivers the job.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Counters reported in heartbeats.
#[derive(Default)]
pub struct Stats {
    completed: AtomicI64,
    failed: AtomicI64,
    current: Mutex<Option<Uuid>>,
}

pub struct Worker {
    pub id: Uuid,
    client: async_nats::Client,
    js: jetstream::Context,
    analyzer: Arc<Analyzer>,
    concurrency: usize,
    stats: Arc<Stats>,
    /// How often to tell JetStream a job is still in progress: a third of the consumer's
    /// ack_wait, read when the job stream opens.
    progress_every: std::sync::atomic::AtomicU64,
}

impl Worker {
    /// Connects with the token (retrying in the background while NATS or the callout is away).
    pub async fn connect(config: &Config) -> anyhow::Result<Worker> {
        let token = config.worker_token.expose().to_owned();
        let id = events::worker::token_worker_id(&token)
            .context("WORKER_TOKEN is not a worker token")?;
        // The model and rules first: a bad one stops the worker before it takes any job.
        let analyzer = build_analyzer(&config.analysis)?;
        let auth = common::nats::NatsAuth {
            token: Some(token),
            // Its permissions cover only this prefix: it cannot read other clients' replies.
            inbox_prefix: Some(events::worker::inbox_prefix(id)),
            ..Default::default()
        };
        let client =
            common::nats::connect(&config.nats_url, &format!("worker-{id}"), &auth).await?;
        let js = jetstream::new(client.clone());
        Ok(Worker {
            id,
            client,
            js,
            analyzer: Arc::new(analyzer),
            concurrency: config.concurrency.max(1),
            stats: Arc::default(),
            progress_every: std::sync::atomic::AtomicU64::new(15_000),
        })
    }

    pub fn client(&self) -> &async_nats::Client {
        &self.client
    }

    /// Pulls and analyses jobs, and sends heartbeats, until `shutdown`. Jobs in progress at
    /// shutdown are left unacknowledged and redelivered to another worker.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let _heartbeat = AbortOnDrop(tokio::spawn(heartbeats(
            self.client.clone(),
            self.id,
            self.stats.clone(),
        )));
        common::shutdown::supervise("job stream", shutdown, || async {
            self.consume().await?;
            Ok(common::shutdown::Next::Again)
        })
        .await;
        let _ = self.client.flush().await;
    }

    async fn consume(&self) -> anyhow::Result<()> {
        let mut consumer: jetstream::consumer::PullConsumer = self
            .js
            .get_consumer_from_stream(
                events::topology::WORKERS_CONSUMER,
                events::topology::TASKS_STREAM,
            )
            .await?;
        let ack_wait = consumer.info().await?.config.ack_wait;
        let every = (ack_wait / 3).max(Duration::from_millis(200));
        self.progress_every
            .store(every.as_millis() as u64, Ordering::Relaxed);
        let messages = consumer
            .stream()
            .max_messages_per_batch(self.concurrency)
            .heartbeat(Duration::from_secs(5))
            .messages()
            .await?;
        messages
            .for_each_concurrent(self.concurrency, |msg| async move {
                match msg {
                    Ok(msg) => self.handle(msg).await,
                    Err(e) => tracing::warn!(error = %e, "pull failed"),
                }
            })
            .await;
        anyhow::bail!("the job stream ended")
    }

    /// Publishes on this worker's result subject and waits until JetStream stored it.
    async fn publish_result(&self, result: &WorkerResult) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(result)?;
        self.js
            .publish(events::task::results_subject(self.id), bytes.into())
            .await?
            .await?;
        Ok(())
    }

    /// One job: analyse, publish the outcome, then ack (or nak/term).
    pub async fn handle(&self, msg: jetstream::Message) {
        let job: Job = match serde_json::from_slice(&msg.payload) {
            Ok(job) => job,
            Err(e) => {
                tracing::error!(error = %e, "malformed job: terminated, not retried");
                metrics::counter!("worker_jobs_total", "outcome" => "malformed").increment(1);
                let _ = msg.ack_with(AckKind::Term).await;
                return;
            }
        };
        // Which delivery of the job this is: the control plane records only the result of the
        // worker and delivery that started last.
        let delivery = msg.info().ok().map(|i| i.delivered.max(0) as u64);
        // Tell the control plane who has the job, and wait until it is stored: a result whose
        // start is not recorded is not accepted, so without it the job is retried later.
        let started = WorkerResult::Started {
            task_id: job.task_id,
            worker_id: self.id,
            delivery,
        };
        if let Err(e) = self.publish_result(&started).await {
            tracing::warn!(error = %e, task = %job.task_id, "start not recorded; retrying later");
            let _ = msg
                .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                .await;
            return;
        }
        *self
            .stats
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(job.task_id);
        // Tell JetStream we are alive while a long analysis runs, so ack_wait does not expire.
        let every = Duration::from_millis(self.progress_every.load(Ordering::Relaxed));
        let progress = AbortOnDrop({
            let (client, reply) = (self.client.clone(), msg.reply.clone());
            tokio::spawn(async move {
                let Some(reply) = reply else { return };
                loop {
                    tokio::time::sleep(every).await;
                    let _ = client.publish(reply.clone(), "+WPI".into()).await;
                }
            })
        });
        let outcome = self.analyzer.analyze(&self.js, &job).await;
        drop(progress);
        *self
            .stats
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
        let result = match outcome {
            Ok(result) => WorkerResult::Completed {
                task_id: job.task_id,
                worker_id: self.id,
                delivery,
                result: Box::new(result),
            },
            Err(Failure::Retry(reason)) => {
                tracing::warn!(task = %job.task_id, reason, "transient failure; redelivery later");
                metrics::counter!("worker_jobs_total", "outcome" => "retry").increment(1);
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(10))))
                    .await;
                return;
            }
            Err(Failure::Permanent(reason)) => WorkerResult::Failed {
                task_id: job.task_id,
                worker_id: self.id,
                delivery,
                reason,
                retryable: false,
            },
        };
        let completed = matches!(result, WorkerResult::Completed { .. });
        match self.publish_result(&result).await {
            Ok(()) => {
                let _ = msg.double_ack().await;
                let counter = if completed {
                    &self.stats.completed
                } else {
                    &self.stats.failed
                };
                counter.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("worker_jobs_total", "outcome" => if completed { "completed" } else { "failed" }).increment(1);
                tracing::info!(task = %job.task_id, completed, "job done");
            }
            Err(e) => {
                // Not acked: the job is redelivered and analysed again.
                tracing::warn!(error = %e, task = %job.task_id, "result not published");
                let _ = msg
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(5))))
                    .await;
            }
        }
    }
}

async fn heartbeats(client: async_nats::Client, id: Uuid, stats: Arc<Stats>) {
    let subject = events::worker::heartbeat_subject(id);
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        let current = *stats
            .current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let body = json!({
            "currentTaskId": current,
            "tasksCompleted": stats.completed.load(Ordering::Relaxed),
            "tasksFailed": stats.failed.load(Ordering::Relaxed),
            "version": env!("CARGO_PKG_VERSION"),
        });
        if let Err(e) = client
            .publish(subject.clone(), body.to_string().into())
            .await
        {
            tracing::debug!(error = %e, "heartbeat not sent");
        }
    }
}

/// `main`: connect, serve the ops endpoints if asked, work until SIGTERM.
pub async fn run(config: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let worker = Worker::connect(&config).await?;
    tracing::info!(worker = %worker.id, "worker starting");
    let ops = match config.http_addr {
        Some(addr) => {
            let readiness = common::ops::Readiness {
                db: None,
                nats: Some(worker.client().clone()),
                checks: vec![],
            };
            Some(
                common::ops::OpsServer::start(addr, readiness)
                    .await
                    .with_context(|| format!("binding {addr}"))?,
            )
        }
        None => None,
    };
    worker.run(shutdown).await;
    if let Some(ops) = ops {
        ops.stop().await;
    }
    Ok(())
}
