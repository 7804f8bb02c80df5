pub(crate) mod bench;
pub(crate) mod bless;
pub(crate) mod fuzz;
pub(crate) mod miri;
pub(crate) mod test;
