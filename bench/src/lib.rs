//! Shared pieces of the benchmarks: percentiles, a stack in one process, raw ceilings.

pub mod speech;

use std::time::{Duration, Instant};

use api::passwords::Passwords;
use testkit::{Db, Nats, S3};
use tokio::sync::watch;

/// The host platform's session-token key the bench signs with.
pub const SESSION_SECRET: &str = "bench-host-platform-session-secret";

/// p50/p99/max of a set of durations, in milliseconds.
pub fn percentiles(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    samples.sort();
    let at = |q: f64| {
        samples[((samples.len() as f64 - 1.0) * q).round() as usize].as_secs_f64() * 1000.0
    };
    (at(0.50), at(0.99), at(1.0))
}

/// Postgres, nats-server, one api instance (HTTP on a free port) and the projector.
pub struct Stack {
    pub db: Db,
    pub nats: Nats,
    pub s3: S3,
    pub base: String,
    stop: watch::Sender<bool>,
}

impl Stack {
    pub async fn start() -> anyhow::Result<Stack> {
        let db = Db::fresh().await?;
        let nats = Nats::start().await?;
        let s3 = S3::start().await?;
        let config = api::Config {
            conn: conn(&db.url, &nats, "api"),
            http_addr: "127.0.0.1:0".parse()?,
            app_env: "bench".into(),
            admin_jwt_secret: Some("benchmark-secret-benchmark-secret-bench".to_owned().into()),
            admin_setup_token: None,
            metrics_token: None,
            webhook_signing_key: None,
            webhook_allow_private_targets: true,
            admin_token_ttl_seconds: 900,
            // Throughput, not the failed-login limiter (an attempt counts until it succeeds).
            login_max_failures_per_minute: 1_000_000,
            ipv6_prefix_len: 64,
            password_hash_threads: 0,
            trusted_proxies: "127.0.0.1/32".parse().map_err(anyhow::Error::msg)?,
            relay_enabled: true,
            max_body_bytes: 1 << 20,
            request_timeout_seconds: 30,
            upload_timeout_seconds: 300,
            header_read_timeout_seconds: 10,
            http_max_connections: 4096,
            session_jwt_secret: Some(SESSION_SECRET.to_owned().into()),
            session_jwt_public_key: None,
            session_jwt_audience: None,
            session_jwt_issuer: None,
            session_jwt_max_lifetime_seconds: 86_400,
            auto_ban_threshold: 4,
            turnstile_secret_key: None,
            turnstile_verify_url: "http://127.0.0.1:9/siteverify".into(),
            rate_limit_public_writes_per_minute: 1_000_000,
            rate_limit_public_reads_per_minute: 1_000_000,
            blacklist_cache_seconds: 5,
            nats_callout_issuer_seed: Some(nats.callout_seed.clone().into()),
            nats_sys_user: Some("sys".into()),
            nats_sys_password: Some(testkit::nats_password("sys").to_owned().into()),
            worker_credential_ttl_seconds: 300,
            s3: api::storage::S3Config {
                s3_endpoint_url: s3.endpoint.clone(),
                s3_access_key_id: s3.access_key.clone(),
                s3_secret_access_key: s3.secret_key.clone().into(),
                s3_bucket_name: s3.bucket.clone(),
                s3_region: "us-east-1".into(),
            },
            max_upload_bytes: 25 * 1024 * 1024,
            web: Default::default(),
            weights: Default::default(),
            retention: Default::default(),
            uploads_via_api: false,
            email: pipeline::notifier::EmailConfig::off(),
        };
        let api = api::Api::start(&config, Passwords::default()).await?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, rx) = watch::channel(false);
        let router = api.router.clone();
        tokio::spawn(common::ops::serve(
            listener,
            router,
            api.http_limits,
            common::shutdown::stopped(rx.clone()),
        ));
        tokio::spawn(async move {
            common::shutdown::stopped(rx.clone()).await;
            api.shutdown().await;
        });
        let projector_js = async_nats::jetstream::new(nats.client("projector").await?);
        let projector = projector::Projector::new(db.pool.clone(), projector_js);
        tokio::spawn(projector.run(common::shutdown::stopped(stop.subscribe())));
        let http = reqwest::Client::new();
        let ready = testkit::eventually(Duration::from_secs(30), || {
            let r = http.get(format!("{base}/readyz")).send();
            async move { r.await.ok()?.status().is_success().then_some(()) }
        })
        .await;
        anyhow::ensure!(ready.is_some(), "the api never became ready");
        Ok(Stack {
            db,
            nats,
            s3,
            base,
            stop,
        })
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

pub fn conn(db_url: &str, nats: &Nats, user: &str) -> common::config::Connections {
    common::config::Connections {
        database_url: db_url.to_owned(),
        database_max_connections: 16,
        nats_url: nats.url(),
        nats_user: Some(user.to_owned()),
        nats_password: Some(testkit::nats_password(user).to_owned().into()),
        jetstream_replicas: 1,
        log_format: "text".into(),
    }
}

/// pgbench: single-row INSERT transactions, `clients` connections, `seconds` long. TPS.
pub async fn pgbench_insert_tps(db: &Db, clients: u32, seconds: u32) -> anyhow::Result<f64> {
    sqlx::query("CREATE TABLE IF NOT EXISTS bench_rows (id bigserial PRIMARY KEY, v int NOT NULL)")
        .execute(&db.pool)
        .await?;
    let script =
        std::env::temp_dir().join(format!("bl-pgbench-{}.sql", uuid::Uuid::new_v4().simple()));
    std::fs::write(&script, "INSERT INTO bench_rows (v) VALUES (1);\n")?;
    let out = tokio::process::Command::new("pgbench")
        .args([
            "-n",
            "-c",
            &clients.to_string(),
            "-j",
            "2",
            "-T",
            &seconds.to_string(),
            "-f",
        ])
        .arg(&script)
        .arg(&db.url)
        .output()
        .await?;
    let _ = std::fs::remove_file(&script);
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| {
            l.strip_prefix("tps = ")
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse().ok())
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "pgbench gave no tps: {text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
}

/// Raw JetStream publish loop on a throw-away stream: `n` messages of `size` bytes, each
/// awaited in turn (sync) or pipelined with up to `window` in flight. Messages/s.
pub async fn jetstream_publish_rate(
    nats: &Nats,
    n: usize,
    size: usize,
    window: usize,
) -> anyhow::Result<f64> {
    let js = async_nats::jetstream::new(nats.client("api").await?);
    let name = format!("RAW{}", uuid::Uuid::new_v4().simple());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: name.clone(),
        subjects: vec![format!("raw.{name}")],
        ..Default::default()
    })
    .await?;
    let payload = bytes_of(size);
    let subject = format!("raw.{name}");
    let started = Instant::now();
    let mut inflight = std::collections::VecDeque::new();
    for _ in 0..n {
        inflight.push_back(js.publish(subject.clone(), payload.clone()).await?);
        if inflight.len() >= window {
            inflight.pop_front().expect("non-empty").await?;
        }
    }
    for ack in inflight {
        ack.await?;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    Ok(rate)
}

fn bytes_of(size: usize) -> bytes::Bytes {
    bytes::Bytes::from(vec![b'x'; size])
}

/// Result of a closed-loop HTTP load run.
pub struct Load {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub statuses: std::collections::BTreeMap<u16, usize>,
}

/// `concurrency` clients send `make(i)` back to back for `seconds`.
pub async fn load<F>(concurrency: usize, seconds: f64, make: F) -> Load
where
    F: Fn(usize) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = std::sync::Arc::new(make);
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let make = make.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut statuses = std::collections::BTreeMap::new();
            let mut i = c;
            while Instant::now() < deadline {
                let t = Instant::now();
                let status = match make(i).send().await {
                    Ok(r) => {
                        let s = r.status().as_u16();
                        let _ = r.bytes().await;
                        s
                    }
                    Err(_) => 0,
                };
                lat.push(t.elapsed());
                *statuses.entry(status).or_insert(0) += 1;
                i += concurrency;
            }
            (lat, statuses)
        }));
    }
    let mut all = Vec::new();
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        if let Ok((lat, st)) = t.await {
            all.extend(lat);
            for (k, v) in st {
                *statuses.entry(k).or_insert(0) += v;
            }
        }
    }
    let rps = all.len() as f64 / started.elapsed().as_secs_f64();
    let (p50_ms, p99_ms, _) = percentiles(all);
    Load {
        rps,
        p50_ms,
        p99_ms,
        statuses,
    }
}

/// A bare axum route (`GET /` → "ok") on a free port: the ceiling of the HTTP stack alone.
pub async fn bare_axum() -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(base)
}

/// A host-platform session token for `user`.
pub fn session_token(user: uuid::Uuid) -> String {
    let claims = serde_json::json!({"sub": user, "exp": chrono::Utc::now().timestamp() + 3600, "name": format!("u-{user}")});
    jsonwebtoken::encode(
        &jsonwebtoken::Header::default(),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(SESSION_SECRET.as_bytes()),
    )
    .expect("signing")
}

/// Resident memory of this process, in bytes.
pub fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map(|pages| pages * 4096)
        .unwrap_or(0)
}

/// Raw JetStream work queue: publish a message, a pull consumer takes and acks it; `n`
/// messages one after another. Returns (messages/s, p50 ms, p99 ms) of publish→ack.
pub async fn jetstream_workqueue_loop(nats: &Nats, n: usize) -> anyhow::Result<(f64, f64, f64)> {
    use async_nats::jetstream::consumer::{pull, AckPolicy};
    use futures::StreamExt;
    let js = async_nats::jetstream::new(nats.client("api").await?);
    let name = format!("WQ{}", uuid::Uuid::new_v4().simple());
    let stream = js
        .create_stream(async_nats::jetstream::stream::Config {
            name: name.clone(),
            subjects: vec![format!("wq.{name}")],
            retention: async_nats::jetstream::stream::RetentionPolicy::WorkQueue,
            ..Default::default()
        })
        .await?;
    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("c".into()),
            ack_policy: AckPolicy::Explicit,
            ..Default::default()
        })
        .await?;
    let mut messages = consumer.messages().await?;
    let payload = bytes::Bytes::from(vec![b'x'; 300]);
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        js.publish(format!("wq.{name}"), payload.clone())
            .await?
            .await?;
        let m = messages
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("no message"))?
            .map_err(|e| anyhow::anyhow!(e))?;
        m.double_ack().await.map_err(|e| anyhow::anyhow!(e))?;
        lat.push(t.elapsed());
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    let (p50, p99, _) = percentiles(lat);
    js.delete_stream(&name).await?;
    Ok((rate, p50, p99))
}
