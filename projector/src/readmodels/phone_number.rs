//! `phone_reports`, `phone_disputes`, the per-number summary `phone_numbers`, and the
//! `phone-reputation` bucket.
//!
//! After every event the number's summary is recomputed from its reports, so the summary is
//! always a function of the history. Pending counts and categories use counted reports only
//! (repeats from one IP within 24 hours do not inflate a number); an approval is a moderator's
//! decision and always counts.

use events::phone_number::{reputation_key, PhoneNumberEvent, UPCASTERS};
use events::topology::PHONE_REPUTATION_BUCKET;
use events::Envelope;
use serde_json::json;
use sqlx::PgConnection;

use crate::effects::{ApplyError, Effects};

pub async fn apply(
    tx: &mut PgConnection,
    env: &Envelope,
    fx: &mut Effects,
) -> Result<(), ApplyError> {
    let event: PhoneNumberEvent = env
        .decode(UPCASTERS)
        .map_err(|e| ApplyError::Poison(e.to_string()))?;
    let number = env.aggregate_id.as_str();
    let decide = |status: &'static str, report_id, moderator: String| {
        sqlx::query(
            "UPDATE phone_reports SET status = $2, decided_at = $3, decided_by = $4 WHERE report_id = $1",
        )
        .bind(report_id)
        .bind(status)
        .bind(env.occurred_at)
        .bind(moderator)
    };
    match event {
        PhoneNumberEvent::PhoneReported {
            report_id,
            category,
            description,
            reporter_ip,
            counted,
            reported_at,
            task_id,
        } => {
            sqlx::query(
                "INSERT INTO phone_reports (report_id, phone_number, category, description, reporter_ip,
                                            counted, status, created_at, task_id)
                 VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $8) ON CONFLICT DO NOTHING",
            )
            .bind(report_id)
            .bind(number)
            .bind(category.as_str())
            .bind(description)
            .bind(reporter_ip)
            .bind(counted)
            .bind(reported_at)
            .bind(task_id)
            .execute(&mut *tx)
            .await?;
        }
        PhoneNumberEvent::PhoneReportApproved {
            report_id,
            moderator,
        } => {
            decide("approved", report_id, moderator)
                .execute(&mut *tx)
                .await?;
        }
        PhoneNumberEvent::PhoneReportRejected {
            report_id,
            moderator,
        } => {
            decide("rejected", report_id, moderator)
                .execute(&mut *tx)
                .await?;
        }
        PhoneNumberEvent::PhoneReportDeleted {
            report_id,
            moderator,
        } => {
            decide("deleted", report_id, moderator)
                .execute(&mut *tx)
                .await?;
        }
        PhoneNumberEvent::NumberDisputed {
            dispute_id, text, ..
        } => {
            sqlx::query(
                "INSERT INTO phone_disputes (dispute_id, phone_number, text, created_at)
                 VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            )
            .bind(dispute_id)
            .bind(number)
            .bind(text)
            .bind(env.occurred_at)
            .execute(&mut *tx)
            .await?;
        }
        PhoneNumberEvent::DisputeDecided {
            dispute_id,
            outcome,
            moderator,
            note,
            cleared,
        } => {
            sqlx::query(
                "UPDATE phone_disputes SET status = $2, decided_at = $3, decided_by = $4, note = $5
                  WHERE dispute_id = $1",
            )
            .bind(dispute_id)
            .bind(outcome.as_str())
            .bind(env.occurred_at)
            .bind(&moderator)
            .bind(note)
            .execute(&mut *tx)
            .await?;
            for report_id in cleared {
                decide("rejected", report_id, moderator.clone())
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    summarize(tx, number, fx).await?;
    Ok(())
}

async fn summarize(
    tx: &mut PgConnection,
    number: &str,
    fx: &mut Effects,
) -> Result<(), sqlx::Error> {
    let (approved, pending, categories, distinct_ips, last, flagged): (
        i64,
        i64,
        serde_json::Value,
        i64,
        Option<chrono::DateTime<chrono::Utc>>,
        i64,
    ) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE counted AND status = 'approved'),
                    count(*) FILTER (WHERE counted AND status = 'pending'),
                    coalesce((SELECT jsonb_object_agg(category, n) FROM (
                        SELECT category, count(*) AS n FROM phone_reports
                         WHERE phone_number = $1 AND counted AND status IN ('pending', 'approved')
                         GROUP BY category) c), '{}'::jsonb),
                    count(DISTINCT reporter_ip) FILTER (WHERE status <> 'deleted'),
                    max(created_at) FILTER (WHERE status <> 'deleted'),
                    count(*) FILTER (WHERE task_id IS NOT NULL AND status IN ('pending', 'approved'))
               FROM phone_reports WHERE phone_number = $1",
    )
    .bind(number)
    .fetch_one(&mut *tx)
    .await?;
    let status = if approved > 0 {
        "dangerous"
    } else if pending > 0 {
        "reported"
    } else {
        "unknown"
    };
    sqlx::query(
        "INSERT INTO phone_numbers (phone_number, status, approved_reports, pending_reports, categories,
                                    distinct_ips, last_reported_at, flagged_calls)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
         ON CONFLICT (phone_number) DO UPDATE SET
            status = EXCLUDED.status, approved_reports = EXCLUDED.approved_reports,
            pending_reports = EXCLUDED.pending_reports, categories = EXCLUDED.categories,
            distinct_ips = EXCLUDED.distinct_ips, last_reported_at = EXCLUDED.last_reported_at,
            flagged_calls = EXCLUDED.flagged_calls",
    )
    .bind(number)
    .bind(status)
    .bind(approved as i32)
    .bind(pending as i32)
    .bind(&categories)
    .bind(distinct_ips as i32)
    .bind(last)
    .bind(flagged as i32)
    .execute(&mut *tx)
    .await?;
    let key = reputation_key(number);
    if status == "unknown" {
        fx.delete(PHONE_REPUTATION_BUCKET, key);
    } else {
        let value = json!({
            "phoneNumber": number,
            "status": status,
            "approvedReports": approved,
            "pendingReports": pending,
            "categories": categories,
            "flaggedCalls": flagged,
        });
        fx.put(PHONE_REPUTATION_BUCKET, key, value.to_string());
    }
    Ok(())
}
