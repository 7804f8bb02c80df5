use quote::quote;

use super::parse::{Callee, parse};
use crate::Diagnostics;

fn errors(input: proc_macro2::TokenStream) -> Vec<String> {
    let mut d = Diagnostics::new();
    let _ = parse(input, &mut d);
    let messages = d.messages();
    drop(d.into_tokens());
    messages
}

#[test]
fn a_plain_call_parses_with_its_name_and_arguments() {
    let mut d = Diagnostics::new();
    let spawn = parse(quote!(scope = Scope::thread(1), name = "load", io::load(a, &b, 3)), &mut d).unwrap();
    assert!(!d.has_errors());
    assert_eq!(spawn.options.len(), 2);
    assert_eq!(spawn.call.name, "load");
    assert_eq!(spawn.call.args.len(), 3);
    assert!(matches!(spawn.call.callee, Callee::Path(_)));
}

#[test]
fn closures_and_methods_are_calls_too() {
    let mut d = Diagnostics::new();
    let s = parse(quote!((|x: i64| x * 2)(a)), &mut d).unwrap();
    assert_eq!(s.call.name, "closure");
    assert!(matches!(s.call.callee, Callee::Expr(_)));
    let s = parse(quote!(v.iter_sum(1)), &mut d).unwrap();
    assert_eq!(s.call.name, "iter_sum");
    assert!(matches!(s.call.callee, Callee::Method { .. }));
    assert!(!d.has_errors());
}

#[test]
fn options_after_the_call_are_refused() {
    assert_eq!(
        errors(quote!(add(1, 2), name = "x")),
        ["options come before the call: write `spawn!(name = ..., add(..))`"]
    );
}

#[test]
fn unknown_and_repeated_options_are_named() {
    assert_eq!(
        errors(quote!(colour = 1, f())),
        ["unknown option `colour`: spawn! takes `scope`, `name`, `retries` and `checkpoint`"]
    );
    assert_eq!(
        errors(quote!(name = "a", name = "b", f())),
        ["`name` is given twice: keep one", "`name` is first given here"]
    );
}

#[test]
fn things_that_are_not_calls_are_refused() {
    assert_eq!(errors(quote!(add)), ["`add` is not called: spawn! needs a call such as `spawn!(add(...))`"]);
    assert_eq!(
        errors(quote!(42)),
        ["spawn! needs a function call such as `f(a, b)`, `(|x: i64| x + 1)(a)` or `value.method(a)`"]
    );
    assert_eq!(errors(quote!()), ["spawn! needs a call to spawn, such as `spawn!(f(a, b))`"]);
    assert!(errors(quote!(|| 1))[0].starts_with("a closure is spawned by calling it"));
    assert_eq!(
        errors(quote!(f(), g())),
        ["spawn! takes one call: spawn each call with its own spawn!", "the call to spawn is this one"]
    );
}

#[test]
fn the_expansion_calls_the_runtime_glue() {
    let out = super::expand_spawn(quote!(name = "n", add(a, 10))).to_string();
    assert!(out.contains(":: dirk :: __private :: spawn_task"), "{out}");
    assert!(out.contains("type_name_of_val"), "{out}");
    assert!(out.contains("slot_probe"), "{out}");
    assert!(out.contains("\"add\""), "{out}");
    assert!(out.contains(". name (\"n\")"), "{out}");
    assert!(out.contains(":: dirk :: __private :: PassAs :: provide (& mut __dirk_a1)"), "{out}");
}

#[test]
fn a_literal_remote_scope_needs_a_task() {
    assert!(
        errors(quote!(scope = Scope::worker(2), (|x: i64| x)(1)))[0].starts_with("a closure cannot run on worker 2")
    );
    assert!(
        errors(quote!(scope = Scope::workers([1, 3]).thread(0), v.len()))[0]
            .starts_with("this call cannot run on worker 1, 3")
    );
    assert!(errors(quote!(scope = Scope::workers([0, 3]), (|x: i64| x)(1))).is_empty(), "worker 0 may run it");
    assert!(errors(quote!(scope = Scope::worker(w), (|x: i64| x)(1))).is_empty(), "not a literal: checked at run time");
    let out = super::expand_spawn(quote!(scope = Scope::worker(1), m::add::<u8>(1, 2))).to_string();
    assert!(out.contains("must_be_task :: < m :: add >"), "{out}");
}

#[test]
fn a_failed_expansion_is_errors_plus_a_placeholder() {
    let out = super::expand_spawn(quote!(nope = 1, f())).to_string();
    assert!(out.contains("compile_error"), "{out}");
    assert!(out.contains("placeholder"), "{out}");
}
