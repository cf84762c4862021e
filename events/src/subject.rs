//! Subjects on the `EVENTS` stream: `ev.<aggregate>.<id>.<Event>`.
//!
//! Aggregate ids come from outside (usernames, host-platform user ids, phone numbers), so the id
//! token is escaped: every byte outside `[A-Za-z0-9_+=@:-]` becomes `%XX`. That keeps `.`, `*`,
//! `>` and whitespace, which NATS reserves, out of the token, and the mapping is reversible.

/// Prefix of every event subject.
pub const PREFIX: &str = "ev";

/// Subject filter that matches every event.
pub const ALL: &str = "ev.>";

/// `ev.<aggregate>.<escaped id>.<Event>`
pub fn event_subject(aggregate_type: &str, aggregate_id: &str, event_type: &str) -> String {
    format!(
        "{PREFIX}.{aggregate_type}.{}.{event_type}",
        escape_token(aggregate_id)
    )
}

/// Filter for every event of one aggregate type (`ev.admin.>`).
pub fn aggregate_type_filter(aggregate_type: &str) -> String {
    format!("{PREFIX}.{aggregate_type}.>")
}

/// Filter for every event of one aggregate instance (`ev.admin.alice.*`).
pub fn aggregate_filter(aggregate_type: &str, aggregate_id: &str) -> String {
    format!("{PREFIX}.{aggregate_type}.{}.*", escape_token(aggregate_id))
}

/// Filter for one event type across all aggregates of a type (`ev.*.*.AdminCreated`).
pub fn event_type_filter(event_type: &str) -> String {
    format!("{PREFIX}.*.*.{event_type}")
}

/// The de-duplication id: `<aggregate_type>:<aggregate_id>:<sequence>`.
pub fn msg_id(aggregate_type: &str, aggregate_id: &str, sequence: u64) -> String {
    format!("{aggregate_type}:{aggregate_id}:{sequence}")
}

fn is_plain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'+' | b'=' | b'@' | b':' | b'-')
}

/// Escapes an id so it is one valid NATS subject token.
pub fn escape_token(raw: &str) -> String {
    if raw.is_empty() {
        return "%".to_string();
    }
    let mut out = String::with_capacity(raw.len());
    for b in raw.bytes() {
        if is_plain(b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reverses [`escape_token`]; `None` when the token is not a valid escape.
pub fn unescape_token(token: &str) -> Option<String> {
    if token == "%" {
        return Some(String::new());
    }
    let bytes = token.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = token.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_has_four_tokens_whatever_the_id() {
        for id in [
            "alice",
            "a.b",
            "x*y>z",
            "with space",
            "+14155550100",
            "ünï",
            "",
        ] {
            let s = event_subject("admin", id, "AdminCreated");
            assert_eq!(s.split('.').count(), 4, "{s}");
            assert!(
                !s.contains(' ') && !s.contains('*') && !s.contains('>'),
                "{s}"
            );
            let token = s.split('.').nth(2).unwrap();
            assert_eq!(unescape_token(token).as_deref(), Some(id));
        }
    }

    #[test]
    fn plain_ids_are_left_alone() {
        assert_eq!(
            event_subject(
                "voice_task",
                "0b8f3c2e-1d2a-4c55-9a51-3c1c1d9e8a10",
                "TaskSubmitted"
            ),
            "ev.voice_task.0b8f3c2e-1d2a-4c55-9a51-3c1c1d9e8a10.TaskSubmitted"
        );
        assert_eq!(msg_id("admin", "admin", 3), "admin:admin:3");
    }

    #[test]
    fn bad_escapes_are_rejected() {
        assert_eq!(unescape_token("%G1"), None);
        assert_eq!(unescape_token("%2"), None);
    }
}
