//! The write side of blacklist: the aggregates (`domain`), how a command runs against the event
//! store (`commands`: metadata, per-aggregate serialisation, conflict retries, a typed
//! `CommandError`), password hashing on a bounded pool (`passwords`), and the outbox relay that
//! publishes committed events to JetStream (`relay`). It knows nothing of HTTP: the api maps its
//! errors to responses.

pub mod commands;
pub mod domain;
pub mod passwords;
pub mod relay;

/// The event store of aggregate `A`, with the upcasters of its events.
pub fn event_store<A: cqrs_es::Aggregate>(
    pool: &sqlx::PgPool,
    upcasters: &'static [events::version::Upcaster],
) -> cqrs_es::persist::PersistedEventStore<postgres_es::PostgresEventRepository, A> {
    cqrs_es::persist::PersistedEventStore::new_event_store(
        postgres_es::PostgresEventRepository::new(pool.clone()),
    )
    .with_upcasters(vec![Box::new(events::version::CqrsUpcaster(upcasters))])
}
