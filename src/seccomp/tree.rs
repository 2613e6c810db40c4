//! libseccomp's argument tree for one syscall (its `db.c`, 2.5.4), rebuilt so that the
//! rules decide exactly as they do under runc and crun, quirks included.
//!
//! Each conditional rule becomes a chain of 32-bit checks: on a 64-bit ABI a comparison
//! is split into checks of the high and low words (`EQ`: high word equal, then low word
//! equal; `GT`/`GE`/`LT`/`LE`: high word greater, else equal and low word compared), on a
//! 32-bit ABI it is one check of the low word. The chains of one syscall are merged into
//! a tree: checks that compare the same word of the same argument with the same operator,
//! value and mask become one node, whatever rule they came from; the others are kept side
//! by side on their level in libseccomp's order (higher argument first, high word before
//! low, EQ/NE/MASKED_EQ before LT/LE before GT/GE, then by value). Where merged rules
//! disagree libseccomp refuses the rule (EEXIST), or keeps the earlier or the shorter one.
//!
//! A call is judged from the first level: each node of a level in turn; a node whose
//! check holds continues with its true side (an action, or the next level), else its
//! false side; a side with neither goes on to the next node of the level, and the end of
//! a level goes back to the node after the one that led there (in the end: the default
//! action). This is what libseccomp's `gen_bpf.c` emits, and [`Tree::emit`] does.
//!
//! Not rebuilt: `_db_tree_prune` (it only removes what a later, shorter rule with the same
//! action makes redundant, or skips such a rule), and the way `gen_bpf.c` skips loading a
//! word it believes loaded: a node reached from the end of the previous node's next
//! level then compares the word that level loaded. Measured with runc: `LT 2^32+1000` →
//! ERRNO(55) and `LT 1000` → ERRNO(56) on one argument allow 1000 (its high-word check
//! compares the low word); dory refuses it with 55, as the rules say. Likewise `GE 2^32`
//! → ERRNO(57) with `LE 999` → ERRNO(58): runc refuses 1000 with 57, dory allows it.

use crate::seccomp::bpf::{Asm, Target, JEQ_K, JGE_K, JGT_K};
use crate::seccomp::merge::Cond;
use crate::seccomp::names::Op;

/// The comparison a node makes (libseccomp turns NE, LT and LE into EQ, GE and GT with
/// the sides swapped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Check {
    Eq,
    Gt,
    Ge,
    MaskedEq,
}

/// One check: `struct db_arg_chain_tree`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Node {
    arg: u32,
    /// Compares the high word of a 64-bit argument.
    hi: bool,
    check: Check,
    /// The rule's operator: it orders nodes.
    op: Op,
    mask: u32,
    datum: u32,
    datum_full: u64,
    /// The true side: an action (`act_t_flg`, `act_t`) and/or the next level.
    act_t: Option<u32>,
    nxt_t: Option<usize>,
    act_f: Option<u32>,
    nxt_f: Option<usize>,
    lvl_prv: Option<usize>,
    lvl_nxt: Option<usize>,
}

/// The merged rules of one syscall (nodes in an arena; `root` is on the first level).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    nodes: std::vec::Vec<Node>,
    root: usize,
}

/// Where a level hangs: the tree's root, or a node's true or false side.
#[derive(Debug, Clone, Copy)]
enum Slot {
    Root,
    True(usize),
    False(usize),
}

/// libseccomp refuses the rule (`EEXIST`).
#[derive(Debug)]
pub struct Conflict;

impl Tree {
    /// The chain of one rule, `None` if it has no check left (then it is unconditional).
    /// `conds` are on distinct arguments; `wide`: 64-bit arguments.
    pub fn chain(conds: &[Cond], ret: u32, wide: bool) -> Option<Tree> {
        let mut sorted: heapless::Vec<Cond, 6> = heapless::Vec::new();
        for c in conds {
            let mask = if c.op == Op::MaskedEq {
                c.value
            } else {
                u64::MAX
            };
            let needed = if wide {
                mask
            } else {
                mask & u64::from(u32::MAX)
            };
            if needed != 0 && sorted.push(*c).is_err() {
                break;
            }
        }
        sorted.sort_unstable_by_key(|c| c.index);
        let mut t = Tree {
            nodes: std::vec::Vec::new(),
            root: 0,
        };
        // Per condition: its first node, and the nodes the next condition hangs from.
        let mut prev: Option<(Op, [usize; 3])> = None;
        for c in &sorted {
            let ids = if wide { t.split(c) } else { t.single(c) };
            match prev {
                None => t.root = ids[0],
                Some((op, p)) => t.link(op, p, ids[0], wide),
            }
            prev = Some((c.op, ids));
        }
        let (op, last) = prev?;
        t.finish(op, last, ret, wide);
        Some(t)
    }

    fn node(&mut self, c: &Cond, hi: bool, check: Check) -> usize {
        let (mask, datum) = match c.op {
            Op::MaskedEq => (c.value, c.value_two),
            _ => (u64::MAX, c.value),
        };
        let word = |v: u64| if hi { (v >> 32) as u32 } else { v as u32 };
        self.nodes.push(Node {
            arg: c.index,
            hi,
            check,
            op: c.op,
            mask: word(mask),
            datum: word(datum) & word(mask),
            datum_full: datum,
            act_t: None,
            nxt_t: None,
            act_f: None,
            nxt_f: None,
            lvl_prv: None,
            lvl_nxt: None,
        });
        self.nodes.len() - 1
    }

    /// `_db_rule_gen_64`: the nodes of one comparison on a 64-bit argument.
    fn split(&mut self, c: &Cond) -> [usize; 3] {
        match c.op {
            Op::Gt | Op::Ge | Op::Lt | Op::Le => {
                let low = if matches!(c.op, Op::Gt | Op::Le) {
                    Check::Gt
                } else {
                    Check::Ge
                };
                let (c0, c1, c2) = (
                    self.node(c, true, Check::Gt),
                    self.node(c, true, Check::Eq),
                    self.node(c, false, low),
                );
                self.set_nxt(c0, false, c1);
                self.set_nxt(c1, true, c2);
                [c0, c1, c2]
            }
            Op::Eq | Op::Ne | Op::MaskedEq => {
                let check = if c.op == Op::MaskedEq {
                    Check::MaskedEq
                } else {
                    Check::Eq
                };
                let (c0, c1) = (self.node(c, true, check), self.node(c, false, check));
                self.set_nxt(c0, true, c1);
                [c0, c1, c1]
            }
        }
    }

    /// `_db_rule_gen_32`: one node per comparison.
    fn single(&mut self, c: &Cond) -> [usize; 3] {
        let check = match c.op {
            Op::Eq | Op::Ne => Check::Eq,
            Op::Ge | Op::Lt => Check::Ge,
            Op::Gt | Op::Le => Check::Gt,
            Op::MaskedEq => Check::MaskedEq,
        };
        let n = self.node(c, false, check);
        [n, n, n]
    }

    /// Whether a comparison holds on the false side of its (last) node.
    fn holds_on_false(op: Op) -> bool {
        matches!(op, Op::Ne | Op::Lt | Op::Le)
    }

    /// Hangs the next comparison (`next`) from the nodes `p` of comparison `op`.
    fn link(&mut self, op: Op, p: [usize; 3], next: usize, wide: bool) {
        if !wide {
            self.set_nxt(p[0], !Self::holds_on_false(op), next);
            return;
        }
        match op {
            Op::Gt | Op::Ge => {
                self.set_nxt(p[0], true, next);
                self.set_nxt(p[2], true, next);
            }
            Op::Eq | Op::MaskedEq => self.set_nxt(p[1], true, next),
            Op::Lt | Op::Le => {
                self.set_nxt(p[1], false, next);
                self.set_nxt(p[2], false, next);
            }
            Op::Ne => {
                self.set_nxt(p[0], false, next);
                self.set_nxt(p[1], false, next);
            }
        }
    }

    /// Puts the rule's action on the last comparison's nodes.
    fn finish(&mut self, op: Op, p: [usize; 3], ret: u32, wide: bool) {
        let mut act = |n: usize, side: bool| {
            if let Some(node) = self.nodes.get_mut(n) {
                if side {
                    node.act_t = Some(ret);
                } else {
                    node.act_f = Some(ret);
                }
            }
        };
        if !wide {
            act(p[0], !Self::holds_on_false(op));
            return;
        }
        match op {
            Op::Gt | Op::Ge => {
                act(p[0], true);
                act(p[2], true);
            }
            Op::Lt | Op::Le => {
                act(p[1], false);
                act(p[2], false);
            }
            Op::Eq | Op::MaskedEq => act(p[1], true),
            Op::Ne => {
                act(p[0], false);
                act(p[1], false);
            }
        }
    }

    fn set_nxt(&mut self, n: usize, side: bool, to: usize) {
        if let Some(node) = self.nodes.get_mut(n) {
            if side {
                node.nxt_t = Some(to);
            } else {
                node.nxt_f = Some(to);
            }
        }
    }

    /// Merges the chain of a later rule into the tree (`_db_tree_add`).
    pub fn add(&mut self, other: Tree) -> Result<(), Conflict> {
        let base = self.nodes.len();
        let shift = |i: Option<usize>| i.map(|i| i + base);
        for mut n in other.nodes {
            n.nxt_t = shift(n.nxt_t);
            n.nxt_f = shift(n.nxt_f);
            n.lvl_prv = shift(n.lvl_prv);
            n.lvl_nxt = shift(n.lvl_nxt);
            self.nodes.push(n);
        }
        self.merge(Slot::Root, other.root + base)
    }

    fn get(&self, slot: Slot) -> Option<usize> {
        match slot {
            Slot::Root => Some(self.root),
            Slot::True(n) => self.nodes.get(n)?.nxt_t,
            Slot::False(n) => self.nodes.get(n)?.nxt_f,
        }
    }

    fn set(&mut self, slot: Slot, to: usize) {
        match slot {
            Slot::Root => self.root = to,
            Slot::True(n) => self.set_nxt(n, true, to),
            Slot::False(n) => self.set_nxt(n, false, to),
        }
    }

    fn n(&self, i: usize) -> Result<&Node, Conflict> {
        self.nodes.get(i).ok_or(Conflict)
    }

    fn n_mut(&mut self, i: usize) -> Result<&mut Node, Conflict> {
        self.nodes.get_mut(i).ok_or(Conflict)
    }

    /// `_db_tree_add`: `new` (a chain's node) into the level hanging from `slot`.
    ///
    /// Unlike libseccomp 2.5, the level is walked from its first node, and a node already
    /// in it is not added again. A 64-bit range check hangs the next condition from two
    /// of its nodes (see [`Tree::link`]), so one chain reaches the same level twice, and
    /// libseccomp then links that node before itself and loops for ever (`runc run` with
    /// such a profile spins in `runc init`). Inserting a node into its own level is the
    /// only way the level links could go round in a circle.
    fn merge(&mut self, slot: Slot, new: usize) -> Result<(), Conflict> {
        let mut x = self.level_start(self.get(slot).ok_or(Conflict)?)?;
        let mut i = Some(x);
        for _ in 0..self.nodes.len() {
            match i {
                Some(at) if at == new => return Ok(()),
                Some(at) => i = self.n(at)?.lvl_nxt,
                None => break,
            }
        }
        loop {
            let (xn, nn) = (self.n(x)?, self.n(new)?);
            if same(xn, nn) {
                return self.merge_equal(x, new);
            }
            if !lt(xn, nn) {
                match xn.lvl_nxt {
                    Some(next) => x = next,
                    None => {
                        self.n_mut(new)?.lvl_prv = Some(x);
                        self.n_mut(x)?.lvl_nxt = Some(new);
                        return Ok(());
                    }
                }
                continue;
            }
            // Insert before x.
            if let Some(p) = xn.lvl_prv {
                self.n_mut(p)?.lvl_nxt = Some(new);
                self.n_mut(new)?.lvl_prv = Some(p);
            }
            self.n_mut(x)?.lvl_prv = Some(new);
            self.n_mut(new)?.lvl_nxt = Some(x);
            if self.get(slot) == Some(x) {
                self.set(slot, new);
            }
            return Ok(());
        }
    }

    /// Merges node `new` into the equal node `x`: both sides, then the next levels.
    fn merge_equal(&mut self, x: usize, new: usize) -> Result<(), Conflict> {
        for side in [true, false] {
            self.merge_action(x, new, side)?;
        }
        for side in [true, false] {
            let n_next = if side {
                self.n(new)?.nxt_t
            } else {
                self.n(new)?.nxt_f
            };
            let Some(n_next) = n_next else { continue };
            let xn = self.n(x)?;
            let (x_next, x_act) = if side {
                (xn.nxt_t, xn.act_t)
            } else {
                (xn.nxt_f, xn.act_f)
            };
            match (x_next, x_act) {
                (Some(_), _) => {
                    let slot = if side { Slot::True(x) } else { Slot::False(x) };
                    self.merge(slot, n_next)?;
                }
                (None, None) => self.set_nxt(x, side, n_next),
                // The existing rule is shorter: it already decides.
                (None, Some(_)) => return Ok(()),
            }
        }
        Ok(())
    }

    /// One side's action of `new` onto the equal node `x`.
    fn merge_action(&mut self, x: usize, new: usize, side: bool) -> Result<(), Conflict> {
        let (xn, nn) = (self.n(x)?, self.n(new)?);
        let (x_act, x_next, n_act) = if side {
            (xn.act_t, xn.nxt_t, nn.act_t)
        } else {
            (xn.act_f, xn.nxt_f, nn.act_f)
        };
        let Some(n_act) = n_act else { return Ok(()) };
        match x_act {
            None => {
                // The new rule is shorter: it replaces what followed, if it agrees.
                if let Some(next) = x_next {
                    self.check_actions(next, n_act)?;
                }
                let xm = self.n_mut(x)?;
                if side {
                    xm.nxt_t = None;
                    xm.act_t = Some(n_act);
                } else {
                    xm.nxt_f = None;
                    xm.act_f = Some(n_act);
                }
            }
            Some(a) if a != n_act => {
                // libseccomp's adjustment for 64-bit ranges (it sets the true action on
                // either side), then the conflict check on leaves.
                let adjust = nn.hi
                    && if side {
                        nn.datum_full > xn.datum_full
                    } else {
                        nn.datum_full < xn.datum_full
                    };
                let leaf = |n: &Node| n.nxt_t.is_none() && n.nxt_f.is_none();
                let conflict = leaf(xn) || leaf(nn);
                let n_act_t = nn.act_t;
                if adjust {
                    // C copies the value whether or not the new node has a true action
                    // (0, KILL_THREAD, when it has none); it matters only where `x` has one.
                    let xm = self.n_mut(x)?;
                    xm.act_t = xm.act_t.map(|_| n_act_t.unwrap_or(0));
                }
                if conflict {
                    return Err(Conflict);
                }
            }
            Some(_) => {}
        }
        Ok(())
    }

    /// `_db_tree_act_check`: every action under the level of `n` is `action`.
    fn check_actions(&self, n: usize, action: u32) -> Result<(), Conflict> {
        let mut i = self.level_start(n)?;
        loop {
            let node = self.n(i)?;
            if node.act_t.is_some_and(|a| a != action) || node.act_f.is_some_and(|a| a != action) {
                return Err(Conflict);
            }
            for next in [node.nxt_t, node.nxt_f].into_iter().flatten() {
                self.check_actions(next, action)?;
            }
            match node.lvl_nxt {
                Some(next) => i = next,
                None => return Ok(()),
            }
        }
    }

    /// The first node of the level of `n` (a walk longer than the tree refuses the rule).
    fn level_start(&self, mut n: usize) -> Result<usize, Conflict> {
        for _ in 0..self.nodes.len() {
            match self.n(n)?.lvl_prv {
                Some(p) => n = p,
                None => return Ok(n),
            }
        }
        Err(Conflict)
    }

    /// Emits the checks; a call no rule decides goes to `default` (a bound-later label).
    /// `words`: the offsets of an argument's low and high words.
    pub fn emit(&self, asm: &mut Asm, default: Target, words: &dyn Fn(u32) -> (u32, u32)) {
        self.emit_level(asm, self.root, default, words);
    }

    /// One level: each node's check, then its sides; `out`: where the level ends.
    fn emit_level(&self, asm: &mut Asm, n: usize, out: Target, words: &dyn Fn(u32) -> (u32, u32)) {
        let Ok(mut i) = self.level_start(n) else {
            asm.goto(out);
            return;
        };
        loop {
            let Some(node) = self.nodes.get(i) else {
                return;
            };
            let next = match node.lvl_nxt {
                Some(_) => asm.label(),
                None => out,
            };
            let (lo, hi) = words(node.arg);
            // Every check loads its word: a node is also reached from the end of the
            // previous node's next level, which loaded another one.
            asm.load(if node.hi { hi } else { lo });
            if node.check == Check::MaskedEq {
                asm.and(node.mask);
            }
            let code = match node.check {
                Check::Eq | Check::MaskedEq => JEQ_K,
                Check::Gt => JGT_K,
                Check::Ge => JGE_K,
            };
            let t = asm.label();
            let f = asm.label();
            asm.jump(code, node.datum, t, f);
            // Each side: the next level first (as gen_bpf), else the action, else on.
            for (label, nxt, act) in [(t, node.nxt_t, node.act_t), (f, node.nxt_f, node.act_f)] {
                asm.bind(label);
                match (nxt, act) {
                    (Some(sub), _) => self.emit_level(asm, sub, next, words),
                    (None, Some(a)) => asm.ret(a),
                    (None, None) => asm.goto(next),
                }
            }
            match node.lvl_nxt {
                Some(j) => {
                    asm.bind(next);
                    i = j;
                }
                None => return,
            }
        }
    }
}

/// `_db_chain_eq`: the same check (argument, word, operator, value, mask).
fn same(a: &Node, b: &Node) -> bool {
    a.arg == b.arg && a.hi == b.hi && a.check == b.check && a.datum == b.datum && a.mask == b.mask
}

/// `_db_chain_lt`.
fn lt(a: &Node, b: &Node) -> bool {
    let prio = |n: &Node| (n.arg << 1) + u32::from(n.hi);
    let op_prio = |op: Op| match op {
        Op::MaskedEq | Op::Eq | Op::Ne => 3,
        Op::Le | Op::Lt => 2,
        Op::Ge | Op::Gt => 1,
    };
    if prio(a) != prio(b) {
        return prio(a) < prio(b);
    }
    if op_prio(a.op) != op_prio(b.op) {
        return op_prio(a.op) < op_prio(b.op);
    }
    match a.op {
        Op::Le | Op::Lt => a.datum > b.datum,
        _ => a.datum < b.datum,
    }
}
