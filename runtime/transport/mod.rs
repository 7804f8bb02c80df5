//! Moving bytes between processes: frames and their validation
//! ([`frame`]), values as rkyv archives ([`wire`]), the shared-memory ring
//! for large values on one host ([`shm`]), and connections over Unix
//! sockets driven by the I/O runtime ([`socket`]).

pub(crate) mod frame;
pub(crate) mod shm;
pub(crate) mod socket;
pub(crate) mod wire;

#[cfg(test)]
mod fuzz;
