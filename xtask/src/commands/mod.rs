pub(crate) mod bench;
pub(crate) mod bless;
pub(crate) mod miri;
pub(crate) mod test;
