//! `projector replay`: the history as NDJSON for analysts.
//!
//! Reads `EVENTS` through an ephemeral ordered consumer, so it needs only the read-only `replay`
//! NATS user. Filters run on the server (subjects, start time) where they can.

use std::io::Write;

use async_nats::jetstream::{self, consumer::pull::OrderedConfig, consumer::DeliverPolicy};
use chrono::{DateTime, Utc};
use events::{subject, Envelope};
use futures::StreamExt;
use serde_json::json;

#[derive(clap::Args, Debug, Clone, Default)]
pub struct ReplayFilter {
    /// Only events at or after this time (RFC 3339).
    #[arg(long)]
    pub since: Option<DateTime<Utc>>,
    /// Only events at or before this time (RFC 3339).
    #[arg(long)]
    pub until: Option<DateTime<Utc>>,
    /// Only these event types (repeatable), e.g. `--type AdminLoggedIn`.
    #[arg(long = "type")]
    pub types: Vec<String>,
    /// Only this aggregate type, or one aggregate as `<type>:<id>` (e.g. `admin:admin`).
    #[arg(long)]
    pub aggregate: Option<String>,
}

impl ReplayFilter {
    /// JetStream subject filters equivalent to the type and aggregate options.
    pub fn subjects(&self) -> Vec<String> {
        let (agg, id) = match self.aggregate.as_deref() {
            Some(a) => match a.split_once(':') {
                Some((t, id)) => (t.to_owned(), subject::escape_token(id)),
                None => (a.to_owned(), "*".to_owned()),
            },
            None => ("*".to_owned(), "*".to_owned()),
        };
        if self.types.is_empty() {
            if self.aggregate.is_none() {
                return vec![];
            }
            return vec![format!("{}.{agg}.{id}.*", subject::PREFIX)];
        }
        self.types
            .iter()
            .map(|t| format!("{}.{agg}.{id}.{t}", subject::PREFIX))
            .collect()
    }

    fn keeps(&self, env: &Envelope) -> bool {
        self.since.is_none_or(|s| env.occurred_at >= s)
            && self.until.is_none_or(|u| env.occurred_at <= u)
    }
}

/// Writes every matching event as one JSON line; returns how many.
pub async fn replay(
    js: &jetstream::Context,
    filter: &ReplayFilter,
    out: &mut impl Write,
) -> anyhow::Result<u64> {
    let stream = js.get_stream(events::topology::EVENTS_STREAM).await?;
    let deliver_policy = match filter.since {
        Some(since) => DeliverPolicy::ByStartTime {
            start_time: time::OffsetDateTime::from_unix_timestamp_nanos(
                since.timestamp_nanos_opt().unwrap_or(0) as i128,
            )?,
        },
        None => DeliverPolicy::All,
    };
    let mut consumer = stream
        .create_consumer(OrderedConfig {
            // Named: the replay user may only create consumers by name (never a service's).
            name: Some(format!("analyst-replay-{}", uuid::Uuid::new_v4().simple())),
            deliver_policy,
            filter_subjects: filter.subjects(),
            ..Default::default()
        })
        .await?;
    if consumer.info().await?.num_pending == 0 {
        return Ok(0);
    }
    let mut messages = consumer.messages().await?;
    let mut written = 0;
    while let Some(msg) = messages.next().await {
        let msg = msg?;
        let info = msg.info().map_err(|e| anyhow::anyhow!(e))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        match Envelope::from_bytes(&msg.payload) {
            Ok(env) if filter.keeps(&env) => {
                let line = json!({
                    "streamSeq": seq,
                    "subject": msg.subject.as_str(),
                    "eventType": env.event_type,
                    "schemaVersion": env.schema_version,
                    "aggregateType": env.aggregate_type,
                    "aggregateId": env.aggregate_id,
                    "sequence": env.sequence,
                    "occurredAt": env.occurred_at,
                    "eventId": env.event_id,
                    "actor": env.actor,
                    "correlationId": env.correlation_id,
                    "payload": env.payload,
                });
                serde_json::to_writer(&mut *out, &line)?;
                out.write_all(b"\n")?;
                written += 1;
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(seq, error = %e, "unreadable event skipped"),
        }
        if pending == 0 {
            break;
        }
    }
    out.flush()?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_become_subjects() {
        let f = |types: &[&str], agg: Option<&str>| ReplayFilter {
            types: types.iter().map(|s| s.to_string()).collect(),
            aggregate: agg.map(str::to_owned),
            ..Default::default()
        };
        assert!(f(&[], None).subjects().is_empty());
        assert_eq!(f(&[], Some("admin")).subjects(), vec!["ev.admin.*.*"]);
        assert_eq!(
            f(&[], Some("admin:a.b")).subjects(),
            vec!["ev.admin.a%2Eb.*"]
        );
        assert_eq!(
            f(&["AdminLoggedIn", "AdminLoggedOut"], None).subjects(),
            vec!["ev.*.*.AdminLoggedIn", "ev.*.*.AdminLoggedOut"]
        );
        assert_eq!(
            f(&["AdminCreated"], Some("admin")).subjects(),
            vec!["ev.admin.*.AdminCreated"]
        );
    }
}
