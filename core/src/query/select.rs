//! Running a query over records: filter, sort, skip, limit, project.
//!
//! A [`Selection`] takes records one at a time, in path order, as a store reads them, and
//! keeps only what the answer can still need: without a sort it stops as soon as the page
//! is full; with a sort and a limit it keeps about twice the page (`skip + limit`) before
//! trimming to the best ones.

use std::cmp::Ordering;

use serde_json::Value;

use super::{Query, document};
use crate::payload::Record;

/// Fewest records a sorted, limited selection holds before it trims.
const MIN_TRIM: usize = 1024;

/// A query being answered ([`Query::select`]): [`Selection::offer`] each candidate record
/// in path order, then [`Selection::finish`].
#[derive(Debug)]
pub struct Selection<'q> {
    query: &'q Query,
    /// Matches kept, with their sort values when the query sorts.
    hits: Vec<Hit>,
    /// Matches passed over for `skip` (without a sort only).
    skipped: usize,
    /// No later record can change the answer.
    full: bool,
}

#[derive(Debug)]
struct Hit {
    record: Record,
    keys: Vec<Option<Value>>,
}

impl Query {
    /// Starts answering this query over records offered in path order.
    pub fn select(&self) -> Selection<'_> {
        Selection {
            query: self,
            hits: Vec::new(),
            skipped: 0,
            full: false,
        }
    }

    /// The answer to this query over `records`, which must be in path order (a store's
    /// scan order): the matches, sorted, after `skip`, at most `limit`, projected.
    pub fn run(&self, records: impl IntoIterator<Item = Record>) -> Vec<Record> {
        let mut selection = self.select();
        for record in records {
            if !selection.offer(record) {
                break;
            }
        }
        selection.finish()
    }
}

impl Selection<'_> {
    /// Considers one record (records come in path order). Returns whether later records
    /// can still change the answer: `false` once an unsorted page is full, so a store may
    /// stop reading.
    pub fn offer(&mut self, record: Record) -> bool {
        if self.full {
            return false;
        }
        let query = self.query;
        if query.criteria.is_none() && query.sort.is_empty() {
            self.keep(record, Vec::new());
            return !self.full;
        }
        let doc = document(&record);
        if query.criteria.as_ref().is_some_and(|c| !c.matches(&doc)) {
            return true;
        }
        let keys = query
            .sort
            .iter()
            .map(|key| key.field.value(&doc).cloned())
            .collect();
        self.keep(record, keys);
        !self.full
    }

    fn keep(&mut self, record: Record, keys: Vec<Option<Value>>) {
        let query = self.query;
        if query.sort.is_empty() {
            if self.skipped < query.skip {
                self.skipped += 1;
                return;
            }
            self.hits.push(Hit { record, keys });
            self.full = query.limit.is_some_and(|limit| self.hits.len() >= limit);
            return;
        }
        self.hits.push(Hit { record, keys });
        if let Some(limit) = query.limit {
            let page_end = query.skip.saturating_add(limit);
            if self.hits.len() >= page_end.saturating_mul(2).max(MIN_TRIM) {
                self.sort();
                self.hits.truncate(page_end);
            }
        }
    }

    fn sort(&mut self) {
        let sort = &self.query.sort;
        self.hits.sort_by(|a, b| {
            sort.iter()
                .zip(a.keys.iter().zip(&b.keys))
                .map(|(key, (x, y))| key.compare(x.as_ref(), y.as_ref()))
                .find(|o| o.is_ne())
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.record.path.cmp(&b.record.path))
        });
    }

    /// The answer: the matches in order, after `skip`, at most `limit`, projected.
    pub fn finish(mut self) -> Vec<Record> {
        let query = self.query;
        let skip = if query.sort.is_empty() {
            0
        } else {
            self.sort();
            query.skip
        };
        let page = self
            .hits
            .into_iter()
            .skip(skip)
            .take(query.limit.unwrap_or(usize::MAX))
            .map(|hit| hit.record);
        match &query.fields {
            Some(projection) => page.map(|r| projection.apply_record(r)).collect(),
            None => page.collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::path::Path;
    use crate::payload::Payload;

    fn record(path: &str, value: Value, created: u64) -> Record {
        Record {
            path: Path::parse(path).unwrap(),
            payload: Payload::json(&value),
            created,
            modified: created,
            modified_by: None,
            properties: None,
        }
    }

    fn paths(records: &[Record]) -> Vec<&str> {
        records.iter().map(|r| r.path.as_str()).collect()
    }

    fn query(criteria: Value, options: Value) -> Query {
        Query::parse(Some(&criteria), Some(&options)).unwrap()
    }

    fn numbered(n: u64) -> Vec<Record> {
        (0..n)
            .map(|i| {
                record(
                    &format!("/r/{i:04}"),
                    json!({"n": i % 7, "even": i % 2 == 0}),
                    i,
                )
            })
            .collect()
    }

    #[test]
    fn unsorted_pages_follow_path_order_and_stop_early() {
        let q = query(json!({"even": true}), json!({"skip": 2, "limit": 3}));
        let mut selection = q.select();
        let mut offered = 0;
        for r in numbered(100) {
            offered += 1;
            if !selection.offer(r) {
                break;
            }
        }
        assert_eq!(offered, 9, "stops once the page is full");
        assert_eq!(
            paths(&selection.finish()),
            ["/r/0004", "/r/0006", "/r/0008"]
        );
        let all = Query::default().run(numbered(3));
        assert_eq!(paths(&all), ["/r/0000", "/r/0001", "/r/0002"]);
    }

    #[test]
    fn sorted_pages_equal_slices_of_the_full_sort_even_when_trimmed() {
        let records = numbered(5000);
        let sort = json!([["n", -1], ["_meta.created", 1]]);
        let full = query(json!({}), json!({ "sort": sort })).run(records.clone());
        assert_eq!(full.len(), 5000);
        for (skip, limit) in [(0, 10), (10, 10), (1500, 700), (4990, 50)] {
            let page = query(
                json!({}),
                json!({"sort": sort, "skip": skip, "limit": limit}),
            )
            .run(records.clone());
            let end = (skip + limit).min(full.len());
            assert_eq!(
                paths(&page),
                paths(&full[skip..end]),
                "skip {skip} limit {limit}"
            );
        }
    }

    #[test]
    fn ties_are_broken_by_path_and_projection_applies_last() {
        let records = vec![
            record("/b", json!({"k": 1, "x": 1}), 5),
            record("/a", json!({"k": 1, "x": 2}), 5),
            record("/c", json!({"x": 3}), 5),
        ];
        let sorted = query(json!({}), json!({"sort": {"k": -1}, "fields": {"x": 1}})).run(records);
        assert_eq!(paths(&sorted), ["/a", "/b", "/c"]);
        assert_eq!(sorted[0].payload.as_json(), Some(json!({"x": 2})));
    }
}
