//! Payload versioning.
//!
//! Every event carries `schema_version`. When an event's shape changes, its version is bumped in
//! its `DomainEvent::event_version` and an [`Upcaster`] is added that turns the previous version's
//! payload into the next one. Decoding walks the chain until no upcaster applies, so payloads
//! written years ago still parse: on the stream (`Envelope::decode`) and in the Postgres
//! event store (through [`CqrsUpcaster`], which plugs the same table into cqrs-es).

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;

/// Turns `event_type` at `from` into the shape of version `to`.
#[derive(Clone, Copy)]
pub struct Upcaster {
    pub event_type: &'static str,
    pub from: &'static str,
    pub to: &'static str,
    pub upgrade: fn(Value) -> Value,
}

/// Applies every matching upcaster in turn; returns the final version and payload.
pub fn upcast(
    event_type: &str,
    version: &str,
    mut payload: Value,
    upcasters: &[Upcaster],
) -> (String, Value) {
    let mut version = version.to_owned();
    // Each step must change the version; the bound stops a cyclic table from looping forever.
    for _ in 0..=upcasters.len() {
        match upcasters
            .iter()
            .find(|u| u.event_type == event_type && u.from == version)
        {
            Some(u) => {
                payload = (u.upgrade)(payload);
                version = u.to.to_owned();
            }
            None => break,
        }
    }
    (version, payload)
}

/// `{"AdminCreated": {...}}` → `{...}`; anything else is returned as is.
pub fn untag(event_type: &str, payload: Value) -> Value {
    match payload {
        Value::Object(mut map) if map.len() == 1 && map.contains_key(event_type) => {
            map.remove(event_type).unwrap_or(Value::Null)
        }
        other => other,
    }
}

/// Adapts an upcaster table to cqrs-es, whose stored payloads are tagged `{"<EventType>": {..}}`.
pub struct CqrsUpcaster(pub &'static [Upcaster]);

impl EventUpcaster for CqrsUpcaster {
    fn can_upcast(&self, event_type: &str, event_version: &str) -> bool {
        self.0
            .iter()
            .any(|u| u.event_type == event_type && u.from == event_version)
    }

    fn upcast(&self, mut event: SerializedEvent) -> SerializedEvent {
        let inner = untag(&event.event_type, event.payload);
        let (version, payload) = upcast(&event.event_type, &event.event_version, inner, self.0);
        event.payload = Value::Object([(event.event_type.clone(), payload)].into_iter().collect());
        event.event_version = version;
        event
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    /// Today's shape of an imaginary event whose history had two changes:
    /// v1 `{"name": "Ann Lee"}` → v2 split the name → v3 added `locale`.
    #[derive(Debug, Deserialize, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Renamed {
        first_name: String,
        last_name: String,
        locale: String,
    }

    fn v1_to_v2(mut p: Value) -> Value {
        let name = p["name"].as_str().unwrap_or_default().to_owned();
        let (first, last) = name.split_once(' ').unwrap_or((&name, ""));
        p = json!({"firstName": first, "lastName": last});
        p
    }

    fn v2_to_v3(mut p: Value) -> Value {
        p["locale"] = json!("en");
        p
    }

    const TABLE: &[Upcaster] = &[
        Upcaster {
            event_type: "Renamed",
            from: "2",
            to: "3",
            upgrade: v2_to_v3,
        },
        Upcaster {
            event_type: "Renamed",
            from: "1",
            to: "2",
            upgrade: v1_to_v2,
        },
    ];

    #[test]
    fn old_versions_walk_the_chain_to_today() {
        let (v, p) = upcast("Renamed", "1", json!({"name": "Ann Lee"}), TABLE);
        assert_eq!(v, "3");
        let parsed: Renamed = serde_json::from_value(p).unwrap();
        assert_eq!(
            parsed,
            Renamed {
                first_name: "Ann".into(),
                last_name: "Lee".into(),
                locale: "en".into()
            }
        );
    }

    #[test]
    fn current_versions_and_other_types_are_untouched() {
        let p = json!({"firstName": "A", "lastName": "B", "locale": "fr"});
        assert_eq!(
            upcast("Renamed", "3", p.clone(), TABLE),
            ("3".into(), p.clone())
        );
        assert_eq!(upcast("Other", "1", p.clone(), TABLE), ("1".into(), p));
    }

    #[test]
    fn cqrs_store_payloads_are_upcast_in_their_tagged_form() {
        let up = CqrsUpcaster(TABLE);
        assert!(up.can_upcast("Renamed", "1"));
        assert!(!up.can_upcast("Renamed", "3"));
        let ev = SerializedEvent {
            aggregate_id: "p1".into(),
            sequence: 1,
            aggregate_type: "person".into(),
            event_type: "Renamed".into(),
            event_version: "1".into(),
            payload: json!({"Renamed": {"name": "Ann Lee"}}),
            metadata: json!({}),
        };
        let out = up.upcast(ev);
        assert_eq!(out.event_version, "3");
        assert_eq!(out.payload["Renamed"]["locale"], "en");
    }
}
