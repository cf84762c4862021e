//! Lists: `limit` (default 50, max 500) and an opaque `cursor`; responses carry `nextCursor`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::ApiError;

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 500;

/// `limit` is taken as text and parsed here: query structs flatten this one, and serde's
/// flatten hands every value over as a string.
#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    pub limit: Option<String>,
    pub cursor: Option<String>,
}

impl PageQuery {
    pub fn limit(&self) -> Result<i64, ApiError> {
        let bad = || {
            let msg = format!("limit must be a number from 1 to {MAX_LIMIT}");
            ApiError::unprocessable("invalid_limit", msg)
        };
        match self
            .limit
            .as_deref()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            None => Ok(DEFAULT_LIMIT),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
                _ => Err(bad()),
            },
        }
    }

    /// The decoded cursor, if any; a cursor that does not decode is a 422.
    pub fn cursor<C: DeserializeOwned>(&self) -> Result<Option<C>, ApiError> {
        let Some(raw) = self.cursor.as_deref().filter(|c| !c.is_empty()) else {
            return Ok(None);
        };
        let bad =
            || ApiError::unprocessable("invalid_cursor", "the cursor is not one this API issued");
        let bytes = URL_SAFE_NO_PAD.decode(raw).map_err(|_| bad())?;
        serde_json::from_slice(&bytes).map(Some).map_err(|_| bad())
    }
}

/// Cuts rows fetched with `LIMIT limit + 1` to the page, and makes the cursor of the next page
/// from the page's last row (`None` at the end).
pub fn split_page<T, C: Serialize>(
    mut rows: Vec<T>,
    limit: i64,
    cursor_of: impl Fn(&T) -> C,
) -> (Vec<T>, Option<String>) {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    let next = if more {
        rows.last().map(|last| encode_cursor(&cursor_of(last)))
    } else {
        None
    };
    (rows, next)
}

pub fn encode_cursor<C: Serialize>(c: &C) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(c).expect("cursor serializes"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let q = PageQuery {
            limit: None,
            cursor: Some(encode_cursor(&(5i64, "u1"))),
        };
        assert_eq!(
            q.cursor::<(i64, String)>().unwrap(),
            Some((5, "u1".to_string()))
        );
        assert_eq!(q.limit().unwrap(), DEFAULT_LIMIT);
        let bad = PageQuery {
            limit: Some("501".into()),
            cursor: Some("%%%".into()),
        };
        assert!(bad.limit().is_err());
        assert!(bad.cursor::<(i64, String)>().is_err());
        assert!(PageQuery {
            limit: Some("ten".into()),
            cursor: None
        }
        .limit()
        .is_err());
        assert_eq!(
            PageQuery {
                limit: Some("500".into()),
                cursor: None
            }
            .limit()
            .unwrap(),
            500
        );
    }
}
