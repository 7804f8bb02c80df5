//! A sink for compile errors, each with the span of the user's tokens it is
//! about. Stages push into it and keep going, so a user sees every mistake
//! of one macro call at once.

use std::fmt::Display;

use proc_macro2::{Span, TokenStream};

/// Collected compile errors.
///
/// Dropping a sink that holds errors without turning them into tokens
/// ([`Diagnostics::into_tokens`]) is a bug in the macro, caught by a panic
/// in debug builds.
#[derive(Debug, Default)]
pub struct Diagnostics {
    errors: Vec<syn::Error>,
}

impl Diagnostics {
    /// An empty sink.
    pub fn new() -> Self {
        Diagnostics::default()
    }

    /// Records an error at `span`.
    pub fn error(&mut self, span: Span, message: impl Display) {
        self.errors.push(syn::Error::new(span, message));
    }

    /// Records a parse error as it is.
    pub fn push(&mut self, error: syn::Error) {
        self.errors.push(error);
    }

    /// Records a conflict between two places: the error at `second`, and a
    /// pointer to `first` ("... first here").
    pub fn conflict(&mut self, first: Span, first_note: impl Display, second: Span, message: impl Display) {
        self.errors.push(syn::Error::new(second, message));
        self.errors.push(syn::Error::new(first, first_note));
    }

    /// Whether anything went wrong.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }

    /// The messages, for tests.
    pub fn messages(&self) -> Vec<String> {
        self.errors.iter().map(ToString::to_string).collect()
    }

    /// One `compile_error!` per error, each at its span.
    pub fn into_tokens(mut self) -> TokenStream {
        std::mem::take(&mut self.errors).into_iter().map(|e| e.to_compile_error()).collect()
    }
}

impl Drop for Diagnostics {
    fn drop(&mut self) {
        if !self.errors.is_empty() && !std::thread::panicking() {
            debug_assert!(false, "dirk-codegen dropped {} unreported errors", self.errors.len());
        }
    }
}

/// Option names for a message: "`a`, `b` and `c`" (or "no options").
pub(crate) fn list(names: &[&str]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("`{n}`")).collect();
    match quoted.as_slice() {
        [] => "no options".to_owned(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}
