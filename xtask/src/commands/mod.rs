pub(crate) mod bench;
pub(crate) mod bless;
pub(crate) mod test;
