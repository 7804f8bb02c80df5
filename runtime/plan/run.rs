//! Running a compiled plan: one runner task per worker thread, sharing the
//! graph through work-stealing deques of node indices.
//!
//! Protocol of one run:
//!
//! 1. With no runner alive (a run takes `&mut Plan`), every node's counter
//!    is reset to its in-degree, its value slot emptied, its failure flag
//!    cleared; the roots are dealt round-robin to the runners' deques.
//! 2. A runner pops a node (its own deque, LIFO, then stealing), computes it
//!    from its inputs' slots, writes its slot, then decrements each
//!    successor's counter; a successor whose counter reaches zero is pushed
//!    on this runner's deque, so a chain of nodes stays on one thread. The
//!    decrement releases the slot write; the decrement that reaches zero
//!    acquires every input's write (they form one release sequence).
//! 3. A node whose input failed does not run: it is marked failed (before
//!    the decrement that readies it) and passes the mark on.
//! 4. Runners count finished nodes locally and subtract them from the
//!    shared `remaining` count only when they run out of work, so the hot
//!    path touches no shared counter; a runner exits when `remaining` is
//!    zero. A runner holding unsubtracted nodes is itself not done, so
//!    `remaining` cannot reach zero early.
//! 5. A runner out of work spins briefly, then parks: it adds itself to
//!    `parked`, checks the deques and `remaining` once more, and sleeps (with
//!    a short timeout as a safety net). A runner that readies nodes while
//!    others are parked wakes one; the last runner to finish wakes all. On a
//!    busy machine idle runners thus give their core to threads with work.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};

use crate::sync::Mutex;
use crossbeam_deque::{Steal, Stealer, Worker};
use smallvec::SmallVec;

use super::{Shape, Slot};
use crate::Error;
use crate::exec;
use crate::sched::{Options, Scope};
use crate::task::spawn::{Closure, spawn_body_on};
use crate::task::{Task, TaskId};

pub(crate) struct RunState<T> {
    pub(super) shape: Shape<T>,
    slots: Box<[Slot<T>]>,
    pending: Box<[AtomicU32]>,
    failed: Box<[AtomicBool]>,
    remaining: AtomicUsize,
    first_error: Mutex<Option<(u32, Error)>>,
    /// Runners parked waiting for work (step 5).
    parked: Mutex<Vec<std::thread::Thread>>,
    parked_count: AtomicUsize,
}

impl<T: Send + Sync + 'static> RunState<T> {
    pub(super) fn new(shape: Shape<T>) -> Self {
        let n = shape.funcs.len();
        RunState {
            slots: (0..n).map(|_| Slot(std::cell::UnsafeCell::new(None))).collect(),
            pending: (0..n).map(|_| AtomicU32::new(0)).collect(),
            failed: (0..n).map(|_| AtomicBool::new(false)).collect(),
            remaining: AtomicUsize::new(0),
            first_error: Mutex::new(None),
            parked: Mutex::new(Vec::new()),
            parked_count: AtomicUsize::new(0),
            shape,
        }
    }

    pub(super) fn output(&self, node: usize) -> Option<&T> {
        // SAFETY: called through `&Plan` while no run is in progress (a run
        // takes `&mut Plan` and returns after every runner ended).
        self.slots.get(node).and_then(|slot| unsafe { (*slot.0.get()).as_ref() })
    }

    fn reset(&self) {
        for (k, &degree) in self.shape.in_degree.iter().enumerate() {
            self.pending[k].store(degree, Ordering::Relaxed);
            self.failed[k].store(false, Ordering::Relaxed);
            // SAFETY: no runner is alive (step 1 of the protocol).
            unsafe { *self.slots[k].0.get() = None };
        }
        self.remaining.store(self.shape.funcs.len(), Ordering::Release);
        *self.first_error.lock() = None;
    }

    /// Wakes one parked runner, if any (there is new work to steal).
    fn wake_one(&self) {
        if self.parked_count.load(Ordering::SeqCst) > 0
            && let Some(thread) = self.parked.lock().pop()
        {
            self.parked_count.fetch_sub(1, Ordering::SeqCst);
            thread.unpark();
        }
    }

    /// Wakes every parked runner (the plan is done).
    fn wake_all(&self) {
        for thread in self.parked.lock().drain(..) {
            self.parked_count.fetch_sub(1, Ordering::SeqCst);
            thread.unpark();
        }
    }

    /// Computes one node and readies its successors; returns how many it readied.
    fn compute(&self, node: usize, local: &Worker<u32>) -> usize {
        let failed = self.failed[node].load(Ordering::Acquire);
        let mut ok = false;
        if !failed {
            let inputs: SmallVec<[&T; 8]> = self
                .shape
                .inputs_of(node)
                .iter()
                // SAFETY: every input finished before this node's counter
                // reached zero (step 2), and no one writes it again this run.
                .map(|&i| unsafe { (*self.slots[i as usize].0.get()).as_ref() }.expect("inputs of a runnable node ran"))
                .collect();
            match catch_unwind(AssertUnwindSafe(|| (self.shape.funcs[node])(&inputs))) {
                Ok(value) => {
                    // SAFETY: only the runner of `node` writes its slot, once per run.
                    unsafe { *self.slots[node].0.get() = Some(value) };
                    ok = true;
                }
                Err(payload) => {
                    let error = Error::panicked(TaskId(0), format!("plan node {node}").into(), &*payload);
                    let mut first = self.first_error.lock();
                    if first.as_ref().is_none_or(|(k, _)| node < *k as usize) {
                        *first = Some((node as u32, error));
                    }
                }
            }
        }
        let mut readied = 0;
        for &s in self.shape.successors_of(node) {
            if !ok {
                self.failed[s as usize].store(true, Ordering::Relaxed);
            }
            if self.pending[s as usize].fetch_sub(1, Ordering::AcqRel) == 1 {
                local.push(s);
                readied += 1;
            }
        }
        readied
    }
}

/// Runs the plan on the current runtime; see the module note.
pub(super) fn execute<T: Send + Sync + 'static>(state: &Arc<RunState<T>>) -> Result<(), Error> {
    state.reset();
    let n = state.shape.funcs.len();
    if n == 0 {
        return Ok(());
    }
    let rt = exec::current();
    let runners = rt.threads().min(n);
    let deques: Vec<Worker<u32>> = (0..runners).map(|_| Worker::new_lifo()).collect();
    for (k, &root) in state.shape.roots.iter().enumerate() {
        deques[k % runners].push(root);
    }
    let stealers: Arc<[Stealer<u32>]> = deques.iter().map(Worker::stealer).collect();
    let tasks: Vec<Task<()>> = deques
        .into_iter()
        .enumerate()
        .map(|(r, local)| {
            let (state, stealers) = (state.clone(), stealers.clone());
            let options = Options::new().scope(Scope::thread(r)).name("plan runner");
            spawn_body_on(rt, Some(options), "plan runner", Closure(move || runner(&state, r, &local, &stealers)))
        })
        .collect();
    for task in &tasks {
        task.wait()?;
    }
    match state.first_error.lock().take() {
        Some((_, error)) => Err(error),
        None => Ok(()),
    }
}

fn runner<T: Send + Sync + 'static>(state: &RunState<T>, me: usize, local: &Worker<u32>, stealers: &[Stealer<u32>]) {
    let mut done = 0usize;
    let mut idle_rounds = 0u32;
    loop {
        if let Some(node) = local.pop().or_else(|| steal(me, local, stealers)) {
            // More than one node readied: others may steal the rest.
            if state.compute(node as usize, local) > 1 {
                state.wake_one();
            }
            done += 1;
            idle_rounds = 0;
            continue;
        }
        if done > 0 {
            if state.remaining.fetch_sub(done, Ordering::AcqRel) == done {
                state.wake_all();
                return;
            }
            done = 0;
        }
        if state.remaining.load(Ordering::Acquire) == 0 {
            return;
        }
        idle_rounds += 1;
        if idle_rounds < 64 {
            std::hint::spin_loop();
        } else if idle_rounds < 80 {
            std::thread::yield_now();
        } else {
            park(state, stealers);
            idle_rounds = 0;
        }
    }
}

/// Step 5: sleep until woken, unless work or the end appeared meanwhile.
#[cold]
fn park<T>(state: &RunState<T>, stealers: &[Stealer<u32>]) {
    state.parked.lock().push(std::thread::current());
    state.parked_count.fetch_add(1, Ordering::SeqCst);
    let work = stealers.iter().any(|s| !s.is_empty()) || state.remaining.load(Ordering::SeqCst) == 0;
    if !work {
        std::thread::park_timeout(std::time::Duration::from_micros(200));
    }
    let me = std::thread::current().id();
    let mut parked = state.parked.lock();
    if let Some(pos) = parked.iter().position(|t| t.id() == me) {
        parked.swap_remove(pos);
        state.parked_count.fetch_sub(1, Ordering::SeqCst);
    }
}

fn steal(me: usize, local: &Worker<u32>, stealers: &[Stealer<u32>]) -> Option<u32> {
    let n = stealers.len();
    (1..n).map(|k| (me + k) % n).find_map(|victim| {
        loop {
            match stealers[victim].steal_batch_and_pop(local) {
                Steal::Success(node) => break Some(node),
                Steal::Empty => break None,
                Steal::Retry => {}
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::super::Graph;
    use crate::Runtime;

    #[test]
    fn a_diamond_runs_in_order_on_every_run() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            let mut g = Graph::new();
            let a = g.add(&[], |_| 2_i64);
            let b = g.add(&[a], |x| x[0] + 1);
            let c = g.add(&[a], |x| x[0] * 10);
            let d = g.add(&[b, c], |x| x[0] * x[1]);
            let mut plan = g.compile();
            for _ in 0..100 {
                plan.run().unwrap();
                assert_eq!(plan.output(d), Some(&60));
            }
        });
    }

    #[test]
    fn a_failed_node_stops_its_successors_only() {
        let rt = Runtime::builder().threads(2).build().unwrap();
        rt.run(|| {
            let mut g = Graph::new();
            let a = g.add(&[], |_| 1_i64);
            let bad = g.add(&[a], |_| panic!("bad node"));
            let after = g.add(&[bad], |x| x[0] + 1);
            let fine = g.add(&[a], |x| x[0] + 5);
            let mut plan = g.compile();
            let err = plan.run().unwrap_err();
            assert!(matches!(err, crate::Error::Panicked { ref message, ref name, .. } if message == "bad node" && name == "plan node 1"), "{err}");
            assert_eq!((plan.output(after), plan.output(fine)), (None, Some(&6)));
        });
    }

    #[test]
    fn wide_and_deep_graphs_compute_every_node() {
        let rt = Runtime::builder().threads(3).build().unwrap();
        rt.run(|| {
            let (w, steps) = (50_usize, 40);
            let mut g = Graph::new();
            let mut row: Vec<_> = (0..w).map(|i| g.add(&[], move |_| i as u64)).collect();
            for _ in 1..steps {
                row = (0..w)
                    .map(|i| {
                        let ins = [row[i.saturating_sub(1)], row[i], row[(i + 1).min(w - 1)]];
                        g.add(&ins, |x| x.iter().map(|v| **v).sum::<u64>() % 1_000_003)
                    })
                    .collect();
            }
            let mut plan = g.compile();
            plan.run().unwrap();
            // Serial reference.
            let mut serial: Vec<u64> = (0..w as u64).collect();
            for _ in 1..steps {
                serial = (0..w)
                    .map(|i| (serial[i.saturating_sub(1)] + serial[i] + serial[(i + 1).min(w - 1)]) % 1_000_003)
                    .collect();
            }
            let got: Vec<u64> = row.iter().map(|&n| *plan.output(n).unwrap()).collect();
            assert_eq!(got, serial);
        });
    }
}
