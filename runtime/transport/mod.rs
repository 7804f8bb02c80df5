//! Moving bytes between processes: frames and their validation
//! ([`frame`]), values as rkyv archives ([`wire`]), the shared-memory ring
//! for large values on one host ([`shm`]) and the record rings of streaming
//! stages in other processes ([`records`]), connections over Unix sockets
//! driven by the I/O runtime ([`socket`]), and frames over MPI for jobs
//! started by `mpirun` or `srun` (`mpi`, with the `mpi` feature).

pub(crate) mod auth;
pub(crate) mod dirkfile;
pub(crate) mod frame;
#[cfg(feature = "mpi")]
pub(crate) mod mpi;
pub(crate) mod records;
pub(crate) mod shm;
pub(crate) mod socket;
pub(crate) mod wire;

#[cfg(test)]
mod fuzz;
