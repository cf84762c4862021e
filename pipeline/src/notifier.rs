//! Verdict emails: when a task that asked for one (`emailNotification`) completes, its verdict
//! is emailed once through Resend's HTTP API.
//!
//! ```text
//!  EVENTS ev.voice_task.*.TaskCompleted ─notifier─► address from the event store (never on the
//!  stream) ─► minijinja (templates/verdict.{txt,html}) ─► POST {RESEND_API_URL}/emails
//!  Idempotency-Key: verdict-<taskId> · 5xx/network → retried later · sent → email_notifications
//! ```

use std::time::Duration;

use async_nats::jetstream;
use common::nats::{Delivery, Disposition};
use events::voice_task::{VoiceTaskEvent, UPCASTERS};
use events::Envelope;
use minijinja::{context, Environment};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Email settings (Resend's HTTP API).
#[derive(clap::Args, Clone, Debug)]
pub struct EmailConfig {
    /// Resend API key; without it no verdict emails are sent.
    #[arg(long, env = "RESEND_API_KEY", hide_env_values = true)]
    pub resend_api_key: Option<common::config::Secret>,
    #[arg(long, env = "RESEND_API_URL", default_value = "https://api.resend.com")]
    pub resend_api_url: String,
    /// Sender, e.g. `blacklist <verdicts@example.org>`.
    #[arg(
        long,
        env = "EMAIL_FROM",
        default_value = "blacklist <no-reply@localhost>"
    )]
    pub email_from: String,
    /// Public base URL of the web pages, for links in emails.
    #[arg(long, env = "PUBLIC_BASE_URL", default_value = "http://127.0.0.1:8000")]
    pub public_base_url: String,
    /// Waits longer than this send the verdict by email (when an address was given).
    #[arg(long, env = "EMAIL_NOTIFY_AFTER_SECONDS", default_value_t = 300)]
    pub email_notify_after_seconds: i64,
}

/// What happened to one completed task.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    NotRequested,
    AlreadySent,
    /// The provider refused it for good (bad address): logged, not retried.
    Refused,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Transient(String);

pub struct Notifier {
    pool: PgPool,
    http: reqwest::Client,
    api_key: String,
    config: EmailConfig,
    templates: Environment<'static>,
}

impl Notifier {
    /// A notifier, or `Ok(None)` when no `RESEND_API_KEY` is configured (emails are off).
    pub fn new(pool: PgPool, config: EmailConfig) -> anyhow::Result<Option<Notifier>> {
        let Some(api_key) = config
            .resend_api_key
            .as_ref()
            .map(|k| k.expose().to_owned())
        else {
            return Ok(None);
        };
        let mut templates = Environment::new();
        templates.add_template("verdict.txt", include_str!("../templates/verdict.txt"))?;
        templates.add_template("verdict.html", include_str!("../templates/verdict.html"))?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()?;
        Ok(Some(Notifier {
            pool,
            http,
            api_key,
            config,
            templates,
        }))
    }

    /// Emails the verdict of `task` if it asked for it and it was not sent yet.
    pub async fn notify(&self, task: Uuid, result: &Value) -> Result<Outcome, Transient> {
        let transient = |e: &dyn std::fmt::Display| Transient(e.to_string());
        let row: Option<(bool, Option<String>, bool)> = sqlx::query_as(
            "SELECT (e.payload->'TaskSubmitted'->>'emailNotification')::boolean,
                    e.payload->'TaskSubmitted'->>'email',
                    EXISTS (SELECT 1 FROM email_notifications n WHERE n.task_id = $2)
               FROM events e
              WHERE e.aggregate_type = $1 AND e.aggregate_id = $2::text AND e.event_type = 'TaskSubmitted'",
        )
        .bind(events::voice_task::AGGREGATE_TYPE)
        .bind(task)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| transient(&e))?;
        let Some((true, Some(email), sent)) = row else {
            return Ok(Outcome::NotRequested);
        };
        if sent {
            return Ok(Outcome::AlreadySent);
        }
        let ctx = context! {
            verdict => result["verdict"].as_str().unwrap_or("inconclusive"),
            risk_score => result["riskScore"].as_f64().unwrap_or(0.0),
            indicators => result["indicators"].clone(),
            caller => result["callerNumber"].clone(),
            link => format!("{}/check/{task}", self.config.public_base_url.trim_end_matches('/')),
        };
        let text = self
            .templates
            .get_template("verdict.txt")
            .and_then(|t| t.render(&ctx))
            .map_err(|e| transient(&e))?;
        let html = self
            .templates
            .get_template("verdict.html")
            .and_then(|t| t.render(&ctx))
            .map_err(|e| transient(&e))?;
        let verdict = result["verdict"].as_str().unwrap_or("inconclusive");
        let resp = self
            .http
            .post(format!(
                "{}/emails",
                self.config.resend_api_url.trim_end_matches('/')
            ))
            .bearer_auth(&self.api_key)
            .header("Idempotency-Key", format!("verdict-{task}"))
            .json(&json!({
                "from": self.config.email_from,
                "to": [email],
                "subject": format!("Your call check: {verdict}"),
                "text": text,
                "html": html,
            }))
            .send()
            .await
            .map_err(|e| transient(&e))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Transient(format!("email provider answered {status}")));
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            tracing::warn!(%task, %status, body, "verdict email refused");
            metrics::counter!("verdict_emails_total", "outcome" => "refused").increment(1);
            return Ok(Outcome::Refused);
        }
        let id = resp
            .json::<Value>()
            .await
            .ok()
            .and_then(|v| v["id"].as_str().map(str::to_owned));
        sqlx::query("INSERT INTO email_notifications (task_id, sent_at, provider_id) VALUES ($1, now(), $2) ON CONFLICT DO NOTHING")
            .bind(task)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| transient(&e))?;
        metrics::counter!("verdict_emails_total", "outcome" => "sent").increment(1);
        Ok(Outcome::Sent)
    }

    /// The notifier's single step: one event in, what to tell JetStream out.
    pub async fn handle(&self, msg: Delivery) -> Disposition {
        let parsed = Envelope::from_bytes(&msg.payload).ok().and_then(|env| {
            Some((
                Uuid::parse_str(&env.aggregate_id).ok()?,
                env.decode::<VoiceTaskEvent>(UPCASTERS).ok()?,
            ))
        });
        let Some((task, VoiceTaskEvent::TaskCompleted { result, .. })) = parsed else {
            return Disposition::Ack;
        };
        let result = serde_json::to_value(&result).unwrap_or_default();
        match self.notify(task, &result).await {
            Ok(_) => Disposition::Ack,
            Err(e) => {
                tracing::warn!(%task, error = %e, "verdict email not sent yet; retrying");
                metrics::counter!("verdict_emails_total", "outcome" => "retry").increment(1);
                Disposition::Nak(Duration::from_secs(5))
            }
        }
    }

    /// Sends emails until `shutdown`.
    pub async fn run(
        self,
        js: jetstream::Context,
        shutdown: impl std::future::Future<Output = ()>,
    ) {
        common::nats::consume(
            js,
            events::topology::EVENTS_STREAM,
            events::topology::notifier_consumer(),
            |m| self.handle(m),
            shutdown,
        )
        .await
    }
}
