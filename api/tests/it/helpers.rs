//! A whole stack per test: database, nats-server, api instance(s) and the projector.

use std::time::Duration;

use api::passwords::Passwords;
use api::{Api, Config};
use common::config::Connections;
use reqwest::StatusCode;
use serde_json::Value;
use testkit::{Db, Nats, S3};
use tokio::sync::watch;

pub const JWT_SECRET: &str = "integration-test-secret-integration-test";
/// The host platform's session-token key in tests.
pub const SESSION_SECRET: &str = "host-platform-session-secret-for-tests";

pub struct Stack {
    pub db: Db,
    pub nats: Nats,
    pub s3: S3,
    pub api: Instance,
    pub http: reqwest::Client,
    projector_stop: watch::Sender<bool>,
    projector: Option<tokio::task::JoinHandle<()>>,
}

pub struct Instance {
    pub base: String,
    stop: watch::Sender<bool>,
    server: tokio::task::JoinHandle<()>,
}

impl Instance {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.server.await;
    }
}

pub fn connections(db_url: &str, nats: &Nats, user: &str) -> Connections {
    Connections {
        database_url: db_url.to_owned(),
        database_max_connections: 16,
        nats_url: nats.url(),
        nats_user: Some(user.to_owned()),
        nats_password: Some(testkit::nats_password(user).to_owned().into()),
        jetstream_replicas: 1,
        log_format: "text".into(),
    }
}

pub fn config(db_url: &str, nats: &Nats) -> Config {
    Config {
        conn: connections(db_url, nats, "api"),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        app_env: "test".into(),
        admin_jwt_secret: Some(JWT_SECRET.to_owned().into()),
        admin_setup_token: None,
        metrics_token: None,
        webhook_signing_key: None,
        webhook_allow_private_targets: true,
        admin_token_ttl_seconds: 900,
        login_max_failures_per_minute: 10,
        ipv6_prefix_len: 64,
        password_hash_threads: 0,
        trusted_proxies: "127.0.0.1/32".parse().unwrap(),
        relay_enabled: true,
        max_body_bytes: 64 * 1024,
        request_timeout_seconds: 5,
        upload_timeout_seconds: 30,
        header_read_timeout_seconds: 4,
        http_max_connections: 512,
        session_jwt_secret: Some(SESSION_SECRET.to_owned().into()),
        session_jwt_public_key: None,
        session_jwt_audience: None,
        session_jwt_issuer: None,
        session_jwt_max_lifetime_seconds: 86_400,
        auto_ban_threshold: 4,
        turnstile_secret_key: None,
        turnstile_verify_url: "http://127.0.0.1:9/siteverify".into(),
        rate_limit_public_writes_per_minute: 10_000,
        rate_limit_public_reads_per_minute: 100_000,
        blacklist_cache_seconds: 0,
        nats_callout_issuer_seed: Some(nats.callout_seed.clone().into()),
        nats_sys_user: Some("sys".into()),
        nats_sys_password: Some(testkit::nats_password("sys").to_owned().into()),
        worker_credential_ttl_seconds: 300,
        s3: api::storage::S3Config {
            s3_endpoint_url: "http://127.0.0.1:9".into(),
            s3_access_key_id: "none".into(),
            s3_secret_access_key: "none".to_owned().into(),
            s3_bucket_name: "blacklist-audio".into(),
            s3_region: "us-east-1".into(),
        },
        max_upload_bytes: 1024 * 1024,
        web: Default::default(),
        weights: Default::default(),
        retention: Default::default(),
        uploads_via_api: false,
        email: pipeline::notifier::EmailConfig::off(),
    }
}

/// [`config`] with storage on `s3`.
pub fn config_with_s3(db_url: &str, nats: &Nats, s3: &S3) -> Config {
    let mut cfg = config(db_url, nats);
    cfg.s3 = api::storage::S3Config {
        s3_endpoint_url: s3.endpoint.clone(),
        s3_access_key_id: s3.access_key.clone(),
        s3_secret_access_key: s3.secret_key.clone().into(),
        s3_bucket_name: s3.bucket.clone(),
        s3_region: "us-east-1".into(),
    };
    cfg
}

/// Starts an api instance serving on a random port.
pub async fn start_api(config: Config) -> Instance {
    let api = Api::start(&config, Passwords::default())
        .await
        .expect("api starts");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, rx) = watch::channel(false);
    let server = tokio::spawn(async move {
        common::ops::serve(
            listener,
            api.router.clone(),
            api.http_limits,
            common::shutdown::stopped(rx),
        )
        .await
        .unwrap();
        api.shutdown().await;
    });
    Instance { base, stop, server }
}

impl Stack {
    pub async fn start() -> Stack {
        common::telemetry::init("text");
        let db = Db::fresh().await.expect("database");
        let nats = Nats::start().await.expect("nats-server");
        let s3 = S3::start().await.expect("s3 server");
        let api = start_api(config_with_s3(&db.url, &nats, &s3)).await;
        let mut stack = Stack {
            db,
            nats,
            s3,
            api,
            http: reqwest::Client::new(),
            projector_stop: watch::channel(false).0,
            projector: None,
        };
        stack.start_projector().await;
        stack.wait_ready(&stack.api.base.clone()).await;
        stack
    }

    pub async fn start_projector(&mut self) {
        let client = self.nats.client("projector").await.unwrap();
        let js = async_nats::jetstream::new(client);
        let (stop, rx) = watch::channel(false);
        let projector = projector::Projector::new(self.db.pool.clone(), js);
        self.projector = Some(tokio::spawn(projector.run(common::shutdown::stopped(rx))));
        self.projector_stop = stop;
    }

    pub async fn stop_projector(&mut self) {
        let _ = self.projector_stop.send(true);
        if let Some(p) = self.projector.take() {
            let _ = p.await;
        }
    }

    pub async fn wait_ready(&self, base: &str) {
        let ok = testkit::eventually(Duration::from_secs(20), || async {
            let r = self.http.get(format!("{base}/readyz")).send().await.ok()?;
            (r.status() == StatusCode::OK).then_some(())
        })
        .await;
        assert!(ok.is_some(), "{base} never became ready");
    }

    pub fn url(&self, path: &str) -> String {
        self.api.url(path)
    }

    pub async fn js(&self, user: &str) -> async_nats::jetstream::Context {
        async_nats::jetstream::new(self.nats.client(user).await.unwrap())
    }

    /// Seeds the admin account and returns its password.
    pub async fn seed(&self) -> String {
        let r = self
            .http
            .post(self.url("/api/v1/admin/seed"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: Value = r.json().await.unwrap();
        body["password"].as_str().unwrap().to_owned()
    }

    pub async fn login(&self, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/v1/admin/login"))
            .form(&[("username", "admin"), ("password", password)])
            .send()
            .await
            .unwrap()
    }

    pub async fn token(&self, password: &str) -> String {
        let r = self.login(password).await;
        assert_eq!(r.status(), StatusCode::OK);
        let body: Value = r.json().await.unwrap();
        body["access_token"].as_str().unwrap().to_owned()
    }

    /// Waits until the projector's checkpoint reaches the stream's last sequence.
    pub async fn projected(&self) {
        let js = self.js("api").await;
        let ok = testkit::eventually(Duration::from_secs(20), || async {
            let mut stream = js.get_stream("EVENTS").await.ok()?;
            let last = stream.info().await.ok()?.state.last_sequence;
            let outbox: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox")
                .fetch_one(&self.db.pool)
                .await
                .ok()?;
            let cp: Option<i64> =
                sqlx::query_scalar("SELECT stream_seq FROM projector_checkpoints")
                    .fetch_optional(&self.db.pool)
                    .await
                    .ok()?;
            (outbox == 0 && cp.unwrap_or(0) as u64 == last && last > 0).then_some(())
        })
        .await;
        assert!(ok.is_some(), "projection did not catch up");
    }
}

/// Every message on EVENTS, in stream order: (stream seq, Nats-Msg-Id, envelope).
pub async fn stream_contents(
    js: &async_nats::jetstream::Context,
) -> Vec<(u64, String, events::Envelope)> {
    use async_nats::jetstream::consumer::pull::OrderedConfig;
    use futures::StreamExt;
    let mut stream = js.get_stream("EVENTS").await.unwrap();
    let last = stream.info().await.unwrap().state.last_sequence;
    let mut out = Vec::new();
    if last == 0 {
        return out;
    }
    let consumer = stream
        .create_consumer(OrderedConfig::default())
        .await
        .unwrap();
    let mut msgs = consumer.messages().await.unwrap();
    while let Some(m) = msgs.next().await {
        let m = m.unwrap();
        let seq = m.info().unwrap().stream_sequence;
        let id = m
            .headers
            .as_ref()
            .and_then(|h| h.get("Nats-Msg-Id"))
            .map(|v| v.to_string())
            .unwrap_or_default();
        out.push((seq, id, events::Envelope::from_bytes(&m.payload).unwrap()));
        if seq >= last {
            break;
        }
    }
    out
}

/// A host-platform session token for `user` (HS256, one hour).
pub fn session_token(user: uuid::Uuid, name: &str) -> String {
    session_token_with(user, name, 3600, SESSION_SECRET)
}

pub fn session_token_with(user: uuid::Uuid, name: &str, ttl_secs: i64, secret: &str) -> String {
    let claims = serde_json::json!({
        "sub": user.to_string(),
        "exp": chrono::Utc::now().timestamp() + ttl_secs,
        "name": name,
        "picture": format!("https://cdn.example/{user}.jpg"),
        "video": format!("https://cdn.example/{user}.webm"),
    });
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}
