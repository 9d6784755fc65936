//! RFC 9535 evaluation over the [`Tape`], under a work budget.
//!
//! Nothing is materialised: a query streams the nodes it selects, one at a time, into a callback
//! that can stop it (the first equal value decides a filter; an existence test stops at the
//! first node). Duplicates are kept, as RFC 9535's nodelists keep them. Every step costs work
//! units: a node visited by a descendant walk, a member passed while looking up a name or
//! iterating, a node selected, a node compared, 16 bytes of string compared or counted, and a
//! regular expression's weight per byte searched. When the budget runs out, evaluation stops with
//! [`Exhausted`]; the caller turns that into a reject. So the time spent on one delivery is
//! bounded by the budget, however the path and the body are shaped.

use std::cell::Cell;
use std::ops::ControlFlow;

use super::query::{Comparable, Expr, Function, Literal, Op, Query, Segment, Selector};
use super::tape::{Id, Kind, NodeType, Tape};
use crate::limits::WorkBudget;

/// The budget ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Exhausted;

pub(crate) type Flow = ControlFlow<()>;
type Next = Result<Flow, Exhausted>;

const GO: Next = Ok(ControlFlow::Continue(()));
const STOP: Next = Ok(ControlFlow::Break(()));

/// An evaluation of queries over one tape, sharing one budget.
pub(crate) struct Eval<'a, 't> {
    tape: &'a Tape<'t>,
    left: Cell<u64>,
    scan_left: Cell<u64>,
}

/// An operand's value: RFC 9535's Nothing, a node, a literal, or a number a function computed.
#[derive(Clone, Copy)]
enum Val<'q> {
    Nothing,
    Node(Id),
    Literal(&'q Literal),
    Count(f64),
}

/// A value reduced to what comparisons look at.
enum Reduced<'v> {
    Null,
    Bool(bool),
    Number(f64),
    Str(&'v str),
    Container(Id),
}

impl<'a, 't> Eval<'a, 't> {
    pub(crate) fn new(tape: &'a Tape<'t>, budget: WorkBudget) -> Self {
        Self { tape, left: Cell::new(budget.nodes), scan_left: Cell::new(budget.scan) }
    }

    /// What is left of the budget.
    pub(crate) fn left(&self) -> WorkBudget {
        WorkBudget { nodes: self.left.get(), scan: self.scan_left.get() }
    }

    /// Pays `units` of work.
    pub(crate) fn charge(&self, units: u64) -> Result<(), Exhausted> {
        Self::pay(&self.left, units)
    }

    /// Pays for scanning `bytes` of string.
    pub(crate) fn scan(&self, bytes: usize) -> Result<(), Exhausted> {
        Self::pay(&self.scan_left, bytes as u64)
    }

    fn pay(left: &Cell<u64>, amount: u64) -> Result<(), Exhausted> {
        let have = left.get();
        if have < amount {
            left.set(0);
            return Err(Exhausted);
        }
        left.set(have - amount);
        Ok(())
    }

    /// Streams the nodes `query` selects (from the root, or from `current` for `@` queries)
    /// into `emit`, which returns `Break` to stop.
    pub(crate) fn select(&self, query: &Query, current: Id, emit: &mut dyn FnMut(Id) -> Next) -> Next {
        let start = if query.absolute { Tape::ROOT } else { current };
        self.segments(&query.segments, start, emit)
    }

    fn segments(&self, segments: &[Segment], node: Id, emit: &mut dyn FnMut(Id) -> Next) -> Next {
        let Some((segment, rest)) = segments.split_first() else {
            self.charge(1)?;
            return emit(node);
        };
        let mut next = |child: Id| self.segments(rest, child, emit);
        if !segment.descendant {
            return self.apply(&segment.selectors, node, &mut next);
        }
        // The node and its descendants in preorder: a scan of its subtree's range.
        let end = self.tape.end(node);
        let mut at = node;
        while at < end {
            self.charge(1)?;
            match self.tape.tag(at) {
                NodeType::Shadowed => {
                    at = self.tape.end(at);
                    continue;
                }
                NodeType::Array | NodeType::Object if self.apply(&segment.selectors, at, &mut next)?.is_break() => {
                    return STOP;
                }
                _ => {}
            }
            at += 1;
        }
        GO
    }

    fn apply(&self, selectors: &[Selector], node: Id, next: &mut dyn FnMut(Id) -> Next) -> Next {
        for selector in selectors {
            if self.selector(selector, node, next)?.is_break() {
                return STOP;
            }
        }
        GO
    }

    /// Calls `f` with each child value of `node` (array elements, object members' values).
    fn children(&self, node: Id, f: &mut dyn FnMut(Id) -> Next) -> Next {
        let (is_object, end) = match self.tape.kind(node) {
            Kind::Array(_) => (false, self.tape.end(node)),
            Kind::Object(_) => (true, self.tape.end(node)),
            _ => return GO,
        };
        let mut at = Tape::first_child(node);
        while at < end {
            self.charge(1)?;
            let skip = is_object && self.tape.tag(at) == NodeType::Shadowed;
            if !skip && f(if is_object { at + 1 } else { at })?.is_break() {
                return STOP;
            }
            at = self.tape.end(at);
        }
        GO
    }

    /// Element `index` of array `node` (of `len` elements), by walking its siblings.
    fn element(&self, node: Id, index: u32) -> Result<Id, Exhausted> {
        self.charge(u64::from(index) + 1)?;
        let mut at = Tape::first_child(node);
        for _ in 0..index {
            at = self.tape.end(at);
        }
        Ok(at)
    }

    fn selector(&self, selector: &Selector, node: Id, next: &mut dyn FnMut(Id) -> Next) -> Next {
        match selector {
            Selector::Name(name) => {
                if !matches!(self.tape.kind(node), Kind::Object(_)) {
                    return GO;
                }
                let end = self.tape.end(node);
                let mut key = Tape::first_child(node);
                while key < end {
                    self.charge(1)?;
                    let candidate = self.tape.key(key);
                    // Strings of different lengths differ at once; equal lengths are compared.
                    if candidate.len() == name.len() {
                        self.scan(name.len())?;
                    }
                    if self.tape.tag(key) != NodeType::Shadowed && candidate == &**name {
                        return next(key + 1);
                    }
                    key = self.tape.end(key);
                }
                GO
            }
            Selector::Wildcard => self.children(node, next),
            Selector::Index(i) => {
                let Kind::Array(len) = self.tape.kind(node) else { return GO };
                let index = if *i >= 0 { *i } else { i64::from(len) + i };
                if (0..i64::from(len)).contains(&index) { next(self.element(node, index as u32)?) } else { GO }
            }
            Selector::Slice { start, end, step } => {
                let Kind::Array(len) = self.tape.kind(node) else { return GO };
                self.slice(node, len, *start, *end, step.unwrap_or(1), next)
            }
            Selector::Filter(expr) => self.children(node, &mut |child| {
                if self.test(expr, child)? { next(child) } else { GO }
            }),
        }
    }

    /// RFC 9535 §2.3.4.2.2.
    fn slice(
        &self,
        node: Id,
        len: u32,
        start: Option<i64>,
        end: Option<i64>,
        step: i64,
        next: &mut dyn FnMut(Id) -> Next,
    ) -> Next {
        let len = i64::from(len);
        let normalize = |i: i64| if i >= 0 { i } else { len + i };
        if step == 0 {
            return GO;
        }
        if step > 0 {
            let lower = normalize(start.unwrap_or(0)).clamp(0, len);
            let upper = normalize(end.unwrap_or(len)).clamp(0, len);
            let mut index = 0;
            let mut at = Tape::first_child(node);
            let mut want = lower;
            while want < upper {
                while index < want {
                    self.charge(1)?;
                    at = self.tape.end(at);
                    index += 1;
                }
                if next(at)?.is_break() {
                    return STOP;
                }
                want = match want.checked_add(step) {
                    Some(w) => w,
                    None => break,
                };
            }
            return GO;
        }
        let upper = normalize(start.unwrap_or(len - 1)).clamp(-1, len - 1);
        let lower = normalize(end.unwrap_or(-len - 1)).clamp(-1, len - 1);
        if upper <= lower {
            return GO;
        }
        // Backwards, without a position per element: a checkpoint every `BLOCK` elements (one
        // forward walk), then each block, last first, walked forward into a small buffer and
        // read back to front. Time stays one walk; memory is 1/BLOCK of the elements' positions.
        const BLOCK: i64 = 64;
        self.charge(len as u64)?;
        let mut checkpoints = Vec::with_capacity((upper / BLOCK + 1) as usize);
        let mut at = Tape::first_child(node);
        for i in 0..=upper {
            if i % BLOCK == 0 {
                checkpoints.push(at);
            }
            at = self.tape.end(at);
        }
        let mut index = upper;
        let mut block = [0 as Id; BLOCK as usize];
        while lower < index {
            let first = index - index % BLOCK;
            // The block holding `index`, from its checkpoint.
            self.charge((index - first + 1) as u64)?;
            let mut at = checkpoints[(first / BLOCK) as usize];
            for slot in block.iter_mut().take((index - first + 1) as usize) {
                *slot = at;
                at = self.tape.end(at);
            }
            while lower < index && index >= first {
                if next(block[(index - first) as usize])?.is_break() {
                    return STOP;
                }
                index = match index.checked_add(step) {
                    Some(i) => i,
                    None => return GO,
                };
            }
        }
        GO
    }

    /// Whether `expr` holds for `current`.
    pub(crate) fn test(&self, expr: &Expr, current: Id) -> Result<bool, Exhausted> {
        self.charge(1)?;
        Ok(match expr {
            Expr::Or(terms) => {
                for term in terms {
                    if self.test(term, current)? {
                        return Ok(true);
                    }
                }
                false
            }
            Expr::And(terms) => {
                for term in terms {
                    if !self.test(term, current)? {
                        return Ok(false);
                    }
                }
                true
            }
            Expr::Not(inner) => !self.test(inner, current)?,
            Expr::Exists(query) => self.select(query, current, &mut |_| STOP)?.is_break(),
            Expr::Test(function) => self.logical(function, current)?,
            Expr::Compare(left, op, right) => {
                let (left, right) = (self.operand(left, current)?, self.operand(right, current)?);
                match op {
                    Op::Eq => self.equal(left, right)?,
                    Op::Ne => !self.equal(left, right)?,
                    Op::Lt => self.less(left, right)?,
                    Op::Le => self.less(left, right)? || self.equal(left, right)?,
                    Op::Gt => self.less(right, left)?,
                    Op::Ge => self.less(right, left)? || self.equal(left, right)?,
                }
            }
        })
    }

    fn operand<'q>(&self, operand: &'q Comparable, current: Id) -> Result<Val<'q>, Exhausted> {
        match operand {
            Comparable::Literal(literal) => Ok(Val::Literal(literal)),
            Comparable::Query(query) => {
                let mut found = Val::Nothing;
                let _ = self.select(query, current, &mut |id| {
                    found = Val::Node(id);
                    STOP
                })?;
                Ok(found)
            }
            Comparable::Function(function) => self.value_function(function, current),
        }
    }

    fn value_function<'q>(&self, function: &'q Function, current: Id) -> Result<Val<'q>, Exhausted> {
        match function {
            Function::Length(argument) => {
                let value = self.operand(argument, current)?;
                Ok(match self.scalar(value) {
                    Some(Reduced::Str(s)) => {
                        self.scan(s.len())?;
                        Val::Count(s.chars().count() as f64)
                    }
                    Some(Reduced::Container(id)) => match self.tape.kind(id) {
                        Kind::Array(n) | Kind::Object(n) => Val::Count(f64::from(n)),
                        _ => Val::Nothing,
                    },
                    _ => Val::Nothing,
                })
            }
            Function::Count(query) => {
                let mut count = 0u64;
                let _ = self.select(query, current, &mut |_| {
                    count += 1;
                    GO
                })?;
                Ok(Val::Count(count as f64))
            }
            Function::Value(query) => {
                let (mut count, mut first) = (0, Val::Nothing);
                let _ = self.select(query, current, &mut |id| {
                    count += 1;
                    if count > 1 {
                        return STOP;
                    }
                    first = Val::Node(id);
                    GO
                })?;
                Ok(if count == 1 { first } else { Val::Nothing })
            }
            Function::Match(..) | Function::Search(..) => Ok(Val::Nothing),
        }
    }

    fn logical(&self, function: &Function, current: Id) -> Result<bool, Exhausted> {
        let (Function::Match(argument, pattern) | Function::Search(argument, pattern)) = function else {
            return Ok(false);
        };
        let value = self.operand(argument, current)?;
        match self.scalar(value) {
            Some(Reduced::Str(s)) => {
                // A DFA: one step a byte.
                self.scan(s.len())?;
                Ok(pattern.is_match(s))
            }
            _ => Ok(false),
        }
    }

    fn scalar<'v>(&'v self, value: Val<'v>) -> Option<Reduced<'v>> {
        Some(match value {
            Val::Nothing => return None,
            Val::Count(n) => Reduced::Number(n),
            Val::Literal(Literal::Null) => Reduced::Null,
            Val::Literal(Literal::Bool(b)) => Reduced::Bool(*b),
            Val::Literal(Literal::Number(n)) => Reduced::Number(n.as_f64().unwrap_or(f64::NAN)),
            Val::Literal(Literal::String(s)) => Reduced::Str(s),
            Val::Node(id) => match self.tape.kind(id) {
                Kind::Null => Reduced::Null,
                Kind::Bool(b) => Reduced::Bool(b),
                Kind::Number(n) => Reduced::Number(n.as_f64()),
                Kind::Str(s) => Reduced::Str(s),
                Kind::Array(_) | Kind::Object(_) => Reduced::Container(id),
            },
        })
    }

    /// RFC 9535 §2.3.5.2.2: Nothing equals only Nothing; numbers by value; arrays and objects
    /// deeply.
    fn equal(&self, left: Val<'_>, right: Val<'_>) -> Result<bool, Exhausted> {
        match (self.scalar(left), self.scalar(right)) {
            (None, None) => Ok(true),
            (Some(l), Some(r)) => self.scalars_equal(l, r),
            _ => Ok(false),
        }
    }

    fn scalars_equal(&self, left: Reduced<'_>, right: Reduced<'_>) -> Result<bool, Exhausted> {
        Ok(match (left, right) {
            (Reduced::Null, Reduced::Null) => true,
            (Reduced::Bool(l), Reduced::Bool(r)) => l == r,
            (Reduced::Number(l), Reduced::Number(r)) => l == r,
            (Reduced::Str(l), Reduced::Str(r)) => {
                self.scan(l.len().min(r.len()))?;
                l == r
            }
            (Reduced::Container(l), Reduced::Container(r)) => self.nodes_equal(l, r)?,
            _ => false,
        })
    }

    fn nodes_equal(&self, left: Id, right: Id) -> Result<bool, Exhausted> {
        self.charge(1)?;
        match (self.tape.kind(left), self.tape.kind(right)) {
            (Kind::Array(n), Kind::Array(m)) => {
                if n != m {
                    return Ok(false);
                }
                let (mut l, mut r) = (Tape::first_child(left), Tape::first_child(right));
                for _ in 0..n {
                    if !self.nodes_equal(l, r)? {
                        return Ok(false);
                    }
                    (l, r) = (self.tape.end(l), self.tape.end(r));
                }
                Ok(true)
            }
            (Kind::Object(n), Kind::Object(m)) => {
                if n != m {
                    return Ok(false);
                }
                let mut equal = true;
                let _ = self.members(left, &mut |key| {
                    let mut matched = false;
                    let _ = self.members(right, &mut |other| {
                        self.charge(1)?;
                        self.scan(self.tape.key(key).len())?;
                        if self.tape.key(other) == self.tape.key(key) {
                            matched = self.nodes_equal(key + 1, other + 1)?;
                            return STOP;
                        }
                        GO
                    })?;
                    equal = matched;
                    if matched { GO } else { STOP }
                })?;
                Ok(equal)
            }
            (Kind::Array(_) | Kind::Object(_), _) | (_, Kind::Array(_) | Kind::Object(_)) => Ok(false),
            _ => match (self.scalar(Val::Node(left)), self.scalar(Val::Node(right))) {
                (Some(l), Some(r)) => self.scalars_equal(l, r),
                _ => Ok(false),
            },
        }
    }

    /// Calls `f` with the key node of each member of object `node` that no duplicate shadows.
    fn members(&self, node: Id, f: &mut dyn FnMut(Id) -> Next) -> Next {
        let end = self.tape.end(node);
        let mut key = Tape::first_child(node);
        while key < end {
            self.charge(1)?;
            if self.tape.tag(key) != NodeType::Shadowed && f(key)?.is_break() {
                return STOP;
            }
            key = self.tape.end(key);
        }
        GO
    }

    /// `<`: numbers by value, strings by code point; anything else is not ordered.
    fn less(&self, left: Val<'_>, right: Val<'_>) -> Result<bool, Exhausted> {
        Ok(match (self.scalar(left), self.scalar(right)) {
            (Some(Reduced::Number(l)), Some(Reduced::Number(r))) => l < r,
            (Some(Reduced::Str(l)), Some(Reduced::Str(r))) => {
                self.scan(l.len().min(r.len()))?;
                l < r
            }
            _ => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::tape::touches;
    use super::super::{Filter, FilterPath, Filters};
    use crate::limits::work_budget;

    /// Reads of the tape per work unit charged: every loop of the evaluator charges before it
    /// reads, so the reads stay within a small multiple of the budget, whatever the path and the
    /// body. The `bounded` fuzz target checks the same on arbitrary inputs.
    const READS_PER_UNIT: u64 = 8;

    fn budget_of(body: &str) -> u64 {
        let tape = super::super::tape::Tape::parse(body, 128).unwrap();
        work_budget(body.len(), tape.len()).nodes
    }

    #[test]
    fn every_read_of_the_tape_is_paid_for() {
        // (The tape's own parse reads nothing through the counted accessors.)
        let bodies = [
            "[".repeat(128) + &"]".repeat(128),
            "{\"a\":".repeat(127) + "{}" + &"}".repeat(127),
            format!("[{}0]", "0,".repeat(5000)),
            format!("[{}{{}}]", r#"{"a":{"a":{"a":1},"b":[1,2,3]},"a":2},"#.repeat(500)),
            include_str!("../../tests/fixtures/github/push/with-new-branch.payload.json").to_owned(),
        ];
        let paths = [
            "$..*..*..*",
            "$..[?@..[?@..*]]",
            "$..[?count(@..*) > 1]",
            "$..*[::-1]",
            "$..[-1:0:-1]",
            "$..[?@ == $.a]",
            "$..[?value(@..*) == 1 && count($..*) > 0]",
            "$..[?@.*[?@.*]]",
            "$..[?length(@) == count(@..*)]",
            "$[?@ == @ && @ != 1 || !@.a]..a",
            "$..['a','b',0,-1,1:3,?@]",
        ];
        for body in &bodies {
            for path in paths {
                let filters = Filters::new(vec![Filter {
                    path: FilterPath::parse(path).unwrap_or_else(|e| panic!("{path}: {e:?}")),
                    expected: Some("no such value".into()),
                    shown: Some("no such value".into()),
                    rule: Default::default(),
                }]);
                let budget = budget_of(body);
                let before = touches();
                let _ = filters.check(body, 128);
                let reads = touches() - before;
                assert!(reads <= READS_PER_UNIT * budget, "{path}: {reads} reads for a budget of {budget}");
            }
        }
    }
}

#[cfg(test)]
mod real_payloads {
    use super::super::FilterPath;
    use super::super::tape::Tape;
    use super::Eval;
    use crate::limits::work_budget;

    /// What the README says of the budget: real paths over real payloads spend a few work units a
    /// node and scan less than the body, far inside the budget.
    #[test]
    fn real_paths_spend_a_few_units_a_node() {
        let body = include_str!("../../tests/fixtures/github/push/with-new-branch.payload.json");
        let tape = Tape::parse(body, 128).unwrap();
        let budget = work_budget(body.len(), tape.len());
        for path in [
            "$..*",
            "$.commits[*].modified[*]",
            "$..[?@.name]",
            "$..[?search(@, 'a')]",
            "$.commits[*]['added','modified','removed'][?search(@, '^services/api/')]",
            "$..[?@.login == 'Codertocat']",
        ] {
            let path = FilterPath::parse(path).unwrap();
            let eval = Eval::new(&tape, budget);
            let _ = eval.select(&path.query, Tape::ROOT, &mut |_| Ok(std::ops::ControlFlow::Continue(())));
            let left = eval.left();
            let (units, scanned) = (budget.nodes - left.nodes, budget.scan - left.scan);
            let per_node = units as f64 / tape.len() as f64;
            assert!(per_node <= 4.0, "{}: {per_node:.2} units a node", path.text);
            assert!(scanned <= body.len() as u64, "{}: {scanned} bytes scanned", path.text);
        }
    }
}
