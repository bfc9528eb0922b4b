//! Cursor pagination for every list: `?limit=` (1 to 1000, 100 by default) and `?cursor=`
//! (the `next_cursor` of the page before). A cursor names the last item a page held, not a
//! position, so items added or removed between two pages neither repeat nor go missing.

use base64::Engine as _;

use super::error::ApiError;

pub(super) const DEFAULT_LIMIT: usize = 100;
pub(super) const MAX_LIMIT: usize = 1000;

/// `?limit=&cursor=`, as every list's query type takes them (flattened into it). `limit` is
/// read as text so that a bad one is refused naming it, like any other field.
#[derive(Clone, Debug, Default, serde::Deserialize, schemars::JsonSchema)]
pub(super) struct PageQuery {
    /// How many to return, 1 to 1000 (100 by default).
    #[schemars(with = "Option<u32>", range(min = 1, max = 1000))]
    limit: Option<String>,
    /// The `next_cursor` of the page before.
    cursor: Option<String>,
}

impl PageQuery {
    pub(super) fn read(&self) -> Result<Page, ApiError> {
        Page::parse(self.limit.as_deref(), self.cursor.as_deref())
    }
}

/// A list's `limit` and `cursor`, read and checked.
#[derive(Clone, Debug, Default)]
pub(super) struct Page {
    pub(super) limit: usize,
    /// The sort key of the last item already seen.
    pub(super) after: Option<String>,
}

impl Page {
    pub(super) fn parse(limit: Option<&str>, cursor: Option<&str>) -> Result<Page, ApiError> {
        let limit = match limit {
            None => DEFAULT_LIMIT,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    let message = format!("`limit` must be a whole number from 1 to {MAX_LIMIT}, not `{text}`");
                    return Err(ApiError::bad_field("limit", message));
                }
            },
        };
        let after = match cursor.filter(|c| !c.is_empty()) {
            None => None,
            Some(text) => {
                let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(text).ok();
                match bytes.and_then(|b| String::from_utf8(b).ok()) {
                    Some(key) => Some(key),
                    None => {
                        let message = "`cursor` is not one this server gave out; pass a page's `next_cursor` as it is";
                        return Err(ApiError::bad_field("cursor", message));
                    }
                }
            }
        };
        Ok(Page { limit, after })
    }

    /// One page of `items`, given in list order with their sort keys (ascending keys, or
    /// descending ones for a newest-first list: `newest_first`), and the cursor of the next
    /// page when there is one.
    pub(super) fn of<T>(
        &self,
        items: impl IntoIterator<Item = (String, T)>,
        newest_first: bool,
    ) -> (Vec<T>, Option<String>) {
        let past = |key: &String| match &self.after {
            None => true,
            Some(after) if newest_first => key < after,
            Some(after) => key > after,
        };
        let mut rest = items.into_iter().filter(|(key, _)| past(key));
        let mut page = Vec::new();
        let mut last = None;
        for (key, item) in rest.by_ref().take(self.limit) {
            last = Some(key);
            page.push(item);
        }
        let more = rest.next().is_some();
        (page, last.filter(|_| more).map(|key| cursor(&key)))
    }
}

impl Page {
    /// Up to one more than a page of `items` (in list order, with their sort keys) after the
    /// cursor: what one partition gives [`Page::merge`].
    pub(super) fn keyed<T>(
        &self,
        items: impl IntoIterator<Item = (String, T)>,
        newest_first: bool,
    ) -> Vec<(String, T)> {
        let past = |key: &String| match &self.after {
            None => true,
            Some(after) if newest_first => key < after,
            Some(after) => key > after,
        };
        items.into_iter().filter(|(key, _)| past(key)).take(self.limit + 1).collect()
    }

    /// One page of what the partitions gave (each [`Page::keyed`]), in list order across
    /// them, and the cursor of the next page when there is one.
    pub(super) fn merge<T>(&self, parts: Vec<Vec<(String, T)>>, newest_first: bool) -> (Vec<T>, Option<String>) {
        let several = parts.len() > 1;
        let mut all: Vec<(String, T)> = parts.into_iter().flatten().collect();
        if several {
            all.sort_by(|a, b| if newest_first { b.0.cmp(&a.0) } else { a.0.cmp(&b.0) });
        }
        self.of(all, newest_first)
    }
}

/// `key`, a sort key that only orders things within one engine (an agent's index), made one
/// that orders them across partitions: partition first. Unchanged with one partition.
pub(super) fn across(engine: &crate::engine::Engine, key: String) -> String {
    let partition = engine.partition();
    match partition.of.count() {
        1 => key,
        _ => format!("{:05}{key}", partition.index),
    }
}

/// The cursor that continues after the item whose sort key is `key`.
pub(super) fn cursor(key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(key)
}

/// A number as a sort key that orders like the number.
pub(super) fn key(n: u64) -> String {
    format!("{n:020}")
}
