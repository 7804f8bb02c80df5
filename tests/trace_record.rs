//! Tracing: runs, threads, dependencies and the three renderings.

mod common;

use std::time::Duration;

use common::{SHORT, within};
use dirk::prelude::*;

#[task]
fn inc(x: i64) -> i64 {
    dirk::sleep(Duration::from_millis(2));
    x + 1
}

#[task]
fn add(a: i64, b: i64) -> i64 {
    a + b
}

#[task]
fn fail(x: i64) -> i64 {
    panic!("no {x}")
}

/// Tracing is process-wide; nextest runs each test in its own process, and
/// the tests here also serialise themselves for `cargo test`.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_diamond_is_recorded_with_its_edges_and_order() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        let ((a, d), trace) = dirk::trace::record(|| {
            rt.run(|| {
                let a = spawn!(inc(1));
                let b = spawn!(inc(&a));
                let c = spawn!(inc(&a));
                let d = spawn!(add(&b, &c));
                assert_eq!(d.fetch().unwrap(), 6);
                (a.id(), d.id())
            })
        });
        let runs: Vec<_> = trace.tasks().iter().filter(|r| r.name == "inc" || r.name == "add").collect();
        assert_eq!(runs.len(), 4);
        let run_of = |id| runs.iter().find(|r| r.task == id).unwrap();
        let (first, last) = (run_of(a), run_of(d));
        assert!(first.end <= last.start, "the sink starts after its ancestors end");
        assert!(first.spawned.is_some_and(|s| s <= first.start));
        assert!(runs.iter().all(|r| r.worker == 0 && r.thread.is_some()), "all on worker threads (cores or spares)");
        assert!(runs.iter().all(|r| r.end >= r.start && !r.failed));
        let edges: Vec<_> = trace.edges().iter().filter(|(from, _)| *from == a).collect();
        assert_eq!(edges.len(), 2, "a feeds b and c: {:?}", trace.edges());
        assert_eq!(trace.edges().iter().filter(|(_, to)| *to == d).count(), 2);
        assert_eq!(trace.name_of(d), Some("add"));
    });
}

#[test]
fn the_renderings_show_the_tasks() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(SHORT, || {
        let (_, trace) = dirk::trace::record(|| {
            let a = spawn!(inc(1));
            let b = spawn!(fail(&a));
            let _ = b.wait();
            spawn!(name = "named step", add(1, 2)).fetch().unwrap()
        });
        let json: serde_json::Value = serde_json::from_str(&trace.to_chrome_json()).expect("valid JSON");
        let events = json["traceEvents"].as_array().unwrap();
        let complete: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
        assert!(complete.iter().any(|e| e["name"] == "named step"));
        assert!(complete.iter().any(|e| e["name"] == "inc" && e["dur"].as_f64().unwrap() >= 1000.0), "inc sleeps 2 ms");
        assert!(events.iter().any(|e| e["ph"] == "s") && events.iter().any(|e| e["ph"] == "f"), "a dependency flow");
        assert!(events.iter().any(|e| e["ph"] == "M" && e["name"] == "thread_name"));

        let svg = dirk::trace::gantt_svg(&trace);
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("<title>inc #") && svg.contains("named step"));
        assert!(svg.contains(r##"stroke="#c00""##), "the failed task is outlined");
        // One unit along the axis, from 0.
        let ticks: Vec<&str> =
            svg.split(r#"text-anchor="middle">"#).skip(1).map(|rest| rest.split('<').next().unwrap()).collect();
        assert!((3..=11).contains(&ticks.len()), "{svg}");
        let unit = ticks[1].rsplit(' ').next().unwrap();
        assert!(["ns", "µs", "ms", "s"].contains(&unit), "{ticks:?}");
        assert_eq!(ticks[0], format!("0 {unit}"));
        assert!(ticks.iter().all(|t| t.ends_with(&format!(" {unit}"))), "{ticks:?}");

        let dot = dirk::trace::dot(&trace);
        assert!(dot.starts_with("digraph dirk {"));
        let inc_run = trace.tasks().iter().find(|r| r.name == "inc").unwrap().task;
        let fail_task = trace.edges().iter().find(|(from, _)| *from == inc_run).map(|e| e.1).unwrap();
        assert!(dot.contains(&format!("t{inc_run} -> t{fail_task};")), "{dot}");
        assert!(dot.contains("fillcolor=\"#f8d0d0\""), "the failed task is red");
    });
}

#[test]
fn a_runtime_built_with_trace_writes_it_when_dropped() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(SHORT, || {
        let path = std::env::temp_dir().join(format!("dirk-trace-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let rt = Runtime::builder().threads(1).trace(&path).build().unwrap();
        rt.run(|| {
            dirk::sync(|| {
                for i in 0..50 {
                    spawn!(add(i, 1));
                }
            })
            .unwrap()
        });
        assert!(dirk::trace::is_recording());
        drop(rt);
        assert!(!dirk::trace::is_recording());
        let text = std::fs::read_to_string(&path).expect("the trace was written");
        let json: serde_json::Value = serde_json::from_str(&text).unwrap();
        let adds =
            json["traceEvents"].as_array().unwrap().iter().filter(|e| e["name"] == "add" && e["ph"] == "X").count();
        assert_eq!(adds, 50);
        let _ = std::fs::remove_file(&path);
    });
}

#[test]
fn nothing_is_recorded_when_tracing_is_off() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(SHORT, || {
        assert!(!dirk::trace::is_recording());
        spawn!(add(1, 1)).fetch().unwrap();
        let trace = dirk::trace::stop();
        assert!(trace.tasks().is_empty() && trace.edges().is_empty());
        let (_, trace) = dirk::trace::record(|| spawn!(add(2, 2)).fetch().unwrap());
        assert_eq!(trace.tasks().iter().filter(|r| r.name == "add").count(), 1, "only the recorded region");
    });
}

#[test]
fn a_task_run_while_another_waits_is_timed_from_its_own_start() {
    #[task]
    fn parent() -> i64 {
        dirk::sleep(Duration::from_millis(20)); // runs for a while before it waits
        let child = spawn!(inc(1));
        child.fetch().unwrap()
    }
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(SHORT, || {
        let rt = Runtime::builder().threads(1).build().unwrap();
        let (_, trace) = dirk::trace::record(|| rt.run(|| spawn!(parent()).fetch().unwrap()));
        let parent = trace.tasks().iter().find(|r| r.name == "parent").unwrap();
        let child = trace.tasks().iter().find(|r| r.name == "inc").unwrap();
        assert!(child.start >= parent.start + Duration::from_millis(15), "{parent:?} {child:?}");
        assert!(child.end <= parent.end);
    });
}

#[task]
fn step(a: &u64, b: &u64) -> u64 {
    a.wrapping_add(*b)
}

#[task]
fn seed(i: u64) -> u64 {
    i
}

#[test]
fn short_tasks_keep_their_order_on_each_thread_and_after_their_inputs() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    within(SHORT, || {
        let rt = Runtime::builder().threads(2).build().unwrap();
        // Trivial tasks: workers share clock readings among them.
        let (width, steps) = (8usize, 500usize);
        let ((), trace) = dirk::trace::record(|| {
            rt.run(|| {
                dirk::sync(|| {
                    let mut row: Vec<Task<u64>> = (0..width as u64).map(|i| spawn!(seed(i))).collect();
                    for _ in 1..steps {
                        row = (0..width).map(|i| spawn!(step(&row[i], &row[(i + 1) % width]))).collect();
                    }
                })
                .unwrap()
            })
        });
        let runs: Vec<_> = trace.tasks().iter().filter(|r| r.name == "step" || r.name == "seed").collect();
        assert_eq!(runs.len(), width * steps, "every task ran once");
        let by_id: std::collections::HashMap<_, _> = runs.iter().map(|r| (r.task, *r)).collect();
        for (from, to) in trace.edges() {
            let (Some(from), Some(to)) = (by_id.get(from), by_id.get(to)) else { continue };
            assert!(from.end <= to.start, "an input ends before its consumer starts: {from:?} {to:?}");
        }
        assert!(runs.iter().all(|r| r.start <= r.end && r.spawned.is_some_and(|s| s <= r.start)));
        for thread in [Some(0), Some(1)] {
            let mine: Vec<_> = runs.iter().filter(|r| r.thread == thread).collect();
            for pair in mine.windows(2) {
                assert!(pair[0].end <= pair[1].start, "one thread runs one task at a time: {pair:?}");
            }
        }
    });
}
