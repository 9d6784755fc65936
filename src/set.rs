//! `WebhookSet`: one delivery against many webhooks at about the cost of one, like
//! `regex::RegexSet`, and through the same engine as one webhook.
//!
//! - Authentication is shared: members are grouped by their check's grouping key (the same
//!   secrets and deadlines, the same range, or none), and each group admits the delivery once
//!   ([`Auth::admit`]). When no member is admitted, the body is never parsed.
//! - The members' filters are compiled into one plan (the same [`Plan`] a webhook holds, over
//!   more rules): each distinct path once, each distinct (path, `matchEquals`) once. The body is
//!   read once, in the lane the admitted members need; over the tape each path they use is
//!   streamed once, under the delivery's budget.
//! - Each member is filed under one of its rules, its most selective; a delivery visits only the
//!   members filed under what was selected, and decides them with [`Plan::decide`], the one
//!   decision a webhook's own evaluation makes. Work per delivery grows with the body, the
//!   distinct paths and the members that match, not with the number of members.
//!
//! A member with a lower depth limit than its group is asked itself. [`WebhookSet::explain`]
//! gives a member's full verdict.

use std::sync::Arc;

use crate::auth::{Auth, AuthKey};
use crate::body;
use crate::filter::plan::{Document, Lane, PathId, Plan, Records, Rule};
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
    /// Every member's filters, merged.
    plan: Plan,
    /// Per member: its filters as rules of the plan.
    rules: Vec<Vec<Rule>>,
    /// Per value id: the members filed under it.
    by_value: Vec<Vec<u32>>,
    /// Per path id: the members filed under "this path selects something".
    by_existence: Vec<Vec<u32>>,
    /// Members with no filter.
    unfiltered: Vec<u32>,
}

#[derive(Debug)]
struct Group {
    /// The check every member of the group shares.
    auth: Arc<Auth>,
    /// The largest body any member of the group accepts: past it, the group's check is skipped.
    max_body_bytes: usize,
    /// The deepest nesting any member of the group accepts.
    max_depth: usize,
    /// The lane the group's members need.
    lane: Lane,
    /// The distinct paths its members use: only these are streamed when the group admits a
    /// delivery.
    paths: Vec<PathId>,
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
    /// Builds the set: groups the members' authentication, merges their filters into one plan and
    /// indexes them. Indices are the members' positions in `webhooks`.
    pub fn new(webhooks: impl IntoIterator<Item = Webhook>) -> Self {
        let members: Vec<Webhook> = webhooks.into_iter().collect();
        let (mut groups, group_of) = group_auth(&members);
        let mut plan = Plan::new();
        let rules: Vec<Vec<Rule>> =
            members.iter().map(|m| m.filter_list().iter().map(|f| plan.add(f)).collect()).collect();
        let mut used: Vec<(u32, PathId)> = rules
            .iter()
            .enumerate()
            .flat_map(|(m, rules)| rules.iter().map(move |r| (m, r.path)))
            .map(|(m, path)| (group_of[m], path))
            .collect();
        used.sort_unstable();
        used.dedup();
        for (group, path) in used {
            groups[group as usize].paths.push(path);
        }
        let mut set = WebhookSet {
            by_value: vec![Vec::new(); plan.values()],
            by_existence: vec![Vec::new(); plan.paths()],
            members,
            group_of,
            groups,
            plan,
            rules,
            unfiltered: Vec::new(),
        };
        set.file_members();
        set
    }

    /// Files each member under its most selective rule: an equality over an existence test, a
    /// singular path over another, then the value fewest members share. A member with a rule that
    /// never passes (a list compared as AWS compares it) is filed nowhere: it never matches.
    fn file_members(&mut self) {
        let mut sharing = vec![0usize; self.by_value.len()];
        for rule in self.rules.iter().flatten() {
            if let Some(v) = rule.value {
                sharing[v as usize] += 1;
            }
        }
        for (m, rules) in self.rules.iter().enumerate() {
            if rules.iter().any(|r| r.never) {
                continue;
            }
            let key = rules.iter().min_by_key(|r| {
                (r.value.is_none(), !self.plan.is_singular(r.path), r.value.map_or(usize::MAX, |v| sharing[v as usize]))
            });
            match key {
                None => self.unfiltered.push(m as u32),
                Some(Rule { value: Some(v), .. }) => self.by_value[*v as usize].push(m as u32),
                Some(Rule { path, value: None, .. }) => self.by_existence[*path as usize].push(m as u32),
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
        let admitted: Vec<bool> = self
            .groups
            .iter()
            .map(|g| {
                if g.auth.verifies_signatures() && size <= g.max_body_bytes {
                    out.signatures_checked += 1;
                }
                g.auth.admit(request, g.max_body_bytes).is_ok()
            })
            .collect();
        let open = || self.groups.iter().zip(&admitted).filter(|&(_, ok)| *ok).map(|(g, _)| g);
        if open().next().is_none() {
            return out;
        }
        let Ok(text) = body::json_text(request) else { return out };
        // The deepest limit any admitted group allows. A member with a lower limit is decided by
        // its own evaluate (rare: limits are usually the default).
        let depth = open().map(|g| g.max_depth).max().unwrap_or_default();
        out.body_parsed = true;
        let lane = open().map(|g| g.lane).max().unwrap_or_default().for_body(text.len());
        let Ok(document) = self.plan.read(&text, depth, lane) else { return out };
        let mut records = Records::default();
        let mut candidates = self.unfiltered.clone();
        match &document {
            Document::Captures(captures) => {
                for (path, value) in self.plan.captured_values(captures) {
                    candidates.extend_from_slice(&self.by_existence[path as usize]);
                    if let Some(v) = value {
                        candidates.extend_from_slice(&self.by_value[v as usize]);
                    }
                }
            }
            Document::Tape { tape, budget } => {
                records = Records::streamed(&self.plan, tape, open().flat_map(|g| g.paths.iter().copied()), *budget);
                for (path, hits) in records.iter() {
                    if hits.selected_anything() {
                        candidates.extend_from_slice(&self.by_existence[path as usize]);
                    }
                    for v in hits.values_selected() {
                        candidates.extend_from_slice(&self.by_value[v as usize]);
                    }
                }
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        for m in candidates {
            let m = m as usize;
            let member = &self.members[m];
            if !admitted[self.group_of[m] as usize] || size > member.max_body_bytes() {
                continue;
            }
            let pass = if member.max_depth() < depth {
                member.evaluate(request).is_trigger()
            } else if lane < member.lane() {
                // The body was too large for the tape: the member's own evaluate refuses it.
                false
            } else {
                self.plan.decide(&document, &self.rules[m], &mut records).is_ok()
            };
            if pass {
                out.matched.push(m);
            }
        }
        out
    }
}

/// Groups members by their authentication's grouping key: one group per distinct secret set
/// (deadlines and SHA-256 requirement included), per distinct range, and one for the
/// unauthenticated.
fn group_auth(members: &[Webhook]) -> (Vec<Group>, Vec<u32>) {
    let mut groups: Vec<Group> = Vec::new();
    let mut group_of = Vec::with_capacity(members.len());
    let mut by_key: std::collections::HashMap<AuthKey, u32> = std::collections::HashMap::new();
    for webhook in members {
        let next = groups.len() as u32;
        let group = *by_key.entry(webhook.auth().grouping_key()).or_insert(next);
        if group == next {
            groups.push(Group {
                auth: Arc::new(webhook.auth().clone()),
                max_body_bytes: 0,
                max_depth: 0,
                lane: Lane::Singular,
                paths: Vec::new(),
            });
        }
        let g = &mut groups[group as usize];
        g.max_body_bytes = g.max_body_bytes.max(webhook.max_body_bytes());
        g.max_depth = g.max_depth.max(webhook.max_depth());
        g.lane = g.lane.max(webhook.lane());
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
