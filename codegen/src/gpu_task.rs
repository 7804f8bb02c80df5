//! `#[task(gpu)]`: a task whose body launches GPU kernels.
//!
//! The function's first parameter is the device context (`gpu: &Gpu`). The
//! attribute takes it out of the signature, so callers and `spawn!` pass the
//! other arguments only, and wraps the body in a closure that the runtime
//! calls with the context of the GPU the task runs on:
//!
//! ```text
//! #[task(gpu)]
//! fn saxpy(gpu: &Gpu, a: f32, x: GpuVec<f32>) -> GpuVec<f32> { body }
//! // becomes
//! fn saxpy(a: f32, x: GpuVec<f32>) -> GpuVec<f32> {
//!     ::dirk::__private::gpu_task(move |gpu: &Gpu| -> GpuVec<f32> { body })
//! }
//! ```
//!
//! The context's pattern and type are the user's tokens, so a wrong type is
//! reported at the parameter.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::{FnArg, ItemFn, ReturnType, Type};

use crate::Diagnostics;

/// Checks that `function` can be a GPU task; reports what is wrong.
pub(crate) fn check(function: &ItemFn, diagnostics: &mut Diagnostics) {
    let sig = &function.sig;
    let needs_context = || {
        format!(
            "a #[task(gpu)] function takes its device context first: write `fn {}(gpu: &Gpu, ...)` with \
             `use dirk::gpu::Gpu;`",
            sig.ident
        )
    };
    match sig.inputs.first() {
        Some(FnArg::Typed(first)) => match &*first.ty {
            Type::Reference(_) => {}
            Type::Path(path) if path.path.segments.last().is_some_and(|s| s.ident == "Gpu") => diagnostics.error(
                first.ty.span(),
                "the device context of a #[task(gpu)] is borrowed: write `gpu: &Gpu` (a reference)",
            ),
            _ => diagnostics.error(first.span(), needs_context()),
        },
        Some(FnArg::Receiver(_)) => {} // refused as a method by the caller
        None => diagnostics.error(sig.paren_token.span.join(), needs_context()),
    }
}

/// Emits the checked GPU task (see the module note).
pub(crate) fn emit(function: ItemFn) -> TokenStream {
    let ItemFn { attrs, vis, mut sig, block } = function;
    let Some(FnArg::Typed(context)) = sig.inputs.iter().next().cloned() else {
        unreachable!("`check` found the context parameter")
    };
    sig.inputs = sig.inputs.into_iter().skip(1).collect();
    let (pat, ty) = (&context.pat, &context.ty);
    let annotated = match &sig.output {
        ReturnType::Default => quote!(-> ()),
        ReturnType::Type(_, ret) if mentions_impl_trait(ret) => quote!(),
        ReturnType::Type(arrow, ret) => quote!(#arrow #ret),
    };
    let body = quote_spanned! {block.span()=>
        ::dirk::__private::gpu_task(move |#pat: #ty| #annotated #block)
    };
    quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    }
}

/// Whether `ty` contains `impl Trait`, which a closure cannot name as its
/// return type (the closure's return type is then inferred).
fn mentions_impl_trait(ty: &Type) -> bool {
    struct Finder(bool);
    impl<'ast> Visit<'ast> for Finder {
        fn visit_type_impl_trait(&mut self, _: &'ast syn::TypeImplTrait) {
            self.0 = true;
        }
    }
    let mut finder = Finder(false);
    finder.visit_type(ty);
    finder.0
}

#[cfg(test)]
mod tests {
    use quote::quote;

    use crate::expand_task;

    #[test]
    fn the_context_leaves_the_signature_and_wraps_the_body() {
        let out = expand_task(
            quote!(gpu),
            quote!(
                /// Scales.
                pub fn scale(gpu: &Gpu, a: f32, x: GpuVec<f32>) -> GpuVec<f32> {
                    x
                }
            ),
        )
        .to_string();
        assert!(out.contains("pub fn scale (a : f32 , x : GpuVec < f32 >) -> GpuVec < f32 >"), "{out}");
        assert!(out.contains(":: dirk :: __private :: gpu_task (move | gpu : & Gpu | -> GpuVec < f32 >"), "{out}");
        assert!(out.contains("doc = r\" Scales.\""), "{out}");
    }

    #[test]
    fn unit_and_impl_trait_results() {
        let out = expand_task(
            quote!(gpu),
            quote!(
                fn touch(_gpu: &Gpu) {}
            ),
        )
        .to_string();
        assert!(out.contains("fn touch ()"), "{out}");
        assert!(out.contains("| _gpu : & Gpu | -> ()"), "{out}");
        let out = expand_task(
            quote!(gpu),
            quote!(
                fn it(g: &Gpu) -> impl Iterator<Item = u8> {
                    g.iter()
                }
            ),
        )
        .to_string();
        assert!(out.contains("| g : & Gpu | {"), "{out}");
    }

    #[test]
    fn a_missing_or_owned_context_is_refused() {
        let out = expand_task(
            quote!(gpu),
            quote!(
                fn f() -> u8 {
                    1
                }
            ),
        )
        .to_string();
        assert!(out.contains("takes its device context first"), "{out}");
        let out = expand_task(
            quote!(gpu),
            quote!(
                fn f(gpu: Gpu) -> u8 {
                    1
                }
            ),
        )
        .to_string();
        assert!(out.contains("is borrowed"), "{out}");
    }
}
