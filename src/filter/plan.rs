//! The compiled plan and the one way a body is answered, for one webhook and for a
//! [`WebhookSet`](crate::WebhookSet) alike.
//!
//! A plan holds the distinct paths of its filters, the distinct values each is compared with, the
//! trie of the singular paths, and its lane, chosen once when it is built:
//!
//! - [`Lane::Singular`]: every path is singular in the DOM-free subset, and one validating pass
//!   over the body picks out what each selects ([`Document::Captures`]), allocating nothing for a
//!   webhook's few filters.
//! - [`Lane::Tape`]: some path is not; the body becomes a compact tape ([`Document::Tape`]) and
//!   each path is streamed over it under the delivery's work budget ([`Plan::stream`]), recording the
//!   work spent when it first selected each value ([`PathHits`]).
//!
//! A rule (a member's filter in plan terms) is then decided by [`Plan::decide`] from what was
//! selected: from the captures, or by replaying the hits against what is left of the budget. A
//! webhook's plan streams a path lazily, under what its earlier filters left; a set streams each
//! path its admitted members use once, under the whole budget. Work is additive, so both decide
//! every rule alike: the set is the same engine over more rules, as `regex::RegexSet` is the same
//! engine as `Regex` over more patterns.

use std::collections::HashMap;
use std::sync::Arc;

use super::equality::Scalar;
use super::eval::{Eval, Flow};
use super::extract::{Capture, Trie};
use super::found::{found_capture, found_kind};
use super::path::FilterPath;
use super::rule::Filter;
use super::tape::{self, Id, Tape};
use crate::limits::{MAX_FILTERS, WorkBudget, work_budget};
use crate::verdict::{FilterFailure, Found, Rejection};

/// A distinct path of a plan.
pub(crate) type PathId = u32;
/// A distinct (path, `matchEquals`) pair of a plan.
pub(crate) type ValueId = u32;

/// How a plan answers a body: chosen once, when the plan is built.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Lane {
    /// One DOM-free pass; no work budget (one pass is bounded by the body).
    #[default]
    Singular,
    /// The compact tape, each path streamed under the work budget.
    Tape,
}

impl Lane {
    /// The lane a set reads a body of `json_bytes` in, when this is the most its admitted members
    /// need: past the tape's size every tape member refuses the body itself (its own verdict says
    /// PayloadTooLarge), and the singular pass still answers the others.
    pub(crate) fn for_body(self, json_bytes: usize) -> Lane {
        if json_bytes > tape::MAX_TAPE_BYTES { Lane::Singular } else { self }
    }
}

/// A member's filter in plan terms.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rule {
    pub(crate) path: PathId,
    /// `None` for a rule without `matchEquals`, and for one that never passes.
    pub(crate) value: Option<ValueId>,
    /// A selection compared as one list (`aws_exact`): never equal.
    pub(crate) never: bool,
}

/// The values a path is compared with, by text: a short list compared with the equality rule, or,
/// from [`HASHED_FROM`] on (a set's thousands of members), a hash map.
#[derive(Clone, Debug)]
enum Values {
    Few(Vec<(Arc<str>, ValueId)>),
    Many(HashMap<Arc<str>, ValueId>),
}

const HASHED_FROM: usize = 8;

impl Values {
    fn get(&self, text: &str) -> Option<ValueId> {
        match self {
            Values::Few(list) => list.iter().find(|(t, _)| &**t == text).map(|&(_, id)| id),
            Values::Many(map) => map.get(text).copied(),
        }
    }

    /// The value a selected scalar equals, if any.
    fn of(&self, scalar: &Scalar<'_>) -> Option<ValueId> {
        match self {
            Values::Few(list) => list.iter().find(|(t, _)| scalar.equals(t)).map(|&(_, id)| id),
            Values::Many(map) => map.get(&*scalar.text()).copied(),
        }
    }

    fn insert(&mut self, text: Arc<str>, id: ValueId) {
        match self {
            Values::Few(list) => {
                list.push((text, id));
                if list.len() >= HASHED_FROM {
                    *self = Values::Many(list.drain(..).collect());
                }
            }
            Values::Many(map) => {
                map.insert(text, id);
            }
        }
    }

    fn len(&self) -> usize {
        match self {
            Values::Few(list) => list.len(),
            Values::Many(map) => map.len(),
        }
    }
}

#[derive(Clone, Debug)]
struct PlanPath {
    path: FilterPath,
    values: Values,
    /// Whether some rule needs everything the path selects (a rule that never passes shows it
    /// all): then its stream never stops early.
    whole: bool,
}

/// The compiled plan: the distinct paths, their values, the trie and the lane.
#[derive(Clone, Debug, Default)]
pub(crate) struct Plan {
    paths: Vec<PlanPath>,
    values: Vec<Arc<str>>,
    /// Path id by text, once there are many paths (a set's): a webhook's few are compared.
    by_text: Option<HashMap<Arc<str>, PathId>>,
    /// The singular paths, slot = path id.
    trie: Trie,
    lane: Lane,
}

impl Plan {
    pub(crate) fn new() -> Self {
        Plan { trie: Trie::new(), ..Plan::default() }
    }

    /// Adds a filter (merging its path and value with those already there) and returns its rule.
    pub(crate) fn add(&mut self, filter: &Filter) -> Rule {
        let fresh = self.paths.len() as PathId;
        let text = &filter.path.text;
        let path = match &mut self.by_text {
            Some(map) => *map.entry(text.clone()).or_insert(fresh),
            None => self.paths.iter().position(|p| p.path.text == *text).map_or(fresh, |p| p as PathId),
        };
        if path == fresh {
            if self.by_text.is_none() && self.paths.len() + 1 >= HASHED_FROM {
                let map = self.paths.iter().enumerate().map(|(p, e)| (e.path.text.clone(), p as PathId));
                self.by_text = Some(map.chain([(text.clone(), fresh)]).collect());
            }
            match &filter.path.singular {
                Some(steps) => self.trie.insert(steps, path as usize),
                None => self.lane = Lane::Tape,
            }
            self.paths.push(PlanPath { path: filter.path.clone(), values: Values::Few(Vec::new()), whole: false });
        }
        let never = !filter.compares_elements();
        let entry = &mut self.paths[path as usize];
        entry.whole |= never;
        let value = match &filter.expected {
            Some(expected) if !never => Some(entry.values.get(expected).unwrap_or_else(|| {
                let id = self.values.len() as ValueId;
                entry.values.insert(expected.clone(), id);
                self.values.push(expected.clone());
                id
            })),
            _ => None,
        };
        Rule { path, value, never }
    }

    pub(crate) fn lane(&self) -> Lane {
        self.lane
    }

    /// Gives back what building left over: a set holds thousands of webhooks, each with its plan.
    pub(crate) fn shrink_to_fit(&mut self) {
        self.paths.shrink_to_fit();
        self.values.shrink_to_fit();
        for path in &mut self.paths {
            if let Values::Few(list) = &mut path.values {
                list.shrink_to_fit();
            }
        }
    }

    pub(crate) fn paths(&self) -> usize {
        self.paths.len()
    }

    /// How many distinct (path, value) pairs.
    pub(crate) fn values(&self) -> usize {
        self.values.len()
    }

    /// Whether path `path` is singular in the DOM-free subset.
    pub(crate) fn is_singular(&self, path: PathId) -> bool {
        self.paths[path as usize].path.singular.is_some()
    }

    /// Reads the body's JSON `text` for `lane`: the one validating pass or the tape. A body that
    /// is not JSON, nests deeper than `max_depth` or is too large for the tape is the reject
    /// that says so.
    pub(crate) fn read<'t>(&self, text: &'t str, max_depth: usize, lane: Lane) -> Result<Document<'t>, Rejection> {
        match lane {
            Lane::Singular => {
                let mut captures = Captures::new(self.paths.len());
                self.trie.extract(text, captures.as_mut_slice(), max_depth).map_err(Rejection::PayloadMalformed)?;
                Ok(Document::Captures(captures))
            }
            Lane::Tape => {
                if text.len() > tape::MAX_TAPE_BYTES {
                    return Err(Rejection::PayloadTooLarge { size: text.len(), limit: tape::MAX_TAPE_BYTES });
                }
                let tape = Tape::parse(text, max_depth).map_err(Rejection::PayloadMalformed)?;
                let budget = work_budget(text.len(), tape.len());
                Ok(Document::Tape { tape, budget })
            }
        }
    }

    /// Streams path `path` over the tape under `budget`: every value of the path it selects and
    /// the work spent at its first selection, stopping once it has selected each (unless a rule
    /// needs all of it).
    pub(crate) fn stream(&self, tape: &Tape<'_>, path: PathId, budget: WorkBudget) -> PathHits {
        let entry = &self.paths[path as usize];
        let eval = Eval::new(tape, budget);
        let spent = || {
            let left = eval.left();
            WorkBudget { nodes: budget.nodes - left.nodes, scan: budget.scan - left.scan }
        };
        let mut hits = PathHits::default();
        let mut missing = entry.values.len();
        let ended = eval.select(&entry.path.query, Tape::ROOT, &mut |id| {
            let scalar = Scalar::of_kind(tape.kind(id));
            // Comparing or hashing a value costs what scanning it does.
            if let Some(scalar) = &scalar {
                scalar.pay(&eval)?;
            }
            if let Some(slot) = hits.first.get_mut(hits.count) {
                *slot = Some(id);
            }
            hits.count += 1;
            hits.any.get_or_insert_with(spent);
            if let Some(v) = scalar.and_then(|s| entry.values.of(&s))
                && let std::collections::hash_map::Entry::Vacant(slot) = hits.values.entry(v)
            {
                slot.insert(spent());
                missing -= 1;
            }
            Ok(if missing == 0 && !entry.whole { Flow::Break(()) } else { Flow::Continue(()) })
        });
        hits.end = ended.ok().map(|_| spent());
        hits
    }

    /// Decides `rules`, in order, the first failure deciding: `Err((index of the rule, why))`.
    /// Over the tape, `hits` gives each path's record (streamed under at least what is left).
    pub(crate) fn decide(&self, document: &Document<'_>, rules: &[Rule], hits: &mut Records) -> Result<(), Miss> {
        match document {
            Document::Captures(captures) => {
                for (index, rule) in rules.iter().enumerate() {
                    let capture = &captures.as_slice()[rule.path as usize];
                    let pass = match rule.value {
                        _ if rule.never => false,
                        None => *capture != Capture::Missing,
                        Some(v) => Scalar::of_capture(capture).is_some_and(|s| s.equals(&self.values[v as usize])),
                    };
                    if !pass {
                        return Err(Miss { index, why: Why::NotFound(found_capture(capture)) });
                    }
                }
                Ok(())
            }
            Document::Tape { tape, budget } => {
                let mut left = *budget;
                for (index, rule) in rules.iter().enumerate() {
                    let record = hits.get(self, tape, rule.path, left);
                    let hit = match rule.value {
                        _ if rule.never => None,
                        None => record.any,
                        Some(v) => record.values.get(&v).copied(),
                    };
                    let within = |cost: WorkBudget| cost.nodes <= left.nodes && cost.scan <= left.scan;
                    match hit {
                        Some(cost) if within(cost) => {
                            left.nodes -= cost.nodes;
                            left.scan -= cost.scan;
                        }
                        // Selected only after what is left would have run out.
                        Some(_) => return Err(Miss { index, why: Why::Exhausted(*budget) }),
                        // Not selected: the whole stream was paid for, if it ended at all.
                        None => match record.end {
                            Some(cost) if within(cost) => {
                                return Err(Miss { index, why: Why::NotFound(record.found(tape)) });
                            }
                            _ => return Err(Miss { index, why: Why::Exhausted(*budget) }),
                        },
                    }
                }
                Ok(())
            }
        }
    }

    /// The values the singular paths selected, for a set's index: (path, value it equals).
    pub(crate) fn captured_values<'c>(
        &'c self,
        captures: &'c Captures<'_>,
    ) -> impl Iterator<Item = (PathId, Option<ValueId>)> + 'c {
        captures.as_slice().iter().enumerate().filter(|(_, c)| **c != Capture::Missing).map(|(p, c)| {
            let value = Scalar::of_capture(c).and_then(|s| self.paths[p].values.of(&s));
            (p as PathId, value)
        })
    }
}

/// A body as a plan's lane reads it.
pub(crate) enum Document<'t> {
    /// What each path selected in the one pass, slot = path id.
    Captures(Captures<'t>),
    /// The tape and the delivery's work budget.
    Tape { tape: Tape<'t>, budget: WorkBudget },
}

/// The captures of a pass: inline for a webhook's few paths (no allocation), on the heap for a
/// set's many.
pub(crate) enum Captures<'t> {
    Inline([Capture<'t>; MAX_FILTERS], usize),
    Heap(Vec<Capture<'t>>),
}

impl<'t> Captures<'t> {
    fn new(len: usize) -> Self {
        if len <= MAX_FILTERS {
            Captures::Inline(Default::default(), len)
        } else {
            Captures::Heap(vec![Capture::Missing; len])
        }
    }

    pub(crate) fn as_slice(&self) -> &[Capture<'t>] {
        match self {
            Captures::Inline(array, len) => &array[..*len],
            Captures::Heap(v) => v,
        }
    }

    fn as_mut_slice(&mut self) -> &mut [Capture<'t>] {
        match self {
            Captures::Inline(array, len) => &mut array[..*len],
            Captures::Heap(v) => v,
        }
    }
}

/// What streaming one path selected, with the work spent (from the stream's start) at each first.
#[derive(Clone, Debug, Default)]
pub(crate) struct PathHits {
    /// Per value: the work spent when a selected scalar first equalled it.
    values: HashMap<ValueId, WorkBudget>,
    /// The work spent when the path first selected anything.
    any: Option<WorkBudget>,
    /// What the stream spent in all; `None` when it ran out of budget. (A stream that stopped
    /// early had hit every value, so no rule falls through to this.)
    end: Option<WorkBudget>,
    count: usize,
    first: [Option<Id>; Found::FIRST_SHOWN],
}

impl PathHits {
    /// Whether the path selected anything.
    pub(crate) fn selected_anything(&self) -> bool {
        self.any.is_some()
    }

    /// The values a selected scalar equalled.
    pub(crate) fn values_selected(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.values.keys().copied()
    }

    fn found(&self, tape: &Tape<'_>) -> Found {
        let mut first = self.first.iter().flatten().map(|&id| found_kind(tape.kind(id)));
        match self.count {
            0 => Found::Nothing,
            1 => first.next().unwrap_or(Found::Nothing),
            count => Found::Values { count, first: first.collect() },
        }
    }
}

/// The hits of a delivery's paths over the tape: streamed before (a set streams each path its
/// admitted members use once, under the whole budget) or the first time a rule needs one (a
/// webhook, under what its earlier filters left).
#[derive(Debug, Default)]
pub(crate) struct Records(Vec<Option<PathHits>>);

impl Records {
    fn get(&mut self, plan: &Plan, tape: &Tape<'_>, path: PathId, left: WorkBudget) -> &PathHits {
        if self.0.len() < plan.paths() {
            self.0.resize(plan.paths(), None);
        }
        self.0[path as usize].get_or_insert_with(|| plan.stream(tape, path, left))
    }

    /// Streams each of `paths` under `budget`, once.
    pub(crate) fn streamed(
        plan: &Plan,
        tape: &Tape<'_>,
        paths: impl IntoIterator<Item = PathId>,
        budget: WorkBudget,
    ) -> Self {
        let mut records = Records(vec![None; plan.paths()]);
        for path in paths {
            records.get(plan, tape, path, budget);
        }
        records
    }

    /// What was streamed: each path's id and hits.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (PathId, &PathHits)> {
        self.0.iter().enumerate().filter_map(|(p, h)| Some((p as PathId, h.as_ref()?)))
    }
}

/// Why a rule failed.
#[derive(Debug)]
pub(crate) struct Miss {
    /// Its index in the rules decided.
    pub(crate) index: usize,
    pub(crate) why: Why,
}

#[derive(Debug)]
pub(crate) enum Why {
    /// Nothing selected equalled `matchEquals` (or nothing was selected): what was.
    NotFound(Found),
    /// The budget ran out first.
    Exhausted(WorkBudget),
}

impl Miss {
    /// The reject a webhook's verdict gives, `filters` being the rules' filters in order.
    pub(crate) fn rejection(self, filters: &[Filter]) -> Rejection {
        let filter = &filters[self.index];
        match self.why {
            Why::NotFound(found) => Rejection::FilterFailed(FilterFailure {
                index: self.index,
                json_path: filter.path.text.clone(),
                expected: filter.shown.clone(),
                found,
            }),
            Why::Exhausted(budget) => {
                Rejection::WorkBudgetExhausted { filter: self.index, json_path: filter.path.text.clone(), budget }
            }
        }
    }
}

/// One webhook's filters and their plan.
#[derive(Clone, Debug, Default)]
pub(crate) struct Filters {
    list: Vec<Filter>,
    plan: Plan,
    rules: Vec<Rule>,
}

impl Filters {
    pub(crate) fn new(list: Vec<Filter>) -> Self {
        let mut plan = Plan::new();
        let rules = list.iter().map(|f| plan.add(f)).collect();
        plan.shrink_to_fit();
        Self { list, plan, rules }
    }

    pub(crate) fn list(&self) -> &[Filter] {
        &self.list
    }

    pub(crate) fn lane(&self) -> Lane {
        self.plan.lane()
    }

    /// Every filter, in order, against the body's JSON `text`; the first failure decides.
    pub(crate) fn check(&self, text: &str, max_depth: usize) -> Result<(), Rejection> {
        let document = self.plan.read(text, max_depth, self.plan.lane())?;
        self.plan.decide(&document, &self.rules, &mut Records::default()).map_err(|miss| miss.rejection(&self.list))
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::filter::EqualityRule;

    const PATHS: &[&str] = &["$.a", "$[*]", "$..*", "$..b", "$[*].b", "$.c[*]", "$[?@.b == 1]", "$..[0]"];
    const VALUES: &[&str] = &["1", "x", "true", "null", "2"];
    const BODIES: &[&str] = &[
        r#"{"a":"x","b":1,"c":[1,2,"x",{"b":2}]}"#,
        r#"[{"b":1},{"b":"x"},[true,null,[1,2]],{"a":{"b":2}}]"#,
        r#"{"c":[[[[1]]],"x","x","x"],"a":1,"d":{"b":{"b":{"b":null}}}}"#,
    ];

    fn filter(path: usize, value: Option<usize>, rule: EqualityRule) -> Filter {
        let expected: Option<Arc<str>> = value.map(|v| VALUES[v].into());
        Filter { path: FilterPath::parse(PATHS[path]).unwrap(), shown: expected.clone(), expected, rule }
    }

    /// What a webhook did before the plan: every filter in order over one evaluation sharing
    /// one budget, each stopping at its first equal node.
    fn sequential(filters: &[Filter], tape: &Tape<'_>, budget: WorkBudget) -> Result<(), (usize, bool)> {
        let eval = Eval::new(tape, budget);
        for (index, f) in filters.iter().enumerate() {
            let mut passed = false;
            let run = eval.select(&f.path.query, Tape::ROOT, &mut |id| {
                let scalar = Scalar::of_kind(tape.kind(id));
                if let Some(s) = &scalar {
                    s.pay(&eval)?;
                }
                passed = match &f.expected {
                    None => true,
                    Some(_) if !f.compares_elements() => false,
                    Some(e) => scalar.is_some_and(|s| s.equals(e)),
                };
                Ok(if passed { Flow::Break(()) } else { Flow::Continue(()) })
            });
            match run {
                Err(_) => return Err((index, true)),
                Ok(_) if !passed => return Err((index, false)),
                Ok(_) => {}
            }
        }
        Ok(())
    }

    fn outcome(decided: Result<(), Miss>) -> Result<(), (usize, bool)> {
        decided.map_err(|miss| (miss.index, matches!(miss.why, Why::Exhausted(_))))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
        /// The claim the one engine rests on: work is additive, so a webhook's plan (each path
        /// streamed when first needed, under what is left) and a set's (each path streamed
        /// once, under the whole budget, the hits replayed) decide every rule as one evaluation
        /// sharing the budget does, at every budget, exhaustion included.
        #[test]
        fn lazy_and_streamed_hits_decide_as_one_shared_budget(
            rules in prop::collection::vec((0..PATHS.len(), prop::option::weighted(0.8, 0..VALUES.len()), prop::bool::weighted(0.2)), 1..5),
            body in 0..BODIES.len(),
            nodes in 0u64..120,
            scan in 0u64..40,
        ) {
            let filters: Vec<Filter> = rules
                .iter()
                .map(|&(p, v, aws)| filter(p, v, if aws { EqualityRule::WholeList } else { EqualityRule::AnyElement }))
                .collect();
            let mut plan = Plan::new();
            let plan_rules: Vec<Rule> = filters.iter().map(|f| plan.add(f)).collect();
            let budget = WorkBudget { nodes, scan };
            let document = Document::Tape { tape: Tape::parse(BODIES[body], 128).unwrap(), budget };
            let Document::Tape { tape, .. } = &document else { unreachable!() };
            let expected = sequential(&filters, tape, budget);
            let lazy = outcome(plan.decide(&document, &plan_rules, &mut Records::default()));
            let mut all = Records::streamed(&plan, tape, 0..plan.paths() as PathId, budget);
            let streamed = outcome(plan.decide(&document, &plan_rules, &mut all));
            prop_assert_eq!(lazy, expected);
            prop_assert_eq!(streamed, expected);
        }
    }
}
