//! The envelope every event travels in on JetStream.

use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::subject;
use crate::version::{self, Upcaster};

/// Namespace for deterministic event ids (UUIDv5 of the msg id), so an event keeps its id when
/// JetStream is re-populated from Postgres.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x6d0c_25f1_8f5e_4b8a_9b0e_2f6c_b1a4_7e11);

/// Payload fields that stay in Postgres (the source of truth) and never reach the stream.
pub const SECRET_FIELDS: &[&str] = &["passwordHash", "tokenHash", "keyHash", "email"];

/// Metadata keys the api writes with every command (cqrs-es metadata, stored per event).
pub const META_ACTOR: &str = "actor";
/// Correlation id of the request that caused the command.
pub const META_CORRELATION_ID: &str = "correlationId";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    /// Deterministic: UUIDv5 of [`Envelope::msg_id`].
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Per-aggregate sequence, starting at 1.
    pub sequence: u64,
    pub occurred_at: DateTime<Utc>,
    /// Who caused it: `admin:<name>`, `user:<id>`, `ip:<addr>`, `worker:<id>`, `system:<process>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub correlation_id: Option<String>,
    pub event_type: String,
    /// The payload's schema version (the cqrs-es `event_version`).
    pub schema_version: String,
    /// The event's fields (not tagged with the variant name; that is `event_type`).
    pub payload: Value,
}

/// Why an envelope or payload could not be turned into a typed event.
#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("envelope is not valid JSON: {0}")]
    Envelope(#[source] serde_json::Error),
    #[error("{event_type} v{version} does not match the current schema: {source}")]
    Payload {
        event_type: String,
        version: String,
        #[source]
        source: serde_json::Error,
    },
}

impl Envelope {
    pub fn event_id_for(aggregate_type: &str, aggregate_id: &str, sequence: u64) -> Uuid {
        Uuid::new_v5(
            &EVENT_ID_NAMESPACE,
            subject::msg_id(aggregate_type, aggregate_id, sequence).as_bytes(),
        )
    }

    /// Builds the published form of a stored event. `stored_payload` is what cqrs-es stored:
    /// either `{"<EventType>": {fields}}` or the bare fields. Secret fields are removed.
    #[allow(clippy::too_many_arguments)]
    pub fn from_stored(
        aggregate_type: &str,
        aggregate_id: &str,
        sequence: u64,
        occurred_at: DateTime<Utc>,
        event_type: &str,
        schema_version: &str,
        stored_payload: Value,
        metadata: &Value,
    ) -> Self {
        let mut payload = version::untag(event_type, stored_payload);
        redact(&mut payload);
        let meta = |k: &str| metadata.get(k).and_then(Value::as_str).map(str::to_owned);
        Envelope {
            event_id: Self::event_id_for(aggregate_type, aggregate_id, sequence),
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            sequence,
            occurred_at,
            actor: meta(META_ACTOR),
            correlation_id: meta(META_CORRELATION_ID),
            event_type: event_type.to_owned(),
            schema_version: schema_version.to_owned(),
            payload,
        }
    }

    pub fn subject(&self) -> String {
        subject::event_subject(&self.aggregate_type, &self.aggregate_id, &self.event_type)
    }

    pub fn msg_id(&self) -> String {
        subject::msg_id(&self.aggregate_type, &self.aggregate_id, self.sequence)
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("an envelope always serializes")
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        serde_json::from_slice(bytes).map_err(DecodeError::Envelope)
    }

    /// Decodes the payload into the aggregate's event enum (externally tagged by variant name),
    /// upcasting old schema versions first.
    pub fn decode<E: DeserializeOwned>(&self, upcasters: &[Upcaster]) -> Result<E, DecodeError> {
        let (version, payload) = version::upcast(
            &self.event_type,
            &self.schema_version,
            self.payload.clone(),
            upcasters,
        );
        let tagged = Value::Object([(self.event_type.clone(), payload)].into_iter().collect());
        serde_json::from_value(tagged).map_err(|source| DecodeError::Payload {
            event_type: self.event_type.clone(),
            version,
            source,
        })
    }
}

/// Removes [`SECRET_FIELDS`] from a payload object.
pub fn redact(payload: &mut Value) {
    if let Value::Object(map) = payload {
        for field in SECRET_FIELDS {
            map.remove(*field);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::AdminEvent;
    use serde_json::json;

    /// `decode` walks the payload through its upcaster table before parsing it.
    #[test]
    fn decode_upcasts_an_old_payload_first() {
        #[derive(Debug, serde::Deserialize, PartialEq)]
        #[serde(rename_all = "camelCase")]
        struct Renamed {
            first_name: String,
        }
        #[derive(Debug, serde::Deserialize, PartialEq)]
        enum Ev {
            Renamed(Renamed),
        }
        fn v1_to_v2(p: serde_json::Value) -> serde_json::Value {
            json!({"firstName": p["name"]})
        }
        const TABLE: &[Upcaster] = &[Upcaster {
            event_type: "Renamed",
            from: "1",
            to: "2",
            upgrade: v1_to_v2,
        }];
        let env = Envelope::from_stored(
            "person",
            "p1",
            1,
            chrono::Utc::now(),
            "Renamed",
            "1",
            json!({"Renamed": {"name": "Ann"}}),
            &json!({}),
        );
        let Ev::Renamed(r) = env.decode::<Ev>(TABLE).unwrap();
        assert_eq!(r.first_name, "Ann");
    }

    fn stored() -> Envelope {
        Envelope::from_stored(
            "admin",
            "admin",
            1,
            "2026-11-21T10:00:00Z".parse().unwrap(),
            "AdminCreated",
            "1",
            json!({"AdminCreated": {"username": "admin", "passwordHash": "$argon2id$secret"}}),
            &json!({"actor": "ip:127.0.0.1", "correlationId": "abc"}),
        )
    }

    #[test]
    fn published_envelope_has_no_secrets_and_stable_ids() {
        let env = stored();
        assert_eq!(env.payload, json!({"username": "admin"}));
        assert_eq!(env.subject(), "ev.admin.admin.AdminCreated");
        assert_eq!(env.msg_id(), "admin:admin:1");
        assert_eq!(env.event_id, Envelope::event_id_for("admin", "admin", 1));
        assert_eq!(env.actor.as_deref(), Some("ip:127.0.0.1"));
        assert_eq!(env.correlation_id.as_deref(), Some("abc"));
    }

    #[test]
    fn envelope_round_trips_as_camel_case_json() {
        let env = stored();
        let bytes = env.to_bytes();
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        for key in [
            "eventId",
            "aggregateType",
            "aggregateId",
            "sequence",
            "occurredAt",
            "eventType",
            "schemaVersion",
            "payload",
        ] {
            assert!(v.get(key).is_some(), "missing {key}");
        }
        assert_eq!(Envelope::from_bytes(&bytes).unwrap(), env);
    }

    #[test]
    fn decodes_into_the_typed_event_without_the_secret() {
        let event: AdminEvent = stored().decode(&[]).unwrap();
        assert_eq!(
            event,
            AdminEvent::AdminCreated {
                username: "admin".into(),
                password_hash: String::new()
            }
        );
    }

    #[test]
    fn garbage_is_a_decode_error_not_a_panic() {
        assert!(Envelope::from_bytes(b"{not json").is_err());
        let mut env = stored();
        env.payload = json!({"username": 42});
        assert!(env.decode::<AdminEvent>(&[]).is_err());
    }
}
