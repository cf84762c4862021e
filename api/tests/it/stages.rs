//! The pipeline's stages as single steps, driven without NATS: a `Delivery` in, a `Disposition`
//! out, against a real Postgres.

use std::sync::Arc;
use std::time::Duration;

use common::nats::{Delivery, Disposition};
use events::task::{AnalysisResult, WorkerResult};
use pipeline::intake::Intake;
use uuid::Uuid;
use write::commands::{execute, CommandContext};
use write::domain::voice_task::{TaskStatus, VoiceTask, VoiceTaskCommand};

fn delivery(worker: Uuid, result: &WorkerResult, age: Duration) -> Delivery {
    Delivery {
        subject: events::task::results_subject(worker),
        payload: serde_json::to_vec(result).unwrap().into(),
        age,
    }
}

async fn status(pool: &sqlx::PgPool, id: Uuid) -> TaskStatus {
    use cqrs_es::{AggregateContext, EventStore};
    let store = write::event_store::<VoiceTask>(pool, events::voice_task::UPCASTERS);
    store
        .load_aggregate(&id.to_string())
        .await
        .unwrap()
        .aggregate()
        .status()
}

/// Given a queued task, the intake's step records its holder's start and result, refuses a
/// result from a worker that does not hold it or that claims another's subject, drops what it
/// cannot read — acking each — and asks for a retry of a result whose start is not recorded yet.
#[tokio::test]
async fn the_intake_step_records_a_run_and_refuses_the_rest_without_nats() {
    let db = testkit::Db::fresh().await.unwrap();
    let tasks = Arc::new(cqrs_es::CqrsFramework::new(
        write::event_store::<VoiceTask>(&db.pool, events::voice_task::UPCASTERS),
        vec![],
        (),
    ));
    let id = Uuid::new_v4();
    let ctx = CommandContext::new("test", None);
    let authorize = VoiceTaskCommand::AuthorizeUpload {
        object_key: format!("uploads/{id}"),
        content_type: "audio/wav".into(),
        content_length: 10,
        expires_at: chrono::Utc::now() + chrono::Duration::minutes(5),
    };
    execute(&tasks, &id.to_string(), authorize, &ctx)
        .await
        .unwrap();
    let submit = VoiceTaskCommand::Submit {
        email: None,
        caller_number: None,
        language: None,
        email_notification: false,
    };
    execute(&tasks, &id.to_string(), submit, &ctx)
        .await
        .unwrap();
    let intake = Intake {
        tasks: tasks.clone(),
    };
    let (holder, other) = (Uuid::new_v4(), Uuid::new_v4());
    let fresh = Duration::from_secs(1);
    let completed = |worker| WorkerResult::Completed {
        task_id: id,
        worker_id: worker,
        delivery: Some(1),
        result: Box::new(AnalysisResult {
            verdict: "safe".into(),
            ..Default::default()
        }),
    };

    // A result before its run's start: retried later, not dropped.
    assert_eq!(
        intake
            .handle(delivery(holder, &completed(holder), fresh))
            .await,
        Disposition::Nak(Duration::from_secs(2))
    );
    // Unreadable: dropped.
    let junk = Delivery {
        subject: events::task::results_subject(holder),
        payload: b"{not json".to_vec().into(),
        age: fresh,
    };
    assert_eq!(intake.handle(junk).await, Disposition::Ack);
    let started = WorkerResult::Started {
        task_id: id,
        worker_id: holder,
        delivery: Some(1),
    };
    // Published on another worker's subject: refused.
    assert_eq!(
        intake.handle(delivery(other, &started, fresh)).await,
        Disposition::Ack
    );
    assert_eq!(status(&db.pool, id).await, TaskStatus::Queued);
    // The holder starts it.
    assert_eq!(
        intake.handle(delivery(holder, &started, fresh)).await,
        Disposition::Ack
    );
    assert_eq!(status(&db.pool, id).await, TaskStatus::Processing);
    // Another worker's result for it: refused, the task keeps running.
    assert_eq!(
        intake
            .handle(delivery(other, &completed(other), fresh))
            .await,
        Disposition::Ack
    );
    assert_eq!(status(&db.pool, id).await, TaskStatus::Processing);
    // The holder's result completes it.
    assert_eq!(
        intake
            .handle(delivery(holder, &completed(holder), fresh))
            .await,
        Disposition::Ack
    );
    assert_eq!(status(&db.pool, id).await, TaskStatus::Completed);
}
