//! `platform_users`, `user_ips`, `user_reports`, `ip_bans`, `ban_reviews`, `ban_appeals`, and the `ip-bans`
//! KV bucket every api instance enforces.
//!
//! An IP is banned while at least one banned user holds it (`ip_bans` has a row per pair), so a
//! vindication removes the KV key only for IPs no other banned user shares.

use events::platform_user::{ip_to_key, PlatformUserEvent, ReviewDecision, UPCASTERS};
use events::topology::IP_BANS_BUCKET;
use events::Envelope;
use sqlx::PgConnection;

use crate::effects::{ApplyError, Effects};

/// Creates the user's row on first sight (a reported user may never have made a request).
async fn ensure_user(tx: &mut PgConnection, env: &Envelope) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO platform_users (user_id, first_seen_at) VALUES ($1, $2) ON CONFLICT DO NOTHING")
        .bind(&env.aggregate_id)
        .bind(env.occurred_at)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

async fn ban_ip(
    tx: &mut PgConnection,
    fx: &mut Effects,
    ip: &str,
    user: &str,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO ip_bans (ip, user_id, banned_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    )
    .bind(ip)
    .bind(user)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    fx.put(IP_BANS_BUCKET, ip_to_key(ip), user.to_owned());
    Ok(())
}

pub async fn apply(
    tx: &mut PgConnection,
    env: &Envelope,
    fx: &mut Effects,
) -> Result<(), ApplyError> {
    let event: PlatformUserEvent = env
        .decode(UPCASTERS)
        .map_err(|e| ApplyError::Poison(e.to_string()))?;
    let (user, at) = (env.aggregate_id.as_str(), env.occurred_at);
    ensure_user(tx, env).await?;
    match event {
        PlatformUserEvent::UserProfileObserved {
            name,
            picture,
            video,
        } => {
            sqlx::query(
                "UPDATE platform_users SET name = $2, picture = $3, video = $4 WHERE user_id = $1",
            )
            .bind(user)
            .bind(name)
            .bind(picture)
            .bind(video)
            .execute(&mut *tx)
            .await?;
        }
        PlatformUserEvent::UserIpObserved { ip } => {
            sqlx::query("INSERT INTO user_ips (user_id, ip, first_seen_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING")
                .bind(user)
                .bind(&ip)
                .bind(at)
                .execute(&mut *tx)
                .await?;
            // A banned user showing up from a new address: that address is banned too.
            let banned: bool = sqlx::query_scalar(
                "SELECT ban_status IN ('temporary', 'permanent') FROM platform_users WHERE user_id = $1",
            )
            .bind(user)
            .fetch_one(&mut *tx)
            .await?;
            if banned {
                ban_ip(tx, fx, &ip, user, at).await?;
            }
        }
        PlatformUserEvent::ReportFiled {
            report_id,
            reporter_id,
            reporter_ip,
            reason,
            category,
            room_id,
            report_count,
            weight,
            ..
        } => {
            sqlx::query(
                "INSERT INTO user_reports (report_id, reported_user_id, reporter_user_id, reporter_ip, reason,
                                           room_id, created_at, report_count, category, weight)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT DO NOTHING",
            )
            .bind(report_id)
            .bind(user)
            .bind(&reporter_id)
            .bind(reporter_ip)
            .bind(reason)
            .bind(room_id)
            .bind(at)
            .bind(report_count as i32)
            .bind(category.as_str())
            .bind(weight)
            .execute(&mut *tx)
            .await?;
            sqlx::query("UPDATE platform_users SET report_count = $2 WHERE user_id = $1")
                .bind(user)
                .bind(report_count as i32)
                .execute(&mut *tx)
                .await?;
        }
        PlatformUserEvent::UserAutoBanned {
            reason,
            report_count,
            ips,
            banned_at,
        } => {
            sqlx::query(
                "UPDATE platform_users
                    SET ban_status = 'temporary', banned_at = $2, banned_reason = $3, report_count = $4,
                        review_status = 'pending', reviewed_at = NULL, reviewed_by = NULL,
                        ban_count = ban_count + 1
                  WHERE user_id = $1",
            )
            .bind(user)
            .bind(banned_at)
            .bind(reason)
            .bind(report_count as i32)
            .execute(&mut *tx)
            .await?;
            for ip in &ips {
                ban_ip(tx, fx, ip, user, banned_at).await?;
            }
        }
        PlatformUserEvent::BanReviewed {
            decision,
            reviewer,
            banned_at,
            ips,
        } => {
            let (status, review) = match decision {
                ReviewDecision::Permanent => ("permanent", "reviewed_ban"),
                ReviewDecision::Vindicated => ("vindicated", "reviewed_vindicate"),
            };
            sqlx::query(
                "UPDATE platform_users SET ban_status = $2, review_status = $3, reviewed_at = $4, reviewed_by = $5
                  WHERE user_id = $1",
            )
            .bind(user)
            .bind(status)
            .bind(review)
            .bind(at)
            .bind(&reviewer)
            .execute(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO ban_reviews (user_id, decision, reviewer, banned_at, reviewed_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(user)
            .bind(status)
            .bind(&reviewer)
            .bind(banned_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            if decision == ReviewDecision::Vindicated {
                let mut held: Vec<String> =
                    sqlx::query_scalar("DELETE FROM ip_bans WHERE user_id = $1 RETURNING ip")
                        .bind(user)
                        .fetch_all(&mut *tx)
                        .await?;
                held.extend(ips);
                held.sort();
                held.dedup();
                for ip in held {
                    let shared: bool =
                        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM ip_bans WHERE ip = $1)")
                            .bind(&ip)
                            .fetch_one(&mut *tx)
                            .await?;
                    if !shared {
                        fx.delete(IP_BANS_BUCKET, ip_to_key(&ip));
                    }
                }
            }
        }
        PlatformUserEvent::BanAppealed {
            appeal_id,
            text,
            banned_at,
            ..
        } => {
            sqlx::query(
                "INSERT INTO ban_appeals (appeal_id, user_id, text, banned_at, created_at)
                 VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            )
            .bind(appeal_id)
            .bind(user)
            .bind(text)
            .bind(banned_at)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        PlatformUserEvent::AppealDecided {
            appeal_id,
            outcome,
            decided_by,
            note,
            ..
        } => {
            sqlx::query(
                "UPDATE ban_appeals SET status = $2, decided_at = $3, decided_by = $4, note = $5
                  WHERE appeal_id = $1",
            )
            .bind(appeal_id)
            .bind(outcome.as_str())
            .bind(at)
            .bind(decided_by)
            .bind(note)
            .execute(&mut *tx)
            .await?;
        }
        // The KV keys were settled with the vindication itself (`BanReviewed`).
        PlatformUserEvent::IpBansLifted { .. } => {}
    }
    Ok(())
}
