use quote::quote;

use super::dot;

fn errors(input: proc_macro2::TokenStream) -> Vec<String> {
    dot(input).expect_err("expected errors")
}

#[test]
fn a_linear_chain_fuses_into_one_loop() {
    let d = dot(quote! {
        let x = src()?;
        let y = f(x);
        let z = g(y);
        z
    })
    .unwrap();
    assert_eq!(
        d,
        "digraph streaming {\n  subgraph cluster_0 { label=\"loop 0\";\n    s0 [label=\"x\"];\n    s1 [label=\"y\"];\n    s2 [label=\"z\"];\n  }\n  s0 -> s1 [label=\"fused\"];\n  s1 -> s2 [label=\"fused\"];\n  s2 -> tail [label=\"ring\"];\n}\n"
    );
}

#[test]
fn scopes_buffers_and_fan_out_cut_loops() {
    let d = dot(quote! {
        #[dirk(scope = Scope::thread(0))] let x = src()?;
        #[dirk(scope = Scope::thread(1))] let y = f(x);
        #[dirk(scope = Scope::thread(1), buffer = 8)] let z = g(y);
        let a = h(z);
        let b = k(&z);
        sink(a, b);
    })
    .unwrap();
    assert!(d.contains("s0 -> s1 [label=\"ring\"]"), "{d}");
    assert!(d.contains("s1 -> s2 [label=\"fused\"]"), "{d}");
    assert!(d.contains("s2 -> s3 [label=\"fan-out, cloned\"]"), "{d}");
    assert!(d.contains("s2 -> s4 [label=\"fan-out, borrowed\"]"), "{d}");
    assert!(d.contains("s3 -> s5 [label=\"ring\"]") && d.contains("s4 -> s5 [label=\"ring\"]"), "{d}");
    assert_eq!(d.matches("subgraph").count(), 5, "{d}");
}

#[test]
fn delays_are_carried_or_ringed() {
    let d = dot(quote! {
        let x = src()?;
        let s = add(x, delay(s, 0));
        let a = f(delay(b, 1));
        let b = g(a);
        s
    })
    .unwrap();
    assert!(d.contains("s1 -> s1 [label=\"delay (carried)\"]"), "{d}");
    assert!(d.contains("s3 -> s2 [label=\"delay, ring\"]"), "{d}");
    assert!(d.contains("s2 -> s3 [label=\"fused\"]"), "{d}");
}

#[test]
fn a_cycle_without_delay_names_its_stages() {
    assert_eq!(
        errors(quote! { let a = f(b); let b = g(a); a }),
        [
            "`a` and `b` form a cycle without `delay`, so none of them could ever start: read one of them from the previous iteration, as in `delay(b, init)`"
        ]
    );
    assert_eq!(
        errors(quote! { let a = f(a); a }),
        ["`a` uses itself, so it could never start: read its previous element with `delay(a, init)`"]
    );
}

#[test]
fn a_use_before_definition_is_refused() {
    assert_eq!(
        errors(quote! { let y = f(x); let x = src(); y }),
        [
            "`x` is used before it is defined: move `let x = ...;` above this stage, or read its previous element with `delay(x, init)`"
        ]
    );
}

#[test]
fn options_are_checked() {
    assert_eq!(
        errors(quote! { #![dirk(colour = 1)] let x = src(); x }),
        ["unknown option `colour`: regions take `max_evals`, `teardown` and `report_allocs`"]
    );
    assert_eq!(
        errors(quote! { #[dirk(buffer = 0)] let x = src(); x }),
        [
            "`buffer = 0` would hold no element: a buffer holds at least 1 (leave it out for a size chosen for throughput)"
        ]
    );
    assert!(
        errors(quote! { #[dirk(max_evals = 0)] let x = src(); x })[0]
            .starts_with("`max_evals = 0` would run no iteration")
    );
    assert_eq!(
        errors(quote! { #[dirk(speed = 2)] let x = src(); x }),
        ["unknown option `speed`: stages take `scope`, `buffer`, `max_evals` and `name`"]
    );
}

#[test]
fn streams_cannot_be_used_where_no_element_exists() {
    let e = errors(quote! { let x = src(); let y = f(delay(y, x)); #[dirk(max_evals = x)] let z = g(y); z });
    assert_eq!(e.len(), 2, "{e:?}");
    assert!(e.iter().all(|m| m.starts_with("`x` is a stream")), "{e:?}");
}

#[test]
fn nested_question_marks_and_shadowing() {
    assert!(errors(quote! { let x = f(g()?); x })[0].starts_with("`?` ends a stream only at the end of a stage"));
    // A closure's own `?` and a shadowed name are not the block's.
    let d = dot(quote! {
        let x = src()?;
        let y = (|x: Option<u8>| Some(x? + 1))(Some(x));
        let z = { let x = 3; x + y };
        z
    })
    .unwrap();
    assert!(d.contains("s0 -> s1") && d.contains("s1 -> s2") && !d.contains("s0 -> s2"), "{d}");
}

#[test]
fn uses_are_found_in_macros_and_format_strings() {
    let d = dot(quote! {
        let x = src()?;
        let y = src()?;
        println!("{x} {}", y);
    })
    .unwrap();
    assert!(d.contains("s0 -> s2") && d.contains("s1 -> s2"), "{d}");
}

#[test]
fn the_expansion_wires_the_builder() {
    let out = super::expand_streaming(quote! { #![dirk(max_evals = 3)] let x = src()?; x }).to_string();
    assert!(out.contains("Builder :: new"), "{out}");
    assert!(out.contains(". stage (0usize"), "{out}");
    assert!(out.contains("start ("), "{out}");
    let failed = super::expand_streaming(quote! { let a = f(a); a }).to_string();
    assert!(failed.contains("compile_error") && failed.contains("placeholder"), "{failed}");
}

#[test]
fn a_call_scoped_to_a_worker_gets_a_remote_form() {
    let out = super::expand_streaming(quote! {
        let x = src()?;
        #[dirk(scope = Scope::worker(1))]
        let y = f(x, k);
        y
    })
    .to_string();
    assert!(out.contains(". remote ("), "{out}");
    assert!(out.contains("must_be_task :: < f >"), "{out}");
    assert!(out.contains("slot : 0usize"), "{out}");
}

#[test]
fn a_literal_worker_scope_needs_a_call() {
    let out = super::expand_streaming(quote! {
        let x = src()?;
        #[dirk(scope = Scope::worker(1))]
        let y = x + 1;
        y
    })
    .to_string();
    assert!(out.contains("compile_error"), "{out}");
    assert!(out.contains("it is not a function call"), "{out}");
}

#[test]
fn a_stage_without_a_name_is_named_by_what_it_calls_not_by_unwrap() {
    let d = dot(quote! {
        let x = src()?;
        sink.send(x).unwrap();
        log.lock().unwrap().push(x);
        record(x).expect("recorded");
        x.unwrap();
    })
    .unwrap();
    for label in ["s1 [label=\"send\"]", "s2 [label=\"push\"]", "s3 [label=\"record\"]", "s4 [label=\"unwrap\"]"] {
        assert!(d.contains(label), "{label} in {d}");
    }
}
