//! NATS auth callout: how a worker with nothing but its token gets onto NATS.
//!
//! ```text
//!  worker ──CONNECT auth_token──► nats-server ──$SYS.REQ.USER.AUTH (request JWT)──► api
//!                                                                                    │ token → worker aggregate
//!  worker ◄── connected with only its subjects ◄── response JWT (user JWT inside) ◄──┘ (or an error)
//! ```
//!
//! The api answers in a queue group, so any instance can. The user JWT it issues places the
//! worker in account `APP` with publish/subscribe rights for its own job, result and heartbeat
//! subjects only (invariant 5), and expires after `WORKER_CREDENTIAL_TTL_SECONDS`, when the
//! server asks again — so a revoked worker is refused even if the disconnect message was lost.
//! Revocation disconnects live connections at once through `$SYS.REQ.SERVER.<id>.KICK`.

use std::future::Future;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::Utc;
use cqrs_es::persist::PersistedEventStore;
use cqrs_es::{AggregateContext, EventStore};
use futures::StreamExt;
use nkeys::KeyPair;
use postgres_es::PostgresEventRepository;
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;
use write::domain::worker::Worker;

/// The subject the server sends authorization requests to.
pub const AUTH_SUBJECT: &str = "$SYS.REQ.USER.AUTH";
/// The account workers are placed in (config mode: the account's name).
pub const WORKER_ACCOUNT: &str = "APP";

/// Encodes `claims` as a NATS JWT signed by `key`.
pub fn encode_jwt(claims: &Value, key: &KeyPair) -> anyhow::Result<String> {
    let header = URL_SAFE_NO_PAD.encode(json!({"typ": "JWT", "alg": "ed25519-nkey"}).to_string());
    let body = URL_SAFE_NO_PAD.encode(claims.to_string());
    let signing_input = format!("{header}.{body}");
    let signature = key.sign(signing_input.as_bytes())?;
    Ok(format!(
        "{signing_input}.{}",
        URL_SAFE_NO_PAD.encode(signature)
    ))
}

/// Decodes a NATS JWT and checks its signature against its own issuer (`iss`).
pub fn decode_jwt(token: &str) -> anyhow::Result<Value> {
    let mut parts = token.split('.');
    let (Some(h), Some(b), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        anyhow::bail!("not a JWT");
    };
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b)?)?;
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow::anyhow!("no issuer"))?;
    let key = KeyPair::from_public_key(issuer)?;
    key.verify(format!("{h}.{b}").as_bytes(), &URL_SAFE_NO_PAD.decode(sig)?)?;
    Ok(claims)
}

/// JWT ids: unique per credential.
fn jti() -> String {
    Uuid::new_v4().simple().to_string().to_uppercase()
}

/// How long a worker may keep answering (acking) a job delivered to it: past the longest
/// analysis (`MAX_AUDIO_SECONDS` at the default budget is 30 min; the janitor gives up at 35).
const JOB_REPLY_TTL: std::time::Duration = std::time::Duration::from_secs(40 * 60);
/// How many answers per delivered job: in-progress acks every ack_wait/3 (10 s by default) for
/// the longest analysis, then the final ack.
const JOB_REPLY_MAX: u32 = 1_000;

/// What a worker may do on NATS: its jobs, its results, its heartbeats, the caller-number
/// reputation — nothing else (not `ev.>`, not other workers' results). It acks a job only by
/// answering the message delivered to it (`resp`: NATS allows a reply to exactly the reply
/// subjects of messages this connection received), never by publishing on `$JS.ACK.>`, so it
/// cannot ack, nak, term or extend another worker's job.
pub fn worker_permissions(worker: Uuid) -> Value {
    let tasks = events::topology::TASKS_STREAM;
    let consumer = events::topology::WORKERS_CONSUMER;
    let reputation = format!("KV_{}", events::topology::PHONE_REPUTATION_BUCKET);
    json!({
        "pub": {"allow": [
            format!("$JS.API.CONSUMER.INFO.{tasks}.{consumer}"),
            format!("$JS.API.CONSUMER.MSG.NEXT.{tasks}.{consumer}"),
            events::task::results_subject(worker),
            events::worker::heartbeat_subject(worker),
            format!("$JS.API.STREAM.INFO.{reputation}"),
            format!("$JS.API.DIRECT.GET.{reputation}.>"),
        ]},
        "sub": {"allow": [format!("{}.>", events::worker::inbox_prefix(worker))]},
        "resp": {"max": JOB_REPLY_MAX, "ttl": JOB_REPLY_TTL.as_nanos() as u64},
        "subs": -1, "data": -1, "payload": -1,
    })
}

/// The auth callout: checks worker tokens against the worker aggregates, records connections
/// (so revocation can cut them) and signs each accepted worker's user JWT.
pub struct Callout {
    /// Read access to workers: tokens are checked against their events.
    pub workers: Arc<PersistedEventStore<PostgresEventRepository, Worker>>,
    pub pool: PgPool,
    /// The account's callout issuer key (`NATS_CALLOUT_ISSUER_SEED`).
    pub issuer: Arc<KeyPair>,
    /// Lifetime of a worker's user JWT, in seconds (`WORKER_CREDENTIAL_TTL_SECONDS`).
    pub ttl: i64,
}

impl Callout {
    /// Builds the callout's answer to one request (`Err` only for requests we cannot even read).
    pub async fn answer(&self, request: &[u8]) -> anyhow::Result<String> {
        let issuer = &*self.issuer;
        let ttl = self.ttl;
        let req = decode_jwt(std::str::from_utf8(request)?)?;
        let nats = &req["nats"];
        let user_nkey = nats["user_nkey"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("request without user_nkey"))?;
        let server_id = nats["server_id"]["id"]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("request without server id"))?;
        let client_id = nats["client_info"]["id"].as_i64();
        let token = nats["connect_opts"]["auth_token"]
            .as_str()
            .unwrap_or_default();
        let now = Utc::now().timestamp();
        let respond = |user_jwt: Option<String>, error: Option<&str>| {
            let mut body = json!({"type": "authorization_response", "version": 2});
            if let Some(jwt) = user_jwt {
                body["jwt"] = json!(jwt);
            }
            if let Some(e) = error {
                body["error"] = json!(e);
            }
            let claims = json!({
                "jti": jti(), "iat": now, "iss": issuer.public_key(), "sub": user_nkey, "aud": server_id,
                "nats": body,
            });
            encode_jwt(&claims, issuer)
        };
        let Some(worker) = events::worker::token_worker_id(token) else {
            metrics::counter!("worker_auth_total", "result" => "refused").increment(1);
            return respond(None, Some("not a worker token"));
        };
        let accepted = match self.workers.load_aggregate(&worker.to_string()).await {
            Ok(mut ctx) => ctx.aggregate().accepts(token),
            Err(e) => {
                tracing::warn!(error = %e, "worker credentials unavailable");
                return respond(None, Some("authorization is unavailable; retry"));
            }
        };
        if !accepted {
            metrics::counter!("worker_auth_total", "result" => "refused").increment(1);
            tracing::info!(%worker, "worker refused: unknown, revoked or wrong token");
            return respond(None, Some("worker unknown or revoked"));
        }
        let mut nats = worker_permissions(worker);
        nats["type"] = json!("user");
        nats["version"] = json!(2);
        let user = json!({
            "jti": jti(), "iat": now, "exp": now + ttl.max(30),
            "iss": issuer.public_key(), "sub": user_nkey, "aud": WORKER_ACCOUNT,
            "name": format!("worker-{worker}"),
            "nats": nats,
        });
        let user_jwt = encode_jwt(&user, issuer)?;
        if let Some(cid) = client_id {
            let recorded = sqlx::query(
            "INSERT INTO worker_connections (server_id, client_id, worker_id, connected_at) VALUES ($1, $2, $3, now())
             ON CONFLICT (server_id, client_id) DO UPDATE SET worker_id = EXCLUDED.worker_id, connected_at = now()",
        )
        .bind(server_id)
        .bind(cid)
        .bind(worker)
        .execute(&self.pool)
        .await;
            if let Err(e) = recorded {
                tracing::warn!(error = %e, "connection not recorded; revocation will rely on expiry");
            }
        }
        metrics::counter!("worker_auth_total", "result" => "accepted").increment(1);
        respond(Some(user_jwt), None)
    }

    /// Serves authorization requests until `shutdown` (in a queue group: any instance answers).
    pub async fn run(self, nats: async_nats::Client, shutdown: impl Future<Output = ()>) {
        common::shutdown::supervise("auth callout", shutdown, || async {
            let mut sub = nats
                .queue_subscribe(AUTH_SUBJECT, "api-auth".to_string())
                .await?;
            while let Some(msg) = sub.next().await {
                let Some(reply) = msg.reply.clone() else {
                    continue;
                };
                match self.answer(&msg.payload).await {
                    Ok(jwt) => {
                        if let Err(e) = nats.publish(reply, jwt.into()).await {
                            tracing::warn!(error = %e, "callout reply not sent");
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "unreadable authorization request"),
                }
            }
            anyhow::bail!("the callout subscription ended")
        })
        .await
    }
}
