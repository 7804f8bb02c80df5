use proc_macro2::TokenStream;
use quote::quote;

use super::graph::Graph;
use super::plan::{Order, plan};
use super::{checks, expand_datadeps, parse};
use crate::Diagnostics;

/// The messages `datadeps!` gives for a block.
fn errors(input: TokenStream) -> Vec<String> {
    let mut d = Diagnostics::new();
    if let Some(block) = parse::parse(input, &mut d)
        && !d.has_errors()
    {
        let graph = Graph::build(&block);
        checks::check(&block, &graph, &mut d);
    }
    let messages = d.messages();
    drop(d.into_tokens());
    messages
}

fn planned(input: TokenStream) -> super::plan::Plan {
    let mut d = Diagnostics::new();
    let block = parse::parse(input, &mut d).expect("parses");
    assert!(!d.has_errors(), "{:?}", d.messages());
    let graph = Graph::build(&block);
    plan(&block, &graph)
}

#[test]
fn straight_line_literal_places_are_planned_at_compile_time() {
    let p = planned(quote! {
        sort_in_place(InOut(x));
        copy_into(Out(c), In(x));
        let n = count(In(x));
        scale(InOut(v[0..5]), 2.0);
        scale(InOut(v[5..10]), 3.0);
        total(Out(t), In(v));
    });
    assert_eq!(p.order, Order::Static);
    assert_eq!(
        p.dot(),
        "digraph datadeps {\n  \
           t0 [label=\"sort_in_place(InOut(x))\"];\n  \
           t1 [label=\"copy_into(Out(c), In(x))\"];\n  \
           t2 [label=\"count(In(x))\"];\n  \
           t3 [label=\"scale(InOut(v[0..5]), 2.0)\"];\n  \
           t4 [label=\"scale(InOut(v[5..10]), 3.0)\"];\n  \
           t5 [label=\"total(Out(t), In(v))\"];\n  \
           t0 -> t1;\n  \
           t0 -> t2;\n  \
           t3 -> t5;\n  \
           t4 -> t5;\n\
         }"
    );
}

#[test]
fn a_write_waits_for_the_reads_before_it_and_implied_edges_are_dropped() {
    let p = planned(quote! {
        a(In(x));
        b(In(x));
        c(InOut(x));
        d(InOut(x));
        e(In(x.f));
    });
    let after: Vec<Vec<usize>> = p.tasks.iter().map(|t| t.after.clone()).collect();
    assert_eq!(after, [vec![], vec![], vec![0, 1], vec![2], vec![3]]);
}

#[test]
fn evaluating_through_a_written_container_waits_for_its_writer() {
    let p = planned(quote! {
        grow(InOut(v));
        first(In(v[0]));
        halves(InOut(w[0..2]));
        halves(InOut(w[2..4]));
    });
    assert_eq!(p.tasks[1].settle, [0]);
    assert!(p.tasks[3].settle.is_empty(), "disjoint halves do not wait for each other's evaluation");
}

#[test]
fn loops_and_run_time_indexes_are_ordered_at_run_time() {
    assert_eq!(
        planned(quote!(for i in 0..n {
            f(InOut(v[i]));
        }))
        .order,
        Order::Dynamic
    );
    assert_eq!(planned(quote!(f(InOut(v[i])); g(In(v[0])))).order, Order::Dynamic);
    assert_eq!(
        planned(quote!(if ok {
            f(InOut(x));
        }))
        .order,
        Order::Dynamic
    );
}

#[test]
fn values_are_not_places() {
    assert_eq!(
        errors(quote!(f(Out(x + 1));)),
        ["`x + 1` is not a place: In, Out and InOut take a variable, a field or an index such as `x`, `s.a`, `v[i]` \
          or `m[a..b]`; compute a value into a variable first, or pass a value without a marker"]
    );
    assert!(errors(quote!(f(In(g()));))[0].starts_with("`g ()` is not a place"));
}

#[test]
fn one_call_cannot_write_and_read_the_same_place() {
    assert_eq!(
        errors(quote!(f(Out(x), In(x));)),
        [
            "`Out(x)` and `In(x)` in the same call: the task cannot write it and read it at once; pass it once with `InOut`",
            "`Out(x)` is passed here"
        ]
    );
    assert_eq!(errors(quote!(f(InOut(v[0..5]), In(v[5..9]));)), Vec::<String>::new());
    assert!(errors(quote!(f(InOut(v[0..5]), In(v[4..9]));))[0].starts_with("`In(v[4..9])` overlaps `InOut(v[0..5])`"));
    assert_eq!(errors(quote!(f(InOut(v[i]), In(v[j]));)), Vec::<String>::new(), "decided at run time");
    assert!(errors(quote!(f(InOut(v[i]), InOut(v[i]));))[0].contains("passed twice"));
}

#[test]
fn touching_a_written_root_outside_a_task_is_refused() {
    let e = errors(quote! {
        x.push(1);
        sort(InOut(x));
        println!("{:?}", x);
        let n = x.len();
    });
    assert_eq!(e.len(), 3);
    assert!(e[0].starts_with("`x` is used by a task of this datadeps! block, so it cannot be touched outside a task"));
    assert_eq!(e[1], "`x` is first used by a task here");
    assert!(e[2].starts_with("`x` is used by a task"));
    assert!(errors(quote!(sum(In(x)); let n = x.len();)).is_empty(), "reading a root that tasks only read is fine");
    assert!(errors(quote!(sort(InOut(x)); let f = |x: i32| x + 1;)).is_empty(), "a shadowing name is another variable");
}

#[test]
fn roots_declared_in_the_block_are_refused() {
    let e = errors(quote! {
        let mut tmp = vec![0; 4];
        fill(Out(tmp));
    });
    assert_eq!(
        e,
        [
            "`tmp` is declared inside the datadeps! block, so it could be dropped while a task still uses it: declare it \
          before the block"
        ]
    );
}

#[test]
fn markers_belong_in_call_arguments() {
    assert!(errors(quote!(let y = In(x);))[0].starts_with("`In(..)` marks an argument of a task call"));
    assert!(errors(quote!(v.sort_by(InOut(x));))[0].starts_with("a method call cannot be a datadeps! task"));
    assert!(errors(quote!(println!("{:?}", f(In(x)));))[0].starts_with("datadeps! cannot see task calls inside"));
    assert!(errors(quote!(f(InOut(v[i].x));))[0].starts_with("a place ends with its indexes"));
    assert!(errors(quote!(f(In(x, y));))[0].starts_with("`In` marks one argument"));
}

#[test]
fn waiting_for_a_task_call_is_refused() {
    assert!(errors(quote!(f(InOut(x)).wait();))[0].starts_with("`wait` waits for a task"));
    let out = expand_datadeps(quote!(f(InOut(x)); let r = t.fetch();)).to_string();
    assert!(out.contains("NoWait :: new (& t)"), "{out}");
}

#[test]
fn the_expansion_drives_the_region() {
    let out = expand_datadeps(quote!(f(InOut(x)); g(In(x));)).to_string();
    assert!(out.contains(":: dirk :: __private :: datadeps :: run"), "{out}");
    assert!(out.contains("root_mut (x . dirk_root_mut ())"), "{out}");
    assert!(out.contains("call_planned"), "{out}");
    assert!(!out.contains("unsafe"), "{out}");
    // A call statement makes no handle; a call whose value is taken does.
    let out = expand_datadeps(quote!(for i in 0..2 {
        f(InOut(v[i]));
        let t = g(InOut(v[i]));
        h(In(v[i]), t);
    }))
    .to_string();
    assert!(out.contains(". call_detached (\"f\""), "{out}");
    assert!(out.contains(". call (\"g\""), "{out}");
    assert!(out.contains(". call_detached (\"h\""), "{out}");
    assert!(out.contains(". index (i)"), "{out}");
    // A call statement inside another call's argument is detached too.
    let out = expand_datadeps(quote!(for i in 0..2 {
        g(In(v[i]), {
            f(InOut(w[i]));
            3
        });
    }))
    .to_string();
    assert!(out.contains(". call_detached (\"g\""), "{out}");
    assert!(out.contains(". call_detached (\"f\""), "{out}");
}

#[test]
fn a_failed_expansion_is_errors_plus_a_placeholder() {
    let out = expand_datadeps(quote!(f(Out(1));)).to_string();
    assert!(out.contains("compile_error"), "{out}");
    assert!(out.contains("unreachable"), "{out}");
}
