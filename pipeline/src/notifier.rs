//! Emails and alerts that follow events, each sent once:
//! * a verdict to a submitter who asked for it (`TaskCompleted`);
//! * the outcome of an appeal (`AppealDecided`) or a phone dispute (`DisputeDecided`) to the
//!   address given with it; the outcome of a review (`BanReviewed`) to reporters who opted in;
//! * admin alerts (ADMIN_ALERT_EMAILS and/or ADMIN_ALERT_WEBHOOK_URL) when an appeal or a
//!   dispute arrives, and when pending reviews reach PENDING_REVIEWS_ALERT_AT.
//!
//! ```text
//!  EVENTS (the subjects above) ─notifier─► addresses from the event store (never on the
//!  stream) ─► minijinja (templates/) ─► POST {RESEND_API_URL}/emails, Idempotency-Key
//!  5xx/network → retried (for 24 h) · sent → email_notifications / notifications_sent
//! ```

use std::time::Duration;

use async_nats::jetstream;
use chrono::{DateTime, Utc};
use common::nats::{Delivery, Disposition};
use events::phone_number::PhoneNumberEvent;
use events::platform_user::{AppealOutcome, PlatformUserEvent, ReviewDecision};
use events::voice_task::{VoiceTaskEvent, UPCASTERS};
use events::Envelope;
use minijinja::{context, Environment};
use serde_json::{json, Value};
use sqlx::PgPool;
use uuid::Uuid;

/// Email and alert settings (Resend's HTTP API).
#[derive(clap::Args, Clone, Debug)]
pub struct EmailConfig {
    /// Resend API key; without it no emails are sent.
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
    /// Admins alerted by email (comma-separated) when an appeal or a dispute arrives and when
    /// pending reviews pile up. Needs RESEND_API_KEY.
    #[arg(
        long,
        env = "ADMIN_ALERT_EMAILS",
        default_value = "",
        value_delimiter = ','
    )]
    pub admin_alert_emails: Vec<String>,
    /// Posted the same alerts as JSON (`{"kind","text","link"}`, Slack-compatible `text`).
    #[arg(long, env = "ADMIN_ALERT_WEBHOOK_URL")]
    pub admin_alert_webhook_url: Option<String>,
    /// Alert admins when this many bans await review (once, until the queue drops below it
    /// again); 0 turns it off.
    #[arg(long, env = "PENDING_REVIEWS_ALERT_AT", default_value_t = 20)]
    pub pending_reviews_alert_at: i64,
}

impl EmailConfig {
    /// No emails, no alerts (tests and tools that start an api).
    pub fn off() -> Self {
        EmailConfig {
            resend_api_key: None,
            resend_api_url: "http://127.0.0.1:9".into(),
            email_from: "blacklist <test@localhost>".into(),
            public_base_url: "http://127.0.0.1:8000".into(),
            email_notify_after_seconds: 300,
            admin_alert_emails: Vec::new(),
            admin_alert_webhook_url: None,
            pending_reviews_alert_at: 0,
        }
    }

    fn admins(&self) -> Vec<String> {
        self.admin_alert_emails
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect()
    }
}

/// Undelivered notifications are retried this long, then dropped with a warning.
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(24 * 3600);

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
    /// Resend's key; `None`: no emails (webhook alerts only).
    api_key: Option<String>,
    config: EmailConfig,
    templates: Environment<'static>,
}

const TEMPLATES: &[(&str, &str)] = &[
    ("verdict.txt", include_str!("../templates/verdict.txt")),
    ("verdict.html", include_str!("../templates/verdict.html")),
    (
        "appeal_outcome.txt",
        include_str!("../templates/appeal_outcome.txt"),
    ),
    (
        "report_outcome.txt",
        include_str!("../templates/report_outcome.txt"),
    ),
    (
        "dispute_outcome.txt",
        include_str!("../templates/dispute_outcome.txt"),
    ),
    (
        "admin_alert.txt",
        include_str!("../templates/admin_alert.txt"),
    ),
];

/// One email to send.
struct Email<'a> {
    /// Idempotency key: the provider and `notifications_sent` see each key once.
    key: String,
    to: Vec<String>,
    subject: String,
    text: String,
    html: Option<String>,
    /// For the log.
    kind: &'a str,
}

impl Notifier {
    /// A notifier, or `Ok(None)` when neither `RESEND_API_KEY` nor `ADMIN_ALERT_WEBHOOK_URL` is
    /// configured (nothing to send).
    pub fn new(pool: PgPool, config: EmailConfig) -> anyhow::Result<Option<Notifier>> {
        let api_key = config
            .resend_api_key
            .as_ref()
            .map(|k| k.expose().to_owned());
        if api_key.is_none() && config.admin_alert_webhook_url.is_none() {
            return Ok(None);
        }
        let mut templates = Environment::new();
        for (name, source) in TEMPLATES {
            templates.add_template(name, source)?;
        }
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

    fn render(&self, name: &str, ctx: &minijinja::Value) -> Result<String, Transient> {
        self.templates
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| Transient(e.to_string()))
    }

    fn link(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.config.public_base_url.trim_end_matches('/')
        )
    }

    /// Posts one email. `Ok(Some(id))`: accepted; `Ok(None)`: refused for good (bad address).
    async fn post(&self, api_key: &str, email: &Email<'_>) -> Result<Option<String>, Transient> {
        let resp = self
            .http
            .post(format!(
                "{}/emails",
                self.config.resend_api_url.trim_end_matches('/')
            ))
            .bearer_auth(api_key)
            .header("Idempotency-Key", &email.key)
            .json(&json!({
                "from": self.config.email_from,
                "to": email.to,
                "subject": email.subject,
                "text": email.text,
                "html": email.html,
            }))
            .send()
            .await
            .map_err(|e| Transient(e.to_string()))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Transient(format!("email provider answered {status}")));
        }
        if !status.is_success() {
            let body = resp.text().await.unwrap_or_default();
            tracing::warn!(kind = email.kind, %status, body, "email refused");
            metrics::counter!("emails_total", "kind" => email.kind.to_owned(), "outcome" => "refused")
                .increment(1);
            return Ok(None);
        }
        metrics::counter!("emails_total", "kind" => email.kind.to_owned(), "outcome" => "sent")
            .increment(1);
        Ok(Some(
            resp.json::<Value>()
                .await
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .unwrap_or_default(),
        ))
    }

    /// Whether a notification with this idempotency key went out already.
    async fn was_sent(&self, key: &str) -> Result<bool, Transient> {
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM notifications_sent WHERE key = $1)")
            .bind(key)
            .fetch_one(&self.pool)
            .await
            .map_err(|e| Transient(e.to_string()))
    }

    /// Records that the notification `key` went out (`provider_id`: the provider's id for it).
    async fn mark_sent(&self, key: &str, provider_id: Option<String>) -> Result<(), Transient> {
        sqlx::query(
            "INSERT INTO notifications_sent (key, sent_at, provider_id) VALUES ($1, now(), $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(key)
        .bind(provider_id)
        .execute(&self.pool)
        .await
        .map_err(|e| Transient(e.to_string()))?;
        Ok(())
    }

    /// Sends `email` unless its key was sent before (or emails are off).
    async fn once(&self, email: Email<'_>) -> Result<Outcome, Transient> {
        let Some(api_key) = &self.api_key else {
            return Ok(Outcome::NotRequested);
        };
        if email.to.is_empty() {
            return Ok(Outcome::NotRequested);
        }
        if self.was_sent(&email.key).await? {
            return Ok(Outcome::AlreadySent);
        }
        let Some(id) = self.post(api_key, &email).await? else {
            return Ok(Outcome::Refused);
        };
        self.mark_sent(&email.key, Some(id)).await?;
        Ok(Outcome::Sent)
    }

    /// Emails the verdict of `task` if it asked for it and it was not sent yet.
    pub async fn notify(&self, task: Uuid, result: &Value) -> Result<Outcome, Transient> {
        let Some(api_key) = &self.api_key else {
            return Ok(Outcome::NotRequested);
        };
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
        .map_err(|e| Transient(e.to_string()))?;
        let Some((true, Some(address), sent)) = row else {
            return Ok(Outcome::NotRequested);
        };
        if sent {
            return Ok(Outcome::AlreadySent);
        }
        let verdict = result["verdict"].as_str().unwrap_or("inconclusive");
        let ctx = context! {
            verdict => verdict,
            risk_score => result["riskScore"].as_f64().unwrap_or(0.0),
            indicators => result["indicators"].clone(),
            caller => result["callerNumber"].clone(),
            link => self.link(&format!("/check/{task}")),
        };
        let email = Email {
            key: format!("verdict-{task}"),
            to: vec![address],
            subject: format!("Your call check: {verdict}"),
            text: self.render("verdict.txt", &ctx)?,
            html: Some(self.render("verdict.html", &ctx)?),
            kind: "verdict",
        };
        let Some(id) = self.post(api_key, &email).await? else {
            return Ok(Outcome::Refused);
        };
        sqlx::query("INSERT INTO email_notifications (task_id, sent_at, provider_id) VALUES ($1, now(), $2) ON CONFLICT DO NOTHING")
            .bind(task)
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(|e| Transient(e.to_string()))?;
        Ok(Outcome::Sent)
    }

    async fn on_task(&self, env: &Envelope) -> Result<(), Transient> {
        let (Ok(task), Ok(VoiceTaskEvent::TaskCompleted { result, .. })) = (
            Uuid::parse_str(&env.aggregate_id),
            env.decode::<VoiceTaskEvent>(UPCASTERS),
        ) else {
            return Ok(());
        };
        let result = serde_json::to_value(&result).unwrap_or_default();
        self.notify(task, &result).await.map(|_| ())
    }

    /// The address a field of a stored event holds (the stream never carries it).
    async fn stored_email(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        event_type: &str,
        id_field: &str,
        id: Uuid,
    ) -> Result<Option<String>, Transient> {
        sqlx::query_scalar(
            "SELECT payload->$3->>'email' FROM events
              WHERE aggregate_type = $1 AND aggregate_id = $2 AND event_type = $3
                AND payload->$3->>$4 = $5",
        )
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(event_type)
        .bind(id_field)
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await
        .map(Option::flatten)
        .map_err(|e| Transient(e.to_string()))
    }

    async fn on_platform_user(&self, env: &Envelope) -> Result<(), Transient> {
        let Ok(event) = env.decode::<PlatformUserEvent>(events::platform_user::UPCASTERS) else {
            return Ok(());
        };
        let user = env.aggregate_id.as_str();
        match event {
            PlatformUserEvent::BanAppealed { appeal_id, .. } => {
                let detail = format!("User {user} appealed their ban.");
                self.alert_admins(
                    &format!("appeal-{appeal_id}"),
                    "appeal",
                    "A ban was appealed",
                    &detail,
                    "/admin#appeals",
                )
                .await
            }
            PlatformUserEvent::AppealDecided {
                appeal_id,
                outcome,
                note,
                ..
            } => {
                let Some(address) = self
                    .stored_email(
                        events::platform_user::AGGREGATE_TYPE,
                        user,
                        "BanAppealed",
                        "appealId",
                        appeal_id,
                    )
                    .await?
                else {
                    return Ok(());
                };
                let ctx = context! { outcome => outcome.as_str(), note => note };
                let subject = match outcome {
                    AppealOutcome::Overturned => "Your appeal was accepted",
                    AppealOutcome::Upheld => "Your appeal was decided",
                };
                self.once(Email {
                    key: format!("appeal-outcome-{appeal_id}"),
                    to: vec![address],
                    subject: subject.into(),
                    text: self.render("appeal_outcome.txt", &ctx)?,
                    html: None,
                    kind: "appeal_outcome",
                })
                .await
                .map(|_| ())
            }
            PlatformUserEvent::BanReviewed { decision, .. } => {
                self.report_outcomes(user, env.sequence, decision).await?;
                self.pending_reviews(user, false).await
            }
            PlatformUserEvent::UserAutoBanned { .. } => self.pending_reviews(user, true).await,
            _ => Ok(()),
        }
    }

    /// Emails every reporter of the reviewed ban who opted in (`ReportFiled.email`): the reports
    /// since the previous review of this user.
    async fn report_outcomes(
        &self,
        user: &str,
        sequence: u64,
        decision: ReviewDecision,
    ) -> Result<(), Transient> {
        if self.api_key.is_none() {
            return Ok(());
        }
        let opted_in: Vec<(String, String)> = sqlx::query_as(
            "SELECT e.payload->'ReportFiled'->>'reportId', e.payload->'ReportFiled'->>'email'
               FROM events e
              WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 AND e.event_type = 'ReportFiled'
                AND e.sequence < $3
                AND e.sequence > coalesce((SELECT max(p.sequence) FROM events p
                                            WHERE p.aggregate_type = $1 AND p.aggregate_id = $2
                                              AND p.event_type = 'BanReviewed' AND p.sequence < $3), 0)
                AND e.payload->'ReportFiled'->>'email' IS NOT NULL",
        )
        .bind(events::platform_user::AGGREGATE_TYPE)
        .bind(user)
        .bind(sequence as i64)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| Transient(e.to_string()))?;
        let decision = match decision {
            ReviewDecision::Permanent => "permanent",
            ReviewDecision::Vindicated => "vindicated",
        };
        for (report_id, address) in opted_in {
            let ctx = context! { decision => decision };
            self.once(Email {
                key: format!("report-outcome-{report_id}"),
                to: vec![address],
                subject: "The user you reported was reviewed".into(),
                text: self.render("report_outcome.txt", &ctx)?,
                html: None,
                kind: "report_outcome",
            })
            .await?;
        }
        Ok(())
    }

    async fn on_phone(&self, env: &Envelope) -> Result<(), Transient> {
        let Ok(event) = env.decode::<PhoneNumberEvent>(events::phone_number::UPCASTERS) else {
            return Ok(());
        };
        let number = env.aggregate_id.as_str();
        match event {
            PhoneNumberEvent::NumberDisputed { dispute_id, .. } => {
                let detail = format!("The listing of {number} was disputed by its owner.");
                self.alert_admins(
                    &format!("dispute-{dispute_id}"),
                    "dispute",
                    "A phone listing was disputed",
                    &detail,
                    "/admin#disputes",
                )
                .await
            }
            PhoneNumberEvent::DisputeDecided {
                dispute_id,
                outcome,
                note,
                ..
            } => {
                let Some(address) = self
                    .stored_email(
                        events::phone_number::AGGREGATE_TYPE,
                        number,
                        "NumberDisputed",
                        "disputeId",
                        dispute_id,
                    )
                    .await?
                else {
                    return Ok(());
                };
                let ctx = context! {
                    outcome => outcome.as_str(),
                    note => note,
                    phone_number => number,
                    link => self.link(&format!("/numbers?number={}", number.replace('+', "%2B"))),
                };
                self.once(Email {
                    key: format!("dispute-outcome-{dispute_id}"),
                    to: vec![address],
                    subject: format!("Your dispute of {number} was decided"),
                    text: self.render("dispute_outcome.txt", &ctx)?,
                    html: None,
                    kind: "dispute_outcome",
                })
                .await
                .map(|_| ())
            }
            _ => Ok(()),
        }
    }

    /// Tells the admins (email and/or webhook), once per `key`.
    async fn alert_admins(
        &self,
        key: &str,
        kind: &'static str,
        headline: &str,
        detail: &str,
        path: &str,
    ) -> Result<(), Transient> {
        let link = self.link(path);
        let ctx = context! { headline => headline, detail => detail, link => link };
        self.once(Email {
            key: format!("alert-{key}"),
            to: self.config.admins(),
            subject: format!("blacklist: {headline}"),
            text: self.render("admin_alert.txt", &ctx)?,
            html: None,
            kind: "admin_alert",
        })
        .await?;
        let Some(url) = &self.config.admin_alert_webhook_url else {
            return Ok(());
        };
        let hook_key = format!("hook-{key}");
        if self.was_sent(&hook_key).await? {
            return Ok(());
        }
        let resp = self
            .http
            .post(url)
            .header("Idempotency-Key", &hook_key)
            .json(&json!({"kind": kind, "text": format!("{headline}: {detail}"), "link": link}))
            .send()
            .await
            .map_err(|e| Transient(format!("admin webhook: {e}")))?;
        let status = resp.status();
        if status.is_server_error() || status.as_u16() == 429 {
            return Err(Transient(format!("admin webhook answered {status}")));
        }
        if !status.is_success() {
            tracing::warn!(%status, kind, "admin webhook refused the alert");
        }
        metrics::counter!("admin_alerts_total", "kind" => kind).increment(1);
        self.mark_sent(&hook_key, None).await
    }

    /// Alerts once when pending reviews reach PENDING_REVIEWS_ALERT_AT, and re-arms when they
    /// drop below it. `user` was just banned (`true`, counted even before the read model shows
    /// it) or just reviewed (`false`, not counted).
    async fn pending_reviews(&self, user: &str, banned: bool) -> Result<(), Transient> {
        let at = self.config.pending_reviews_alert_at;
        if at <= 0 {
            return Ok(());
        }
        let db = |e: sqlx::Error| Transient(e.to_string());
        let others: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM platform_users WHERE review_status = 'pending' AND user_id <> $1",
        )
        .bind(user)
        .fetch_one(&self.pool)
        .await
        .map_err(db)?;
        let pending = others + i64::from(banned);
        if pending < at {
            sqlx::query(
                "UPDATE admin_alerts SET active = false, changed_at = now()
                  WHERE kind = 'pending_reviews' AND active",
            )
            .execute(&self.pool)
            .await
            .map_err(db)?;
            return Ok(());
        }
        // The alert's key is the time the alert was last re-armed (or `first`): the same on a
        // retry after a failed send, so an email that went out is not sent again.
        let mut tx = self.pool.begin().await.map_err(db)?;
        let state: Option<(bool, DateTime<Utc>)> = sqlx::query_as(
            "SELECT active, changed_at FROM admin_alerts WHERE kind = 'pending_reviews' FOR UPDATE",
        )
        .fetch_optional(&mut *tx)
        .await
        .map_err(db)?;
        let armed_at = match state {
            Some((true, _)) => return Ok(()),
            Some((false, at)) => at.timestamp_micros().to_string(),
            None => "first".to_owned(),
        };
        let detail = format!("{pending} bans await review (alert threshold {at}).");
        self.alert_admins(
            &format!("pending-reviews-{armed_at}"),
            "pending_reviews",
            "Pending reviews are piling up",
            &detail,
            "/admin#reviews",
        )
        .await?;
        sqlx::query(
            "INSERT INTO admin_alerts (kind, active, changed_at) VALUES ('pending_reviews', true, now())
             ON CONFLICT (kind) DO UPDATE SET active = true, changed_at = now()",
        )
        .execute(&mut *tx)
        .await
        .map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(())
    }

    /// The notifier's single step: one event in, what to tell JetStream out.
    pub async fn handle(&self, msg: Delivery) -> Disposition {
        let Ok(env) = Envelope::from_bytes(&msg.payload) else {
            return Disposition::Ack;
        };
        let done = match env.aggregate_type.as_str() {
            events::voice_task::AGGREGATE_TYPE => self.on_task(&env).await,
            events::platform_user::AGGREGATE_TYPE => self.on_platform_user(&env).await,
            events::phone_number::AGGREGATE_TYPE => self.on_phone(&env).await,
            _ => Ok(()),
        };
        match done {
            Ok(()) => Disposition::Ack,
            Err(e) if msg.age > GIVE_UP_AFTER => {
                tracing::warn!(subject = msg.subject, error = %e, "notification dropped after 24 h of failures");
                metrics::counter!("notifications_total", "outcome" => "dropped").increment(1);
                Disposition::Ack
            }
            Err(e) => {
                tracing::warn!(subject = msg.subject, error = %e, "notification not sent yet; retrying");
                metrics::counter!("notifications_total", "outcome" => "retry").increment(1);
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
