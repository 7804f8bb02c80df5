//! Blocking until something is done: a task's result, a `sync` group, a
//! `Runtime::run` closure.
//!
//! On a worker thread, waiting means running other tasks (the worker keeps
//! its core busy, and a task that waits for a task queued behind it runs
//! that task itself, so recursion such as `fib` with `spawn!` at every level
//! works on one thread). Elsewhere the thread spins briefly, for the common
//! case of a short task, then parks until the completer unparks it.

use std::thread;
use std::time::Instant;

use super::context;
use crate::task::listeners::Listener;
use crate::task::raw::Header;

/// Rounds a non-worker thread looks before it parks (tens of microseconds):
/// parking and being woken costs 10–20 µs on a virtual machine, more than
/// most short tasks take.
const SPIN_ROUNDS: u32 = 64;

/// Rounds that only spin; later ones yield the core, which the worker
/// running the awaited task may share.
const SPIN_ONLY_ROUNDS: u32 = 16;

/// The task a wait is for, and when the waiter gives up (never, for
/// `fetch` and `wait`: reading the clock for a deadline nobody meets costs
/// more than a short task).
#[derive(Clone, Copy)]
pub(crate) struct Awaited<'a> {
    pub(crate) header: &'a Header,
    pub(crate) deadline: Option<Instant>,
}

/// Blocks until `done()` holds; returns `false` if `awaited`'s deadline
/// passed first.
///
/// `awaited` names the task being waited for, if any: the thread registers
/// as its listener before it parks so the completion unparks it. Without a
/// task, whatever makes `done()` true must unpark the waiting thread itself
/// (as a `sync` group's last member does).
pub(crate) fn until(done: &dyn Fn() -> bool, awaited: Option<Awaited<'_>>) -> bool {
    if done() {
        return true;
    }
    let helped = context::with_worker(|worker| {
        worker.map(|w| w.help_until(done, awaited.map(|a| a.header), awaited.and_then(|a| a.deadline)))
    });
    if let Some(done) = helped {
        return done;
    }
    if let Some(helper) = context::helper() {
        return helper.help_until(done, awaited);
    }
    park_until(done, awaited)
}

fn park_until(done: &dyn Fn() -> bool, awaited: Option<Awaited<'_>>) -> bool {
    for round in 0..SPIN_ROUNDS {
        if done() {
            return true;
        }
        if round < SPIN_ONLY_ROUNDS {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
    let me = thread::current();
    let mut deadline = None;
    if let Some(Awaited { header, deadline: until }) = awaited {
        if header.listeners.register(&header.state, Listener::Thread(me.clone())).is_err() {
            return true;
        }
        deadline = until;
    }
    loop {
        if done() {
            return true;
        }
        match deadline {
            None => thread::park(),
            Some(deadline) => {
                let now = Instant::now();
                if now >= deadline {
                    if let Some(Awaited { header, .. }) = awaited {
                        header.listeners.unregister_thread(&header.state, &me);
                    }
                    return done();
                }
                thread::park_timeout(deadline - now);
            }
        }
    }
}
