//! `WebhookSet`: one delivery against many webhooks at about the cost of one, like
//! `regex::RegexSet`.
//!
//! - Authentication is shared: members are grouped by their check (the same secret, the same
//!   range, or none), and each group is checked once per delivery. When no member authenticates
//!   the delivery, the body is never parsed.
//! - The body is parsed once, by the lanes a single webhook uses: one DOM-free pass for the
//!   union of the members' singular paths, or, when an admitted member has another path, one
//!   tape over which each distinct path is streamed once, under its own work budget (as if one
//!   member evaluated it).
//! - Filters are indexed: each distinct (path, `matchEquals`) pair gets an id, and streaming a
//!   path marks the ids of the values it selects, in a hash lookup per selected scalar. Each
//!   member is filed under one of its filters, its most selective; a delivery visits only the
//!   members filed under a value that was selected, and checks their other filters by id. Work
//!   per delivery grows with the body, the distinct paths and the members that match, not with
//!   the number of members.
//!
//! Every member's outcome is exactly what its own [`Webhook::evaluate`] gives, work budget
//! included (a property test holds this): each hit records the work spent when it happened, and a
//! member passes when each of its filters was hit within what it has left (see `Hits`). A member
//! with a lower depth limit than its group is asked itself. [`WebhookSet::explain`] gives a
//! member's full verdict.

use std::collections::HashMap;
use std::sync::Arc;

use crate::auth::Auth;
use crate::auth::github::GithubHmac;
use crate::auth::ip::AllowedIpRange;
use crate::body;
use crate::filter::eval::{Eval, Flow};
use crate::filter::tape::{MAX_TAPE_BYTES, Tape};
use crate::filter::{Capture, FilterPath, Scalar, Trie, WorkBudget, invalid_json, parse_tape, work_budget};
use crate::request::Request;
use crate::verdict::Verdict;
use crate::webhook::Webhook;

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
    /// The distinct paths of all members.
    paths: Vec<SetPath>,
    /// The singular paths, slot = path index.
    trie: Trie,
    /// Per member: its filters as (path, value id).
    filters: Vec<Vec<SetFilter>>,
    /// Per value id: the members filed under it.
    by_value: Vec<Vec<u32>>,
    /// Members with no filter.
    unfiltered: Vec<u32>,
}

#[derive(Debug)]
struct SetPath {
    path: FilterPath,
    /// Value id of each `matchEquals` used with this path.
    values: HashMap<Arc<str>, u32>,
    /// Members filed under "this path selects something".
    by_existence: Vec<u32>,
}

#[derive(Debug)]
struct Group {
    check: GroupCheck,
    /// The largest body any member of the group accepts: past it, the group's check is skipped.
    max_body_bytes: usize,
    /// The deepest nesting any member of the group accepts.
    max_depth: usize,
    /// Whether a member of the group answers its filters over a tape.
    bounded_lane: bool,
    /// The distinct paths its members use: only these are streamed when the group admits a
    /// delivery.
    paths: Vec<u32>,
}

#[derive(Debug)]
enum GroupCheck {
    /// The check every member of the group shares.
    Hmac(Box<GithubHmac>),
    Ip(AllowedIpRange),
    Open,
}

#[derive(Clone, Copy, Debug)]
struct SetFilter {
    path: u32,
    /// `None` for a rule without `matchEquals`.
    value: Option<u32>,
}

/// What one delivery's paths selected.
///
/// Each hit records the work the stream had spent when it happened. A member's own evaluation of
/// a filter streams the same nodes in the same order, paying the same, and stops at its first
/// equal value: so it passes that filter exactly when the value was hit within what the member
/// has left of its budget, and the set decides every member as its own `evaluate` would, budget
/// included, without evaluating it.
struct Hits {
    /// Per value id: the work spent when a selected scalar first equalled it.
    /// Only the values hit are stored: a set of 10,000 members compared with 10,000 values must
    /// not clear and scan 10,000 slots per delivery.
    value: HashMap<u32, WorkBudget>,
    /// Per path: the work spent when it first selected something.
    any: Vec<Option<WorkBudget>>,
    budget: WorkBudget,
}

impl Hits {
    /// Whether each filter's value (or, without `matchEquals`, anything) was selected.
    fn selected(&self, filters: &[SetFilter]) -> bool {
        filters.iter().all(|f| match f.value {
            Some(v) => self.value.contains_key(&v),
            None => self.any[f.path as usize].is_some(),
        })
    }

    /// Whether a member with these filters triggers: each filter hit within what is left.
    fn passes(&self, filters: &[SetFilter]) -> bool {
        let mut left = self.budget;
        filters.iter().all(|f| {
            let hit = match f.value {
                Some(v) => self.value.get(&v).copied(),
                None => self.any[f.path as usize],
            };
            match hit {
                Some(cost) if cost.nodes <= left.nodes && cost.scan <= left.scan => {
                    left.nodes -= cost.nodes;
                    left.scan -= cost.scan;
                    true
                }
                // Not selected, or only after the member's own budget would have run out.
                _ => false,
            }
        })
    }
}

/// The members whose pipeline a delivery starts, ascending; from [`WebhookSet::matches`].
/// Two are equal when the same members matched.
#[derive(Clone, Debug, Default)]
pub struct SetMatches {
    matched: Vec<usize>,
    signatures_checked: usize,
    body_parsed: bool,
}

impl PartialEq for SetMatches {
    fn eq(&self, other: &Self) -> bool {
        self.matched == other.matched
    }
}

impl Eq for SetMatches {}

impl SetMatches {
    /// Whether member `index` matched.
    pub fn matched(&self, index: usize) -> bool {
        self.matched.binary_search(&index).is_ok()
    }

    /// The matching members' indices, ascending.
    pub fn iter(&self) -> SetMatchesIter<'_> {
        SetMatchesIter(self.matched.iter())
    }

    /// How many members matched.
    pub fn len(&self) -> usize {
        self.matched.len()
    }

    /// Whether no member matched.
    pub fn is_empty(&self) -> bool {
        self.matched.is_empty()
    }

    /// How many HMAC signatures were verified for this delivery: at most one per distinct check.
    /// A diagnostic, for tests and benchmarks.
    #[doc(hidden)]
    pub fn signatures_checked(&self) -> usize {
        self.signatures_checked
    }

    /// Whether the body was parsed: never when no member authenticated the delivery. A
    /// diagnostic, for tests and benchmarks.
    #[doc(hidden)]
    pub fn body_parsed(&self) -> bool {
        self.body_parsed
    }
}

/// The matching members' indices, ascending; from [`SetMatches::iter`].
#[derive(Clone, Debug)]
pub struct SetMatchesIter<'s>(std::slice::Iter<'s, usize>);

impl Iterator for SetMatchesIter<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        self.0.next().copied()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl DoubleEndedIterator for SetMatchesIter<'_> {
    fn next_back(&mut self) -> Option<usize> {
        self.0.next_back().copied()
    }
}

impl ExactSizeIterator for SetMatchesIter<'_> {}

/// The matching members' indices, ascending, owned; from `SetMatches::into_iter`.
#[derive(Debug)]
pub struct SetMatchesIntoIter(std::vec::IntoIter<usize>);

impl Iterator for SetMatchesIntoIter {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        self.0.next()
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl IntoIterator for SetMatches {
    type Item = usize;
    type IntoIter = SetMatchesIntoIter;
    fn into_iter(self) -> Self::IntoIter {
        SetMatchesIntoIter(self.matched.into_iter())
    }
}

impl<'s> IntoIterator for &'s SetMatches {
    type Item = usize;
    type IntoIter = SetMatchesIter<'s>;
    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

impl WebhookSet {
    /// Builds the set: groups the members' authentication, merges their paths and indexes their
    /// filters. Indices are the members' positions in `webhooks`.
    pub fn new(webhooks: impl IntoIterator<Item = Webhook>) -> Self {
        let members: Vec<Webhook> = webhooks.into_iter().collect();
        let (groups, group_of) = group_auth(&members);
        let mut set = WebhookSet {
            group_of,
            groups,
            paths: Vec::new(),
            trie: Trie::new(),
            filters: Vec::with_capacity(members.len()),
            by_value: Vec::new(),
            unfiltered: Vec::new(),
            members: Vec::new(),
        };
        set.index_paths(&members);
        set.file_members();
        set.members = members;
        set
    }

    /// Gives every distinct path and every distinct (path, value) pair an id.
    fn index_paths(&mut self, members: &[Webhook]) {
        let mut path_ids: HashMap<Arc<str>, u32> = HashMap::new();
        for webhook in members {
            let mut filters = Vec::with_capacity(webhook.filter_list().len());
            for f in webhook.filter_list() {
                let fresh = self.paths.len() as u32;
                let path = *path_ids.entry(f.path.text.clone()).or_insert(fresh);
                if path == fresh {
                    if let Some(steps) = &f.path.singular {
                        self.trie.insert(steps, path as usize);
                    }
                    self.paths.push(SetPath { path: f.path.clone(), values: HashMap::new(), by_existence: Vec::new() });
                }
                let entry = &mut self.paths[path as usize];
                let value = f.expected.as_ref().map(|e| {
                    let fresh = self.by_value.len() as u32;
                    let id = *entry.values.entry(e.clone()).or_insert(fresh);
                    if id == fresh {
                        self.by_value.push(Vec::new());
                    }
                    id
                });
                filters.push(SetFilter { path, value });
            }
            self.filters.push(filters);
        }
        let mut used: Vec<(u32, u32)> = self
            .filters
            .iter()
            .enumerate()
            .flat_map(|(m, filters)| filters.iter().map(move |f| (m, f.path)))
            .map(|(m, path)| (self.group_of[m], path))
            .collect();
        used.sort_unstable();
        used.dedup();
        for (group, path) in used {
            self.groups[group as usize].paths.push(path);
        }
    }

    /// Files each member under its most selective filter: an equality over an existence test, a
    /// singular path over another, then the value fewest members share.
    fn file_members(&mut self) {
        let mut sharing = vec![0usize; self.by_value.len()];
        for f in self.filters.iter().flatten() {
            if let Some(v) = f.value {
                sharing[v as usize] += 1;
            }
        }
        for (m, filters) in self.filters.iter().enumerate() {
            let key = filters.iter().min_by_key(|f| {
                (
                    f.value.is_none(),
                    self.paths[f.path as usize].path.singular.is_none(),
                    f.value.map_or(usize::MAX, |v| sharing[v as usize]),
                )
            });
            match key {
                None => self.unfiltered.push(m as u32),
                Some(SetFilter { value: Some(v), .. }) => self.by_value[*v as usize].push(m as u32),
                Some(SetFilter { path, value: None }) => self.paths[*path as usize].by_existence.push(m as u32),
            }
        }
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
        let group_ok = self.authenticate(request, &mut out);
        let admitted = |m: usize| group_ok[self.group_of[m] as usize] && size <= self.members[m].max_body_bytes();
        let open = || self.groups.iter().zip(&group_ok).filter(|&(_, ok)| *ok).map(|(g, _)| g);
        if open().next().is_none() {
            return out;
        }
        let Ok(text) = body::json_text(request) else { return out };
        // The deepest limit any admitted group allows. A member with a lower limit is decided by
        // its own evaluate (rare: limits are usually the default).
        let depth = open().map(|g| g.max_depth).max().unwrap_or_default();
        out.body_parsed = true;
        // Past the tape's size every bounded-lane member refuses the body itself (its own
        // evaluate says PayloadTooLarge): the singular lane still answers the others.
        let bounded = open().any(|g| g.bounded_lane) && text.len() <= MAX_TAPE_BYTES;
        let hits = if bounded {
            let Ok(tape) = parse_tape(&text, depth) else { return out };
            let mut wanted = vec![false; self.paths.len()];
            for p in open().flat_map(|g| &g.paths) {
                wanted[*p as usize] = true;
            }
            self.stream_paths(&tape, work_budget(text.len(), tape.len()), &wanted)
        } else {
            match self.extract_paths(&text, depth) {
                Ok(hits) => hits,
                Err(_) => return out,
            }
        };
        for m in self.candidates(&hits) {
            let m = m as usize;
            if !admitted(m) {
                continue;
            }
            let member = &self.members[m];
            let pass = if member.max_depth() < depth {
                member.evaluate(request).is_trigger()
            } else {
                // A member whose paths are all singular answers in one pass with no budget: only
                // whether its values were selected counts (a singular path never comes near the
                // budget in the set's stream either).
                match (bounded, member.bounded_lane()) {
                    (_, false) => hits.selected(&self.filters[m]),
                    (true, true) => hits.passes(&self.filters[m]),
                    (false, true) => false,
                }
            };
            if pass {
                out.matched.push(m);
            }
        }
        out
    }

    /// Checks each group once; `true` for the groups that admit the delivery.
    fn authenticate(&self, request: &Request<'_>, out: &mut SetMatches) -> Vec<bool> {
        let size = request.body().len();
        self.groups
            .iter()
            .map(|group| {
                size <= group.max_body_bytes
                    && match &group.check {
                        GroupCheck::Open => true,
                        GroupCheck::Ip(range) => request.source_addr().is_some_and(|ip| range.contains(ip)),
                        GroupCheck::Hmac(hmac) => {
                            out.signatures_checked += 1;
                            hmac.verify(request).is_ok()
                        }
                    }
            })
            .collect()
    }

    fn empty_hits(&self, budget: WorkBudget) -> Hits {
        Hits { value: HashMap::new(), any: vec![None; self.paths.len()], budget }
    }

    /// The DOM-free lane: every singular path in one pass (no work budget needed: it is one
    /// pass, and a member answered by it pays nothing else).
    fn extract_paths(&self, text: &str, depth: usize) -> Result<Hits, crate::verdict::Rejection> {
        let mut captures = vec![Capture::Missing; self.paths.len()];
        self.trie.extract(text, &mut captures, depth).map_err(invalid_json)?;
        let free = WorkBudget { nodes: 0, scan: 0 };
        let mut hits = self.empty_hits(free);
        for (p, capture) in captures.iter().enumerate() {
            if *capture == Capture::Missing {
                continue;
            }
            hits.any[p] = Some(free);
            if let Some(scalar) = Scalar::of_capture(capture) {
                if let Some(&v) = self.paths[p].values.get(&*scalar.text()) {
                    hits.value.insert(v, free);
                }
            }
        }
        Ok(hits)
    }

    /// The bounded lane: each wanted path (those of admitted members) streamed once over the
    /// tape, under its own budget, recording the work spent at each first hit, and stopping once
    /// it has selected something and every value it is compared with.
    fn stream_paths(&self, tape: &Tape<'_>, budget: WorkBudget, wanted: &[bool]) -> Hits {
        let mut hits = self.empty_hits(budget);
        for (p, entry) in self.paths.iter().enumerate().filter(|&(p, _)| wanted[p]) {
            let eval = Eval::new(tape, budget);
            let spent = || {
                let left = eval.left();
                WorkBudget { nodes: budget.nodes - left.nodes, scan: budget.scan - left.scan }
            };
            let mut missing = entry.values.len();
            let (value, any) = (&mut hits.value, &mut hits.any[p]);
            // An exhausted stream simply stops: what it hit before counts, as it would for a
            // member's own evaluation; what it did not reach, no member of this path gets.
            let _ = eval.select(&entry.path.query, Tape::ROOT, &mut |id| {
                let scalar = Scalar::of_kind(tape.kind(id));
                // What the member's own evaluation pays per node (see `select_filter`).
                if let Some(scalar) = &scalar {
                    scalar.pay(&eval)?;
                }
                any.get_or_insert_with(spent);
                if let Some(&v) = scalar.and_then(|s| entry.values.get(&*s.text())) {
                    if let std::collections::hash_map::Entry::Vacant(slot) = value.entry(v) {
                        slot.insert(spent());
                        missing -= 1;
                    }
                }
                Ok(if missing == 0 { Flow::Break(()) } else { Flow::Continue(()) })
            });
        }
        hits
    }

    /// The members filed under what was selected, ascending and without repeats.
    fn candidates(&self, hits: &Hits) -> Vec<u32> {
        let mut keyed = self.unfiltered.clone();
        for v in hits.value.keys() {
            keyed.extend_from_slice(&self.by_value[*v as usize]);
        }
        for (p, entry) in self.paths.iter().enumerate() {
            if hits.any[p].is_some() {
                keyed.extend_from_slice(&entry.by_existence);
            }
        }
        keyed.sort_unstable();
        keyed.dedup();
        keyed
    }
}

/// Groups members by their authentication check: one group per distinct secret (and SHA-256
/// requirement), per distinct range, and one for the unauthenticated.
fn group_auth(members: &[Webhook]) -> (Vec<Group>, Vec<u32>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of = Vec::with_capacity(members.len());
    let mut hmac_groups: HashMap<[u8; 32], u32> = HashMap::new();
    let mut ip_groups: HashMap<AllowedIpRange, u32> = HashMap::new();
    let mut open_group: Option<u32> = None;
    for webhook in members {
        let next = groups.len() as u32;
        let group = match webhook.auth() {
            Auth::GithubHmac(h) => *hmac_groups.entry(h.grouping_key()).or_insert(next),
            Auth::Ip { range, .. } => *ip_groups.entry(*range).or_insert(next),
            Auth::Unauthenticated => *open_group.get_or_insert(next),
        };
        if group == next {
            let check = match webhook.auth() {
                Auth::GithubHmac(h) => GroupCheck::Hmac(Box::new(h.clone())),
                Auth::Ip { range, .. } => GroupCheck::Ip(*range),
                Auth::Unauthenticated => GroupCheck::Open,
            };
            groups.push(Group { check, max_body_bytes: 0, max_depth: 0, bounded_lane: false, paths: Vec::new() });
        }
        let g = &mut groups[group as usize];
        g.max_body_bytes = g.max_body_bytes.max(webhook.max_body_bytes());
        g.max_depth = g.max_depth.max(webhook.max_depth());
        g.bounded_lane |= webhook.bounded_lane();
        group_of.push(group);
    }
    (groups, group_of)
}

impl FromIterator<Webhook> for WebhookSet {
    /// `webhooks.into_iter().collect::<WebhookSet>()`, as [`WebhookSet::new`].
    fn from_iter<I: IntoIterator<Item = Webhook>>(webhooks: I) -> Self {
        WebhookSet::new(webhooks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::tape::touches;

    fn member(secret: &str, path: &str) -> Webhook {
        let d: crate::WebhookDefinition = serde_json::from_value(serde_json::json!({
            "name": "m", "targetPipeline": "p", "targetAction": "a",
            "filters": [{"jsonPath": path}],
            "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": secret}
        }))
        .unwrap();
        Webhook::new(&d, &crate::ActionConfiguration::new()).unwrap()
    }

    #[test]
    fn only_the_paths_of_admitted_groups_are_streamed() {
        let body = "[".repeat(100) + &"]".repeat(100);
        let signature = crate::github::signature_256(b"b", body.as_bytes());
        let request = Request::new(&body).header("X-Hub-Signature-256", &signature);
        let cheap = WebhookSet::new([member("b", "$[*]")]);
        let with_costly_strangers =
            WebhookSet::new((0..50).map(|i| member("a", &format!("$..*..*..[{i}]"))).chain([member("b", "$[*]")]));
        let before = touches();
        let matches = cheap.matches(&request);
        let cheap_reads = touches() - before;
        let before = touches();
        let other = with_costly_strangers.matches(&request);
        let reads = touches() - before;
        assert!(matches.matched(0) && other.matched(50) && other.len() == 1);
        assert!(reads <= cheap_reads + 16, "{reads} tape reads, {cheap_reads} without the strangers");
    }
}
