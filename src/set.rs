//! `WebhookSet`: one delivery against many webhooks at about the cost of one, like
//! `regex::RegexSet`.
//!
//! - Authentication is shared: members are grouped by their check (the same secret, the same
//!   range, or none), and each group is checked once per delivery. When no member authenticates
//!   the delivery, the body is never parsed.
//! - The body is parsed once: one pass extracts the union of every member's singular paths
//!   (a path trie), or, when an authenticated member has an indefinite path, one `Value` is built
//!   and each distinct indefinite path is queried once.
//! - Filters are indexed: each member is filed under one of its filters, its most selective
//!   (path, expected value) pair, and a delivery looks up only the values its paths selected. The
//!   work per delivery grows with the number of distinct paths and of members whose key filter
//!   matches, not with the number of members.
//!
//! Every member's outcome is exactly what its own [`Webhook::evaluate`] gives (a property test
//! holds this); [`WebhookSet::explain`] gives a member's full verdict.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value;

use crate::auth::github::GithubHmac;
use crate::auth::ip::AllowedIpRange;
use crate::body;
use crate::json::{self, ValueSeed};
use crate::path::{Capture, Step, Trie};
use crate::request::Request;
use crate::verdict::Verdict;
use crate::webhook::{Auth, Webhook, capture_equals};

/// Many compiled webhooks, evaluated together against each delivery.
///
/// ```
/// use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, WebhookSet};
/// let hook = |repo: &str| {
///     let d: WebhookDefinition = serde_json::from_value(serde_json::json!({
///         "name": repo.replace('/', "-"), "targetPipeline": "p", "targetAction": "Source",
///         "filters": [{"jsonPath": "$.repository.full_name", "matchEquals": repo}],
///         "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
///     })).unwrap();
///     Webhook::new(&d, &ActionConfiguration::new()).unwrap()
/// };
/// let set = WebhookSet::new(["octo/a", "octo/b", "octo/a"].map(hook));
/// let matches = set.matches(&Request::new(r#"{"repository":{"full_name":"octo/a"}}"#));
/// assert_eq!(matches.into_iter().collect::<Vec<_>>(), vec![0, 2]);
/// ```
#[derive(Debug)]
pub struct WebhookSet {
    members: Vec<Webhook>,
    /// Per member: its auth group.
    group_of: Vec<u32>,
    groups: Vec<Group>,
    /// Per member: its filters, as lanes of this set.
    filters: Vec<Vec<SetFilter>>,
    /// The distinct singular paths, slot = index.
    singular: Vec<Vec<Step>>,
    trie: Trie,
    /// The distinct indefinite paths.
    indefinite: Vec<crate::path::FilterPath>,
    /// Per distinct singular path, the members filed under it.
    singular_index: Vec<LaneIndex>,
    /// Per distinct indefinite path, the members filed under it.
    indefinite_index: Vec<LaneIndex>,
    /// Members with no filter.
    unfiltered: Vec<u32>,
}

/// The members filed under one path.
#[derive(Debug, Default)]
struct LaneIndex {
    /// By the value their key filter expects.
    by_value: HashMap<Arc<str>, Vec<u32>>,
    /// Those whose key filter only needs the path to select something.
    by_existence: Vec<u32>,
}

#[derive(Debug)]
struct Group {
    check: GroupCheck,
    /// The largest body any member of the group accepts: past it, the group's check is skipped.
    max_body_bytes: usize,
    /// The deepest nesting any member of the group accepts.
    max_depth: usize,
    /// Whether a member of the group has an indefinite path.
    has_indefinite: bool,
}

#[derive(Debug)]
enum GroupCheck {
    /// The check every member of the group shares.
    Hmac(Box<GithubHmac>),
    Ip(AllowedIpRange),
    Open,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Lane {
    Singular(u32),
    Indefinite(u32),
}

#[derive(Clone, Debug)]
struct SetFilter {
    lane: Lane,
    expected: Option<Arc<str>>,
}

/// The members whose pipeline a delivery starts, ascending; from [`WebhookSet::matches`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SetMatches {
    matched: Vec<usize>,
    signatures_checked: usize,
    body_parsed: bool,
}

impl SetMatches {
    /// Whether member `index` matched.
    pub fn matched(&self, index: usize) -> bool {
        self.matched.binary_search(&index).is_ok()
    }

    /// The matching members' indices, ascending.
    pub fn iter(&self) -> std::iter::Copied<std::slice::Iter<'_, usize>> {
        self.matched.iter().copied()
    }

    /// How many members matched.
    pub fn len(&self) -> usize {
        self.matched.len()
    }

    /// Whether no member matched.
    pub fn is_empty(&self) -> bool {
        self.matched.is_empty()
    }

    /// How many HMAC signatures were verified for this delivery: at most one per distinct secret.
    pub fn signatures_checked(&self) -> usize {
        self.signatures_checked
    }

    /// Whether the body was parsed: never when no member authenticated the delivery.
    pub fn body_parsed(&self) -> bool {
        self.body_parsed
    }
}

impl IntoIterator for SetMatches {
    type Item = usize;
    type IntoIter = std::vec::IntoIter<usize>;
    fn into_iter(self) -> Self::IntoIter {
        self.matched.into_iter()
    }
}

impl<'s> IntoIterator for &'s SetMatches {
    type Item = usize;
    type IntoIter = std::iter::Copied<std::slice::Iter<'s, usize>>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl WebhookSet {
    /// Builds the set: groups the members' authentication, merges their paths and indexes their
    /// filters. Indices are the members' positions in `webhooks`.
    pub fn new(webhooks: impl IntoIterator<Item = Webhook>) -> Self {
        let members: Vec<Webhook> = webhooks.into_iter().collect();
        let mut set = WebhookSet {
            group_of: Vec::with_capacity(members.len()),
            groups: Vec::new(),
            filters: Vec::with_capacity(members.len()),
            singular: Vec::new(),
            trie: Trie::new(),
            indefinite: Vec::new(),
            singular_index: Vec::new(),
            indefinite_index: Vec::new(),
            unfiltered: Vec::new(),
            members: Vec::new(),
        };
        let mut hmac_groups: HashMap<([u8; 32], bool), u32> = HashMap::new();
        let mut ip_groups: HashMap<AllowedIpRange, u32> = HashMap::new();
        let mut open_group: Option<u32> = None;
        let mut singular_slots: HashMap<Vec<Step>, u32> = HashMap::new();
        let mut indefinite_slots: HashMap<Arc<str>, u32> = HashMap::new();
        let mut bucket_sizes: HashMap<(Lane, Option<Arc<str>>), usize> = HashMap::new();

        for webhook in &members {
            let next = set.groups.len() as u32;
            let group = match &webhook.auth {
                Auth::GithubHmac(h) => *hmac_groups.entry(h.identity()).or_insert(next),
                Auth::Ip { range, .. } => *ip_groups.entry(*range).or_insert(next),
                Auth::Unauthenticated => *open_group.get_or_insert(next),
            };
            if group == next {
                let check = match &webhook.auth {
                    Auth::GithubHmac(h) => GroupCheck::Hmac(Box::new(h.clone())),
                    Auth::Ip { range, .. } => GroupCheck::Ip(*range),
                    Auth::Unauthenticated => GroupCheck::Open,
                };
                set.groups.push(Group { check, max_body_bytes: 0, max_depth: 0, has_indefinite: false });
            }
            let g = &mut set.groups[group as usize];
            g.max_body_bytes = g.max_body_bytes.max(webhook.max_body_bytes);
            g.max_depth = g.max_depth.max(webhook.max_depth);
            g.has_indefinite |= webhook.filters.iter().any(|f| f.path.singular.is_none());
            set.group_of.push(group);

            let mut filters = Vec::with_capacity(webhook.filters.len());
            for f in &webhook.filters {
                let lane = match &f.path.singular {
                    Some(steps) => {
                        let fresh = set.singular.len() as u32;
                        let slot = *singular_slots.entry(steps.clone()).or_insert(fresh);
                        if slot == fresh {
                            set.trie.insert(steps, slot as usize);
                            set.singular.push(steps.clone());
                        }
                        Lane::Singular(slot)
                    }
                    None => {
                        let fresh = set.indefinite.len() as u32;
                        let slot = *indefinite_slots.entry(f.path.text.clone()).or_insert(fresh);
                        if slot == fresh {
                            set.indefinite.push(f.path.clone());
                        }
                        Lane::Indefinite(slot)
                    }
                };
                *bucket_sizes.entry((lane, f.expected.clone())).or_default() += 1;
                filters.push(SetFilter { lane, expected: f.expected.clone() });
            }
            set.filters.push(filters);
        }

        // File each member under its most selective filter: an equality over an existence test,
        // a singular path over an indefinite one, then the smallest bucket.
        set.singular_index.resize_with(set.singular.len(), LaneIndex::default);
        set.indefinite_index.resize_with(set.indefinite.len(), LaneIndex::default);
        for (m, filters) in set.filters.iter().enumerate() {
            let key = filters.iter().min_by_key(|f| {
                (
                    f.expected.is_none(),
                    matches!(f.lane, Lane::Indefinite(_)),
                    bucket_sizes[&(f.lane, f.expected.clone())],
                )
            });
            let Some(key) = key else {
                set.unfiltered.push(m as u32);
                continue;
            };
            let index = match key.lane {
                Lane::Singular(slot) => &mut set.singular_index[slot as usize],
                Lane::Indefinite(slot) => &mut set.indefinite_index[slot as usize],
            };
            match &key.expected {
                Some(e) => index.by_value.entry(e.clone()).or_default().push(m as u32),
                None => index.by_existence.push(m as u32),
            }
        }
        set.members = members;
        set
    }

    /// The number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Member `index`.
    pub fn get(&self, index: usize) -> Option<&Webhook> {
        self.members.get(index)
    }

    /// The members, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Webhook> {
        self.members.iter()
    }

    /// Why member `index` did or did not match: its own full verdict.
    ///
    /// # Panics
    /// When `index` is not a member's.
    pub fn explain(&self, index: usize, request: &Request<'_>) -> Verdict {
        self.members[index].evaluate(request)
    }

    /// The members whose pipeline `request` starts.
    pub fn matches(&self, request: &Request<'_>) -> SetMatches {
        let mut out = SetMatches::default();
        let size = request.body().len();

        // 1. Authentication, once per distinct check.
        let mut group_ok = vec![false; self.groups.len()];
        for (g, group) in self.groups.iter().enumerate() {
            if size > group.max_body_bytes {
                continue;
            }
            group_ok[g] = match &group.check {
                GroupCheck::Open => true,
                GroupCheck::Ip(range) => request.source_addr().is_some_and(|ip| range.contains(ip)),
                GroupCheck::Hmac(hmac) => {
                    out.signatures_checked += 1;
                    hmac.verify(request).is_ok()
                }
            };
        }
        let admitted = |m: usize| group_ok[self.group_of[m] as usize] && size <= self.members[m].max_body_bytes;
        let open = || self.groups.iter().zip(&group_ok).filter(|&(_, ok)| *ok).map(|(g, _)| g);
        if open().next().is_none() {
            return out;
        }

        // 2. The body, parsed once, to the deepest limit any admitted group allows. A member with
        // a lower limit is decided by its own evaluate (rare: limits are usually the default).
        let Ok(text) = body::json_text(request) else { return out };
        let depth = open().map(|g| g.max_depth).max().unwrap_or_default();
        out.body_parsed = true;
        let value;
        let mut singular: Vec<Capture<'_>> = vec![Capture::Missing; self.singular.len()];
        let mut indefinite: Vec<Vec<Capture<'_>>> = Vec::new();
        if open().any(|g| g.has_indefinite) {
            let Ok(v) = json::walk(&text, ValueSeed { level: 0, max_depth: depth }) else { return out };
            value = v;
            for (slot, steps) in self.singular.iter().enumerate() {
                singular[slot] = step_into(&value, steps);
            }
            indefinite =
                self.indefinite.iter().map(|p| p.query.query(&value).into_iter().map(capture_of).collect()).collect();
        } else if self.trie.extract(&text, &mut singular, depth).is_err() {
            return out;
        }

        // 3. Candidates from the index: look up what each path selected.
        let mut keyed: Vec<u32> = self.unfiltered.clone();
        let mut lookup = |index: &LaneIndex, nodes: &[Capture<'_>]| {
            if nodes.iter().any(|c| *c != Capture::Missing) {
                keyed.extend_from_slice(&index.by_existence);
            }
            for node in nodes {
                if let Some(members) = scalar_text(node).and_then(|text| index.by_value.get(&*text)) {
                    keyed.extend_from_slice(members);
                }
            }
        };
        for (index, capture) in self.singular_index.iter().zip(&singular) {
            lookup(index, std::slice::from_ref(capture));
        }
        for (index, nodes) in self.indefinite_index.iter().zip(&indefinite) {
            lookup(index, nodes);
        }
        keyed.sort_unstable();
        keyed.dedup();

        // 4. Each candidate's remaining filters, directly.
        for m in keyed {
            let m = m as usize;
            if !admitted(m) {
                continue;
            }
            let pass = if self.members[m].max_depth < depth {
                self.members[m].evaluate(request).is_trigger()
            } else {
                self.filters[m].iter().all(|f| {
                    let nodes = match f.lane {
                        Lane::Singular(slot) => std::slice::from_ref(&singular[slot as usize]),
                        Lane::Indefinite(slot) => match indefinite.get(slot as usize) {
                            Some(nodes) => nodes.as_slice(),
                            None => return false,
                        },
                    };
                    match &f.expected {
                        None => nodes.iter().any(|c| *c != Capture::Missing),
                        Some(expected) => nodes.iter().any(|c| capture_equals(c, expected)),
                    }
                })
            };
            if pass {
                out.matched.push(m);
            }
        }
        out
    }
}

impl FromIterator<Webhook> for WebhookSet {
    /// `webhooks.into_iter().collect::<WebhookSet>()`, as [`WebhookSet::new`].
    fn from_iter<I: IntoIterator<Item = Webhook>>(webhooks: I) -> Self {
        WebhookSet::new(webhooks)
    }
}

/// A singular path's value in a `Value`, as the extraction lane would capture it.
fn step_into<'v>(value: &'v Value, steps: &[Step]) -> Capture<'v> {
    let mut at = value;
    for step in steps {
        let next = match (step, at) {
            (Step::Name(name), Value::Object(map)) => map.get(&**name),
            (Step::Index(i), Value::Array(items)) => items.get(*i),
            _ => None,
        };
        match next {
            Some(v) => at = v,
            None => return Capture::Missing,
        }
    }
    capture_of(at)
}

fn capture_of(value: &Value) -> Capture<'_> {
    match value {
        Value::String(s) => Capture::Str(Cow::Borrowed(s)),
        Value::Number(n) => Capture::Number(n.clone()),
        Value::Bool(b) => Capture::Bool(*b),
        Value::Null => Capture::Null,
        Value::Array(_) => Capture::Array,
        Value::Object(_) => Capture::Object,
    }
}

/// The text a scalar equals, as `matchEquals` compares it.
fn scalar_text<'c>(capture: &'c Capture<'_>) -> Option<Cow<'c, str>> {
    match capture {
        Capture::Str(s) => Some(Cow::Borrowed(s)),
        Capture::Number(n) => Some(Cow::Owned(n.to_string())),
        Capture::Bool(true) => Some(Cow::Borrowed("true")),
        Capture::Bool(false) => Some(Cow::Borrowed("false")),
        Capture::Null => Some(Cow::Borrowed("null")),
        Capture::Missing | Capture::Object | Capture::Array => None,
    }
}
