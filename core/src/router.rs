//! The subscription index (DESIGN.md §3): which subscriptions match a path.
//!
//! A segment trie. Lookup walks the path's segments once, following the literal child,
//! the one-segment wildcard child and collecting multi-level wildcards on the way, so its
//! cost depends on the path's depth and the subscriptions that match it, not on how many
//! subscriptions exist on other paths.
//!
//! Every step is by segment: a node's literal children are a hash map (foldhash, seeded
//! per process, so crafted topics cannot force collisions cheaply), its `*`/`+` child is
//! one pointer, and its `**`/`#` subscriptions are checked against the remaining depth
//! without touching the subscriptions themselves. Patterns that start with a wildcard
//! live in one trie of their own that every lookup also walks, again by segment: a
//! million subscriptions like `+/device7/temp` cost a lookup one hash probe, not a scan.
//! A lookup allocates nothing (the caller's vector aside): it walks the path's text.
//!
//! Concurrency: no global lock on the publish path. Patterns that start with a literal
//! live in one of [`SHARDS`] tries chosen by their first segment; patterns that start with
//! a wildcard live in one more trie. A lookup takes two read locks (never across
//! `.await`), one when no wildcard-first pattern exists; subscribing to one subtree does
//! not block publishing to another.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use foldhash::fast::RandomState;
use parking_lot::RwLock;

use crate::path::Path;
use crate::pattern::{Pattern, Segment};
use crate::request::OnOptions;
use crate::session::{SessionId, SessionQueue};

/// How many tries literal-first patterns are spread over.
pub const SHARDS: usize = 16;

/// A subscription's id, unique in this broker process (the reference's `referenceId`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriptionId(pub u64);

impl std::fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// One subscription of one session.
#[derive(Debug)]
pub struct Subscription {
    /// Its id.
    pub id: SubscriptionId,
    /// The subscribing session.
    pub session: SessionId,
    /// What it matches.
    pub pattern: Pattern,
    /// How it was made.
    pub options: OnOptions,
    /// Where matching events go: the session's outbound queue.
    pub(crate) queue: SessionQueue,
    /// The subscribing session's protocol, for the per-protocol delivery counters.
    pub(crate) protocol: crate::stats::ProtocolSlot,
}

#[derive(Default)]
struct Node {
    children: HashMap<Box<str>, Node, RandomState>,
    one: Option<Box<Node>>,
    /// Subscriptions whose pattern ends exactly here.
    here: Vec<Arc<Subscription>>,
    /// Subscriptions whose pattern ends here with `**` / `#`.
    many: Vec<Many>,
}

/// A `**` / `#` subscription with the levels below its node it reaches, kept inline so a
/// lookup skips those out of reach without loading the subscription.
struct Many {
    /// 0 for MQTT `#` (it matches its parent level), 1 for native `**`.
    min_below: usize,
    /// The `depth` option; `usize::MAX` when none.
    max_below: usize,
    sub: Arc<Subscription>,
}

impl Many {
    fn new(sub: Arc<Subscription>) -> Self {
        let include_parent = matches!(
            sub.pattern.segments().last(),
            Some(Segment::Many {
                include_parent: true
            })
        );
        Self {
            min_below: usize::from(!include_parent),
            max_below: sub.options.depth.unwrap_or(usize::MAX),
            sub,
        }
    }

    fn reaches(&self, below: usize) -> bool {
        (self.min_below..=self.max_below).contains(&below)
    }
}

/// The segments of a path still to be matched below a node, joined by `/`; `None` when
/// none is left (`Some("")` is one empty segment).
#[derive(Clone, Copy)]
struct Rest<'a>(Option<&'a str>);

impl<'a> Rest<'a> {
    fn of(path: &'a Path) -> Self {
        Self(Some(&path.as_str()[1..]))
    }

    fn split_first(self) -> Option<(&'a str, Self)> {
        let text = self.0?;
        // Segments are short: a byte loop beats a substring searcher here.
        Some(match text.bytes().position(|b| b == b'/') {
            Some(i) => (&text[..i], Self(Some(&text[i + 1..]))),
            None => (text, Self(None)),
        })
    }

    /// How many segments are left: counted only where a `**` / `#` asks.
    fn count(self) -> usize {
        self.0
            .map_or(0, |text| 1 + text.bytes().filter(|&b| b == b'/').count())
    }
}

impl Node {
    fn is_empty(&self) -> bool {
        self.children.is_empty()
            && self.one.is_none()
            && self.here.is_empty()
            && self.many.is_empty()
    }

    fn insert(&mut self, segments: &[Segment], sub: Arc<Subscription>) {
        match segments.split_first() {
            None => self.here.push(sub),
            Some((Segment::Many { .. }, _)) => self.many.push(Many::new(sub)),
            Some((Segment::One, rest)) => self
                .one
                .get_or_insert_with(Default::default)
                .insert(rest, sub),
            Some((Segment::Literal(l), rest)) => self
                .children
                .entry(l.clone())
                .or_default()
                .insert(rest, sub),
        }
    }

    /// Removes the subscription `id`; returns whether it was found.
    fn remove(&mut self, segments: &[Segment], id: SubscriptionId) -> bool {
        match segments.split_first() {
            None => remove_from(&mut self.here, id),
            Some((Segment::Many { .. }, _)) => {
                match self.many.iter().position(|m| m.sub.id == id) {
                    Some(i) => {
                        self.many.swap_remove(i);
                        true
                    }
                    None => false,
                }
            }
            Some((Segment::One, rest)) => match &mut self.one {
                Some(child) => {
                    let found = child.remove(rest, id);
                    if child.is_empty() {
                        self.one = None;
                    }
                    found
                }
                None => false,
            },
            Some((Segment::Literal(l), rest)) => match self.children.get_mut(l) {
                Some(child) => {
                    let found = child.remove(rest, id);
                    if child.is_empty() {
                        self.children.remove(l);
                    }
                    found
                }
                None => false,
            },
        }
    }

    fn collect(&self, rest: Rest<'_>, out: &mut Vec<Arc<Subscription>>) {
        if !self.many.is_empty() {
            let below = rest.count();
            for many in &self.many {
                if many.reaches(below) {
                    out.push(many.sub.clone());
                }
            }
        }
        let Some((first, rest)) = rest.split_first() else {
            out.extend(self.here.iter().cloned());
            return;
        };
        if let Some(child) = self.children.get(first) {
            child.collect(rest, out);
        }
        if let Some(one) = &self.one {
            one.collect(rest, out);
        }
    }
}

fn remove_from(list: &mut Vec<Arc<Subscription>>, id: SubscriptionId) -> bool {
    match list.iter().position(|s| s.id == id) {
        Some(i) => {
            list.swap_remove(i);
            true
        }
        None => false,
    }
}

/// The subscription index. See the module docs.
pub struct Router {
    shards: Box<[RwLock<Node>]>,
    wild: RwLock<Node>,
    /// How many patterns `wild` holds: a lookup skips its lock when there are none.
    wild_len: AtomicUsize,
    hasher: RandomState,
    next_id: AtomicU64,
    len: AtomicUsize,
}

impl Default for Router {
    fn default() -> Self {
        Self::new()
    }
}

impl Router {
    /// An empty index.
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Node::default())).collect(),
            wild: RwLock::new(Node::default()),
            wild_len: AtomicUsize::new(0),
            hasher: Default::default(),
            next_id: AtomicU64::new(1),
            len: AtomicUsize::new(0),
        }
    }

    /// A fresh subscription id.
    pub(crate) fn next_id(&self) -> SubscriptionId {
        SubscriptionId(self.next_id.fetch_add(1, Ordering::Relaxed))
    }

    fn root_for(&self, first: &str) -> &RwLock<Node> {
        &self.shards[(self.hasher.hash_one(first) as usize) % SHARDS]
    }

    /// The trie holding `pattern`, and whether it is the wildcard-first one.
    fn root_of(&self, pattern: &Pattern) -> (&RwLock<Node>, bool) {
        match pattern.segments().first() {
            Some(Segment::Literal(l)) => (self.root_for(l), false),
            _ => (&self.wild, true),
        }
    }

    /// Adds a subscription.
    pub fn insert(&self, sub: Arc<Subscription>) {
        let (root, wild) = self.root_of(&sub.pattern);
        // The segments are read through a second handle while `sub` moves into the trie.
        let handle = sub.clone();
        let mut root = root.write();
        root.insert(handle.pattern.segments(), sub);
        if wild {
            // Before the unlock: a lookup that could see this pattern sees the count.
            self.wild_len.fetch_add(1, Ordering::Release);
        }
        self.len.fetch_add(1, Ordering::Relaxed);
    }

    /// Removes a subscription; returns whether it was there.
    pub fn remove(&self, sub: &Subscription) -> bool {
        let (root, wild) = self.root_of(&sub.pattern);
        let mut root = root.write();
        let found = root.remove(sub.pattern.segments(), sub.id);
        if found {
            if wild {
                self.wild_len.fetch_sub(1, Ordering::Release);
            }
            self.len.fetch_sub(1, Ordering::Relaxed);
        }
        found
    }

    /// Appends every subscription matching `path` to `out` (in no particular order; a
    /// session with several matching subscriptions appears once per subscription).
    /// Allocates nothing but what `out` grows by.
    pub fn lookup(&self, path: &Path, out: &mut Vec<Arc<Subscription>>) {
        let rest = Rest::of(path);
        let first = rest.split_first().map_or("", |(first, _)| first);
        self.root_for(first).read().collect(rest, out);
        // MQTT 4.7.2: wildcards at the first level do not match `$` topics.
        if !first.starts_with('$') && self.wild_len.load(Ordering::Acquire) > 0 {
            self.wild.read().collect(rest, out);
        }
    }

    /// How many subscriptions the index holds.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the index holds no subscription.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::SessionQueue;

    fn sub(router: &Router, pattern: Pattern, depth: Option<usize>) -> Arc<Subscription> {
        let queue = SessionQueue::new(1);
        let sub = Arc::new(Subscription {
            id: router.next_id(),
            session: SessionId::new(),
            pattern,
            options: OnOptions {
                depth,
                ..Default::default()
            },
            queue,
            protocol: Default::default(),
        });
        router.insert(sub.clone());
        sub
    }

    fn matched(router: &Router, path: &str) -> Vec<SubscriptionId> {
        let mut out = Vec::new();
        router.lookup(&Path::from_topic(path).unwrap(), &mut out);
        let mut ids: Vec<_> = out.iter().map(|s| s.id).collect();
        ids.sort();
        ids
    }

    /// The trie must agree with `Pattern::matches` (the reference model) on every pair.
    #[test]
    fn lookup_agrees_with_pattern_matching() {
        let router = Router::new();
        let filters = [
            "a/b", "a/+", "a/#", "+/b", "#", "+/+/c", "$SYS/#", "a/b/c", "/a", "+/#", "a//b",
        ];
        let subs: Vec<_> = filters
            .iter()
            .map(|f| sub(&router, Pattern::mqtt(f).unwrap(), None))
            .collect();
        let native = ["/a/**", "/a/*", "*", "/a/*/c", "/*/b/**", "//**"];
        let mut all = subs.clone();
        all.extend(
            native
                .iter()
                .map(|p| sub(&router, Pattern::native(p).unwrap(), None)),
        );
        all.push(sub(&router, Pattern::native("/a/**").unwrap(), Some(1)));
        all.push(sub(&router, Pattern::native("/*/b/**").unwrap(), Some(2)));
        all.push(sub(&router, Pattern::mqtt("a/b/#").unwrap(), Some(0)));
        let topics = [
            "a",
            "a/b",
            "a/b/c",
            "a/b/c/d",
            "a/b/c/d/e",
            "x/b",
            "x/b/c/d",
            "$SYS/x",
            "$SYS",
            "/a",
            "//a",
            "a//b",
            "q/r/c",
            "a/",
            "/",
            "//",
            "a//",
        ];
        for t in topics {
            let path = Path::from_topic(t).unwrap();
            let mut expected: Vec<_> = all
                .iter()
                .filter(|s| s.pattern.matches(&path, s.options.depth))
                .map(|s| s.id)
                .collect();
            expected.sort();
            assert_eq!(matched(&router, t), expected, "topic {t}");
        }
    }

    #[test]
    fn removal_prunes_and_only_removes_its_own_subscription() {
        let router = Router::new();
        let a = sub(&router, Pattern::mqtt("a/+/c").unwrap(), None);
        let b = sub(&router, Pattern::mqtt("a/+/c").unwrap(), None);
        assert_eq!(router.len(), 2);
        assert!(router.remove(&a));
        assert!(!router.remove(&a));
        assert_eq!(matched(&router, "a/b/c"), vec![b.id]);
        assert!(router.remove(&b));
        assert!(router.is_empty());
        assert!(matched(&router, "a/b/c").is_empty());
    }

    /// Guards the skipped wildcard-first trie: its count follows inserts and removals, so
    /// a lookup skips it only while it is empty.
    #[test]
    fn wildcard_first_patterns_are_found_after_the_trie_was_empty() {
        let router = Router::new();
        let literal = sub(&router, Pattern::mqtt("a/b").unwrap(), None);
        let wild = sub(&router, Pattern::mqtt("+/b").unwrap(), None);
        assert!(router.remove(&wild));
        assert_eq!(matched(&router, "a/b"), vec![literal.id]);
        let again = sub(&router, Pattern::mqtt("#").unwrap(), None);
        assert_eq!(matched(&router, "a/b"), vec![literal.id, again.id]);
        assert!(router.remove(&literal));
        assert_eq!(matched(&router, "a/b"), vec![again.id]);
    }
}
