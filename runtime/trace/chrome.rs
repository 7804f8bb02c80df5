//! The Chrome/Perfetto trace-event format: one complete event ("X") per task
//! run, flow events ("s"/"f") for dependencies, metadata naming each thread.

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use super::Trace;

pub(super) fn json(trace: &Trace) -> String {
    let mut events: Vec<String> = Vec::new();
    let us = |d: std::time::Duration| d.as_nanos() as f64 / 1000.0;
    let tid = |thread: Option<usize>| thread.map_or(-1, |t| t as i64);
    let mut threads = BTreeSet::new();
    let mut run_of = HashMap::new();
    for run in trace.tasks() {
        threads.insert((run.worker, tid(run.thread)));
        run_of.insert(run.task, run);
        events.push(format!(
            r#"{{"name":{},"cat":"task","ph":"X","ts":{:.3},"dur":{:.3},"pid":{},"tid":{},"args":{{"task":{},"failed":{}{}}}}}"#,
            quote(run.name),
            us(run.start),
            us(run.end.saturating_sub(run.start)),
            run.worker,
            tid(run.thread),
            run.task,
            run.failed,
            run.spawned.map_or(String::new(), |s| format!(r#","spawned_us":{:.3}"#, us(s)))
        ));
    }
    for (k, (from, to)) in trace.edges().iter().enumerate() {
        let (Some(a), Some(b)) = (run_of.get(from), run_of.get(to)) else { continue };
        events.push(format!(
            r#"{{"name":"input","cat":"dependency","ph":"s","id":{k},"ts":{:.3},"pid":{},"tid":{}}}"#,
            us(a.end),
            a.worker,
            tid(a.thread)
        ));
        events.push(format!(
            r#"{{"name":"input","cat":"dependency","ph":"f","bp":"e","id":{k},"ts":{:.3},"pid":{},"tid":{}}}"#,
            us(b.start),
            b.worker,
            tid(b.thread)
        ));
    }
    for t in &trace.transfers {
        events.push(format!(
            r#"{{"name":"move {} bytes","cat":"transfer","ph":"i","s":"p","ts":{:.3},"pid":{},"args":{{"task":{},"to":{}}}}}"#,
            t.bytes,
            us(t.at),
            t.from,
            t.task,
            t.to
        ));
    }
    for (worker, thread) in threads {
        let name = if thread < 0 { "outside the pool".to_owned() } else { format!("thread {thread}") };
        events.push(format!(
            r#"{{"name":"thread_name","ph":"M","pid":{worker},"tid":{thread},"args":{{"name":{}}}}}"#,
            quote(&name)
        ));
        events.push(format!(
            r#"{{"name":"process_name","ph":"M","pid":{worker},"args":{{"name":{}}}}}"#,
            quote(&format!("worker {worker}"))
        ));
    }
    let mut out = String::from("{\"traceEvents\":[\n");
    for (k, e) in events.iter().enumerate() {
        let _ = writeln!(out, "{e}{}", if k + 1 < events.len() { "," } else { "" });
    }
    out.push_str("],\"displayTimeUnit\":\"ns\"}\n");
    out
}

/// A JSON string literal.
pub(super) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
