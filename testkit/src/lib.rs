//! Test harness: the real services, started per test.
//!
//! * [`Nats`]: a nats-server (the pinned binary, `nats/dev.conf`) on free ports with its own store
//!   directory; it can be killed and restarted on the same port and store.
//! * [`Db`]: a fresh, migrated Postgres database on the server in `TEST_DATABASE_URL`
//!   (default `postgres://postgres@127.0.0.1:5432/postgres`), dropped afterwards.
//! * [`Proxy`]: a TCP proxy to cut and restore a connection path (Postgres "goes down").

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use anyhow::{bail, Context};
use sqlx::PgPool;
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};
use tokio::sync::Notify;

/// Passwords of the NATS users in tests (letter-prefixed: nats-server parses `$VAR` values).
pub const NATS_USERS: &[(&str, &str, &str)] = &[
    ("api", "NATS_API_PASSWORD", "ptest-api"),
    ("projector", "NATS_PROJECTOR_PASSWORD", "ptest-projector"),
    ("janitor", "NATS_JANITOR_PASSWORD", "ptest-janitor"),
    ("replay", "NATS_REPLAY_PASSWORD", "ptest-replay"),
    ("sys", "NATS_SYS_PASSWORD", "ptest-sys"),
];

pub fn nats_password(user: &str) -> &'static str {
    NATS_USERS
        .iter()
        .find(|u| u.0 == user)
        .map(|u| u.2)
        .expect("known NATS user")
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    std::env::var_os("BLACKLIST_REPO_ROOT")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .expect("workspace root")
                .to_path_buf()
        })
}

/// The pinned nats-server: `NATS_SERVER_BIN`, else whatever `scripts/ensure-nats-server.sh`
/// installs (once per test process).
pub fn nats_server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("NATS_SERVER_BIN") {
            return PathBuf::from(p);
        }
        let out = std::process::Command::new("bash")
            .arg(repo_root().join("scripts/ensure-nats-server.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/ensure-nats-server.sh");
        assert!(out.status.success(), "scripts/ensure-nats-server.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
    })
    .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A temporary directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Nats {
    child: Option<Child>,
    pub port: u16,
    pub monitor_port: u16,
    store: TempDir,
    /// Seed of the account key that signs worker credentials (the auth callout's issuer).
    pub callout_seed: String,
    callout_public: String,
}

impl Nats {
    pub async fn start() -> anyhow::Result<Nats> {
        let issuer = nkeys::KeyPair::new_account();
        let mut n = Nats {
            child: None,
            port: free_port(),
            monitor_port: free_port(),
            store: TempDir::new("bl-nats"),
            callout_seed: issuer.seed().context("account seed")?,
            callout_public: issuer.public_key(),
        };
        n.spawn().await?;
        Ok(n)
    }

    async fn spawn(&mut self) -> anyhow::Result<()> {
        let mut cmd = Command::new(nats_server_bin());
        cmd.arg("-c")
            .arg(repo_root().join("nats/dev.conf"))
            .args([
                "-p",
                &self.port.to_string(),
                "-m",
                &self.monitor_port.to_string(),
            ])
            .arg("-sd")
            .arg(&self.store.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        for (_, var, pw) in NATS_USERS {
            cmd.env(var, pw);
        }
        cmd.env("NATS_CALLOUT_ISSUER", &self.callout_public);
        self.child = Some(cmd.spawn().context("starting nats-server")?);
        let health = format!("127.0.0.1:{}", self.monitor_port);
        for _ in 0..200 {
            if http_get_ok(&health, "/healthz?js-enabled-only=true").await {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("nats-server did not become healthy")
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub async fn client(&self, user: &str) -> anyhow::Result<async_nats::Client> {
        let mut opts = async_nats::ConnectOptions::new()
            .user_and_password(user.into(), nats_password(user).into());
        if user == "replay" {
            opts = opts.custom_inbox_prefix(events::topology::REPLAY_INBOX_PREFIX);
        }
        Ok(opts.connect(self.url()).await?)
    }

    /// kill -9.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.start_kill();
            let _ = c.wait().await;
        }
    }

    /// Starts again on the same ports and store.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill().await;
        self.spawn().await
    }
}

/// A plain HTTP/1.0 GET; true on a 2xx status.
pub async fn http_get_ok(addr: &str, path: &str) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(mut s) = TcpStream::connect(addr).await else {
        return false;
    };
    let req = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    if s.write_all(req.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(s.read(&mut buf).await, Ok(n) if n >= 12 && buf[9] == b'2')
}

pub struct Db {
    pub url: String,
    pub name: String,
    pub pool: PgPool,
    admin_url: String,
}

impl Db {
    /// Creates and migrates a new database.
    pub async fn fresh() -> anyhow::Result<Db> {
        let admin_url = std::env::var("TEST_DATABASE_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!("bl_test_{}", uuid::Uuid::new_v4().simple());
        let admin = PgPool::connect(&admin_url)
            .await
            .context("TEST_DATABASE_URL: connecting")?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        let url = with_database(&admin_url, &name);
        let pool = common::db::connect_lazy(&url, 16)?;
        common::db::migrate(&pool).await?;
        Ok(Db {
            url,
            name,
            pool,
            admin_url,
        })
    }

    /// The same database reached through `proxy` (to simulate Postgres going away).
    pub fn url_via(&self, proxy: &Proxy) -> String {
        let mut u: url_lite::Url = self.url.parse().expect("db url");
        u.host_port = format!("127.0.0.1:{}", proxy.addr.port());
        u.to_string()
    }

    pub fn upstream(&self) -> String {
        let u: url_lite::Url = self.url.parse().expect("db url");
        u.host_port
    }
}

impl Drop for Db {
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        // Best effort, on a thread of its own: Drop cannot await.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                rt.block_on(async {
                    if let Ok(admin) = PgPool::connect(&admin_url).await {
                        let _ =
                            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                                .execute(&admin)
                                .await;
                    }
                });
            }
        })
        .join();
    }
}

fn with_database(url: &str, db: &str) -> String {
    let mut u: url_lite::Url = url.parse().expect("db url");
    u.path = format!("/{db}");
    u.to_string()
}

/// Just enough URL handling for `postgres://user@host:port/db?query`.
mod url_lite {
    pub struct Url {
        pub scheme_user: String,
        pub host_port: String,
        pub path: String,
        pub query: String,
    }

    impl std::str::FromStr for Url {
        type Err = String;
        fn from_str(s: &str) -> Result<Self, String> {
            let (scheme, rest) = s.split_once("://").ok_or("no scheme")?;
            let (auth, rest) = match rest.rsplit_once('@') {
                Some((a, r)) => (format!("{a}@"), r),
                None => (String::new(), rest),
            };
            let (hostpath, query) = rest
                .split_once('?')
                .map(|(a, b)| (a, format!("?{b}")))
                .unwrap_or((rest, String::new()));
            let (host_port, path) = hostpath
                .split_once('/')
                .map(|(h, p)| (h, format!("/{p}")))
                .unwrap_or((hostpath, String::new()));
            Ok(Url {
                scheme_user: format!("{scheme}://{auth}"),
                host_port: host_port.into(),
                path,
                query,
            })
        }
    }

    impl std::fmt::Display for Url {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(
                f,
                "{}{}{}{}",
                self.scheme_user, self.host_port, self.path, self.query
            )
        }
    }
}

/// A TCP proxy that can cut every connection and refuse new ones, then heal.
pub struct Proxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    cut: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    pub async fn start(upstream: String) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(Notify::new());
        let (up2, cut2) = (up.clone(), cut.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                if !up2.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let cut = cut2.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        Ok(Proxy {
            addr,
            up,
            cut,
            task,
        })
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    pub fn heal(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Sends SIGKILL to a process id.
pub fn kill9(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
}

/// Polls `f` until it returns `Some` or `timeout` passes.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut f: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return Some(v);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// A local server speaking Cloudflare Turnstile's siteverify protocol
/// (`POST` form `secret`, `response`, `remoteip` → `{"success", "error-codes"}`).
///
/// Tokens: `pass-…` succeeds once (a second use is `timeout-or-duplicate`), `internal` answers
/// `internal-error`, `crash` answers HTTP 500, empty is `missing-input-response`, anything
/// else `invalid-input-response`; a wrong secret is `invalid-input-secret`.
pub struct FakeTurnstile {
    pub url: String,
    pub secret: String,
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeTurnstile {
    pub async fn start() -> anyhow::Result<FakeTurnstile> {
        use axum::{extract::State, http::StatusCode, routing::post, Form, Json, Router};
        use std::collections::{HashMap, HashSet};
        use std::sync::Mutex;

        type Shared = Arc<(
            String,
            Mutex<HashSet<String>>,
            Arc<std::sync::atomic::AtomicUsize>,
        )>;
        async fn verify(
            State(st): State<Shared>,
            Form(f): Form<HashMap<String, String>>,
        ) -> (StatusCode, Json<serde_json::Value>) {
            let (secret, used, calls) = &*st;
            calls.fetch_add(1, Ordering::SeqCst);
            let fail = |code: &str| {
                (
                    StatusCode::OK,
                    Json(serde_json::json!({"success": false, "error-codes": [code]})),
                )
            };
            if f.get("secret") != Some(secret) {
                return fail("invalid-input-secret");
            }
            let token = f.get("response").cloned().unwrap_or_default();
            match token.as_str() {
                "" => fail("missing-input-response"),
                "internal" => fail("internal-error"),
                "crash" => (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(serde_json::json!({})),
                ),
                t if t.starts_with("pass-") => {
                    if used.lock().expect("lock").insert(token.clone()) {
                        (
                            StatusCode::OK,
                            Json(serde_json::json!({"success": true, "error-codes": []})),
                        )
                    } else {
                        fail("timeout-or-duplicate")
                    }
                }
                _ => fail("invalid-input-response"),
            }
        }

        let secret = format!("test-secret-{}", uuid::Uuid::new_v4().simple());
        let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let state: Shared = Arc::new((secret.clone(), Mutex::new(HashSet::new()), calls.clone()));
        let app = Router::new()
            .route("/siteverify", post(verify))
            .with_state(state);
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/siteverify", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(FakeTurnstile {
            url,
            secret,
            calls,
            task,
        })
    }

    /// A fresh token that passes once.
    pub fn pass() -> String {
        format!("pass-{}", uuid::Uuid::new_v4().simple())
    }
}

impl Drop for FakeTurnstile {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The pinned S3-compatible server: `S3_SERVER_BIN`, else whatever `scripts/ensure-s3.sh`
/// installs (once per test process).
pub fn s3_server_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        if let Some(p) = std::env::var_os("S3_SERVER_BIN") {
            return PathBuf::from(p);
        }
        let out = std::process::Command::new("bash")
            .arg(repo_root().join("scripts/ensure-s3.sh"))
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/ensure-s3.sh");
        assert!(out.status.success(), "scripts/ensure-s3.sh failed");
        PathBuf::from(String::from_utf8(out.stdout).expect("utf-8 path").trim())
    })
    .clone()
}

/// A real S3-compatible server (s3s-fs) on a free port, with one bucket, removed on drop.
pub struct S3 {
    pub endpoint: String,
    pub bucket: String,
    pub access_key: String,
    pub secret_key: String,
    root: TempDir,
    _child: Child,
}

impl S3 {
    pub async fn start() -> anyhow::Result<S3> {
        let root = TempDir::new("bl-s3");
        let bucket = "blacklist-audio".to_string();
        std::fs::create_dir_all(root.0.join(&bucket))?;
        let port = free_port();
        let (access_key, secret_key) = ("test-access".to_string(), "test-secret-key".to_string());
        let child = Command::new(s3_server_bin())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &port.to_string(),
                "--access-key",
                &access_key,
                "--secret-key",
                &secret_key,
            ])
            .arg(&root.0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting s3s-fs")?;
        let addr = format!("127.0.0.1:{port}");
        for _ in 0..200 {
            if TcpStream::connect(&addr).await.is_ok() {
                return Ok(S3 {
                    endpoint: format!("http://{addr}"),
                    bucket,
                    access_key,
                    secret_key,
                    root,
                    _child: child,
                });
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!("s3s-fs did not start")
    }

    /// Where objects land on disk (tests inspect uploads there).
    pub fn object_path(&self, key: &str) -> PathBuf {
        self.root.0.join(&self.bucket).join(key)
    }
}
